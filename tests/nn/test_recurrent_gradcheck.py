"""Every recurrent layer and cell passes ``rnnlab.gradcheck`` (central finite differences, float64),
dropout active (p=0.3, training mode, masks repeated by the seed) included."""
from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab import nn

H_IN, H, L, N = 3, 4, 4, 3
TOL = 1e-6
ABS_NOISE = 5e-9  # central differences with eps=1e-6 carry ~1e-9 of round-off on O(1) losses


def assert_gradients_ok(report):
    """Each tensor passes on relative error, or (for gradients so small that finite-difference round-off
    dominates the relative error) on absolute error below the noise floor."""
    bad = [e.name for e in report.entries if e.max_error > TOL and e.max_abs_error > ABS_NOISE]
    assert not bad, f"gradcheck failed for {bad}\n{report}"


def make_layer(kind, **kwargs):
    if kind.startswith("rnn"):
        return nn.RNN(H_IN, H, nonlinearity=kind[4:], dtype=np.float64, **kwargs)
    if kind == "lstm":
        return nn.LSTM(H_IN, H, dtype=np.float64, **kwargs)
    if kind == "lstm_proj":
        return nn.LSTM(H_IN, H, proj_size=2, dtype=np.float64, **kwargs)
    return nn.GRU(H_IN, H, dtype=np.float64, **kwargs)


CONFIGS = {
    "plain": dict(layer={}, batched=True, give_state=True, lengths=None),
    "stack_bidir_dropout_lengths": dict(layer=dict(num_layers=2, bidirectional=True, batch_first=True, dropout=0.3),
                                        batched=True, give_state=True, lengths=[3, 4, 1]),
    "stack_dropout_no_state": dict(layer=dict(num_layers=2, dropout=0.3), batched=True, give_state=False, lengths=None),
    "unbatched_no_bias_bidir": dict(layer=dict(bias=False, bidirectional=True), batched=False, give_state=True,
                                    lengths=None),
}


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"])
def test_layer_gradcheck(kind, config):
    spec = CONFIGS[config]
    rnnlab.manual_seed(0)
    layer = make_layer(kind, **spec["layer"]).train()
    rng = np.random.default_rng(1)
    directions = 2 if layer.bidirectional else 1
    out_size = layer.proj_size or H
    lead = (N,) if spec["batched"] else ()
    x_shape = ((N, L, H_IN) if layer.batch_first else (L, N, H_IN)) if spec["batched"] else (L, H_IN)
    x = rng.standard_normal(x_shape)
    inputs = [x]
    if spec["give_state"]:
        h0 = rng.standard_normal((directions * layer.num_layers, *lead, out_size))
        if kind.startswith("lstm"):
            c0 = rng.standard_normal((directions * layer.num_layers, *lead, H))
            inputs.append((h0, c0))
        else:
            inputs.append(h0)
    forward_kwargs = {"lengths": spec["lengths"]} if spec["lengths"] else None
    # A few elements per tensor keep this fast; every tensor (input, state, each parameter) is checked.
    report = rnnlab.gradcheck(layer, *inputs, forward_kwargs=forward_kwargs, max_checks=24)
    expected = {name for name, _ in layer.named_parameters()} | {"input[0]"}
    assert expected <= set(report.errors)
    assert_gradients_ok(report)


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("batched,bias", [(True, True), (False, False)])
def test_cell_gradcheck(kind, batched, bias):
    rnnlab.manual_seed(0)
    if kind.startswith("rnn"):
        cell = nn.RNNCell(H_IN, H, bias, kind[4:], dtype=np.float64)
    elif kind == "lstm":
        cell = nn.LSTMCell(H_IN, H, bias, dtype=np.float64)
    else:
        cell = nn.GRUCell(H_IN, H, bias, dtype=np.float64)
    rng = np.random.default_rng(2)
    lead = (N,) if batched else ()
    x, h = rng.standard_normal((*lead, H_IN)), rng.standard_normal((*lead, H))
    state = (h, rng.standard_normal((*lead, H))) if kind == "lstm" else h
    report = rnnlab.gradcheck(cell, x, state)
    assert "input[1][1]" in report.errors if kind == "lstm" else "input[1]" in report.errors
    assert_gradients_ok(report)
    cell.clear_cache()


def test_gradcheck_catches_a_wrong_backward(monkeypatch):
    """The check can fail: a layer whose backward drops the hidden-to-hidden path is caught."""
    from rnnlab.nn import recurrent_math

    def broken_backward(grad_output, grad_h_n, cache, input_grad=True, _correct=recurrent_math.rnn_backward):
        grad_x, grad_h0, grads = _correct(grad_output, grad_h_n, cache, input_grad)
        grads["weight_hh"] = grads["weight_hh"] * 0.5
        return grad_x, grad_h0, grads

    monkeypatch.setattr(recurrent_math, "rnn_backward", broken_backward)
    rnnlab.manual_seed(0)
    layer = make_layer("rnn_tanh")
    report = rnnlab.gradcheck(layer, np.random.default_rng(0).standard_normal((L, N, H_IN)), max_checks=6)
    with pytest.raises(AssertionError):
        assert_gradients_ok(report)
    assert report.errors["weight_hh_l0"] > 0.1
