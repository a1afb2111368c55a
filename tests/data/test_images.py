"""Images for classification: training first, validation last, test first; IDX problems in one line; scaling."""
import numpy as np
import pytest

from helpers import spike_images, write_spike_idx
from rnnlab.data.idx import write_idx
from rnnlab.data.images import load_image_data, scale_pixels
from rnnlab.errors import RnnlabError
from rnnlab.training.config import ClassifyConfig


def spike_config(paths, **overrides):
    return ClassifyConfig(**{"idx": paths, "dataset": None, **overrides})


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
