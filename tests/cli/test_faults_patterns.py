"""Issue 9's class of faults through ``rnnlab seq2seq``, ``tag``, ``inspect`` and ``plot``: standard output that
cannot be written and a symbolic link loop where a path is expected are one line each, never a traceback."""
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import fails
from helpers import run_cli as cli

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
FULL = ["rnnlab: error: cannot write to standard output (No space left on device); free some space where it "
        "goes, or send it elsewhere"]
TEXT = "the cat sat on a mat\nand a dog ran to the barn\n" * 20


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny seq2seq run, a tiny tagger run and a tiny char-LM run, with the files they trained on."""
    folder = tmp_path_factory.mktemp("faults_patterns")
    pairs = folder / "pairs.tsv"
    with pytest.MonkeyPatch.context() as patch:
        buffer = io.StringIO()
        patch.setattr(sys, "stdout", buffer)
        assert cli(["seq2seq", "data", "reverse", "--count", "60", "--seed", "1"]) == 0
    pairs.write_text(buffer.getvalue(), encoding="utf-8")
    text = folder / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    assert cli(["seq2seq", "train", pairs, "--out", folder / "s2s", "--steps", "2", "--eval-every", "0",
                "--hidden-size", "8", "--batch-size", "8", "--eval-pairs", "4"]) == 0
    assert cli(["tag", "train", text, "--out", folder / "tag", "--steps", "2", "--eval-every", "0",
                "--hidden-size", "8", "--num-layers", "1", "--batch-size", "8"]) == 0
    assert cli(["train", text, "--out", folder / "lm", "--steps", "2", "--eval-every", "1", "--hidden-size", "8",
                "--num-layers", "1", "--seq-len", "8", "--batch-size", "4", "--eval-chars", "100",
                "--sample-length", "0"]) == 0
    return {"s2s": folder / "s2s", "tagrun": folder / "tag", "lm": folder / "lm", "pairs": pairs, "text": text}


@pytest.fixture
def loop(tmp_path):
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    return tmp_path / "loop_a"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["seq2seq", "translate", "s2s", "--input", "abc"],
                                  ["seq2seq", "eval", "s2s", "pairs"], ["seq2seq", "eval", "s2s", "pairs", "--json"],
                                  ["seq2seq", "data", "reverse", "--count", "50"],
                                  ["tag", "apply", "tagrun", "--input", "thecat"],
                                  ["tag", "eval", "tagrun", "text"], ["tag", "eval", "tagrun", "text", "--json"],
                                  ["inspect", "lm", "--format", "ansi", "--chars", "50"]])
def test_stdout_that_cannot_be_written_is_one_line(argv, runs):
    argv = [str(runs.get(a, a)) for a in argv]
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "rnnlab", *argv], stdout=full, stderr=subprocess.PIPE,
                              text=True, env=ENV, timeout=120)
    assert done.returncode == 1, done.stderr
    assert [line for line in done.stderr.splitlines() if "warning" not in line] == FULL, done.stderr


def test_symlink_loop_as_pairs_text_or_run_dir_is_one_line(runs, loop, tmp_path, capsys):
    fails(capsys, ["seq2seq", "train", loop, "--out", tmp_path / "a"], "loop_a")
    fails(capsys, ["seq2seq", "train", runs["pairs"], "--val-file", loop, "--out", tmp_path / "b"], "loop_a")
    fails(capsys, ["seq2seq", "train", runs["pairs"], "--out", loop], "loop_a")
    fails(capsys, ["seq2seq", "train", "--resume", "--out", loop], "loop_a")
    fails(capsys, ["seq2seq", "translate", loop, "--input", "abc"], "loop_a")
    fails(capsys, ["seq2seq", "eval", loop, runs["pairs"]], "loop_a")
    fails(capsys, ["seq2seq", "eval", runs["s2s"], loop], "loop_a")
    fails(capsys, ["tag", "train", loop, "--out", tmp_path / "c"], "loop_a")
    fails(capsys, ["tag", "train", runs["text"], "--val-file", loop, "--out", tmp_path / "d"], "loop_a")
    fails(capsys, ["tag", "train", runs["text"], "--out", loop], "loop_a")
    fails(capsys, ["tag", "apply", loop, "--input", "thecat"], "loop_a")
    fails(capsys, ["tag", "eval", loop, runs["text"]], "loop_a")
    fails(capsys, ["tag", "eval", runs["tagrun"], loop], "loop_a")
    fails(capsys, ["inspect", loop], "loop_a")
    fails(capsys, ["inspect", runs["lm"], loop], "loop_a")
    fails(capsys, ["plot", loop, "--out", tmp_path / "c.png"], "loop_a")


@pytest.mark.parametrize("argv, message", [
    (["seq2seq", "train", "pairs", "--out", "NEW", "--seed", "-1"], "--seed -1: must be an integer in [0, 2**63)"),
    (["tag", "train", "text", "--out", "NEW", "--seed", "-1"], "--seed -1: must be an integer in [0, 2**63)"),
    (["seq2seq", "data", "addition", "--count", "5", "--seed", "-1"], "--seed -1: must be an integer in [0, 2**63)"),
    (["seq2seq", "train", "pairs", "--out", "NEW", "--epochs", "inf"], "--epochs inf: must be > 0 and finite"),
    (["tag", "train", "text", "--out", "NEW", "--epochs", "inf"], "--epochs inf: must be > 0 and finite"),
    (["seq2seq", "translate", "s2s", "--input", "abc", "--length-penalty", "inf"], "--length-penalty inf: must be"),
    (["seq2seq", "data", "reverse", "--count", "99999999999"], "--count 99999999999: must be at most 1,000,000")])
def test_flags_a_hostile_trial_found_are_one_line(argv, message, runs, tmp_path, capsys):
    fails(capsys, [tmp_path / "new" if a == "NEW" else runs.get(a, a) for a in argv], message)
    assert not (tmp_path / "new").exists()


def test_a_device_or_an_empty_file_as_text_says_what_it_is(runs, tmp_path, capsys):
    fails(capsys, ["eval", runs["lm"], "/dev/zero"], "/dev/zero is not a regular file")
    fails(capsys, ["tag", "eval", runs["tagrun"], "/dev/zero"], "/dev/zero is not a regular file")
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    line = fails(capsys, ["seq2seq", "eval", runs["s2s"], empty], "empty.tsv is empty")
    assert "language model" not in line
