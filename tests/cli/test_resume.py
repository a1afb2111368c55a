"""`rnnlab train --resume`: stopping at step 20 and resuming to 40 ends exactly where a straight run to 40 ends."""
import json

import numpy as np
import pytest

from rnnlab.cli.main import main
from rnnlab.training.rundir import RunDirectory

TEXT = ("Once upon a time there was a tiny model that learned to write.\n"
        "It read the same story again and again, one character at a time.\n") * 6


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("model, extra", [("lstm", ["--dropout", "0.2", "--num-layers", "2"]),
                                          ("rnn", ["--optimizer", "adagrad", "--lr", "0.05"])])
def test_resume_equals_a_run_never_stopped(tmp_path, capsys, model, extra):
    text = tmp_path / "story.txt"
    text.write_text(TEXT, encoding="utf-8")
    common = [str(text), "--model", model, "--hidden-size", "12", "--seq-len", "8", "--batch-size", "4",
              "--eval-every", "15", "--eval-chars", "300", "--sample-length", "20", *extra]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", *common, "--out", str(a), "--steps", "20"]) == 0
    # flags that decide the model may be repeated on resume (equal values) or left out
    assert main(["train", "--out", str(a), "--resume", "--steps", "40", "--model", model]) == 0
    assert main(["train", *common, "--out", str(b), "--steps", "40"]) == 0
    capsys.readouterr()

    losses_a = [(m["step"], m["loss"]) for m in metrics(a) if "loss" in m]
    losses_b = [(m["step"], m["loss"]) for m in metrics(b) if "loss" in m]
    assert [step for step, _ in losses_b] == list(range(1, 41))
    assert losses_a == losses_b  # loss by loss, bit for bit (JSON keeps every digit of a float)
    weights_a, arrays_a, meta_a = RunDirectory(a).load_training_state()
    weights_b, arrays_b, meta_b = RunDirectory(b).load_training_state()
    for name in weights_b:
        assert np.array_equal(weights_a[name], weights_b[name]), name
    for name in arrays_b:  # optimizer moments and the carried hidden state
        assert np.array_equal(arrays_a[name], arrays_b[name]), name
    assert meta_a["step"] == meta_b["step"] == 40 and meta_a["rng_state"] == meta_b["rng_state"]
    assert meta_a["position"] == meta_b["position"] and meta_a["epoch"] == meta_b["epoch"] >= 1
    val_a = {m["step"]: m["val_loss"] for m in meta_a["history"]}
    val_b = {m["step"]: m["val_loss"] for m in meta_b["history"]}
    assert val_a[15] == val_b[15] and val_a[30] == val_b[30] and val_a[40] == val_b[40]


def test_resume_past_the_end_does_nothing_more(tmp_path, capsys):
    text = tmp_path / "story.txt"
    text.write_text(TEXT, encoding="utf-8")
    run = tmp_path / "run"
    args = [str(text), "--out", str(run), "--hidden-size", "8", "--seq-len", "8", "--batch-size", "4",
            "--sample-length", "0"]
    assert main(["train", *args, "--steps", "6"]) == 0
    before = RunDirectory(run).load_weights("latest")
    assert main(["train", *args, "--resume", "--steps", "6"]) == 0
    after = RunDirectory(run).load_weights("latest")
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert "done at step 6" in capsys.readouterr().err
    # without --steps the saved limit carries over: --steps counts from the start of the run
    assert main(["train", "--out", str(run), "--resume"]) == 0
    assert "done at step 6" in capsys.readouterr().err
    assert main(["train", "--out", str(run), "--resume", "--steps", "8"]) == 0
    assert "done at step 8" in capsys.readouterr().err
