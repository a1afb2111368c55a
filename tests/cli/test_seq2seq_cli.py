"""``rnnlab seq2seq train|translate|eval|data`` end to end on a tiny reversal task; resume; bad input one line."""
import io
import json
import sys

import numpy as np
import pytest

from helpers import fails
from helpers import run_cli as cli
from rnnlab.training.safetensors_io import load_safetensors

TINY = ["--hidden-size", "16", "--batch-size", "32", "--lr", "0.01", "--eval-pairs", "50"]


def write_pairs(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seq2seq_cli")
    pairs = folder / "pairs.tsv"
    with pytest.MonkeyPatch.context() as patch:
        buffer = io.StringIO()
        patch.setattr(sys, "stdout", buffer)
        assert cli(["seq2seq", "data", "reverse", "--count", "400", "--seed", "3"]) == 0
    pairs.write_text(buffer.getvalue(), encoding="utf-8")
    run = folder / "run"
    assert cli(["seq2seq", "train", pairs, "--out", run, "--steps", "24", "--eval-every", "12", *TINY]) == 0
    return run, pairs


def test_data_writes_distinct_tab_separated_pairs_fixed_by_the_seed(capsys):
    assert cli(["seq2seq", "data", "addition", "--count", "50", "--seed", "4"]) == 0
    first = capsys.readouterr().out
    assert cli(["seq2seq", "data", "addition", "--count", "50", "--seed", "4"]) == 0
    assert capsys.readouterr().out == first
    lines = first.splitlines()
    assert len(lines) == 50 and len(set(lines)) == 50
    for line in lines:
        question, answer = line.split("\t")
        a, b = question.split("+")
        assert int(a) + int(b) == int(answer)
    assert cli(["seq2seq", "data", "dates", "--count", "5", "--seed", "4"]) == 0
    for line in capsys.readouterr().out.splitlines():
        assert len(line.split("\t")[1]) == 10 and line.split("\t")[1][4] == "-"


def test_train_writes_the_run_and_validates_on_schedule(trained):
    run, _ = trained
    for name in ("config.json", "model.safetensors", "best.safetensors", "training_state.safetensors", "results.json"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "seq2seq" and config["data"] == {"train": 360, "val": 20, "test": 20}
    assert config["model"]["attention"] == "general" and config["model"]["hidden_size"] == 16
    results = json.loads((run / "results.json").read_text())
    assert [record["step"] for record in results["history"]] == [12, 24]
    assert results["test"]["pairs"] == 20 and 0 <= results["test"]["exact_match"] <= 1


def test_train_json_summary_on_stdout(tmp_path, trained, capsys):
    _, pairs = trained
    assert cli(["seq2seq", "train", pairs, "--out", tmp_path / "r", "--steps", "3", "--json", *TINY]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["step"] == 3 and summary["stop_reason"] == "steps"
    assert set(summary["test"]) >= {"exact_match", "char_accuracy", "cer", "pairs"}
    assert "step 3: val loss" in captured.err


def test_resume_ends_bit_for_bit_where_one_run_ends(tmp_path, trained):
    _, pairs = trained
    flags = ["--eval-every", "0", "--teacher-forcing", "0.7", "--dropout", "0.1", *TINY]
    assert cli(["seq2seq", "train", pairs, "--out", tmp_path / "one", "--steps", "20", *flags]) == 0
    assert cli(["seq2seq", "train", pairs, "--out", tmp_path / "two", "--steps", "9", *flags]) == 0
    assert cli(["seq2seq", "train", "--resume", "--out", tmp_path / "two", "--steps", "20"]) == 0
    one, _ = load_safetensors(tmp_path / "one" / "training_state.safetensors")
    two, _ = load_safetensors(tmp_path / "two" / "training_state.safetensors")
    assert set(one) == set(two)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)
    results = [json.loads((tmp_path / r / "results.json").read_text()) for r in ("one", "two")]
    assert results[0]["history"][-1]["val_loss"] == results[1]["history"][-1]["val_loss"]
    assert results[1]["steps_this_run"] == 11


def test_translate_writes_one_line_per_input_line(trained, capsys, monkeypatch):
    run, _ = trained
    monkeypatch.setattr(sys, "stdin", io.StringIO("abc\n\nxyz\n"))
    assert cli(["seq2seq", "translate", run]) == 0
    out = capsys.readouterr().out
    assert len(out.split("\n")) == 4 and out.split("\n")[1] == "" and out.endswith("\n")
    assert cli(["seq2seq", "translate", run, "--input", "abc", "--input", "xyz", "--beam", "3"]) == 0
    beam_lines = capsys.readouterr().out.splitlines()
    assert len(beam_lines) == 2


def test_translate_counts_unseen_characters_and_still_answers(trained, capsys):
    run, _ = trained
    assert cli(["seq2seq", "translate", run, "--input", "ab7c9", "--input", "a77"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    assert "rnnlab: warning: 4 characters unseen in training, read as <unk>: '7', '9'" in captured.err


def test_eval_json_agrees_with_translate(trained, capsys, tmp_path):
    run, pairs = trained
    lines = pairs.read_text().splitlines()[:30]
    subset = write_pairs(tmp_path / "subset.tsv", "\n".join(lines) + "\n")
    assert cli(["seq2seq", "eval", run, subset, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"exact_match", "char_accuracy", "cer", "pairs", "checkpoint", "unknown_characters"}
    assert report["pairs"] == 30 and report["checkpoint"] == "best"
    sources = [line.split("\t")[0] for line in lines]
    targets = [line.split("\t")[1] for line in lines]
    assert cli(["seq2seq", "translate", run, *sum((["--input", s] for s in sources), [])]) == 0
    outputs = capsys.readouterr().out.splitlines()
    assert report["exact_match"] == pytest.approx(np.mean([o == t for o, t in zip(outputs, targets)]))
    assert cli(["seq2seq", "eval", run, subset, "--beam", "2"]) == 0
    assert "over 30 pairs (beam 2, best weights" in capsys.readouterr().out


@pytest.mark.parametrize("text, message", [
    ("abc\n", ":1: no tab in 'abc'"),
    ("a\tb\n\nc\td\te\n", ":3: 2 tabs"),
    ("a\tb\n\tb\n", ":2: the source is empty"),
    ("a\t \n", ":1: the target is empty"),
    ("a\tb\n", "1 pair, too few"),
    ("\n\n", "holds no pairs"),
])
def test_bad_pairs_files_are_one_line(tmp_path, capsys, text, message):
    path = write_pairs(tmp_path / "p.tsv", text)
    fails(capsys, ["seq2seq", "train", path, "--out", tmp_path / "r", *TINY], message)
    assert not (tmp_path / "r" / "config.json").exists()


def test_bad_invocations_are_one_line(tmp_path, trained, capsys, monkeypatch):
    run, pairs = trained
    fails(capsys, ["seq2seq", "train", pairs, "--out", run], "already holds a run", "--resume")
    fails(capsys, ["seq2seq", "train", "--resume"], "--resume needs --out")
    fails(capsys, ["seq2seq", "train", "--resume", "--out", run, "--hidden-size", "32"], "--hidden-size 32",
          "differs from the saved run's 16")
    fails(capsys, ["seq2seq", "train", "--out", tmp_path / "x"], "no PAIRS file given")
    fails(capsys, ["seq2seq", "train", tmp_path / "missing.tsv", "--out", tmp_path / "x"], "missing.tsv")
    fails(capsys, ["seq2seq", "train", pairs, "--out", tmp_path / "x", "--attention", "dot"],
          "--attention dot")
    fails(capsys, ["seq2seq", "train", pairs, "--out", tmp_path / "x", "--teacher-forcing", "1.5"], "--teacher-forcing")
    fails(capsys, ["seq2seq", "train", pairs, "--out", tmp_path / "x", "--steps", "x"], "invalid int value")
    fails(capsys, ["seq2seq", "translate", tmp_path / "nothing", "--input", "a"], "no such run directory")
    fails(capsys, ["seq2seq", "translate", run, "--beam", "0", "--input", "a"], "--beam 0")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    fails(capsys, ["seq2seq", "translate", run], "stdin is empty")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ab\xffc\n"), encoding="utf-8"))
    fails(capsys, ["seq2seq", "translate", run], "stdin: not UTF-8 text")
    fails(capsys, ["seq2seq", "eval", run, tmp_path / "missing.tsv"], "missing.tsv")
    fails(capsys, ["seq2seq", "data", "addition", "--count", "0"], "--count 0")
    fails(capsys, ["seq2seq", "data", "poems"], "invalid choice")


def test_a_run_of_another_kind_is_one_line(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be\nthat is the question\n" * 20)
    assert cli(["tag", "train", text, "--out", tmp_path / "tagger", "--steps", "2", "--hidden-size", "8"]) == 0
    capsys.readouterr()
    fails(capsys, ["seq2seq", "translate", tmp_path / "tagger", "--input", "a"], "holds a 'tagger' run",
          "rnnlab seq2seq train")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_saves_and_the_run_resumes(tmp_path, trained, sig):
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path

    from rnnlab.training.rundir import RunDirectory

    _, pairs = trained
    out = tmp_path / "run"
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo / "src"), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "-m", "rnnlab", "seq2seq", "train", str(pairs), "--out", str(out),
                                "--steps", "1000000", "--eval-every", "4", *TINY], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not (out / "training_state.safetensors").is_file():
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint"
        time.sleep(0.05)
    process.send_signal(getattr(signal, sig))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "interrupted: saved the training state at step" in err and "Traceback" not in err
    step = RunDirectory(out).load_training_state()[2]["step"]
    assert step >= 4
    assert cli(["seq2seq", "train", "--resume", "--out", out, "--steps", str(step + 2)]) == 0
    assert RunDirectory(out).load_training_state()[2]["step"] == step + 2


def test_token_level_vocabularies(tmp_path, capsys):
    words = ["one", "two", "three", "four", "five"]
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(60):
        sentence = list(rng.choice(words, size=3))
        lines.append(" ".join(sentence) + "\t" + " ".join(reversed(sentence)))
    pairs = write_pairs(tmp_path / "tokens.tsv", "\n".join(lines) + "\n")
    assert cli(["seq2seq", "train", pairs, "--out", tmp_path / "run", "--level", "token", "--steps", "2", *TINY]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["source_vocabulary"]["level"] == "token"
    assert config["source_vocabulary"]["symbols"] == sorted(words)
    capsys.readouterr()
    assert cli(["seq2seq", "translate", tmp_path / "run", "--input", "one two six"]) == 0
    captured = capsys.readouterr()
    assert all(word in words for word in captured.out.split())
    assert "rnnlab: warning: 1 token unseen in training, read as <unk>: 'six'" in captured.err
