"""kill -9 at 20 moments across one training run, resuming after each: the final weights equal the uninterrupted
run's bit for bit, metrics.jsonl holds every step exactly once, and no temporary file remains.

The moments, four of each: at startup (a random instant after the process starts, before it logs a new step), mid-training (after a
random number of further steps), during an evaluation (just after the row of a step that evaluates), during a
checkpoint write (the moment a temporary file appears), in a seeded random order; then during the final test
scoring (after the run announces it), which only the run's last steps reach. Each process is `python -m rnnlab train` (a signal must reach a real process);
the next one runs with --resume once the run has a config.json, as a user would.
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import logged_steps
from rnnlab.training.rundir import RunDirectory

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = 200  # room for the 16 kills before the end however fast the machine steps
FLAGS = ["--steps", str(STEPS), "--hidden-size", "16", "--num-layers", "1", "--seq-len", "16", "--batch-size", "4",
         "--eval-every", "8", "--checkpoint-every", "3", "--eval-chars", "3000", "--sample-length", "40"]
MOMENTS = ["startup", "mid-training", "evaluation", "checkpoint-write", "test-scoring"]
KILLS = 20


def corpus(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away", "home"]
    text = "\n".join(" ".join(rng.choice(words, 8)) for _ in range(2500)) + "\n"  # ~100 kB: test part ~5 kB
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    return path


def environment():
    # the NumPy reference path: no compiled kernels to load at each of the ~20 process starts
    return dict(os.environ, RNNLAB_FAST="0", PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"),
                                                                       os.environ.get("PYTHONPATH", "")]))


class Training:
    """One `rnnlab train` process, its stderr lines collected by a thread."""

    def __init__(self, text, out, resume):
        command = [sys.executable, "-m", "rnnlab", "train", "--out", str(out), *FLAGS]
        command += ["--resume"] if resume else [str(text)]
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        env=environment())
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line)

    def alive(self):
        return self.process.poll() is None

    def kill(self) -> bool:
        """SIGKILL; whether it reached a live process."""
        if not self.alive():
            return False
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        return self.process.returncode == -signal.SIGKILL

    def finish(self):
        self.process.wait(timeout=120)
        self.reader.join(timeout=10)
        return self.process.returncode, "".join(self.lines)


def wait_for(condition, training, timeout=60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not training.alive():
            return False
        if condition():
            return True
        time.sleep(0.002)
    return False


def strike(training, moment, out, rng) -> bool:
    """Kill ``training`` at ``moment``; whether the kill reached a live process."""
    if moment == "startup":
        # a random instant of the start-up, which ends when this process logs a step past the ones already there:
        # a fixed sleep would outlast a fast machine's start-up and let the whole run finish unkilled
        reached = max(logged_steps(out), default=0)
        wait_for(lambda: max(logged_steps(out), default=0) > reached, training, timeout=rng.uniform(0.0, 0.6))
    elif moment == "mid-training":
        target = len(logged_steps(out)) + rng.randint(1, 6)
        wait_for(lambda: len(logged_steps(out)) >= target, training)
    elif moment == "evaluation":
        done = set(logged_steps(out))
        wait_for(lambda: any(step % 8 == 0 and step not in done for step in logged_steps(out)), training)
        time.sleep(rng.uniform(0.0, 0.02))
    elif moment == "checkpoint-write":
        wait_for(lambda: any(Path(out).glob(".*.tmp")), training)
    elif moment == "test-scoring":
        wait_for(lambda: any("scoring the test split" in line for line in training.lines), training)
        time.sleep(rng.uniform(0.0, 0.01))
    return training.kill()


def final_weights(out) -> dict:
    return RunDirectory(out).load_weights("latest")


def test_kill_9_at_20_moments_resumes_to_the_uninterrupted_weights(tmp_path):
    text = corpus(tmp_path)
    straight = Training(text, tmp_path / "straight", resume=False)
    status, err = straight.finish()
    assert status == 0, err
    assert "scoring the test split" in err  # the test-scoring moment exists in this run

    out = tmp_path / "run"
    rng = random.Random(9)
    moments = MOMENTS[:-1] * (KILLS // len(MOMENTS))
    rng.shuffle(moments)
    moments += ["test-scoring"] * (KILLS // len(MOMENTS))
    landed = {moment: 0 for moment in MOMENTS}
    for moment in moments:
        training = Training(text, out, resume=(out / "config.json").is_file())
        if strike(training, moment, out, rng):
            landed[moment] += 1
        else:  # it finished (or failed) before the moment came: it must have finished cleanly
            status, err = training.finish()
            assert status == 0, err
    final = Training(text, out, resume=(out / "config.json").is_file())
    status, err = final.finish()
    assert status == 0, err

    print(f"kill -9 landed {sum(landed.values())}/{KILLS}: {landed}")
    assert sum(landed.values()) >= KILLS - 2, landed
    ours, theirs = final_weights(out), final_weights(tmp_path / "straight")
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert np.array_equal(ours[name], theirs[name]), name  # bit for bit
    assert logged_steps(out) == list(range(1, STEPS + 1))  # every step exactly once, in order
    assert not [p for p in out.rglob(".*.tmp")], "temporary files remain"
    assert RunDirectory(out).load_training_state()[2]["step"] == STEPS
