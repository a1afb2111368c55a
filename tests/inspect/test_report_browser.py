"""The HTML report in a real browser: headless Chromium (Debian's `chromium`) loads it from disk, with no
console errors and no network requests; the unit picker and the feature table change the colouring; a
screenshot is written. Driven over the Chrome DevTools Protocol on a pipe (--remote-debugging-pipe: JSON
messages ending in NUL on file descriptors 3 and 4), so nothing beyond the browser is needed.

Under CI (CI=true) a missing chromium fails; locally the test skips.
"""
from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import rnnlab
from rnnlab.data import Vocabulary
from rnnlab.inspect import trace
from rnnlab.inspect.report import build_report
from rnnlab.models import CharRNN

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe", "--hide-scrollbars"]


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    message = "chromium not found (Debian: apt-get install chromium)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


class Browser:
    """A headless Chromium and one page, driven over the DevTools protocol on a pipe."""

    def __init__(self, executable: str, profile: Path, timeout: float = 60.0):
        self.timeout = timeout
        to_child_read, self._write = os.pipe()
        self._read, from_child_write = os.pipe()

        def wire_fds():   # in the child, before exec: the protocol's fds are 3 (commands in) and 4 (replies out)
            a, b = os.dup(to_child_read), os.dup(from_child_write)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.process = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(3, 4),
                                        preexec_fn=wire_fds)
        os.close(to_child_read)
        os.close(from_child_write)
        self._messages: queue.Queue = queue.Queue()
        self._events: list = []
        self._next_id = 0
        threading.Thread(target=self._reader, daemon=True).start()
        try:
            targets = self.call("Target.getTargets")["targetInfos"]
            page = next(t for t in targets if t["type"] == "page")
            self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        except BaseException:
            self.close()               # never leave a browser running behind a failed test
            raise

    def _reader(self):
        buffer = b""
        while True:
            try:
                chunk = os.read(self._read, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                os.close(self._read)
                self._messages.put(None)
                return
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                self._messages.put(json.loads(message))

    def call(self, method, session=None, **params):
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        os.write(self._write, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._messages.get(timeout=max(0.1, deadline - time.monotonic()))
            if message is None:
                raise RuntimeError("chromium closed the DevTools pipe")
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._events.append(message)

    def page(self, method, **params):
        return self.call(method, session=self.session, **params)

    def evaluate(self, expression: str):
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, seconds: float = 20.0):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}")

    def drain(self):
        """Move the events that arrived since the last call into ``self._events``."""
        while True:
            try:
                message = self._messages.get_nowait()
            except queue.Empty:
                return
            if message is not None:
                self._events.append(message)

    def events(self, method: str) -> list:
        self.drain()
        return [e["params"] for e in self._events if e.get("method") == method]

    def close(self):
        if self.process.returncode is not None:
            return
        self.timeout = 10.0
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)


def open_report(path: Path, profile: Path, width=1280, height=900) -> Browser:
    browser = Browser(find_chromium(), profile)
    try:
        for domain in ("Runtime", "Log", "Page", "Network"):
            browser.page(f"{domain}.enable")
        browser.page("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                     mobile=False)
        browser.page("Page.navigate", url=path.resolve().as_uri())
        browser.wait_for("document.readyState === 'complete' && document.body && document.body.dataset.ready === '1'")
    except BaseException:
        browser.close()
        raise
    return browser


def errors_of(browser: Browser) -> list:
    found = [e["exceptionDetails"] for e in browser.events("Runtime.exceptionThrown")]
    found += [e for e in browser.events("Runtime.consoleAPICalled") if e.get("type") in ("error", "assert")]
    found += [e["entry"] for e in browser.events("Log.entryAdded") if e["entry"].get("level") == "error"]
    return found


def screenshot(browser: Browser, path: Path) -> None:
    data = browser.page("Page.captureScreenshot", format="png")["data"]
    path.write_bytes(base64.b64decode(data))


TEXT = ('def greet(name):\n    # say hello\n    print("Hello, " + name)  # done\n'
        'class Box:\n    """A box (of [things])."""\n    size = {\'w\': 1}\n' * 4 + "한국어 문장 <script>\n")


# more than 256 symbols: the page reads the guesses' ids as uint16
WIDE = "".join(chr(0xAC00 + (i * 7) % 300) for i in range(600)) + "\n" + TEXT


def _report(tmp_path, cell="lstm", text=TEXT) -> Path:
    rnnlab.manual_seed(0)
    model = CharRNN(Vocabulary.from_text(text), hidden_size=16, num_layers=2, cell=cell)
    tr = trace(model, text)
    metrics = [{"step": s, "loss": 4.0 - s / 100} for s in range(1, 200)] + [{"step": 100, "val_bpc": 4.5},
                                                                             {"step": 199, "val_bpc": 3.9}]
    report = build_report(tr, about=[("run", "test")], metrics=metrics)
    path = tmp_path / f"report-{cell}.html"
    path.write_text(report.html, encoding="utf-8")
    return path


COLOURS = "Array.from(document.querySelectorAll('#text-unit span')).map(s => s.style.backgroundColor).join('|')"


@pytest.mark.parametrize("cell, text", [("lstm", TEXT), ("rnn", TEXT), ("gru", WIDE)],
                         ids=["lstm", "rnn", "gru-300-symbols"])
def test_report_opens_with_no_errors_and_the_picker_changes_the_colouring(tmp_path, cell, text):
    path = _report(tmp_path, cell, text)
    browser = open_report(path, tmp_path / "profile")
    try:
        # every character drawn once in each text view; the info panel shows the top guesses
        assert browser.evaluate("document.querySelectorAll('#text-unit span').length") == len(text)
        assert browser.evaluate("document.querySelectorAll('#text-loss span').length") == len(text)
        assert browser.evaluate("document.querySelectorAll('#info tr').length") == 5
        before = browser.evaluate(COLOURS)
        assert len(set(before.split("|"))) > 3                 # coloured, not blank
        browser.evaluate("(() => { const s = document.getElementById('pick-unit');"
                         " s.value = s.options[(s.selectedIndex + 1) % s.options.length].value;"
                         " s.dispatchEvent(new Event('change')); })()")
        after = browser.evaluate(COLOURS)
        assert after != before
        # another layer through the layer picker
        browser.evaluate("(() => { const s = document.getElementById('pick-layer'); s.value = '0';"
                         " s.dispatchEvent(new Event('change')); })()")
        title = browser.evaluate("document.getElementById('unit-title').textContent")
        assert title.startswith("layer 0")
        # a feature-table row selects its unit
        if cell == "lstm":
            row = browser.evaluate("(() => { const r = document.querySelector('table.rank tbody tr'); r.click();"
                                   " return [r.children[1].textContent, r.children[2].textContent,"
                                   " r.children[3].textContent]; })()")
            title = browser.evaluate("document.getElementById('unit-title').textContent")
            assert title.startswith(f"layer {row[0]}, {row[1]} ") and title.split("unit ")[-1].startswith(row[2])
        # hovering a character shows its guesses
        browser.evaluate("document.querySelectorAll('#text-unit span')[7].dispatchEvent("
                         "new MouseEvent('mouseover', {bubbles: true}))")
        info = browser.evaluate("document.getElementById('info').textContent")
        assert "position 7" in info
        guesses = browser.evaluate("Array.from(document.querySelectorAll('#info td.c')).map(td => td.textContent)")
        rnnlab.manual_seed(0)
        model = CharRNN(Vocabulary.from_text(text), hidden_size=16, num_layers=2, cell=cell)
        expected = [ch for ch, _ in trace(model, text[:8]).topk(7)]
        assert guesses == [{" ": "\u2423", "\n": "\u21b5"}.get(ch, ch) for ch in expected]
        # the text's "<script>" is text, not markup
        assert "<script>" in browser.evaluate("document.getElementById('text-unit').textContent")
        assert browser.evaluate("document.scripts.length") == 2
        screenshot(browser, tmp_path / "report.png")
        assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert errors_of(browser) == []
        requests = [e["request"]["url"] for e in browser.events("Network.requestWillBeSent")]
        assert requests and all(url.startswith(("file:", "data:")) for url in requests), requests
    finally:
        browser.close()
