"""Run settings: a nonsensical value is one line naming the flag, the value and what is allowed."""
import pytest

from rnnlab.errors import RnnlabError
from rnnlab.training.config import MODELS, ClassifyConfig
from rnnlab.models import charrnn, classifier
from rnnlab.models.stack import CELLS


def test_models_are_the_cells_defined_once_in_models():
    assert MODELS is CELLS is charrnn.CELLS is classifier.CELLS


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
