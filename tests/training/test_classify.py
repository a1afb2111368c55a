"""Sequence-classification training: learns a synthetic task, exact resume, data slices, evaluation, settings."""
import io
import json

import numpy as np
import pytest

import rnnlab
from helpers import spike_images, write_spike_idx
from rnnlab.errors import RnnlabError
from rnnlab.training.rundir import RunDirectory, load_run
from rnnlab.data.images import ImageData, load_image_data
from rnnlab.training.classify import build_model, train
from rnnlab.training.classify_eval import evaluate
from rnnlab.training.config import ClassifyConfig


def spike_config(paths, **overrides):
    values = dict(idx=paths, dataset=None, model="gru", hidden_size=16, epochs=4, batch_size=32, lr=1e-2)
    values.update(overrides)
    return ClassifyConfig(**values)


def quiet_train(config, out, **kwargs):
    return train(config, out, stream=io.StringIO(), progress_bar=False, **kwargs)


# --- learning ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_learns_where_the_spike_is(tmp_path, cell):
    paths = write_spike_idx(tmp_path, train_count=600)
    config = spike_config(paths, model=cell, val_size=100)
    data = load_image_data(config)
    rnnlab.manual_seed(config.seed)
    untrained = evaluate(build_model(config, data), data.test_images, data.test_labels)
    assert untrained.accuracy < 0.7  # the task is not solved before training

    result = quiet_train(config, tmp_path / "run")
    assert result.stop_reason == "epochs" and result.epoch == 4 and result.step == 4 * 16  # 500 images / 32
    assert result.test.accuracy >= 0.95
    assert [record["epoch"] for record in result.history] == [1, 2, 3, 4]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"} \
        <= set(result.history[-1])
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["test"]["accuracy"] == pytest.approx(result.test.accuracy)
    assert np.array(saved["test"]["confusion_matrix"]).sum() == 200
    assert RunDirectory(tmp_path / "run").has_best()

    loaded = load_run(tmp_path / "run", "classify", "latest")
    again = evaluate(loaded.model, data.test_images, data.test_labels)
    assert again.accuracy == pytest.approx(result.test.accuracy)
    assert loaded.classes == ("0", "1", "2") and loaded.model.classes == ("0", "1", "2")
    assert not loaded.model.training


def test_in_memory_data_and_mean_pool_bidirectional(tmp_path):
    train_images, train_labels = spike_images(400, 0)
    test_images, test_labels = spike_images(100, 1)
    empty = train_images[:0]
    data = ImageData("spike", train_images, train_labels.astype(np.int64), empty, train_labels[:0].astype(np.int64),
                     test_images, test_labels.astype(np.int64), ("low", "middle", "high"))
    config = spike_config(None, dataset="fashion-mnist", model="lstm", bidirectional=True, pool="mean", epochs=8)
    result = quiet_train(config, tmp_path / "run", data=data)
    assert result.test.accuracy >= 0.95
    assert not RunDirectory(tmp_path / "run").has_best()  # no validation slice, no "best"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["classes"] == ["low", "middle", "high"]


# --- resume --------------------------------------------------------------------------------------
def test_resume_mid_epoch_gives_the_uninterrupted_weights(tmp_path):
    paths = write_spike_idx(tmp_path, train_count=300, test_count=50)
    overrides = dict(model="lstm", num_layers=2, dropout=0.3, lr_decay=0.5, epochs=None)
    straight = quiet_train(spike_config(paths, steps=25, **overrides), tmp_path / "straight")
    first = quiet_train(spike_config(paths, steps=13, **overrides), tmp_path / "resumed")  # 10 steps per epoch
    assert first.stop_reason == "steps" and first.epoch == 1
    resumed = quiet_train(spike_config(paths, steps=25, **overrides), tmp_path / "resumed", resume=True)
    assert resumed.step == 25 and sorted(resumed.losses) == list(range(14, 26))
    for step in range(14, 26):
        assert resumed.losses[step] == straight.losses[step]
    ours = RunDirectory(tmp_path / "resumed").load_weights("latest")
    theirs = RunDirectory(tmp_path / "straight").load_weights("latest")
    for name in theirs:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    assert [h["lr"] for h in resumed.history] == [1e-2, 5e-3]


def test_resume_refuses_a_different_model(tmp_path):
    paths = write_spike_idx(tmp_path, train_count=64, test_count=16)
    quiet_train(spike_config(paths, epochs=1), tmp_path / "run")
    with pytest.raises(RnnlabError, match="--hidden-size 32 differs from the saved run's 16"):
        quiet_train(spike_config(paths, epochs=2, hidden_size=32), tmp_path / "run", resume=True)


def test_time_budget_stops_and_still_reports(tmp_path):
    paths = write_spike_idx(tmp_path, train_count=64, test_count=16)
    result = quiet_train(spike_config(paths, epochs=1000, time_budget=0.05), tmp_path / "run")
    assert result.stop_reason == "time" and result.epoch < 1000 and result.test is not None


def test_non_finite_losses_stop_the_run_with_one_line(tmp_path):
    images, labels = spike_images(64, 0)
    broken = images.astype(np.float32)
    broken[:, 0, 0] = np.nan  # every batch's loss is NaN: each step is skipped, then the run stops
    data = ImageData("broken", broken, labels.astype(np.int64), broken[:0], labels[:0].astype(np.int64),
                     broken[:8], labels[:8].astype(np.int64), ("a", "b", "c"))
    with pytest.raises(RnnlabError, match="the loss was not finite for 3 steps in a row"):
        quiet_train(spike_config(None, dataset="mnist", max_bad_steps=3, epochs=5), tmp_path / "run", data=data)


def test_an_interrupt_saves_and_resume_finishes_like_an_uninterrupted_run(tmp_path, monkeypatch):
    import signal

    import rnnlab.training.classify as classify

    paths = write_spike_idx(tmp_path, train_count=128, test_count=16)
    straight = quiet_train(spike_config(paths, epochs=2), tmp_path / "straight")
    calls = {"count": 0}
    original = classify.scale_pixels

    def interrupt_on_the_fifth_batch(images, dtype=np.float32):
        calls["count"] += 1  # the loop's batches only (evaluation scales its own): 4 in epoch 1, then step 5
        if calls["count"] == 5:
            signal.raise_signal(signal.SIGINT)  # as Ctrl-C: the step finishes, then the loop saves and leaves
        return original(images, dtype)

    monkeypatch.setattr(classify, "scale_pixels", interrupt_on_the_fifth_batch)
    stopped = quiet_train(spike_config(paths, epochs=2), tmp_path / "run")
    monkeypatch.setattr(classify, "scale_pixels", original)
    assert stopped.stop_reason == "interrupted" and stopped.step == 5 and stopped.test is None
    assert RunDirectory(tmp_path / "run").load_training_state()[2]["step"] == 5
    resumed = quiet_train(spike_config(paths, epochs=2), tmp_path / "run", resume=True)
    assert resumed.step == straight.step == 8
    ours = RunDirectory(tmp_path / "run").load_weights("latest")
    for name, value in RunDirectory(tmp_path / "straight").load_weights("latest").items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)
