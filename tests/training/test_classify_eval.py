"""Scoring a classifier: loss and accuracy against a direct computation, the confusion matrix and its table."""
import numpy as np
import pytest

import rnnlab
from helpers import spike_images
from rnnlab.data.images import ImageData
from rnnlab.errors import RnnlabError
from rnnlab.training.classify import build_model
from rnnlab.training.classify_eval import confusion_matrix, evaluate, format_confusion_matrix
from rnnlab.training.config import ClassifyConfig


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
