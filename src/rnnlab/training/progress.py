"""A dependency-free progress line for training.

``step 120/2000  loss 1.734  12,345 chars/s  ETA 3m12s``

On a terminal the line is redrawn in place (``\\r``) at most ``redraw_per_second`` times a second; on
a pipe, a file or CI it prints a plain line at the first update, then every ``every_seconds`` seconds,
at every multiple of ``every_steps`` and at the last step. :meth:`Progress.write` prints a message
(an evaluation, a sample) without breaking the line.

The ETA comes from the step rate (when ``total_steps`` is known) or from the time budget, whichever
ends first. The step rate counts from ``start_step`` at construction when given, otherwise from the
first :meth:`~Progress.update` (so a resumed run's rate is right and set-up time is not counted).

>>> import io
>>> clock = iter([0.0, 10.0, 20.0]).__next__
>>> out = io.StringIO()
>>> progress = Progress(total_steps=100, stream=out, every_steps=50, start_step=0, clock=clock)
>>> progress.update(50, loss=1.7342, chars_per_s=12345.6)
>>> progress.close()
>>> print(out.getvalue(), end="")
step 50/100  loss 1.734  12,346 chars/s  ETA 10s
"""
from __future__ import annotations

import math
import sys
import time
from typing import Callable


def format_duration(seconds: float) -> str:
    """``45s``, ``3m12s``, ``1h02m``; ``?`` when unknown.

    >>> format_duration(192), format_duration(3720), format_duration(5.4)
    ('3m12s', '1h02m', '5s')
    """
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    """A progress line: :meth:`update` at each step, :meth:`write` for messages, :meth:`close` at the end.

    Args:
        total_steps: the step the run ends at (``None``: unknown).
        time_budget: seconds this invocation may train (``None``: no limit).
        stream: where to write (``sys.stderr``).
        every_seconds, every_steps: how often a non-terminal stream gets a line.
        redraw_per_second: the most redraws per second on a terminal.
        start_step: the step the run starts from now (0, or the resumed step); ``None``: the rate is
            measured from the first update on.
        clock: the time source (``time.monotonic``); tests pass a fake one.
    """

    def __init__(self, total_steps: int | None = None, time_budget: float | None = None, stream=None,
                 every_seconds: float = 10.0, every_steps: int | None = None, redraw_per_second: float = 10.0,
                 start_step: int | None = None, clock: Callable[[], float] = time.monotonic):
        self.total_steps = total_steps
        self.time_budget = time_budget
        self.stream = sys.stderr if stream is None else stream
        self.every_seconds = every_seconds
        self.every_steps = every_steps
        self.min_redraw_interval = 1.0 / redraw_per_second if redraw_per_second else 0.0
        self.clock = clock
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty())
        self.start_time = clock()
        # where the step rate counts from: (step, time)
        self.rate_origin: tuple[int, float] | None = None if start_step is None else (start_step, self.start_time)
        self.last_shown_time: float | None = None
        self.last_shown_step: int | None = None
        self.line = ""          # the line currently drawn on a terminal ("" if none)
        self.last_text = ""     # the latest rendered status (drawn or not)
        self.closed = False

    # --- the status text ----------------------------------------------------------------------
    def eta_seconds(self, step: int, now: float) -> float | None:
        """Seconds left: by the step rate toward ``total_steps`` or by the time budget, whichever is first."""
        candidates = []
        if self.total_steps is not None and self.rate_origin is not None:
            origin_step, origin_time = self.rate_origin
            if step > origin_step and now > origin_time:
                rate = (step - origin_step) / (now - origin_time)
                candidates.append(max(0, self.total_steps - step) / rate)
        if self.time_budget is not None:
            candidates.append(max(0.0, self.time_budget - (now - self.start_time)))
        return min(candidates) if candidates else None

    def render(self, step: int, now: float, loss=None, chars_per_s=None, extra: str | dict | None = None) -> str:
        parts = [f"step {step}/{self.total_steps}" if self.total_steps is not None else f"step {step}"]
        if loss is not None:
            parts.append(f"loss {loss:.3f}")
        if chars_per_s is not None:
            parts.append(f"{chars_per_s:,.0f} chars/s")
        if extra:
            parts.append(extra if isinstance(extra, str)
                         else "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in extra.items()))
        eta = self.eta_seconds(step, now)
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        return "  ".join(parts)

    # --- output -------------------------------------------------------------------------------
    def update(self, step: int, loss: float | None = None, chars_per_s: float | None = None,
               extra: str | dict | None = None, force: bool = False) -> None:
        """Report ``step`` (counted from the start of the run); shown if it is time to (or ``force``)."""
        now = self.clock()
        if self.rate_origin is None:
            self.rate_origin = (step, now)
        self.last_text = self.render(step, now, loss, chars_per_s, extra)
        last = step == self.total_steps
        if self.interactive:
            due = self.last_shown_time is None or now - self.last_shown_time >= self.min_redraw_interval
            if due or force or last:
                self._draw(self.last_text)
                self.last_shown_time, self.last_shown_step = now, step
            return
        due_by_time = self.every_seconds is not None and (
            now - (self.last_shown_time if self.last_shown_time is not None else self.start_time)
            >= self.every_seconds)
        due_by_steps = bool(self.every_steps) and step % self.every_steps == 0
        first = self.last_shown_step is None  # show at once that training runs
        if due_by_time or due_by_steps or force or last or first:
            self._print(self.last_text)
            self.last_shown_time, self.last_shown_step = now, step

    def _draw(self, text: str) -> None:
        padding = " " * max(0, len(self.line) - len(text))  # erase what a longer previous line left
        self.stream.write("\r" + text + padding)
        self.stream.flush()
        self.line = text

    def _clear(self) -> None:
        if self.line:
            self.stream.write("\r" + " " * len(self.line) + "\r")
            self.line = ""

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def write(self, message: str) -> None:
        """Print a message on its own line; on a terminal the progress line is redrawn below it."""
        if self.interactive:
            line = self.line
            self._clear()
            self._print(message)
            if line:
                self._draw(line)
        else:
            self._print(message)

    def close(self) -> None:
        """End the progress line (on a terminal it stays visible, followed by a newline)."""
        if self.closed:
            return
        self.closed = True
        if self.interactive:
            if self.last_text and self.last_text != self.line:
                self._draw(self.last_text)
            if self.line:
                self.stream.write("\n")
                self.stream.flush()
                self.line = ""

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
