"""Layer cases for ``backward(..., input_grad=False)`` (tests/nn/test_input_grad.py runs them on the
reference, tests/fast/test_input_grad.py on the compiled path): one layer, one forward and backward with
``input_grad`` True and False from the same seed (the same dropout masks), every result kept."""
from __future__ import annotations

import numpy as np

import rnnlab
from rnnlab import nn

N, L, H_IN, H = 4, 5, 3, 6
LENGTHS = np.array([5, 2, 4, 1])

# (mode, num_layers, bidirectional, lengths, dropout, batch_first, proj_size): every option, a few at a time
CASES = [
    ("RNN_TANH", 1, False, False, 0.0, False, 0),
    ("RNN_RELU", 2, True, True, 0.0, True, 0),
    ("RNN_TANH", 3, True, False, 0.4, False, 0),
    ("LSTM", 1, False, False, 0.0, True, 0),
    ("LSTM", 1, True, True, 0.0, False, 0),
    ("LSTM", 2, True, True, 0.3, True, 0),
    ("LSTM", 2, False, True, 0.0, False, 2),
    ("GRU", 1, False, True, 0.0, False, 0),
    ("GRU", 2, True, False, 0.5, True, 0),
    ("GRU", 3, False, True, 0.2, False, 0),
]


def case_id(case) -> str:
    mode, layers, bidirectional, lengths, dropout, batch_first, proj = case
    return (f"{mode}-{layers}l{'-bi' if bidirectional else ''}{'-len' if lengths else ''}"
            f"{f'-drop{dropout}' if dropout else ''}{'-bf' if batch_first else ''}{f'-proj{proj}' if proj else ''}")


def make_layer(case, dtype):
    mode, layers, bidirectional, _, dropout, batch_first, proj = case
    rnnlab.manual_seed(0)
    options = dict(num_layers=layers, bidirectional=bidirectional, dropout=dropout, batch_first=batch_first,
                   dtype=dtype)
    if mode.startswith("RNN"):
        return nn.RNN(H_IN, H, nonlinearity="relu" if mode == "RNN_RELU" else "tanh", **options)
    if mode == "LSTM":
        return nn.LSTM(H_IN, H, proj_size=proj, **options)
    return nn.GRU(H_IN, H, **options)


def run_case(case, dtype, input_grad: bool):
    """-> (grad_input, [grad of each initial state], {parameter name: grad}) of one forward + backward."""
    layer = make_layer(case, dtype)
    mode, layers, bidirectional, with_lengths, _, batch_first, proj = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, L, H_IN) if batch_first else (L, N, H_IN)).astype(dtype)
    states = layers * (2 if bidirectional else 1)
    h_size = proj or H
    h0 = rng.standard_normal((states, N, h_size)).astype(dtype)
    hx = (h0, rng.standard_normal((states, N, H)).astype(dtype)) if mode == "LSTM" else h0
    rnnlab.manual_seed(2)  # the dropout masks
    output, state = layer(x, hx, lengths=LENGTHS if with_lengths else None)
    grad_output = rng.standard_normal(output.shape).astype(dtype)
    grad_h_n = rng.standard_normal((states, N, h_size)).astype(dtype)
    grad_state = (grad_h_n, rng.standard_normal((states, N, H)).astype(dtype)) if mode == "LSTM" else grad_h_n
    grad_input, grad_initial = layer.backward(grad_output, grad_state, input_grad=input_grad)
    grad_initial = list(grad_initial) if mode == "LSTM" else [grad_initial]
    return grad_input, grad_initial, {name: p.grad.copy() for name, p in layer.named_parameters()}


def assert_same_except_input(with_input, without_input):
    """``input_grad=False`` returned None and every other gradient bit for bit as with the input's."""
    grad_input, grad_initial, grads = with_input
    skipped, skipped_initial, skipped_grads = without_input
    assert grad_input is not None and skipped is None
    assert len(grad_initial) == len(skipped_initial)
    for full, other in zip(grad_initial, skipped_initial):
        assert np.array_equal(full, other)
    assert grads.keys() == skipped_grads.keys()
    for name in grads:
        assert np.array_equal(grads[name], skipped_grads[name]), name
