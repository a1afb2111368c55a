"""``rnnlab classify train|eval`` end to end on tiny IDX files; resume; every bad input is one line."""
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import fails, write_spike_idx
from helpers import run_cli as cli
from rnnlab.data.idx import write_idx

TINY = ["--model", "gru", "--hidden-size", "16", "--batch-size", "32", "--lr", "0.01"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classify_cli")
    paths = write_spike_idx(folder / "data")
    run = folder / "run"
    assert cli(["classify", "train", "--idx", *paths, "--out", run, "--epochs", "3", "--val-size", "50",
                *TINY]) == 0
    return run, paths


def test_train_reports_epochs_and_a_confusion_matrix_then_eval_agrees(trained, capsys):
    run, paths = trained
    results = json.loads((run / "results.json").read_text())
    assert [record["epoch"] for record in results["history"]] == [1, 2, 3]
    assert results["test"]["accuracy"] >= 0.95
    assert cli(["classify", "eval", run, "--json", "--checkpoint", "latest"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == pytest.approx(results["test"]["accuracy"])
    assert report["loss"] == pytest.approx(results["test"]["loss"])
    assert report["count"] == 200 and report["checkpoint"] == "latest"
    assert np.array(report["confusion_matrix"]).shape == (3, 3)


def test_eval_on_given_idx_files_prints_a_table(trained, capsys):
    run, paths = trained
    assert cli(["classify", "eval", run, "--idx", paths[2], paths[3], "--test-size", "20"]) == 0
    out = capsys.readouterr().out
    assert "over 20 images (best weights" in out
    assert "true \\ predicted" in out and "recall" in out


def test_train_progress_lines_go_to_stderr(tmp_path, capsys):
    paths = write_spike_idx(tmp_path / "data", train_count=64, test_count=16)
    assert cli(["classify", "train", "--idx", *paths, "--out", tmp_path / "run", "--epochs", "1", *TINY]) == 0
    err = capsys.readouterr().err
    assert "epoch 1: train loss" in err and "test loss" in err and "true \\ predicted" in err


def test_resume_continues_to_more_epochs(tmp_path, capsys):
    paths = write_spike_idx(tmp_path / "data", train_count=64, test_count=16)
    run = tmp_path / "run"
    assert cli(["classify", "train", "--idx", *paths, "--out", run, "--epochs", "1", *TINY]) == 0
    assert cli(["classify", "train", "--out", run, "--resume", "--epochs", "3"]) == 0
    assert "resuming gru classifier" in capsys.readouterr().err
    history = json.loads((run / "results.json").read_text())["history"]
    assert [record["epoch"] for record in history] == [1, 2, 3]
    # the limits carry over: resumed again without flags, the run is already at its 3 epochs
    assert cli(["classify", "train", "--out", run, "--resume"]) == 0
    assert "done at epoch 3, step 6 (epochs)" in capsys.readouterr().err
    fails(capsys, ["classify", "train", "--out", run, "--resume", "--hidden-size", "8"],
          "--hidden-size 8 differs from the saved run's 16")
    fails(capsys, ["classify", "train", "--idx", *paths, "--out", run, *TINY], "already holds a run", "--resume")


# --- bad inputs: one line, non-zero status, nothing written ------------------------------------
def test_missing_idx_file(tmp_path, capsys):
    paths = write_spike_idx(tmp_path / "data", train_count=20, test_count=10)
    paths[1] = tmp_path / "data" / "missing-labels"
    fails(capsys, ["classify", "train", "--idx", *paths, "--out", tmp_path / "run", *TINY],
          "TRAIN_LABELS", "missing-labels: no such file")
    assert not (tmp_path / "run").exists()


def test_idx_path_that_is_not_a_file_and_files_in_the_wrong_order(tmp_path, capsys):
    paths = write_spike_idx(tmp_path / "data", train_count=20, test_count=10)
    fails(capsys, ["classify", "train", "--idx", "/dev/null", *paths[1:], "--out", tmp_path / "run", *TINY],
          "TRAIN_IMAGES /dev/null: not a regular file")
    fails(capsys, ["classify", "train", "--idx", tmp_path, *paths[1:], "--out", tmp_path / "run", *TINY],
          "not a regular file")
    fails(capsys, ["classify", "train", "--idx", paths[1], paths[0], *paths[2:], "--out", tmp_path / "run", *TINY],
          "got shape (20,); is it a labels file? give the images file first")
    assert not (tmp_path / "run").exists()


def test_mismatched_counts(tmp_path, capsys):
    paths = write_spike_idx(tmp_path / "data", train_count=20, test_count=10)
    write_idx(paths[3], np.zeros(9, dtype=np.uint8))
    fails(capsys, ["classify", "train", "--idx", *paths, "--out", tmp_path / "run", *TINY],
          "holds 10 images but", "holds 9 labels")
    assert not (tmp_path / "run").exists()


def test_not_an_idx_file(tmp_path, capsys):
    paths = write_spike_idx(tmp_path / "data", train_count=20, test_count=10)
    Path(paths[0]).write_bytes(b"this is not IDX")
    fails(capsys, ["classify", "train", "--idx", *paths, "--out", tmp_path / "run", *TINY], Path(paths[0]).name)


@pytest.mark.parametrize("flags,message", [
    (["--model", "cnn"], "--model cnn: must be one of"),
    (["--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
    (["--epochs", "0"], "--epochs 0: must be a positive integer"),
    (["--lr", "-1"], "--lr -1.0: must be > 0"),
    (["--pool", "max"], "--pool max: must be one of last, mean"),
    (["--init", "identity", "--model", "lstm"], "--init identity: must be default for --model lstm"),
    (["--train-size", "1000"], "--train-size 1000: only 20 training images are available"),
    (["--dataset", "mnist"], "--dataset and --idx both given"),
    (["--resume"], "no run to resume"),
])
def test_bad_flags(tmp_path, capsys, flags, message):
    paths = write_spike_idx(tmp_path / "data", train_count=20, test_count=10)
    fails(capsys, ["classify", "train", "--idx", *paths, "--out", tmp_path / "run", *TINY, *flags], message)
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_idx_needs_four_files(tmp_path, capsys):
    fails(capsys, ["classify", "train", "--idx", "a", "b", "--out", tmp_path / "run"], "--idx", "expected 4")


def test_data_dir_without_the_dataset(tmp_path, capsys):
    fails(capsys, ["classify", "train", "--dataset", "mnist", "--data-dir", tmp_path, "--out", tmp_path / "run"],
          "lacks mnist files")


def test_eval_bad_inputs(trained, tmp_path, capsys):
    run, paths = trained
    fails(capsys, ["classify", "eval", tmp_path / "nothing"], "no such run directory")
    fails(capsys, ["classify", "eval", tmp_path], "not a run directory")
    fails(capsys, ["classify", "eval", run, "--idx", paths[2], tmp_path / "nope"], "TEST_LABELS", "no such file")
    wide = write_idx(tmp_path / "wide-images", np.zeros((3, 6, 5), dtype=np.uint8))
    labels = write_idx(tmp_path / "wide-labels", np.zeros(3, dtype=np.uint8))
    fails(capsys, ["classify", "eval", run, "--idx", wide, labels], "6x5", "rows of 4 pixels")
    too_many = write_idx(tmp_path / "many-labels", np.full(3, 7, dtype=np.uint8))
    narrow = write_idx(tmp_path / "narrow-images", np.zeros((3, 6, 4), dtype=np.uint8))
    fails(capsys, ["classify", "eval", run, "--idx", narrow, too_many], "labels go up to 7", "3 classes")
    fails(capsys, ["classify", "eval", run, "--test-size", "0"], "--test-size 0")
    # the char-LM commands refuse a classifier run by name, and the reverse
    fails(capsys, ["train", "--out", run, "--resume"], "holds a 'classify' run, not a character language model")
    fails(capsys, ["sample", run], "holds a 'classify' run, not a character language model")


def test_resume_refuses_a_character_model_run(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"kind": "charlm", "model": {}, "train": {}}))
    fails(capsys, ["classify", "train", "--out", tmp_path / "run", "--resume"],
          "holds a 'charlm' run, not a classifier", "`rnnlab classify train`")


def test_eval_refuses_a_character_model_run(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"kind": "charlm", "model": {}}))
    fails(capsys, ["classify", "eval", tmp_path / "run"], "not a classifier")


def test_classify_alone_prints_help(capsys):
    assert cli(["classify"]) == 2
    assert "{train,eval}" in capsys.readouterr().err


def test_model_flags_reach_the_saved_model(tmp_path, capsys):
    paths = write_spike_idx(tmp_path / "data", train_count=32, test_count=8)
    run = tmp_path / "run"
    assert cli(["classify", "train", "--idx", *paths, "--out", run, "--epochs", "1", "--model", "rnn_relu",
                "--init", "identity", "--bidirectional", "--pool", "mean", "--num-layers", "2", "--dropout", "0.1",
                "--optimizer", "sgd", "--hidden-size", "8", "--dtype", "float64"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == {"input_size": 4, "num_classes": 3, "hidden_size": 8, "num_layers": 2,
                               "cell": "rnn_relu", "bidirectional": True, "pool": "mean", "dropout": 0.1,
                               "init": "identity", "dtype": "float64"}
    assert config["train"]["optimizer"] == "sgd"
    assert cli(["classify", "eval", run]) == 0
    assert "over 8 images (latest weights" in capsys.readouterr().out
