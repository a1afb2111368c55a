"""Bad input gets one clear line on stderr, a non-zero exit status, no traceback, and loses nothing."""
import json
import os

import numpy as np
import pytest

from helpers import fails
from rnnlab.cli.main import main

TEXT = "a small text for a small model.\nit repeats, and repeats again.\n" * 10
TINY = ["--hidden-size", "8", "--num-layers", "1", "--seq-len", "8", "--batch-size", "4", "--eval-chars", "200",
        "--sample-length", "0"]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_input")
    path = folder / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    assert main(["train", str(path), "--out", str(folder / "run"), "--steps", "4", "--eval-every", "2", *TINY]) == 0
    return folder / "run", path


# --- train: the text file ------------------------------------------------------------------------

def test_missing_text_file(tmp_path, capsys):
    fails(capsys, ["train", tmp_path / "nope.txt", "--out", tmp_path / "r", *TINY], "nope.txt")
    assert not (tmp_path / "r").exists()


def test_directory_as_text_file(tmp_path, capsys):
    fails(capsys, ["train", tmp_path, "--out", tmp_path / "r", *TINY], str(tmp_path))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_text_file(text_file, tmp_path, capsys):
    text_file.chmod(0)
    try:
        fails(capsys, ["train", text_file, "--out", tmp_path / "r", *TINY], "text.txt")
    finally:
        text_file.chmod(0o644)


def test_empty_text_file(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    fails(capsys, ["train", empty, "--out", tmp_path / "r", *TINY], "empty.txt", "empty")


def test_text_shorter_than_one_batch_writes_nothing(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("just a few characters here")
    fails(capsys, ["train", short, "--out", tmp_path / "r", *TINY], "short.txt", "--batch-size", "--seq-len")
    assert not (tmp_path / "r" / "config.json").exists()


def test_binary_file(tmp_path, capsys):
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 20)
    fails(capsys, ["train", binary, "--out", tmp_path / "r", *TINY], "blob.bin")


def test_undecodable_byte_names_the_offset_and_suggests_a_way_out(tmp_path, capsys):
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"plain ascii text, then caf\xe9 and more text " * 10)
    line = fails(capsys, ["train", latin, "--out", tmp_path / "r", *TINY], "latin.txt", "26", "--encoding")
    assert "--bytes" in line


def test_unknown_encoding(text_file, tmp_path, capsys):
    fails(capsys, ["train", text_file, "--out", tmp_path / "r", "--encoding", "klingon-8", *TINY], "klingon-8")


# --- train: flags ---------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value", [("--hidden-size", -4), ("--num-layers", 0), ("--batch-size", 0),
                                         ("--seq-len", -1), ("--dropout", 1.5), ("--lr", 0), ("--steps", -3),
                                         ("--grad-clip", -1), ("--time-budget", 0), ("--embedding-size", 0),
                                         ("--epochs", -1)])
def test_nonsensical_training_flags(text_file, tmp_path, capsys, flag, value):
    fails(capsys, ["train", text_file, "--out", tmp_path / "r", *TINY, flag, value], flag, str(value))
    assert not (tmp_path / "r").exists()


def test_out_holding_a_run_needs_resume(trained_run, capsys):
    run, text = trained_run
    before = (run / "model.safetensors").read_bytes()
    fails(capsys, ["train", text, "--out", run, "--steps", "2", *TINY], str(run), "--resume")
    assert (run / "model.safetensors").read_bytes() == before


def test_resume_with_another_model_flag(trained_run, capsys):
    run, text = trained_run
    fails(capsys, ["train", text, "--out", run, "--resume", "--model", "gru", "--steps", "8"], "--model gru",
          "config.json")
    fails(capsys, ["train", text, "--out", run, "--resume", "--hidden-size", "32", "--steps", "8"], "--hidden-size 32")


def test_resume_with_another_text(trained_run, tmp_path, capsys):
    run, _ = trained_run
    other = tmp_path / "other.txt"
    other.write_text(TEXT.upper())
    fails(capsys, ["train", other, "--out", run, "--resume", "--steps", "8"], "other.txt")


def test_resume_of_something_that_is_not_a_run(tmp_path, capsys):
    fails(capsys, ["train", "--out", tmp_path, "--resume", "--steps", "3"], str(tmp_path), "no run to resume")


def test_a_loss_that_stays_nan_stops_with_one_error_line(text_file, tmp_path, capsys, monkeypatch):
    from rnnlab.nn.loss import CrossEntropyLoss

    class NaNLoss(CrossEntropyLoss):
        def forward(self, logits, targets):
            super().forward(logits, targets)
            return np.float32("nan")

    monkeypatch.setattr("rnnlab.nn.CrossEntropyLoss", NaNLoss)
    status = main([str(a) for a in ["train", text_file, "--out", tmp_path / "r", "--steps", "50", *TINY]])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("rnnlab: error: the loss was not finite for 5 steps in a row") and "--lr" in last


# --- sample and eval ------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value", [("--temperature", 0), ("--temperature", -1), ("--top-k", 0),
                                         ("--top-p", 1.5), ("--top-p", 0), ("--length", -1),
                                         ("--num-samples", 0)])
def test_nonsensical_sampling_flags(trained_run, capsys, flag, value):
    run, _ = trained_run
    fails(capsys, ["sample", run, flag, value], flag, str(value))


def test_temperature_zero_points_to_greedy(trained_run, capsys):
    run, _ = trained_run
    fails(capsys, ["sample", run, "--temperature", "0"], "--temperature 0.0: must be > 0", "use --greedy")


def test_prime_with_unknown_characters_names_them(trained_run, capsys):
    run, _ = trained_run
    fails(capsys, ["sample", run, "--prime", "a QX 😀"], "'Q'", "'X'", "'😀'", "--prime")


def test_run_dir_that_is_not_a_run(tmp_path, text_file, capsys):
    fails(capsys, ["sample", tmp_path], str(tmp_path), "not a run")
    fails(capsys, ["sample", tmp_path / "missing"], "missing")
    fails(capsys, ["eval", tmp_path, text_file], str(tmp_path))
    fails(capsys, ["sample", text_file], "text.txt")


def test_eval_of_a_missing_or_binary_text(trained_run, tmp_path, capsys):
    run, _ = trained_run
    fails(capsys, ["eval", run, tmp_path / "absent.txt"], "absent.txt")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02\x03" * 100)
    fails(capsys, ["eval", run, binary], "blob.bin")


def copy_run(run, destination):
    destination.mkdir()
    for path in run.iterdir():
        (destination / path.name).write_bytes(path.read_bytes())
    return destination


def test_corrupt_checkpoint(trained_run, tmp_path, capsys):
    run = copy_run(trained_run[0], tmp_path / "copy")
    data = (run / "best.safetensors").read_bytes()
    (run / "best.safetensors").write_bytes(data[: len(data) // 2])  # truncated
    fails(capsys, ["sample", run], "best.safetensors")
    (run / "model.safetensors").write_bytes(b"garbage, not safetensors")
    fails(capsys, ["sample", run, "--checkpoint", "latest"], "model.safetensors")
    (run / "training_state.safetensors").write_bytes(b"\xff" * 64)
    fails(capsys, ["train", trained_run[1], "--out", run, "--resume", "--steps", "8"], "training_state.safetensors")


def test_checkpoint_from_a_future_format_version(trained_run, tmp_path, capsys):
    run = copy_run(trained_run[0], tmp_path / "future")
    config = json.loads((run / "config.json").read_text())
    config["format_version"] = 99
    (run / "config.json").write_text(json.dumps(config))
    fails(capsys, ["sample", run], "config.json", "99")


def test_damaged_config(trained_run, tmp_path, capsys):
    run = copy_run(trained_run[0], tmp_path / "damaged")
    (run / "config.json").write_text("{not json")
    fails(capsys, ["sample", run], "config.json")


@pytest.mark.parametrize("argv, message", [
    (["train", "--steps", "abc"], "argument --steps: invalid int value: 'abc' (see `rnnlab train --help`)"),
    (["train", "--model", "cnn"], "argument --model: invalid choice: 'cnn'"),
    (["sample"], "the following arguments are required: RUN_DIR (see `rnnlab sample --help`)"),
    (["eval", "somewhere"], "the following arguments are required: TEXT_FILE"),
])
def test_argparse_mistakes_are_one_line_not_a_usage_block(capsys, argv, message):
    fails(capsys, argv, message)


def test_a_model_too_large_for_memory_is_one_line(text_file, tmp_path, capsys):
    # 4 * 3,000,000^2 float32 weights: 144 TB, more than any address space, so numpy refuses at once
    fails(capsys, ["train", text_file, "--out", tmp_path / "r", "--hidden-size", "3000000", *TINY[2:], "--steps", "1"],
          "not enough memory", "lower --hidden-size")
    assert not (tmp_path / "r").exists()
