"""metrics.jsonl for `rnnlab classify train`, `seq2seq train` and `tag train`: a run stopped (an earlier
checkpoint put back, as a kill -9 leaves it; or a real kill -9) and resumed logs every step exactly once,
its time summed over the resumes; `rnnlab plot` draws each kind with its own y axis label.
"""
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import logged_steps, require_optional, write_spike_idx
from helpers import run_cli as cli
from rnnlab.training.curves import GENERIC_LABEL, draw_figure, read_curves
from rnnlab.training.rundir import RunDirectory

REPO_ROOT = Path(__file__).resolve().parents[2]
WORDS = "the cat sat on a mat and a dog ran to the old red barn by the sea".split()
SETTINGS = {  # kind -> the rate key of its training rows, its validation keys, the y axis of its plot
    "classify": ("images_per_s", {"val_loss", "val_accuracy"}, "bits per image"),
    "seq2seq": ("pairs_per_s", {"val_loss", "val_exact_match", "val_char_accuracy", "val_cer"},
                "bits per target symbol"),
    "tagger": ("lines_per_s", {"val_loss", "val_precision", "val_recall", "val_f1", "val_exact_line"},
               "bits per character tag"),
}
TEST_KEYS = {"classify": {"test_loss", "test_accuracy"},
             "seq2seq": {"test_loss", "test_exact_match", "test_char_accuracy", "test_cer"},
             "tagger": {"test_loss", "test_precision", "test_recall", "test_f1", "test_exact_line"}}


def rows(out) -> list[dict]:
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """kind -> (the command before --out, the flags of a tiny run)."""
    folder = tmp_path_factory.mktemp("history_inputs")
    idx = write_spike_idx(folder / "idx")
    with pytest.MonkeyPatch.context() as patch:
        buffer = io.StringIO()
        patch.setattr(sys, "stdout", buffer)
        assert cli(["seq2seq", "data", "reverse", "--count", "300", "--seed", "3"]) == 0
    pairs = folder / "pairs.tsv"
    pairs.write_text(buffer.getvalue(), encoding="utf-8")
    rng = np.random.default_rng(0)
    text = folder / "text.txt"
    text.write_text("".join(" ".join(rng.choice(WORDS, size=int(rng.integers(2, 9)))) + "\n" for _ in range(300)),
                    encoding="utf-8")
    return {
        "classify": (["classify", "train", "--idx", *idx], ["--val-size", "50", "--model", "gru", "--hidden-size", "8",
                                                            "--batch-size", "32"]),
        "seq2seq": (["seq2seq", "train", pairs], ["--hidden-size", "8", "--batch-size", "32", "--eval-every", "4",
                                                  "--eval-pairs", "10"]),
        "tagger": (["tag", "train", text], ["--hidden-size", "8", "--num-layers", "1", "--batch-size", "32",
                                            "--eval-every", "4"]),
    }


def resume_command(kind):
    return {"classify": ["classify", "train"], "seq2seq": ["seq2seq", "train"], "tagger": ["tag", "train"]}[kind]


def saved_state(out) -> dict:
    return RunDirectory(out).load_training_state()[2]


def put_back(saved: Path, out: Path) -> None:
    """The run as a kill -9 after later steps leaves it: their rows logged, the earlier checkpoint on disk."""
    for name in ("training_state.safetensors", "model.safetensors"):
        shutil.copy2(saved / name, out / name)


@pytest.mark.parametrize("kind", ["classify", "seq2seq", "tagger"])
def test_a_stopped_and_resumed_run_logs_every_step_exactly_once(tmp_path, inputs, kind, capsys):
    start, flags = inputs[kind]
    out = tmp_path / "run"
    assert cli([*start, "--out", out, "--steps", "6", *flags]) == 0
    first = saved_state(out)
    assert first["step"] == 6 and first["time"] > 0  # the run's clock, kept in the training state
    row_6 = next(r for r in rows(out) if r["step"] == 6 and "loss" in r)
    assert abs(row_6["time"] - first["time"]) < 2e-3
    keep = tmp_path / "at_step_6"
    keep.mkdir()
    put_back(out, keep)
    assert cli([*resume_command(kind), "--resume", "--out", out, "--steps", "10"]) == 0
    assert logged_steps(out) == list(range(1, 11))
    losses_once = {r["step"]: r["loss"] for r in rows(out) if "loss" in r}
    put_back(keep, out)  # killed at step 10 with its last checkpoint at step 6: steps 7-10 run again
    assert cli([*resume_command(kind), "--resume", "--out", out, "--steps", "14"]) == 0
    capsys.readouterr()

    assert logged_steps(out) == list(range(1, 15))  # every step exactly once, in order
    rate, val_keys, _ = SETTINGS[kind]
    all_rows = rows(out)
    for row in all_rows:
        assert isinstance(row["time"], float)
        if "loss" in row:
            assert set(row) == {"step", "time", "loss", "lr", rate} and row[rate] > 0 and row["lr"] > 0
    assert {r["step"]: r["loss"] for r in all_rows if "loss" in r and r["step"] <= 10} == losses_once
    times = [r["time"] for r in all_rows]
    assert times == sorted(times)  # summed over the resumes: never back to 0
    assert saved_state(out)["time"] >= times[0]
    validations = [r for r in all_rows if "val_loss" in r]
    assert validations and all(set(r) == {"step", "time"} | val_keys for r in validations)
    assert len({r["step"] for r in validations}) == len(validations)  # each validation once
    tests = [r for r in all_rows if "test_loss" in r]
    assert tests[-1]["step"] == 14 and all(set(r) == {"step", "time"} | TEST_KEYS[kind] for r in tests)
    if kind == "classify":  # 350 training images, batches of 32: an epoch ends at step 11; each invocation's
        # end scores the test split (the one put back at step 6 did too, at step 10)
        assert [r["step"] for r in validations] == [11] and [r["step"] for r in tests] == [6, 10, 11, 14]
    else:  # every 4 steps, and at each invocation's end
        assert [r["step"] for r in validations] == [4, 6, 8, 10, 12, 14]


@pytest.mark.parametrize("kind", ["classify", "seq2seq", "tagger"])
def test_plot_draws_each_kind_with_its_loss_unit(tmp_path, inputs, kind, capsys):
    require_optional("matplotlib")
    start, flags = inputs[kind]
    out = tmp_path / "run"
    assert cli([*start, "--out", out, "--steps", "12", *flags]) == 0
    png = tmp_path / "curves.png"
    assert cli(["plot", out, "--out", png]) == 0
    assert f"wrote {png}" in capsys.readouterr().err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    curves = read_curves(out)
    assert curves.kind == kind and curves.train_steps == list(range(1, 13)) and curves.val_steps
    by_step, by_time = draw_figure([curves]).axes
    assert by_step.get_ylabel() == SETTINGS[kind][2] and by_step.get_xlabel() == "step"


def test_runs_of_different_kinds_overlaid_share_a_generic_label(tmp_path, inputs, capsys):
    require_optional("matplotlib")
    runs = []
    for kind in ("seq2seq", "tagger"):
        start, flags = inputs[kind]
        runs.append(tmp_path / kind)
        assert cli([*start, "--out", runs[-1], "--steps", "4", *flags]) == 0
    assert cli(["plot", *runs, "--out", tmp_path / "both.png"]) == 0
    assert (tmp_path / "both.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert draw_figure([read_curves(r) for r in runs]).axes[0].get_ylabel() == GENERIC_LABEL
    capsys.readouterr()


def test_plot_of_a_run_without_metrics_says_it_is_an_old_run(tmp_path, inputs, capsys):
    start, flags = inputs["tagger"]
    out = tmp_path / "old"
    assert cli([*start, "--out", out, "--steps", "2", *flags]) == 0
    (out / "metrics.jsonl").unlink()  # as a run trained before tag train wrote one
    capsys.readouterr()
    status = cli(["plot", out, "--out", tmp_path / "x.png"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1 and "Traceback" not in err[0]
    assert "metrics.jsonl: no such file" in err[0] and "a sequence tagger trained before" in err[0]
    assert "rnnlab tag train --resume" in err[0]
    # resumed, it logs from there on
    assert cli(["tag", "train", "--resume", "--out", out, "--steps", "4"]) == 0
    assert logged_steps(out) == [3, 4]


# ---------------------------------------------------------------------------------------------------
# a real kill -9
# ---------------------------------------------------------------------------------------------------

def environment():
    return dict(os.environ, RNNLAB_FAST="0", PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"),
                                                                       os.environ.get("PYTHONPATH", "")]))


def state_step(out) -> int:
    try:
        return saved_state(out)["step"]
    except Exception:  # noqa: BLE001 - none yet, or a file being replaced right now
        return -1


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("kind", ["classify", "seq2seq", "tagger"])
def test_kill_9_then_resume_logs_every_step_exactly_once(tmp_path, inputs, kind, capsys):
    start, flags = inputs[kind]
    out = tmp_path / "run"
    if kind == "classify":  # checkpoints at each epoch's end: 350 images in batches of 8, 44 steps
        flags = [f if f != "32" else "8" for f in flags]
    command = [sys.executable, "-m", "rnnlab", *map(str, start), "--out", str(out), "--steps", "1000000",
               *flags]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=environment())
    deadline = time.monotonic() + 120
    try:
        # past a checkpoint, with steps logged after it: the resumed run repeats those
        while not (state_step(out) >= 4 and max(logged_steps(out), default=0) > state_step(out) + 1):
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no checkpoint within the time limit"
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    reached = max(logged_steps(out))
    assert cli([*resume_command(kind), "--resume", "--out", out, "--steps", reached + 3]) == 0
    capsys.readouterr()
    assert logged_steps(out) == list(range(1, reached + 4))  # every step exactly once, in order
    times = [r["time"] for r in rows_skipping_damage(out)]
    assert times == sorted(times)


def rows_skipping_damage(out) -> list[dict]:
    found = []
    for line in (Path(out) / "metrics.jsonl").read_bytes().splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue  # a line the kill cut short
    return found
