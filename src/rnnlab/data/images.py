"""Images for sequence classification: read (a named dataset or four IDX files), cut into slices, scaled.

An image of ``rows x cols`` pixels is read as a sequence of ``rows`` steps of ``cols`` features (MNIST: 28
steps of 28 pixels). :func:`load_image_data` gives the training, validation and test slices as stored
(``uint8`` usually); :func:`scale_pixels` turns a batch into floats in ``[0, 1]`` on the way into the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RnnlabError
from .datasets import load_dataset
from .idx import load_idx_pair


@dataclass
class ImageData:
    """Images (``(N, rows, cols)``, as stored) and ``int64`` labels for training, validation and test."""
    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def steps(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def features(self) -> int:
        return int(self.train_images.shape[2])


def scale_pixels(images, dtype=np.float32) -> np.ndarray:
    """Images as stored -> floats in ``[0, 1]``: ``uint8`` / 255, other integers / their largest value.

    Float images are taken as they are (already scaled by whoever wrote them).

    >>> scale_pixels(np.array([[[0, 51, 255]]], dtype=np.uint8))
    array([[[0. , 0.2, 1. ]]], dtype=float32)
    """
    images = np.asarray(images)
    if images.dtype.kind in "iu":
        return images.astype(dtype) / np.asarray(np.iinfo(images.dtype).max, dtype=dtype)
    return images.astype(dtype, copy=False)


def _read_idx_files(paths) -> tuple:
    names = ("TRAIN_IMAGES", "TRAIN_LABELS", "TEST_IMAGES", "TEST_LABELS")
    for name, path in zip(names, paths):
        if not Path(path).is_file():
            what = "not a regular file" if Path(path).exists() else "no such file"
            raise RnnlabError(f"--idx {name} {path}: {what}; give four IDX files (gzipped or not): "
                              f"{' '.join(names)}")
    train_images, train_labels = load_idx_pair(paths[0], paths[1])
    test_images, test_labels = load_idx_pair(paths[2], paths[3])
    if train_images.shape[1:] != test_images.shape[1:]:
        raise RnnlabError(f"{paths[2]}: test images are {test_images.shape[1]}x{test_images.shape[2]} but the "
                          f"training images ({paths[0]}) are {train_images.shape[1]}x{train_images.shape[2]}; "
                          f"the files do not belong together")
    for labels, path in ((train_labels, paths[1]), (test_labels, paths[3])):
        if labels.size and labels.min() < 0:
            raise RnnlabError(f"{path}: labels must be class numbers >= 0, found {labels.min()}")
    largest = max(int(train_labels.max(initial=0)), int(test_labels.max(initial=0)))
    classes = tuple(str(label) for label in range(largest + 1))
    return train_images, train_labels, test_images, test_labels, classes


def load_image_data(config) -> ImageData:
    """Read the dataset (or IDX files) and cut the training, validation and test slices ``config`` asks for
    (anything with ``dataset``, ``data_dir``, ``idx``, ``train_size``, ``val_size``, ``test_size``: a
    :class:`rnnlab.training.config.ClassifyConfig`).

    The validation slice is the LAST ``val_size`` images of the training file; training uses the first
    ``train_size`` of the rest; the test slice is the first ``test_size`` test images.
    """
    if config.idx is not None:
        train_images, train_labels, test_images, test_labels, classes = _read_idx_files(config.idx)
        name = "idx"
    else:
        dataset = load_dataset(config.dataset, data_dir=config.data_dir)
        train_images, train_labels = dataset.train_images, dataset.train_labels
        test_images, test_labels = dataset.test_images, dataset.test_labels
        classes, name = tuple(dataset.classes), dataset.name
    available = len(train_images) - config.val_size
    if available < 1:
        raise RnnlabError(f"--val-size {config.val_size}: the training file holds only {len(train_images)} images; "
                          f"leave some for training")
    train_size = available if config.train_size is None else config.train_size
    if train_size > available:
        raise RnnlabError(f"--train-size {config.train_size}: only {available} training images are available "
                          f"({len(train_images)} in the file, {config.val_size} held out by --val-size); "
                          f"ask for at most {available}")
    test_size = len(test_images) if config.test_size is None else config.test_size
    if test_size > len(test_images):
        raise RnnlabError(f"--test-size {config.test_size}: the test file holds only {len(test_images)} images; "
                          f"ask for at most {len(test_images)}")
    if len(test_images) == 0:
        raise RnnlabError("the test file holds no images; give a test set with at least one image")
    val_start = len(train_images) - config.val_size
    return ImageData(name, train_images[:train_size], train_labels[:train_size],
                     train_images[val_start:], train_labels[val_start:],
                     test_images[:test_size], test_labels[:test_size], classes)
