"""`rnnlab train` in-process: what it prints, what it writes, its flags and defaults."""
import json

import pytest

from rnnlab.cli.main import main

TEXT = ("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 12)
TINY = ["--hidden-size", "16", "--num-layers", "1", "--seq-len", "8", "--batch-size", "4", "--eval-chars", "400",
        "--sample-length", "30"]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "verse.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_train_prints_progress_evaluations_samples_and_the_test_score(tmp_path, text_file, capsys):
    out = tmp_path / "run"
    assert main(["train", str(text_file), "--out", str(out), "--steps", "12", "--eval-every", "6", *TINY]) == 0
    err = capsys.readouterr().err
    assert "training lstm" in err and str(text_file) in err
    assert err.count("val loss") == 2 and "bits/char" in err and "sample:" in err
    assert "step 12" in err and "test: loss" in err and "done at step 12" in err
    assert {"config.json", "model.safetensors", "training_state.safetensors", "best.safetensors"} <= \
        {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["steps"] == 12 and config["train"]["text_file"] == str(text_file.resolve())
    assert config["model"] == {"vocab_size": len(set(TEXT)), "cell": "lstm", "hidden_size": 16, "num_layers": 1,
                               "embedding_size": 16, "dropout": 0.0, "dtype": "float32"}


@pytest.mark.parametrize("cell", ["rnn", "rnn_relu", "gru"])
def test_every_cell_trains(tmp_path, text_file, capsys, cell):
    out = tmp_path / cell
    assert main(["train", str(text_file), "--out", str(out), "--model", cell, "--steps", "3", "--optimizer",
                 "rmsprop", "--lr", "0.01", "--embedding-size", "5", "--num-layers", "2", "--dropout", "0.2",
                 *TINY[4:]]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["cell"] == cell and config["model"]["embedding_size"] == 5
    assert config["train"]["optimizer"] == "rmsprop"


def test_out_defaults_to_runs_slash_the_text_name(tmp_path, text_file, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(text_file), "--steps", "2", *TINY]) == 0
    assert (tmp_path / "runs" / "verse" / "model.safetensors").is_file()


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for flag in ["TEXT_FILE", "--out", "--model", "--hidden-size", "--num-layers", "--dropout", "--seq-len",
                 "--batch-size", "--optimizer", "--lr", "--grad-clip", "--steps", "--epochs", "--time-budget",
                 "--eval-every", "--checkpoint-every", "--seed", "--resume", "--encoding", "--bytes",
                 "--embedding-size", "standard library"]:
        assert flag in help_text, flag


def test_byte_mode_and_latin1_encoding(tmp_path, capsys):
    path = tmp_path / "latin.txt"
    path.write_bytes(("café déjà vu, naïve señor. " * 30).encode("latin-1"))
    assert main(["train", str(path), "--out", str(tmp_path / "bytes"), "--bytes", "--steps", "2", *TINY]) == 0
    config = json.loads((tmp_path / "bytes" / "config.json").read_text())
    assert config["vocabulary"]["byte_mode"] is True and 233 in config["vocabulary"]["symbols"]
    assert main(["train", str(path), "--out", str(tmp_path / "latin"), "--encoding", "latin-1", "--steps", "2",
                 *TINY]) == 0
    config = json.loads((tmp_path / "latin" / "config.json").read_text())
    assert "é" in config["vocabulary"]["symbols"]


@pytest.mark.slow
def test_no_text_file_trains_on_the_python_standard_library(tmp_path, capsys):
    out = tmp_path / "stdlib"
    assert main(["train", "--out", str(out), "--steps", "2", "--eval-every", "0", *TINY]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["text_file"] is None and config["corpus"].endswith(".txt")
    assert {"d", "e", "f", ":", "(", ")"} <= set(config["vocabulary"]["symbols"])


def test_a_python_warning_is_one_line_not_a_source_listing(tmp_path, text_file, capsys):
    # dropout with one layer: PyTorch's warning, shown as `rnnlab: warning: ...` without file, line and source
    assert main(["train", str(text_file), "--out", str(tmp_path / "run"), "--steps", "1", "--dropout", "0.5",
                 *TINY]) == 0
    err = capsys.readouterr().err
    warning_lines = [line for line in err.splitlines() if "dropout" in line]
    assert warning_lines == ["rnnlab: warning: dropout option adds dropout after all but last recurrent layer, "
                             "so non-zero dropout expects num_layers greater than 1, but got dropout=0.5 and "
                             "num_layers=1"]
