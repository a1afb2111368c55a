"""`rnnlab seq2seq eval` and `rnnlab tag eval` read their file in the run's encoding (or --encoding NAME);
tag never offers --bytes (it has no such flag); the validation lines count "1 pair" / "1 line" singular."""
import json

import numpy as np
import pytest

from helpers import fails
from helpers import run_cli as cli

WORDS = ["café", "crème", "brûlée", "façade", "naïve", "señor", "€uro", "déjà", "vu", "über"]


@pytest.fixture(scope="module")
def cp1252_pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cp1252")
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(200):
        source = " ".join(rng.choice(WORDS, size=2))
        lines.append(f"{source}\t{source[::-1]}\n")
    pairs = folder / "pairs.tsv"
    pairs.write_bytes("".join(lines).encode("cp1252"))  # "€" is 0x80 and "é" 0xe9: not valid UTF-8
    run = folder / "run"
    assert cli(["seq2seq", "train", pairs, "--out", run, "--encoding", "cp1252", "--steps", "2", "--eval-every", "0",
                "--hidden-size", "8", "--batch-size", "32", "--eval-pairs", "1"]) == 0
    return run, pairs


@pytest.fixture(scope="module")
def latin1_text(tmp_path_factory):
    folder = tmp_path_factory.mktemp("latin1")
    rng = np.random.default_rng(1)
    words = [w for w in WORDS if w != "€uro"]  # no euro sign in latin-1
    text = folder / "text.txt"
    text.write_bytes("".join(" ".join(rng.choice(words, size=4)) + "\n" for _ in range(200)).encode("latin-1"))
    run = folder / "run"
    assert cli(["tag", "train", text, "--out", run, "--encoding", "latin-1", "--steps", "2", "--eval-every", "0",
                "--hidden-size", "8", "--num-layers", "1", "--batch-size", "32", "--eval-lines", "1"]) == 0
    return run, text


def test_seq2seq_eval_reads_the_pairs_in_the_runs_encoding(cp1252_pairs, capsys):
    run, pairs = cp1252_pairs
    capsys.readouterr()
    assert cli(["seq2seq", "eval", run, pairs, "--json"]) == 0
    captured = capsys.readouterr()
    score = json.loads(captured.out)
    assert score["pairs"] == 200 and score["unknown_characters"] == 0, captured.err  # é, €: known symbols
    assert cli(["seq2seq", "eval", run, pairs, "--json", "--encoding", "cp1252"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == 200
    line = fails(capsys, ["seq2seq", "eval", run, pairs, "--encoding", "utf-8"], str(pairs), "not valid utf-8",
                 "--encoding")
    assert "--bytes" not in line
    fails(capsys, ["seq2seq", "eval", run, pairs, "--encoding", "no-such-codec"], "no-such-codec")


def test_tag_eval_reads_the_text_in_the_runs_encoding(latin1_text, capsys):
    run, text = latin1_text
    capsys.readouterr()
    assert cli(["tag", "eval", run, text, "--json"]) == 0
    captured = capsys.readouterr()
    score = json.loads(captured.out)
    assert score["lines"] == 200 and score["unknown_characters"] == 0, captured.err
    line = fails(capsys, ["tag", "eval", run, text, "--encoding", "utf-8"], str(text), "not valid utf-8")
    assert "--bytes" not in line


def test_tag_train_does_not_offer_bytes(latin1_text, tmp_path, capsys):
    _, text = latin1_text
    line = fails(capsys, ["tag", "train", text, "--out", tmp_path / "r", "--steps", "1"], "not valid utf-8",
                 "--encoding")
    assert "--bytes" not in line


def test_one_validation_pair_or_line_is_singular(cp1252_pairs, latin1_text, tmp_path, capsys):
    _, pairs = cp1252_pairs
    assert cli(["seq2seq", "train", pairs, "--out", tmp_path / "s", "--encoding", "cp1252", "--steps", "1",
                "--hidden-size", "8", "--batch-size", "32", "--eval-pairs", "1"]) == 0
    err = capsys.readouterr().err
    assert "exact match" in err and "(1 pair)" in err and "(1 pairs)" not in err
    assert "test (10 pairs, best weights" in err and "10 test pairs;" in err  # more than one: plural as before
    _, text = latin1_text
    assert cli(["tag", "train", text, "--out", tmp_path / "t", "--encoding", "latin-1", "--steps", "1",
                "--hidden-size", "8", "--num-layers", "1", "--batch-size", "32", "--eval-lines", "1"]) == 0
    err = capsys.readouterr().err
    assert "(1 line)" in err and "(1 lines)" not in err and "test (10 lines, best weights" in err


def test_a_text_of_one_line_is_one_line_singular(tmp_path, capsys):
    text = tmp_path / "one.txt"
    text.write_text("just one line of words\n", encoding="utf-8")
    fails(capsys, ["tag", "train", text, "--out", tmp_path / "r", "--steps", "1"], "one.txt: 1 line: too few")


def test_seq2seq_eval_of_one_pair_says_one_pair(cp1252_pairs, tmp_path, capsys):
    run, pairs = cp1252_pairs
    one = tmp_path / "one.tsv"
    one.write_bytes(pairs.read_bytes().split(b"\n")[0] + b"\n")
    assert cli(["seq2seq", "eval", run, one]) == 0
    assert " over 1 pair (beam 1" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["seq2seq", "tag"])
def test_stdin_is_read_in_the_encoding_named_by_encoding(cp1252_pairs, latin1_text, command, capsys, monkeypatch):
    # `cat file | rnnlab seq2seq translate RUN --encoding cp1252`: stdin's bytes decoded as named, UTF-8 by default
    import io
    import sys

    run = cp1252_pairs[0] if command == "seq2seq" else latin1_text[0]
    subcommand = "translate" if command == "seq2seq" else "apply"
    data = "café crème\nnaïve\n".encode("cp1252")  # 0xe9, 0xe8, 0xef: not UTF-8
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    fails(capsys, [command, subcommand, run], "stdin: not UTF-8 text", "--encoding")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert cli([command, subcommand, run, "--encoding", "cp1252"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2 and "unseen in training" not in captured.err, captured.err  # é, è, ï known
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    fails(capsys, [command, subcommand, run, "--encoding", "rot13"], "not a text encoding")
