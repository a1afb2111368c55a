"""A training process killed with -9 leaves a checkpoint that loads and resumes; SIGINT/SIGTERM save and exit 0.

These run `python -m rnnlab train` as a subprocess (a signal must reach a real process), on a tiny model.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnlab.cli.main import main
from rnnlab.training.rundir import RunDirectory

TEXT = "kill me softly, then resume me exactly where I stopped.\n" * 40
REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def start_training(tmp_path, out):
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    command = [sys.executable, "-m", "rnnlab", "train", str(text), "--out", str(out), "--steps", "1000000",
               "--hidden-size", "8", "--num-layers", "1", "--seq-len", "8", "--batch-size", "4",
               "--checkpoint-every", "3", "--eval-every", "0", "--sample-length", "0"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return text, process


def wait_for_checkpoint(process, out, min_step=3, timeout=60.0):
    """Wait until the run has saved a training state at min_step or later; return that step."""
    deadline = time.monotonic() + timeout
    state = out / "training_state.safetensors"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"training exited early ({process.returncode}): {process.stderr.read()}")
        if state.is_file():
            try:
                _, _, meta = RunDirectory(out).load_training_state()
            except Exception:  # noqa: BLE001 - a file being replaced right now; look again
                meta = {"step": 0}
            if meta["step"] >= min_step:
                return meta["step"]
        time.sleep(0.05)
    process.kill()
    pytest.fail("no checkpoint within the time limit")


def test_kill_9_leaves_a_checkpoint_that_loads_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    text, process = start_training(tmp_path, out)
    wait_for_checkpoint(process, out, min_step=6)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL

    # the last checkpoint is whole: the training state, the weights and the config all load
    weights, arrays, meta = RunDirectory(out).load_training_state()
    step = meta["step"]
    assert step >= 6 and step % 3 == 0
    assert main(["sample", str(out), "--length", "20", "--seed", "0"]) == 0
    assert main(["train", str(text), "--out", str(out), "--resume", "--steps", str(step + 4)]) == 0
    assert f"done at step {step + 4}" in capsys.readouterr().err
    assert RunDirectory(out).load_training_state()[2]["step"] == step + 4


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_exits_cleanly(tmp_path, capsys, signal_number):
    out = tmp_path / "run"
    text, process = start_training(tmp_path, out)
    wait_for_checkpoint(process, out, min_step=3)
    process.send_signal(signal_number)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Traceback" not in err and "interrupted: saved the training state at step" in err
    name = signal.Signals(signal_number).name
    assert f"{name}: saving at the end of this step (press Ctrl-C again to stop at once)" in err
    saved_step = int(err.split("interrupted: saved the training state at step ")[1].split()[0])
    _, _, meta = RunDirectory(out).load_training_state()
    assert meta["step"] == saved_step >= 3
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines if "loss" in m] == list(range(1, saved_step + 1))
    assert main(["train", str(text), "--out", str(out), "--resume", "--steps", str(saved_step + 2)]) == 0
    assert f"done at step {saved_step + 2}" in capsys.readouterr().err
