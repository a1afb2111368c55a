"""Issue 8: a new recurrent cell is one file plus ONE registration line.

This file is that file. It writes a toy cell (a gated Elman unit, two gates) with its own forward and
backward, registers it with one ``register_cell`` call, and shows that :class:`rnnlab.nn.RNNBase` runs it
(stacked, bidirectional, ``lengths``, dropout, ``forward_projected``) and passes ``rnnlab.gradcheck`` in
float64, with nothing else in rnnlab knowing its name. A second registration (LSTM's reference math
under a new name) shows a two-state cell, and that a cell without a compiled twin runs the reference
when the compiled path is on. Both are unregistered in teardown.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from compiled_paths import compiled_path

import rnnlab
from rnnlab import backend, fast, nn
from rnnlab.nn import recurrent, recurrent_math
from rnnlab.nn.recurrent_math import Cell, register_cell, unregister_cell

TOY = "GATED_TANH"
LSTM_AGAIN = "LSTM_AGAIN"
H_IN, H, L, N = 3, 4, 5, 3


def assert_gradients_ok(report, tol=1e-6, abs_noise=5e-9):
    """As in test_recurrent_gradcheck: relative error, or absolute error below finite differences' noise."""
    bad = [e.name for e in report.entries if e.max_error > tol and e.max_abs_error > abs_noise]
    assert not bad, f"gradcheck failed for {bad}\n{report}"


# ------------------------------------------------------------------------------------------------
# the toy cell:  a, u = split(x_t W_ih.T + b_ih + h_{t-1} W_hh.T + b_hh)   (G = 2H)
#                n = tanh(a);  u = sigmoid(u);  h_t = u * n + (1 - u) * h_{t-1}
# ------------------------------------------------------------------------------------------------
class GatedCache(NamedTuple):
    x: Any             # (L, N, H_in) or the caller's projection
    weight_ih: Any     # (2H, H_in) or None
    states: Any        # (L+1, N, H)
    weight_hh: Any     # (2H, H)
    has_bias: bool
    gates: Any         # (L, N, 2H) activated n, u
    active: Any        # (L, N) bool or None


def gated_forward(x, state, weights, lengths):
    """x (L,N,H_in), state (h0 (N,H),) -> output (L,N,H), (h_n,), GatedCache"""
    x_proj = recurrent_math.project_input(x, weights["weight_ih"], weights["bias_ih"])
    num_steps, batch, two_hidden = x_proj.shape
    hidden = two_hidden // 2
    active = recurrent_math.step_mask(lengths, num_steps)
    states = np.empty((num_steps + 1, batch, hidden), dtype=x_proj.dtype)
    states[0] = state[0]
    gates = np.empty_like(x_proj)
    for t in range(num_steps):
        pre = x_proj[t] + states[t] @ weights["weight_hh"].T
        if weights["bias_hh"] is not None:
            pre = pre + weights["bias_hh"]
        n, u = np.tanh(pre[:, :hidden]), 1 / (1 + np.exp(-pre[:, hidden:]))
        gates[t] = np.concatenate([n, u], axis=1)
        h_new = u * n + (1 - u) * states[t]
        states[t + 1] = h_new if active is None else np.where(active[t][:, None], h_new, states[t])
    cache = None
    if backend.is_grad_enabled():
        cache = GatedCache(x, weights["weight_ih"], states, weights["weight_hh"], weights["bias_hh"] is not None,
                           gates, active)
    return recurrent_math.layer_output(states, active), (states[num_steps].copy(),), cache


def gated_backward(grad_output, grad_state, cache: GatedCache):
    """grad_output (L,N,H) or None, (grad_h_n,) -> grad_x, (grad_h0,), {"weight_ih", ..., "bias_hh"}"""
    recurrent_math.check_cache(cache, "gated_backward")
    states, gates = cache.states, cache.gates
    num_steps, batch, two_hidden = gates.shape
    hidden = two_hidden // 2
    mask = None if cache.active is None else cache.active[:, :, None].astype(gates.dtype)
    grad_h = np.zeros((batch, hidden), dtype=gates.dtype) if grad_state[0] is None else grad_state[0]
    grad_pre_all = np.empty_like(gates)  # the gradient of the pre-activation = of x_proj
    for t in reversed(range(num_steps)):
        grad_h_new = grad_h if grad_output is None else grad_h + grad_output[t]
        if mask is not None:
            grad_h_new = mask[t] * grad_h_new
        n, u = gates[t, :, :hidden], gates[t, :, hidden:]
        grad_pre_all[t, :, :hidden] = grad_h_new * u * (1 - n * n)
        grad_pre_all[t, :, hidden:] = grad_h_new * (n - states[t]) * u * (1 - u)
        grad_h_prev = grad_pre_all[t] @ cache.weight_hh + grad_h_new * (1 - u)
        if mask is not None:
            grad_h_prev = grad_h_prev + (1 - mask[t]) * grad_h
        grad_h = grad_h_prev
    grad_x, grads = recurrent_math.parameter_grads(grad_pre_all, cache)
    return grad_x, (grad_h,), grads


@pytest.fixture
def toy_cell():
    assert TOY not in recurrent_math.CELLS
    with pytest.raises(ValueError, match="Unrecognized RNN mode: GATED_TANH"):
        nn.RNNBase(TOY, H_IN, H)
    register_cell(TOY, Cell(gates=2, state_names=("h",), forward=gated_forward, backward=gated_backward))  # the line
    yield TOY
    unregister_cell(TOY)


@pytest.fixture
def lstm_again():
    lstm = recurrent_math.CELLS["LSTM"]
    register_cell(LSTM_AGAIN, Cell(4, ("h", "c"), lstm.forward, lstm.backward))
    yield LSTM_AGAIN
    unregister_cell(LSTM_AGAIN)


def toy_layer(**options):
    rnnlab.manual_seed(0)
    return nn.RNNBase(TOY, H_IN, H, dtype=np.float64, **options)


# ------------------------------------------------------------------------------------------------
# the toy cell behind RNNBase
# ------------------------------------------------------------------------------------------------
def test_the_registered_cell_gets_pytorchs_parameters(toy_cell):
    layer = toy_layer(num_layers=2, bidirectional=True)
    shapes = dict((name, p.shape) for name, p in layer.named_parameters())
    assert shapes["weight_ih_l0"] == (2 * H, H_IN) and shapes["weight_hh_l0"] == (2 * H, H)
    assert shapes["weight_ih_l1_reverse"] == (2 * H, 2 * H) and shapes["bias_hh_l1_reverse"] == (2 * H,)
    assert len(shapes) == 16 and layer.mode == TOY
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        nn.RNNBase(TOY, H_IN, H, proj_size=2)


def test_the_layer_runs_the_cells_own_functions(toy_cell):
    """One layer, one direction: the layer's output and h_n are the toy forward's on its parameters;
    with lengths, outputs past a sequence's end are 0 and h_n is the state at its own last step."""
    layer = toy_layer()
    rng = np.random.default_rng(0)
    x, h0 = rng.standard_normal((L, N, H_IN)), rng.standard_normal((1, N, H))
    lengths = np.array([5, 2, 3])
    output, h_n = layer(x, h0, lengths=lengths)
    weights = {name: getattr(layer, f"{name}_l0").data for name in ("weight_ih", "bias_ih", "weight_hh", "bias_hh")}
    weights["weight_hr"] = None
    expected_output, (expected_h_n,), _ = gated_forward(x, (h0[0],), weights, lengths)
    np.testing.assert_array_equal(output, expected_output)
    np.testing.assert_array_equal(h_n[0], expected_h_n)
    assert not output[2:, 1].any() and np.array_equal(h_n[0, 1], output[1, 1])
    grad_x, grad_h0 = layer.backward(np.ones_like(output), np.ones_like(h_n))
    assert grad_x.shape == x.shape and grad_h0.shape == h0.shape and not grad_x[2:, 1].any()
    assert all(p.grad is not None and np.abs(p.grad).sum() > 0 for p in layer.parameters())


@pytest.mark.parametrize("options,lengths", [
    ({}, None),
    (dict(num_layers=2, bidirectional=True, batch_first=True, dropout=0.3), [3, 5, 1]),
    (dict(bias=False), [2, 5, 4]),
])
def test_the_registered_cell_passes_gradcheck(toy_cell, options, lengths):
    layer = toy_layer(**options).train()
    rng = np.random.default_rng(1)
    directions = 2 if layer.bidirectional else 1
    x = rng.standard_normal((N, L, H_IN) if layer.batch_first else (L, N, H_IN))
    h0 = rng.standard_normal((directions * layer.num_layers, N, H))
    report = rnnlab.gradcheck(layer, x, h0, forward_kwargs={"lengths": lengths} if lengths else None, max_checks=24)
    assert {name for name, _ in layer.named_parameters()} | {"input[0]", "input[1]"} <= set(report.errors)
    assert_gradients_ok(report)


def test_gradcheck_catches_a_wrong_backward_of_the_registered_cell(toy_cell):
    """The proof can fail: the same cell with its hidden-to-hidden gradient halved is caught."""
    def broken_backward(grad_output, grad_state, cache):
        grad_x, grad_state0, grads = gated_backward(grad_output, grad_state, cache)
        grads["weight_hh"] = grads["weight_hh"] * 0.5
        return grad_x, grad_state0, grads
    unregister_cell(TOY)
    register_cell(TOY, Cell(2, ("h",), gated_forward, broken_backward))
    report = rnnlab.gradcheck(toy_layer(), np.random.default_rng(2).standard_normal((L, N, H_IN)), max_checks=8)
    assert report.errors["weight_hh_l0"] > 0.1


def test_forward_projected_takes_the_cells_gate_count(toy_cell):
    layer = toy_layer()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((L, N, H_IN))
    projection = x @ layer.weight_ih_l0.data.T + layer.bias_ih_l0.data
    np.testing.assert_allclose(layer.forward_projected(projection)[0], layer(x)[0], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"must be equal to 2 \* hidden_size. Expected 8, got 4"):
        layer.forward_projected(np.zeros((L, N, H)))


def test_a_cell_without_a_compiled_twin_runs_the_reference(toy_cell):
    """float32 with the compiled path on: RNNBase falls back to the cell's own functions, and no
    compiled entry point runs; the same layer's numbers equal the switch-off run's."""
    rnnlab.manual_seed(0)
    layer = nn.RNNBase(TOY, H_IN, H, dtype=np.float32)
    x = np.random.default_rng(4).standard_normal((L, N, H_IN)).astype(np.float32)
    with compiled_path():
        assert TOY not in fast.load("recurrent").TWINS and fast.load("recurrent").compiled_cell(TOY) is None
        before = sum(fast.calls.values())
        assert recurrent.cell_for(TOY, np.dtype(np.float32)) is recurrent_math.CELLS[TOY]
        output, h_n = layer(x)
        grad_x, _ = layer.backward(np.ones_like(output))
        assert sum(fast.calls.values()) == before
    with fast.use(False):
        np.testing.assert_array_equal(layer(x)[0], output)
        np.testing.assert_array_equal(layer.backward(np.ones_like(output))[0], grad_x)


def test_nothing_outside_the_registration_names_the_toy_cell(toy_cell):
    """The one line was all: no rnnlab source mentions the mode, and unregistering removes it."""
    source = Path(rnnlab.__file__).parent
    assert not [p for p in source.rglob("*.py") if TOY in p.read_text()]
    unregister_cell(TOY)
    with pytest.raises(ValueError, match="Unrecognized RNN mode"):
        nn.RNNBase(TOY, H_IN, H)


def test_a_mode_is_registered_once(toy_cell):
    with pytest.raises(ValueError, match="already registered"):
        register_cell(TOY, Cell(2, ("h",), gated_forward, gated_backward))


# ------------------------------------------------------------------------------------------------
# a two-state cell: LSTM's reference math under another name
# ------------------------------------------------------------------------------------------------
def test_a_two_state_cell_gets_tuple_states_and_equals_lstm(lstm_again):
    rnnlab.manual_seed(0)
    again = nn.RNNBase(LSTM_AGAIN, H_IN, H, num_layers=2, bidirectional=True, dtype=np.float64)
    rnnlab.manual_seed(0)
    lstm = nn.LSTM(H_IN, H, num_layers=2, bidirectional=True, dtype=np.float64)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((L, N, H_IN))
    state = (rng.standard_normal((4, N, H)), rng.standard_normal((4, N, H)))
    lengths = [5, 1, 3]
    ours, theirs = again(x, state, lengths=lengths), lstm(x, state, lengths=lengths)
    assert isinstance(ours[1], tuple) and len(ours[1]) == 2
    for a, b in zip((ours[0], *ours[1]), (theirs[0], *theirs[1])):
        np.testing.assert_array_equal(a, b)
    grad_state = (np.ones_like(state[0]), None)
    grad_ours, grad_theirs = again.backward(np.ones_like(ours[0]), grad_state), lstm.backward(
        np.ones_like(theirs[0]), grad_state)
    np.testing.assert_array_equal(grad_ours[0], grad_theirs[0])
    for a, b in zip(grad_ours[1], grad_theirs[1]):
        np.testing.assert_array_equal(a, b)
    for (name, p), (_, q) in zip(again.named_parameters(), lstm.named_parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=name)
    with pytest.raises(TypeError, match=r"LSTM_AGAIN.backward expects grad_state as a tuple \(grad_h_n, grad_c_n\)"):
        again.backward(None, state[0])
    with pytest.raises(TypeError, match=r"LSTM_AGAIN expects hx as a tuple \(h_0, c_0\)"):
        again(x, state[0])


def test_a_two_state_cell_passes_gradcheck(lstm_again):
    rnnlab.manual_seed(0)
    layer = nn.RNNBase(LSTM_AGAIN, H_IN, H, dtype=np.float64)
    rng = np.random.default_rng(6)
    state = (rng.standard_normal((1, N, H)), rng.standard_normal((1, N, H)))
    report = rnnlab.gradcheck(layer, rng.standard_normal((L, N, H_IN)), state, max_checks=16)
    assert {"input[1][0]", "input[1][1]", "weight_hh_l0"} <= set(report.errors)
    assert_gradients_ok(report)


# ------------------------------------------------------------------------------------------------
# the built-in modes keep their compiled twins
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,entry", [("RNN_TANH", "rnn"), ("RNN_RELU", "rnn"), ("LSTM", "lstm"), ("GRU", "gru")])
def test_the_builtin_modes_run_their_compiled_twins(mode, entry):
    rnnlab.manual_seed(0)
    layer = nn.RNNBase(mode, H_IN, H, dtype=np.float32)
    x = np.ones((L, N, H_IN), dtype=np.float32)
    with compiled_path(f"{entry}_forward", f"{entry}_backward"):
        cell = recurrent.cell_for(mode, np.dtype(np.float32))
        twin = fast.load("recurrent").TWINS[mode]
        assert (cell.forward, cell.backward) == twin and cell.forward is not recurrent_math.CELLS[mode].forward
        assert cell.gates == recurrent_math.CELLS[mode].gates
        assert recurrent.cell_for(mode, np.dtype(np.float32)) is cell  # built once, not once per forward
        assert cell.options == recurrent_math.CELLS[mode].options
        output, _ = layer(x)
        layer.backward(np.ones_like(output))
    assert recurrent.cell_for(mode, np.dtype(np.float64)) is recurrent_math.CELLS[mode]
