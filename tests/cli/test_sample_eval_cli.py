"""`rnnlab sample` and `rnnlab eval` in-process, on runs trained once per module (Korean text included)."""
import json
import math

import pytest

from rnnlab.cli.main import main

ENGLISH = "the quick brown fox jumps over the lazy dog.\nthe dog sleeps; the fox runs away.\n" * 12
KOREAN = "안녕하세요. 오늘은 날씨가 좋습니다.\n우리는 공원에서 산책을 합니다.\n" * 20
TINY = ["--hidden-size", "16", "--num-layers", "2", "--seq-len", "8", "--batch-size", "4", "--eval-chars", "400",
        "--sample-length", "0", "--lr", "0.01"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    made = {}
    for name, text in (("english", ENGLISH), ("korean", KOREAN)):
        path = folder / f"{name}.txt"
        path.write_text(text, encoding="utf-8")
        assert main(["train", str(path), "--out", str(folder / name), "--steps", "30", "--eval-every", "15",
                     *TINY]) == 0
        made[name] = (folder / name, path)
    return made


def sample(capsys, *args):
    assert main(["sample", *map(str, args)]) == 0
    captured = capsys.readouterr()
    return captured.out


def test_sample_prints_the_prime_and_the_continuation(runs, capsys):
    run, _ = runs["english"]
    out = sample(capsys, run, "--prime", "the fox", "--length", "50", "--seed", "1")
    assert out.startswith("the fox") and len(out) == len("the fox") + 50 + 1 and out.endswith("\n")
    assert set(out) <= set(ENGLISH)
    assert sample(capsys, run, "--prime", "the fox", "--length", "50", "--seed", "1") == out
    assert sample(capsys, run, "--prime", "the fox", "--length", "50", "--seed", "2") != out


def test_greedy_top_k_and_top_p_and_checkpoints(runs, capsys):
    run, _ = runs["english"]
    greedy = sample(capsys, run, "--prime", "the", "--length", "40", "--greedy")
    assert sample(capsys, run, "--prime", "the", "--length", "40", "--top-k", "1", "--seed", "5") == greedy
    assert sample(capsys, run, "--prime", "the", "--length", "40", "--top-p", "0.000001") == greedy
    latest = sample(capsys, run, "--prime", "the", "--length", "40", "--greedy", "--checkpoint", "latest")
    best = sample(capsys, run, "--prime", "the", "--length", "40", "--greedy", "--checkpoint", "best")
    assert best == greedy and len(latest) == len(best)


def test_num_samples_are_separated_by_a_blank_line(runs, capsys):
    run, _ = runs["english"]
    out = sample(capsys, run, "--prime", "x", "--length", "20", "--num-samples", "3", "--seed", "0",
                 "--temperature", "2")
    parts = out[:-1].split("\n\n")
    assert len(out) == 3 * 21 + 2 * 2 + 1
    assert out.startswith("x") and out.count("\n\nx") >= 2 and len(parts) >= 3


def test_korean_prime_and_korean_samples(runs, capsys):
    run, _ = runs["korean"]
    out = sample(capsys, run, "--prime", "안녕", "--length", "30", "--seed", "3")
    assert out.startswith("안녕") and len(out) == 2 + 30 + 1 and set(out) <= set(KOREAN)
    assert main(["sample", str(run), "--prime", "こんにちは"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'こ'" in err and "--prime" in err


def test_eval_reports_loss_and_bits_per_character(runs, capsys):
    run, text = runs["english"]
    assert main(["eval", str(run), str(text)]) == 0
    out = capsys.readouterr().out
    assert "nats/char" in out and "bits/char" in out and "best weights" in out
    assert main(["eval", str(run), str(text), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"loss", "bpc", "characters", "unknown"} <= set(result)
    assert result["unknown"] == 0 and result["bpc"] == pytest.approx(result["loss"] / math.log(2))
    assert 0 < result["loss"] < math.log(len(set(ENGLISH)))  # it learned something
    assert len(ENGLISH) - 32 <= result["characters"] < len(ENGLISH)


def test_eval_counts_unknown_characters_instead_of_crashing(runs, capsys, tmp_path):
    run, _ = runs["english"]
    other = tmp_path / "other.txt"
    other.write_text("THE QUICK brown fox, 안녕!\n" * 3, encoding="utf-8")
    assert main(["eval", str(run), str(other), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    unknown_symbols = sorted(set("THEQUICK,안녕!"))
    assert result["unknown_symbols"] == unknown_symbols
    assert result["unknown"] == 3 * sum(ch in unknown_symbols for ch in "THE QUICK brown fox, 안녕!\n")
    assert main(["eval", str(run), str(other)]) == 0
    assert "not in the model's vocabulary were skipped" in capsys.readouterr().out


def test_korean_eval(runs, capsys):
    run, text = runs["korean"]
    assert main(["eval", str(run), str(text), "--json", "--checkpoint", "latest"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["checkpoint"] == "latest" and result["unknown"] == 0 and result["characters"] > 500


def test_byte_mode_run_samples_and_evaluates_raw_bytes(tmp_path, capsysbinary):
    latin = ("café déjà vu, naïve señor. " * 40).encode("latin-1")
    path = tmp_path / "latin.txt"
    path.write_bytes(latin)
    run = tmp_path / "bytes"
    assert main(["train", str(path), "--out", str(run), "--bytes", "--steps", "10", *TINY]) == 0
    capsysbinary.readouterr()
    assert main(["sample", str(run), "--prime", "caf", "--length", "30", "--seed", "0"]) == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(b"caf") and len(out) == 3 + 30 + 1 and set(out) <= set(latin) | {10}
    assert main(["eval", str(run), str(path), "--json"]) == 0
    result = json.loads(capsysbinary.readouterr().out)
    assert result["unknown"] == 0 and result["characters"] > len(latin) - 64


def test_eval_of_the_validation_split_reproduces_trainings_validation_loss(runs, tmp_path, capsys):
    from rnnlab.data import encode_corpus, split_ids
    from rnnlab.training.rundir import RunDirectory

    run, text = runs["english"]
    ids, vocab = encode_corpus(text)
    _, val_ids, _ = split_ids(ids)
    val_text = tmp_path / "val.txt"
    val_text.write_text(vocab.decode(val_ids), encoding="utf-8")
    assert main(["eval", str(run), str(val_text), "--json", "--checkpoint", "latest"]) == 0
    result = json.loads(capsys.readouterr().out)
    _, _, meta = RunDirectory(run).load_training_state()
    assert meta["history"][-1]["step"] == meta["step"]
    assert result["loss"] == pytest.approx(meta["history"][-1]["val_loss"], rel=1e-9)
