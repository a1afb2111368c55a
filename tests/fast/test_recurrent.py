"""The compiled cell math (rnnlab.fast.recurrent) gives the reference's (rnnlab.nn.recurrent_math) numbers
to float32 rounding, and the compiled path is what ran (rnnlab.fast.calls).

Cell level: every cell and option, forward values, final states and every gradient (W_ih, b_ih, W_hh,
b_hh, W_hr, the input and the initial state), with and without variable lengths. Layer level: the same
layers run on both paths, through bidirectional stacks with dropout, lengths and projections; and the
one-step cells. Nothing here depends on timing.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import require_optional  # noqa: E402  (numba: skip locally, fail under CI)

require_optional("numba")

import rnnlab  # noqa: E402
from rnnlab import nn  # noqa: E402
from rnnlab import fast  # noqa: E402
from rnnlab.fast import recurrent as compiled  # noqa: E402
from rnnlab.fast.activations import tanh_array  # noqa: E402
from rnnlab.nn import recurrent_math  # noqa: E402
from compiled_paths import compiled_path, on_path, reference_path  # noqa: E402

TOLERANCE = dict(rtol=1e-4, atol=2e-6)  # float32: a few ulp per step, accumulated over a sequence
LENGTHS = np.array([7, 3, 0, 5, 1, 7])


def random(rng, *shape):
    return (rng.standard_normal(shape) * 0.6).astype(np.float32)


def assert_same(reference, fast, what):
    if reference is None:
        assert fast is None, what
        return
    assert fast.shape == reference.shape, what
    np.testing.assert_allclose(fast, reference, err_msg=what, **TOLERANCE)


# ------------------------------------------------------------------------------------------------
# kernel level
# ------------------------------------------------------------------------------------------------
def run_cell(module, cell, arrays, lengths):
    """One forward and one backward of `cell` with `module`'s functions -> dict of named results
    (on the compiled path, asserting that the compiled functions ran)."""
    name = cell.split("_")[0]
    path = compiled_path(f"{name}_forward", f"{name}_backward") if module is compiled else reference_path()
    with path:
        return _run_cell(module, cell, arrays, lengths)


def _run_cell(module, cell, arrays, lengths):
    arrays = dict(arrays, x=arrays["x"].copy())
    weights = (arrays["weight_ih"], arrays["bias_ih"], arrays["weight_hh"], arrays["bias_hh"])
    if cell.startswith("rnn"):
        output, h_n, cache = module.rnn_forward(arrays["x"], arrays["h0"], *weights, cell.split("_")[1],
                                                lengths=lengths)
        grad_x, grad_h0, grads = module.rnn_backward(arrays["grad_output"], arrays["grad_h_n"], cache)
        return dict(output=output, h_n=h_n, grad_x=grad_x, grad_h0=grad_h0, **grads)
    if cell.startswith("lstm"):
        output, h_n, c_n, cache = module.lstm_forward(arrays["x"], arrays["h0"], arrays["c0"], *weights,
                                                      arrays["weight_hr"], lengths=lengths)
        grad_x, grad_h0, grad_c0, grads = module.lstm_backward(arrays["grad_output"], arrays["grad_h_n"],
                                                               arrays["grad_c_n"], cache)
        return dict(output=output, h_n=h_n, c_n=c_n, grad_x=grad_x, grad_h0=grad_h0, grad_c0=grad_c0, **grads)
    output, h_n, cache = module.gru_forward(arrays["x"], arrays["h0"], *weights, lengths=lengths)
    grad_x, grad_h0, grads = module.gru_backward(arrays["grad_output"], arrays["grad_h_n"], cache)
    return dict(output=output, h_n=h_n, grad_x=grad_x, grad_h0=grad_h0, **grads)


def cell_arrays(cell, seed, steps=7, batch=6, hidden=5, proj=3, bias=True, grads_given=True, input_size=4,
                projected=False):
    """Random arguments of a cell's functions; with ``projected`` the input is layer 0's projection
    (``weight_ih`` None)."""
    rng = np.random.default_rng(seed)
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell.split("_")[0]] * hidden
    out_size = proj if cell == "lstm_proj" else hidden
    return {
        "x": random(rng, steps, batch, gates if projected else input_size),
        "weight_ih": None if projected else random(rng, gates, input_size),
        "bias_ih": random(rng, gates) if bias and not projected else None,
        "h0": random(rng, batch, out_size),
        "c0": random(rng, batch, hidden),
        "weight_hh": random(rng, gates, out_size),
        "bias_hh": random(rng, gates) if bias else None,
        "weight_hr": random(rng, proj, hidden) if cell == "lstm_proj" else None,
        "grad_output": random(rng, steps, batch, out_size) if grads_given else None,
        "grad_h_n": random(rng, batch, out_size) if grads_given else None,
        "grad_c_n": random(rng, batch, hidden) if grads_given else None,
    }


CELLS = ["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"]


def assert_all_same(expected, got, what):
    assert expected.keys() == got.keys()
    for name in expected:
        assert_same(expected[name], got[name], f"{what} {name}")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_cells_match_reference(cell, lengths, bias):
    arrays = cell_arrays(cell, seed=len(cell) + 10 * bias, bias=bias)
    expected = run_cell(recurrent_math, cell, arrays, lengths)
    got = run_cell(compiled, cell, arrays, lengths)
    assert_all_same(expected, got, cell)
    assert got["weight_ih"] is not None and (got["bias_ih"] is not None) == bias
    if lengths is not None:  # padded steps output exactly 0 and pass no gradient into the input
        padded = np.arange(7)[:, None] >= lengths[None, :]
        assert np.all(got["output"][padded] == 0)
        assert np.all(got["grad_x"][padded] == 0)


@pytest.mark.parametrize("cell", CELLS)
def test_projected_input_matches_reference(cell):
    """weight_ih=None: x is layer 0's projection, grad_x its gradient, no W_ih/b_ih gradients."""
    arrays = cell_arrays(cell, seed=2, projected=True)
    expected = run_cell(recurrent_math, cell, arrays, LENGTHS)
    got = run_cell(compiled, cell, arrays, LENGTHS)
    assert_all_same(expected, got, cell)
    assert got["weight_ih"] is None and got["bias_ih"] is None and got["grad_x"].shape == arrays["x"].shape


@pytest.mark.parametrize("cell", CELLS)
def test_cells_without_incoming_gradients(cell):
    """grad_output / grad_h_n / grad_c_n may each be None (meaning zero)."""
    arrays = cell_arrays(cell, seed=3, grads_given=False)
    assert_all_same(run_cell(recurrent_math, cell, arrays, LENGTHS), run_cell(compiled, cell, arrays, LENGTHS), cell)


@pytest.mark.parametrize("cell", CELLS)
def test_long_sequence_uses_transposed_copy_and_matches(cell):
    """Enough steps that W_hh.T is copied contiguous; errors must not grow along the sequence."""
    arrays = cell_arrays(cell, seed=5, steps=40, batch=3, hidden=16, proj=8)
    # A contracting recurrence (gain < 1), as trained networks have: a chaotic one would amplify
    # any rounding difference, the reference's own under a different BLAS included.
    arrays["weight_hh"] /= np.sqrt(arrays["weight_hh"].shape[1])
    assert_all_same(run_cell(recurrent_math, cell, arrays, None), run_cell(compiled, cell, arrays, None), cell)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_large_weights_transposed_in_blocks_match(cell):
    """W_hh with >= 65536 entries is transposed 32 rows at a time (and with a row count not a multiple of 32)."""
    hidden = {"rnn_tanh": 300, "gru": 150, "lstm": 130}[cell]
    arrays = cell_arrays(cell, seed=8, steps=9, batch=2, hidden=hidden)
    arrays["weight_hh"] /= np.sqrt(arrays["weight_hh"].shape[1])
    assert arrays["weight_hh"].size >= 65536 and arrays["weight_hh"].shape[0] % 32 != 0
    assert_all_same(run_cell(recurrent_math, cell, arrays, None), run_cell(compiled, cell, arrays, None), cell)


def forward_only(module, cell, arrays, lengths):
    weights = (arrays["weight_ih"], arrays["bias_ih"], arrays["weight_hh"], arrays["bias_hh"])
    x = arrays["x"].copy()
    if cell.startswith("lstm"):
        return module.lstm_forward(x, arrays["h0"], arrays["c0"], *weights, arrays["weight_hr"], lengths=lengths)
    if cell == "gru":
        return module.gru_forward(x, arrays["h0"], *weights, lengths=lengths)
    return module.rnn_forward(x, arrays["h0"], *weights, cell.split("_")[1], lengths=lengths)


@pytest.mark.parametrize("cell", CELLS)
def test_no_grad_keeps_no_cache_and_same_output(cell):
    arrays = cell_arrays(cell, seed=7)
    name = cell.split("_")[0]
    with rnnlab.no_grad():
        with reference_path():
            reference = forward_only(recurrent_math, cell, arrays, LENGTHS)
        with compiled_path(f"{name}_forward"):
            got = forward_only(compiled, cell, arrays, LENGTHS)
    assert got[-1] is None and reference[-1] is None
    for expected, result in zip(reference[:-1], got[:-1]):
        assert_same(expected, result, cell)


@pytest.mark.parametrize("lengths", [None, np.array([1, 0, 1, 0, 1, 1])], ids=["full", "lengths"])
def test_one_step_generation_path_matches(lengths):
    """L = 1 without a cache (sampling) takes a shorter path: same numbers, state kept where length is 0."""
    arrays = cell_arrays("lstm", seed=12, steps=1)
    with rnnlab.no_grad():
        expected = forward_only(recurrent_math, "lstm", arrays, lengths)
        with compiled_path("lstm_forward"):
            got = forward_only(compiled, "lstm", arrays, lengths)
    assert got[3] is None
    for name, a, b in zip(("output", "h_n", "c_n"), expected[:3], got[:3]):
        assert_same(a, b, name)


def test_read_only_projection_is_copied_not_written():
    arrays = cell_arrays("lstm", seed=9, projected=True)
    x_proj = arrays["x"]
    x_proj.flags.writeable = False
    expected = recurrent_math.lstm_forward(x_proj, arrays["h0"], arrays["c0"], None, None, arrays["weight_hh"], None)
    got = compiled.lstm_forward(x_proj, arrays["h0"], arrays["c0"], None, None, arrays["weight_hh"], None)
    assert_same(expected[0], got[0], "output")
    np.testing.assert_array_equal(x_proj, cell_arrays("lstm", seed=9, projected=True)["x"])


@pytest.mark.parametrize("module", [recurrent_math, compiled], ids=["reference", "compiled"])
def test_output_cannot_be_modified_in_place_before_backward(module):
    """The output is a view of the states the backward reads: in-place writes raise instead of
    silently changing the gradients (PyTorch raises for an in-place change of a saved tensor too)."""
    arrays = cell_arrays("lstm", seed=4)
    output, _, _, cache = forward_only(module, "lstm", arrays, None)
    with pytest.raises(ValueError, match="read-only"):
        output *= 2
    with rnnlab.no_grad():
        free, _, _, _ = forward_only(module, "lstm", arrays, None)
    free *= 2  # no backward to protect


def test_caches_are_the_same_named_types_on_both_paths():
    for cell, cache_type in (("rnn_tanh", recurrent_math.RNNCache), ("lstm_proj", recurrent_math.LSTMCache),
                             ("gru", recurrent_math.GRUCache)):
        arrays = cell_arrays(cell, seed=1)
        for module in (recurrent_math, compiled):
            cache = forward_only(module, cell, arrays, LENGTHS)[-1]
            assert type(cache) is cache_type, (cell, module.__name__)


def test_compiled_functions_refuse_float64():
    """float64 runs the reference (the layers choose it); the compiled functions do not silently fall back."""
    rng = np.random.default_rng(0)
    x, h0, c0 = rng.standard_normal((4, 2, 12)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    with pytest.raises(TypeError, match="float32"):
        compiled.lstm_forward(x, h0, c0, None, None, rng.standard_normal((12, 3)), None)


def test_unknown_nonlinearity_is_rejected_like_the_reference():
    arrays = cell_arrays("rnn_tanh", seed=0)
    for module in (recurrent_math, compiled):
        with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
            module.rnn_forward(arrays["x"], arrays["h0"], None, None, arrays["weight_hh"], None, "sigmoid")


def test_kernel_tanh_is_within_a_few_ulp_of_numpy():
    grid = np.concatenate([np.linspace(-12, 12, 200_001, dtype=np.float32),
                           np.array([0.0, -0.0, 1e-30, 3.9e-4, 4.1e-4, 7.9, 50.0, -50.0], dtype=np.float32)])
    got = np.empty_like(grid)
    tanh_array(grid, got)
    exact = np.tanh(grid.astype(np.float64))
    assert np.max(np.abs(got - exact)) < 4e-7
    assert np.all(np.abs(got) <= 1.0)
    # odd, and exact where float32 tanh is x itself
    np.testing.assert_array_equal(got[grid == 1e-30], np.float32(1e-30))
    mirrored = np.empty_like(grid)
    tanh_array(-grid, mirrored)
    np.testing.assert_array_equal(mirrored, -got)


@pytest.mark.parametrize("cell", CELLS)
def test_long_sequences_reuse_the_forwards_transposed_weight(cell, monkeypatch):
    """L >= TRANSPOSE_MIN_STEPS with the transposed backward product: the forward's contiguous W_hh.T copy
    is the one the backward multiplies by."""
    monkeypatch.setattr(compiled, "TRANSPOSED_BACKWARD_PRODUCT", True)
    arrays = cell_arrays(cell, seed=3, steps=compiled.TRANSPOSE_MIN_STEPS + 5)
    expected = run_cell(recurrent_math, cell, arrays, None)
    used = []
    original = compiled.BackwardProduct.__init__

    def spy(self, weight, num_steps, batch, weight_t=None):
        original(self, weight, num_steps, batch, weight_t)
        used.append(self.weight_t is weight_t and weight_t is not None)

    monkeypatch.setattr(compiled.BackwardProduct, "__init__", spy)
    got = run_cell(compiled, cell, arrays, None)
    assert used == [True]
    assert_all_same(expected, got, cell)


# ------------------------------------------------------------------------------------------------
# layer level: the compiled path behind real layers and cells
# ------------------------------------------------------------------------------------------------
def run_layer(path, make_layer, x, lengths, seed):
    """Build the layer with a fixed seed, run forward (dropout draws reseeded) and backward on `path`."""
    rnnlab.manual_seed(seed)
    layer = make_layer()
    layer.train()
    name = layer.mode.split("_")[0].lower()
    with on_path(path, f"{name}_forward", f"{name}_backward"):
        rnnlab.manual_seed(seed + 1)
        output, state = layer(x, lengths=lengths)
        rng = np.random.default_rng(seed + 2)
        grad_output = rng.standard_normal(output.shape).astype(np.float32)
        states = state if isinstance(state, tuple) else (state,)
        grad_states = tuple(rng.standard_normal(s.shape).astype(np.float32) for s in states)
        grad_x, grad_start = layer.backward(grad_output, grad_states if isinstance(state, tuple) else grad_states[0])
    results = {"output": output, "grad_x": grad_x}
    for k, s in enumerate(states):
        results[f"state{k}"] = s
    grad_starts = grad_start if isinstance(grad_start, tuple) else (grad_start,)
    for k, g in enumerate(grad_starts):
        results[f"grad_state{k}"] = g
    for name, parameter in layer.named_parameters():
        results[f"grad {name}"] = parameter.grad
    return results


LAYERS = {
    "rnn_tanh": lambda: nn.RNN(4, 6, num_layers=2, bidirectional=True, dropout=0.3, batch_first=True),
    "rnn_relu": lambda: nn.RNN(4, 6, num_layers=2, nonlinearity="relu", bidirectional=True, dropout=0.3,
                               batch_first=True),
    "lstm": lambda: nn.LSTM(4, 6, num_layers=2, bidirectional=True, dropout=0.3, batch_first=True),
    "lstm_proj": lambda: nn.LSTM(4, 6, num_layers=2, bidirectional=True, dropout=0.3, proj_size=3,
                                 batch_first=True),
    "gru": lambda: nn.GRU(4, 6, num_layers=2, bidirectional=True, dropout=0.3, batch_first=True),
    "gru_unidirectional_nobias": lambda: nn.GRU(4, 6, num_layers=3, bias=False, batch_first=True),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("lengths", [None, [6, 2, 4, 1, 6]], ids=["full", "lengths"])
def test_layers_match_reference(name, lengths):
    x = np.random.default_rng(11).standard_normal((5, 6, 4)).astype(np.float32)  # (N, L, H_in)
    expected = run_layer("reference", LAYERS[name], x, lengths, seed=21)
    got = run_layer("compiled", LAYERS[name], x, lengths, seed=21)
    assert_all_same(expected, got, name)


@pytest.mark.parametrize("make_cell", [lambda: nn.RNNCell(3, 5), lambda: nn.RNNCell(3, 5, nonlinearity="relu"),
                                       lambda: nn.LSTMCell(3, 5), lambda: nn.GRUCell(3, 5, bias=False)],
                         ids=["rnn_tanh", "rnn_relu", "lstm", "gru_nobias"])
def test_cells_loop_matches_reference(make_cell):
    """A Python loop of cell steps, then the backward in reverse order, on both paths (float32)."""
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4, 2, 3)).astype(np.float32)
    grads_h = rng.standard_normal((4, 2, 5)).astype(np.float32)
    results = []
    for path in ("reference", "compiled"):
        rnnlab.manual_seed(0)
        cell = make_cell()
        name = type(cell).__name__[:-4].lower()
        with on_path(path, f"{name}_forward", f"{name}_backward"):
            state, hs = None, []
            for x_t in xs:
                state = cell(x_t, state)
                hs.append(state[0] if isinstance(state, tuple) else state)
            grad_h, grad_c, grad_xs = np.zeros((2, 5), np.float32), None, []
            for t in reversed(range(4)):
                if isinstance(state, tuple):
                    grad_x, (grad_h, grad_c) = cell.backward(grad_h + grads_h[t], grad_c)
                else:
                    grad_x, grad_h = cell.backward(grad_h + grads_h[t])
                grad_xs.append(grad_x)
        results.append({"h": np.stack(hs), "grad_x": np.stack(grad_xs), "grad_h0": grad_h,
                        **{n: p.grad for n, p in cell.named_parameters()}})
    assert_all_same(*results, "cell")


def test_float64_layers_run_the_reference():
    before = sum(fast.calls.values())
    with fast.use(True):
        layer = nn.LSTM(3, 4, dtype=np.float64)
        out, _ = layer(np.ones((2, 1, 3)))
        layer.backward(np.ones_like(out))
    assert sum(fast.calls.values()) == before


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("steps", [3, compiled.TRANSPOSE_MIN_STEPS + 2], ids=["short", "long"])
@pytest.mark.parametrize("grads_given", [True, False], ids=["grads", "no_grads"])
@pytest.mark.parametrize("transposed_product", [False, True], ids=["direct", "transposed"])
def test_compiled_time_loops_equal_the_python_loops_bit_for_bit(cell, steps, grads_given, transposed_product,
                                                                monkeypatch):
    """One compiled call per time loop (NumPy's sgemm called from compiled code) is the Python loop's
    every step, the same products and kernels: identical numbers."""
    if not compiled.COMPILED_TIME_LOOPS:
        pytest.skip("compiled code cannot call this NumPy's BLAS")
    monkeypatch.setattr(compiled, "TRANSPOSED_BACKWARD_PRODUCT", transposed_product)
    arrays = cell_arrays(cell, seed=6, steps=steps, grads_given=grads_given)
    lengths = np.array([steps, 2, 1, steps, 3, 2])
    before = fast.calls["time_loop"]
    looped = run_cell(compiled, cell, arrays, lengths)
    assert fast.calls["time_loop"] == before + (0 if cell == "lstm_proj" else 2)  # projections step in Python
    with rnnlab.no_grad():
        looped_no_grad = forward_only(compiled, cell, arrays, None)
    monkeypatch.setattr(compiled, "COMPILED_TIME_LOOPS", False)
    stepped = run_cell(compiled, cell, arrays, lengths)
    with rnnlab.no_grad():
        stepped_no_grad = forward_only(compiled, cell, arrays, None)
    assert looped.keys() == stepped.keys()
    for name in looped:
        if looped[name] is None:
            assert stepped[name] is None
        else:
            np.testing.assert_array_equal(looped[name], stepped[name], err_msg=name)
    for a, b in zip(looped_no_grad[:-1], stepped_no_grad[:-1]):
        np.testing.assert_array_equal(a, b)
