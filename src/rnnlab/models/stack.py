"""The recurrent stack by cell name, and the state arithmetic the models share.

>>> from rnnlab.models.stack import recurrent_layer
>>> recurrent_layer("gru", 4, 8, num_layers=2)
GRU(4, 8, num_layers=2)
"""
from __future__ import annotations

from ..nn import GRU, LSTM, RNN

CELLS = ("rnn", "rnn_relu", "lstm", "gru")


def check_cell(cell: str) -> str:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {cell!r}")
    return cell


def recurrent_layer(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, **options):
    """``RNN`` (``'rnn'`` tanh, ``'rnn_relu'``), ``LSTM`` or ``GRU`` with PyTorch's arguments (``options``:
    ``bidirectional``, ``dropout``, ``batch_first``, ``dtype``)."""
    check_cell(cell)
    if cell == "lstm":
        return LSTM(input_size, hidden_size, num_layers, **options)
    if cell == "gru":
        return GRU(input_size, hidden_size, num_layers, **options)
    return RNN(input_size, hidden_size, num_layers, nonlinearity="relu" if cell == "rnn_relu" else "tanh", **options)


def state_parts(state) -> list:
    """A layer's state as a list: ``[h]``, or ``[h, c]`` for an LSTM."""
    return list(state) if isinstance(state, tuple) else [state]


def state_from_parts(parts: list, is_lstm: bool):
    return (parts[0], parts[1]) if is_lstm else parts[0]
