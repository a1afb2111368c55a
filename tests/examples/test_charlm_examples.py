"""The char-RNN examples run end to end (tiny settings, as subprocesses, the way a user runs them)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
TEXT = "To be, or not to be, that is the question.\nWhether 'tis nobler in the mind to suffer.\n" * 20


def run_example(name, *args, env=None):
    environment = dict(os.environ, **(env or {}))
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), environment.get("PYTHONPATH", "")])
    completed = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], capture_output=True,
                               text=True, timeout=120, env=environment)
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    return completed.stdout


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "verse.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_hello_learns_hihello_to_100_percent():
    out = run_example("hello.py")
    assert "prediction 'ihello'  accuracy 100%" in out and "learned 'hihello' to 100% accuracy" in out


def test_hello_with_an_lstm():
    assert "100% accuracy" in run_example("hello.py", "--cell", "lstm")


def test_min_char_rnn_samples_and_learns(text_file):
    out = run_example("min_char_rnn.py", "--text", text_file, "--iterations", "300", "--hidden-size", "32",
                      "--sample-every", "100", "--sample-length", "40")
    assert out.count("iter ") == 3 and out.count("----") >= 6
    losses = [float(line.split("loss: ")[1]) for line in out.splitlines() if line.startswith("iter ")]
    assert losses[-1] < losses[0]  # the smoothed loss falls
    assert "300 iterations" in out


def test_min_char_rnn_finds_the_shared_hamlet(shared_data):
    out = run_example("min_char_rnn.py", "--iterations", "3", "--hidden-size", "8", "--sample-every", "2",
                      env={"RNNLAB_SHARED_DATA": str(shared_data)})
    assert "data has 173,942 characters" in out  # hamlet.txt found through RNNLAB_SHARED_DATA


def test_hamlet_lstm_trains_then_generates_from_the_prime(text_file):
    out = run_example("hamlet_lstm.py", "--text", text_file, "--hidden-size", "16", "--num-layers", "2",
                      "--batch-size", "4", "--seq-len", "8", "--steps", "12", "--prime", "To be", "--length", "40")
    assert "step    10" in out and "after 12 steps: validation loss" in out and "bits/char" in out
    generated = out.split("----\n")[1]
    assert generated.startswith("To be") and len(generated.rstrip("\n")) >= len("To be") + 30


@pytest.mark.parametrize("name", ["min_char_rnn.py", "hamlet_lstm.py"])
def test_a_missing_text_file_is_one_line_not_a_traceback(tmp_path, name):
    source = os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    environment = dict(os.environ, PYTHONPATH=source)
    completed = subprocess.run([sys.executable, str(EXAMPLES / name), "--text", str(tmp_path / "nope.txt")],
                               capture_output=True, text=True, timeout=60, env=environment)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines() == [f"error: text file not found: {tmp_path / 'nope.txt'}; check "
                                                     f"the path (or run without TEXT_FILE to use the default corpus)"]
