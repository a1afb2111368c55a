"""Scoring a sequence classifier: loss, accuracy and the confusion matrix, and the matrix as a text table."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend
from ..data.images import scale_pixels
from ..errors import RnnlabError
from ..models.classifier import SequenceClassifier
from ..nn.loss import log_softmax
from .signals import stop_if_requested


@dataclass
class Evaluation:
    loss: float                  # mean cross-entropy, nats
    accuracy: float              # fraction correct, in [0, 1]
    count: int                   # images scored
    predictions: np.ndarray      # (count,) predicted classes
    confusion: np.ndarray        # (C, C): row = true class, column = predicted class

    def to_dict(self, classes=None) -> dict:
        result = {"loss": self.loss, "accuracy": self.accuracy, "count": self.count,
                  "confusion_matrix": self.confusion.tolist()}
        if classes is not None:
            result["classes"] = list(classes)
        return result


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """``(C, C)`` counts: ``matrix[true, predicted]``.

    >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3)
    array([[1, 0, 0],
           [0, 1, 1],
           [0, 0, 1]])
    """
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    counts = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def format_confusion_matrix(matrix, classes) -> str:
    """A text table: one row per true class (named), one column per predicted class (numbered).

    >>> print(format_confusion_matrix(np.array([[5, 1], [0, 4]]), ["cat", "dog"]))
    true \\ predicted    0    1  recall
    0 cat               5    1    83.3%
    1 dog               0    4   100.0%
    """
    matrix = np.asarray(matrix)
    width = max(5, len(str(int(matrix.max(initial=0)))) + 1)
    names = [f"{i} {name}" if str(name) != str(i) else str(i) for i, name in enumerate(classes)]
    label_width = max(len("true \\ predicted"), *(len(name) for name in names))
    lines = ["true \\ predicted".ljust(label_width) + "".join(f"{i:>{width}}" for i in range(len(classes)))
             + "  recall"]
    for index, (name, row) in enumerate(zip(names, matrix)):
        total = row.sum()
        recall = f"{100.0 * row[index] / total:6.1f}%" if total else "     -"
        lines.append(name.ljust(label_width) + "".join(f"{int(v):>{width}}" for v in row) + "  " + recall)
    return "\n".join(lines)


def evaluate(model: SequenceClassifier, images, labels, batch_size: int = 1000, dist=None) -> Evaluation:
    """Loss, accuracy and confusion matrix of ``model`` on ``images`` (as stored; scaled here).

    Runs in evaluation mode (dropout off) under :func:`rnnlab.no_grad`; the model's mode is restored.
    Data-parallel (``dist``, :mod:`rnnlab.training.distributed`): each rank scores its contiguous share of
    the images; the losses add up and the predictions are put together on every rank.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(images) == 0:
        raise ValueError("evaluate needs at least one image")
    if labels.max(initial=0) >= model.num_classes:
        raise RnnlabError(f"the labels go up to {labels.max()} but the model knows {model.num_classes} classes "
                          f"(0..{model.num_classes - 1}); evaluate on data from the same label set")
    was_training = model.training
    model.eval()
    total_loss, predictions = 0.0, []
    first, end = (0, len(images)) if dist is None else dist.bounds(len(images))  # this rank's images
    try:
        with backend.no_grad():
            for start in range(first, end, batch_size):
                stop_if_requested()  # a signal during training: stop scoring within a batch
                x = scale_pixels(images[start:min(start + batch_size, end)], model.dtype)
                y = labels[start:min(start + batch_size, end)]
                logits = np.asarray(model(x), dtype=np.float64)
                log_probs = log_softmax(logits, axis=-1)
                total_loss -= float(np.take_along_axis(log_probs, y[:, None], axis=1).sum())
                predictions.append(logits.argmax(axis=1))
    finally:
        model.train(was_training)
    if dist is not None:
        total_loss = dist.sum(total_loss)
        predictions = [part for parts in dist.gather_all(predictions) for part in parts]
    predictions = np.concatenate(predictions)
    return Evaluation(loss=total_loss / len(labels), accuracy=float((predictions == labels).mean()),
                      count=len(labels), predictions=predictions,
                      confusion=confusion_matrix(labels, predictions, model.num_classes))
