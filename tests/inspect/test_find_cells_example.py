"""examples/find_cells.py runs end to end (tiny settings, as a subprocess, the way a user runs it)."""
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXT = ('def f(x):\n    # add one\n    return g("x", [x + 1])\n\nclass A:\n    name = \'a\'\n' * 30)


def test_find_cells_trains_traces_and_writes_the_report(tmp_path):
    text = tmp_path / "code.py"
    text.write_text(TEXT, encoding="utf-8")
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "find_cells.py"), "--text", str(text), "--out",
         str(tmp_path / "run"), "--hidden-size", "16", "--steps", "6", "--batch-size", "4", "--seq-len", "16",
         "--chars", "300"], capture_output=True, text=True, timeout=300, env=environment)
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert " validation characters, " in out and "bits/char" in out
    for label in ("inside quotes", "position in line", "inside a comment", "indentation depth"):
        assert label in out
    assert "the inside quotes cell: layer " in out and "the position in line cell: layer " in out
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert 'id="report-data"' in page and "Gate saturation" in page
