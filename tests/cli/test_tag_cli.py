"""``rnnlab tag train|apply|eval`` end to end on a small text; resume; bad input one line."""
import io
import json
import sys

import numpy as np
import pytest

from helpers import fails
from helpers import run_cli as cli
from rnnlab.training.safetensors_io import load_safetensors

TINY = ["--hidden-size", "12", "--num-layers", "1", "--batch-size", "16", "--lr", "0.01"]
WORDS = "the cat sat on a mat and a dog ran to the old red barn by the sea".split()


def make_text(lines=300, seed=0):
    rng = np.random.default_rng(seed)
    return "".join(" ".join(rng.choice(WORDS, size=int(rng.integers(2, 9)))) + "\n" for _ in range(lines))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tag_cli")
    text = folder / "text.txt"
    text.write_text(make_text(), encoding="utf-8")
    run = folder / "run"
    assert cli(["tag", "train", text, "--task", "spacing", "--out", run, "--steps", "30", "--eval-every", "15",
                *TINY]) == 0
    return run, text


def test_train_writes_the_run_and_validates_on_schedule(trained):
    run, _ = trained
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "tagger" and config["task"] == "spacing"
    assert config["data"] == {"train": 270, "val": 15, "test": 15}
    assert config["model"]["bidirectional"] is True
    results = json.loads((run / "results.json").read_text())
    assert [record["step"] for record in results["history"]] == [15, 30]
    assert set(results["test"]) >= {"precision", "recall", "f1", "exact_line"}


def test_resume_ends_bit_for_bit_where_one_run_ends(tmp_path, trained):
    _, text = trained
    flags = ["--eval-every", "0", "--dropout", "0.2", "--num-layers", "2", *TINY[:2], *TINY[4:]]
    assert cli(["tag", "train", text, "--out", tmp_path / "one", "--steps", "16", *flags]) == 0
    assert cli(["tag", "train", text, "--out", tmp_path / "two", "--steps", "7", *flags]) == 0
    assert cli(["tag", "train", "--resume", "--out", tmp_path / "two", "--steps", "16"]) == 0
    one, _ = load_safetensors(tmp_path / "one" / "training_state.safetensors")
    two, _ = load_safetensors(tmp_path / "two" / "training_state.safetensors")
    assert set(one) == set(two)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def test_apply_restores_spaces_one_line_per_line(trained, capsys, monkeypatch):
    run, _ = trained
    monkeypatch.setattr(sys, "stdin", io.StringIO("thecatsat\n\nthe dog  ran\n"))
    assert cli(["tag", "apply", run]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    assert lines[0].replace(" ", "") == "thecatsat" and lines[2].replace(" ", "") == "thedogran"
    assert cli(["tag", "apply", run, "--input", "théSea", "--checkpoint", "latest"]) == 0
    captured = capsys.readouterr()
    assert captured.out.replace(" ", "") == "théSea\n"
    assert "rnnlab: warning: 2 characters unseen in training, read as <unk>: 'é', 'S'" in captured.err


def test_eval_json_agrees_with_apply(trained, capsys, tmp_path):
    run, _ = trained
    held_out = tmp_path / "held.txt"
    held_out.write_text(make_text(40, seed=5), encoding="utf-8")
    assert cli(["tag", "eval", run, held_out, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"precision", "recall", "f1", "exact_line", "lines", "checkpoint"}
    lines = held_out.read_text().splitlines()
    assert cli(["tag", "apply", run, *sum((["--input", line] for line in lines), [])]) == 0
    restored = capsys.readouterr().out.splitlines()
    assert report["lines"] == 40
    assert report["exact_line"] == pytest.approx(np.mean([r == line for r, line in zip(restored, lines)]))
    assert cli(["tag", "eval", run, held_out]) == 0
    assert "spaces: precision" in capsys.readouterr().out


def test_bad_input_is_one_line(tmp_path, trained, capsys, monkeypatch):
    run, text = trained
    one_line = tmp_path / "one.txt"
    one_line.write_text("just one line here\n")
    fails(capsys, ["tag", "train", one_line, "--out", tmp_path / "r"], "1 line", "--val-file")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n   \n")
    fails(capsys, ["tag", "train", blank, "--out", tmp_path / "r"], "holds no words")
    fails(capsys, ["tag", "train", tmp_path / "missing.txt", "--out", tmp_path / "r"], "missing.txt")
    fails(capsys, ["tag", "train", text, "--out", run], "already holds a run")
    fails(capsys, ["tag", "train", text, "--out", tmp_path / "r", "--task", "pos"], "invalid choice")
    fails(capsys, ["tag", "train", text, "--out", tmp_path / "r", "--hidden-size", "0"], "--hidden-size 0")
    fails(capsys, ["tag", "train", "--resume", "--out", run, "--num-layers", "3"], "--num-layers 3", "differs")
    fails(capsys, ["tag", "train", "--resume", "--out", tmp_path / "none"], "no run to resume")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    fails(capsys, ["tag", "apply", run], "stdin is empty")
    fails(capsys, ["tag", "eval", run, blank], "holds no words")
    fails(capsys, ["tag", "apply", tmp_path, "--input", "x"], "not a run directory")
