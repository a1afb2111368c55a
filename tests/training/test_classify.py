"""Sequence-classification training: learns a synthetic task, exact resume, data slices, evaluation, settings."""
import io
import json

import numpy as np
import pytest

import rnnlab
from helpers import spike_images, write_spike_idx
from rnnlab.data.idx import write_idx
from rnnlab.errors import RnnlabError
from rnnlab.training.rundir import RunDirectory, load_run
from rnnlab.training.classify import (ClassifyConfig, ImageData, build_model, confusion_matrix, evaluate,
                                      format_confusion_matrix, load_image_data, scale_pixels, train)


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


# --- data ----------------------------------------------------------------------------------------
def test_slices_train_first_validation_last_test_first(tmp_path):
    paths = write_spike_idx(tmp_path, train_count=100, test_count=40)
    data = load_image_data(spike_config(paths, train_size=30, val_size=20, test_size=10))
    images, labels = spike_images(100, 0)
    np.testing.assert_array_equal(data.train_images, images[:30])
    np.testing.assert_array_equal(data.val_images, images[80:])
    np.testing.assert_array_equal(data.val_labels, labels[80:])
    np.testing.assert_array_equal(data.test_images, spike_images(40, 1)[0][:10])
    assert (data.steps, data.features, data.num_classes) == (6, 4, 3)


@pytest.mark.parametrize("overrides,message", [
    ({"train_size": 101}, "--train-size 101: only 100 training images are available"),
    ({"train_size": 90, "val_size": 20}, "only 80 training images are available"),
    ({"val_size": 100}, "--val-size 100: the training file holds only 100 images"),
    ({"test_size": 41}, "--test-size 41: the test file holds only 40 images"),
])
def test_slices_that_do_not_fit_are_one_line_errors(tmp_path, overrides, message):
    paths = write_spike_idx(tmp_path, train_count=100, test_count=40)
    with pytest.raises(RnnlabError, match=message):
        load_image_data(spike_config(paths, **overrides))


def test_idx_file_problems_are_one_line_errors(tmp_path):
    paths = write_spike_idx(tmp_path, train_count=20, test_count=10)
    with pytest.raises(RnnlabError, match="TEST_LABELS .*nope: no such file"):
        load_image_data(spike_config(paths[:3] + [str(tmp_path / "nope")]))
    write_idx(paths[1], np.zeros(19, dtype=np.uint8))
    with pytest.raises(RnnlabError, match="holds 20 images but .* holds 19 labels"):
        load_image_data(spike_config(paths))
    write_idx(paths[1], np.zeros(20, dtype=np.uint8))
    write_idx(paths[2], np.zeros((10, 6, 5), dtype=np.uint8))
    with pytest.raises(RnnlabError, match="test images are 6x5 but the training images .* are 6x4"):
        load_image_data(spike_config(paths))


def test_scale_pixels():
    np.testing.assert_array_equal(scale_pixels(np.array([0, 255], dtype=np.uint8)), [0.0, 1.0])
    assert scale_pixels(np.array([0, 255], dtype=np.uint8), np.float64).dtype == np.float64
    np.testing.assert_allclose(scale_pixels(np.array([32767], dtype=np.int16)), [1.0])
    floats = np.array([0.25, 2.0], dtype=np.float32)
    np.testing.assert_array_equal(scale_pixels(floats), floats)  # floats are taken as stored


# --- evaluation ----------------------------------------------------------------------------------
def test_evaluate_matches_a_direct_computation():
    rnnlab.manual_seed(0)
    config = ClassifyConfig(model="rnn", hidden_size=8)
    images, labels = spike_images(50, 2)
    data = ImageData("spike", images, labels, images, labels, images, labels, ("a", "b", "c"))
    model = build_model(config, data)
    result = evaluate(model, images, labels, batch_size=7)
    with rnnlab.no_grad():
        logits = model(images.astype(np.float32) / 255).astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert result.loss == pytest.approx(-log_probs[np.arange(50), labels].mean(), rel=1e-5)
    assert result.accuracy == pytest.approx((logits.argmax(axis=1) == labels).mean())
    assert result.confusion.sum() == 50 and np.trace(result.confusion) == round(result.accuracy * 50)
    with pytest.raises(RnnlabError, match="labels go up to 5 but the model knows 3 classes"):
        evaluate(model, images[:2], np.array([0, 5]))


def test_confusion_matrix_rows_are_true_classes():
    matrix = confusion_matrix([2, 2, 0, 1], [2, 0, 0, 1], 3)
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 1, 0], [1, 0, 1]])
    text = format_confusion_matrix(matrix, ["zero", "one", "two"])
    assert text.splitlines()[3].split() == ["2", "two", "1", "0", "1", "50.0%"]


# --- settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides,message", [
    ({"model": "cnn"}, "--model cnn: must be one of rnn, rnn_relu, lstm, gru"),
    ({"dataset": "cifar"}, "--dataset cifar: must be one of mnist, fashion-mnist"),
    ({"lr": 0.0}, "--lr 0.0: must be > 0"),
    ({"lr_decay": 1.5}, "--lr-decay 1.5: must be in \\(0, 1\\]"),
    ({"batch_size": 0}, "--batch-size 0: must be a positive integer"),
    ({"init": "identity", "model": "gru"}, "--init identity: must be default for --model gru"),
    ({"pool": "max"}, "--pool max: must be one of last, mean"),
    ({"time_budget": -1.0}, "--time-budget -1.0: must be > 0 seconds"),
])
def test_bad_settings_are_one_line_errors(overrides, message):
    with pytest.raises(RnnlabError, match=message):
        ClassifyConfig(**overrides).validate()


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

    def interrupt_on_the_sixth_batch(images, dtype=np.float32):
        calls["count"] += 1  # 4 training batches, the test set at the end of epoch 1, then step 5
        if calls["count"] == 6:
            signal.raise_signal(signal.SIGINT)  # as Ctrl-C: the step finishes, then the loop saves and leaves
        return original(images, dtype)

    monkeypatch.setattr(classify, "scale_pixels", interrupt_on_the_sixth_batch)
    stopped = quiet_train(spike_config(paths, epochs=2), tmp_path / "run")
    monkeypatch.setattr(classify, "scale_pixels", original)
    assert stopped.stop_reason == "interrupted" and stopped.step == 5 and stopped.test is None
    assert RunDirectory(tmp_path / "run").load_training_state()[2]["step"] == 5
    resumed = quiet_train(spike_config(paths, epochs=2), tmp_path / "run", resume=True)
    assert resumed.step == straight.step == 8
    ours = RunDirectory(tmp_path / "run").load_weights("latest")
    for name, value in RunDirectory(tmp_path / "straight").load_weights("latest").items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)
