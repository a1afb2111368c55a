"""The fast kernels (recurrent_fast) give the reference's (recurrent_math) numbers to float32 rounding.

Kernel level: every cell and option, forward values, final states and every gradient, with and without
variable lengths. Layer level: the same layers run twice, once per implementation, through
bidirectional stacks with dropout, lengths and projections. Nothing here depends on timing.
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
from rnnlab.nn import fast_setup, recurrent, recurrent_fast, recurrent_math  # noqa: E402

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


@pytest.fixture
def reference_kernels():
    """Restore the layer's kernel choice after a test switches it."""
    previous = recurrent.get_kernels()
    yield
    recurrent.set_kernels(previous)


# ------------------------------------------------------------------------------------------------
# kernel level
# ------------------------------------------------------------------------------------------------
def run_cell(module, cell, arrays, lengths):
    """One forward and one backward of `cell` with `module`'s kernels -> dict of named results."""
    arrays = dict(arrays, x_proj=arrays["x_proj"].copy())  # the fast LSTM/GRU forward writes over x_proj
    if cell.startswith("rnn"):
        output, h_n, cache = module.rnn_forward(arrays["x_proj"], arrays["h0"], arrays["weight_hh"],
                                                arrays["bias_hh"], cell.split("_")[1], lengths=lengths)
        grad_x_proj, grad_h0, grads = module.rnn_backward(arrays["grad_output"], arrays["grad_h_n"], cache)
        return dict(output=output, h_n=h_n, grad_x_proj=grad_x_proj, grad_h0=grad_h0, **grads)
    if cell.startswith("lstm"):
        output, h_n, c_n, cache = module.lstm_forward(arrays["x_proj"], arrays["h0"], arrays["c0"],
                                                      arrays["weight_hh"], arrays["bias_hh"], arrays["weight_hr"],
                                                      lengths=lengths)
        grad_x_proj, grad_h0, grad_c0, grads = module.lstm_backward(arrays["grad_output"], arrays["grad_h_n"],
                                                                    arrays["grad_c_n"], cache)
        return dict(output=output, h_n=h_n, c_n=c_n, grad_x_proj=grad_x_proj, grad_h0=grad_h0, grad_c0=grad_c0,
                    **grads)
    output, h_n, cache = module.gru_forward(arrays["x_proj"], arrays["h0"], arrays["weight_hh"], arrays["bias_hh"],
                                            lengths=lengths)
    grad_x_proj, grad_h0, grads = module.gru_backward(arrays["grad_output"], arrays["grad_h_n"], cache)
    return dict(output=output, h_n=h_n, grad_x_proj=grad_x_proj, grad_h0=grad_h0, **grads)


def cell_arrays(cell, seed, steps=7, batch=6, hidden=5, proj=3, bias=True, grads_given=True):
    rng = np.random.default_rng(seed)
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell.split("_")[0]] * hidden
    out_size = proj if cell == "lstm_proj" else hidden
    return {
        "x_proj": random(rng, steps, batch, gates),
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


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_kernels_match_reference(cell, lengths, bias):
    arrays = cell_arrays(cell, seed=len(cell) + 10 * bias, bias=bias)
    expected = run_cell(recurrent_math, cell, arrays, lengths)
    got = run_cell(recurrent_fast, cell, arrays, lengths)
    assert expected.keys() == got.keys()
    for name in expected:
        assert_same(expected[name], got[name], f"{cell} {name}")
    if lengths is not None:  # padded steps output exactly 0 and pass no gradient into x_proj
        padded = np.arange(7)[:, None] >= lengths[None, :]
        assert np.all(got["output"][padded] == 0)
        assert np.all(got["grad_x_proj"][padded] == 0)


@pytest.mark.parametrize("cell", CELLS)
def test_kernels_without_incoming_gradients(cell):
    """grad_output / grad_h_n / grad_c_n may each be None (meaning zero)."""
    arrays = cell_arrays(cell, seed=3, grads_given=False)
    expected = run_cell(recurrent_math, cell, arrays, LENGTHS)
    got = run_cell(recurrent_fast, cell, arrays, LENGTHS)
    for name in expected:
        assert_same(expected[name], got[name], f"{cell} {name}")


@pytest.mark.parametrize("cell", CELLS)
def test_long_sequence_uses_transposed_copy_and_matches(cell):
    """Enough steps that W_hh.T is copied contiguous; errors must not grow along the sequence."""
    arrays = cell_arrays(cell, seed=5, steps=40, batch=3, hidden=16, proj=8)
    # A contracting recurrence (gain < 1), as trained networks have: a chaotic one would amplify
    # any rounding difference, the reference's own under a different BLAS included.
    arrays["weight_hh"] /= np.sqrt(arrays["weight_hh"].shape[1])
    expected = run_cell(recurrent_math, cell, arrays, None)
    got = run_cell(recurrent_fast, cell, arrays, None)
    for name in expected:
        assert_same(expected[name], got[name], f"{cell} {name}")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_large_weights_transposed_in_blocks_match(cell):
    """W_hh with >= 65536 entries is transposed 32 rows at a time (and with a row count not a multiple of 32)."""
    hidden = {"rnn_tanh": 300, "gru": 150, "lstm": 130}[cell]
    arrays = cell_arrays(cell, seed=8, steps=9, batch=2, hidden=hidden)
    arrays["weight_hh"] /= np.sqrt(arrays["weight_hh"].shape[1])
    assert arrays["weight_hh"].size >= 65536 and arrays["weight_hh"].shape[0] % 32 != 0
    expected = run_cell(recurrent_math, cell, arrays, None)
    got = run_cell(recurrent_fast, cell, arrays, None)
    for name in expected:
        assert_same(expected[name], got[name], f"{cell} {name}")


@pytest.mark.parametrize("cell", CELLS)
def test_no_grad_keeps_no_cache_and_same_output(cell):
    arrays = cell_arrays(cell, seed=7)
    x_proj = arrays["x_proj"]
    arrays["x_proj"] = x_proj.copy()  # for the fast path, which writes over it
    with rnnlab.no_grad():
        if cell.startswith("lstm"):
            fast = recurrent_fast.lstm_forward(arrays["x_proj"], arrays["h0"], arrays["c0"], arrays["weight_hh"],
                                               arrays["bias_hh"], arrays["weight_hr"], lengths=LENGTHS)
            reference = recurrent_math.lstm_forward(x_proj, arrays["h0"], arrays["c0"],
                                                    arrays["weight_hh"], arrays["bias_hh"], arrays["weight_hr"],
                                                    lengths=LENGTHS)
        elif cell == "gru":
            fast = recurrent_fast.gru_forward(arrays["x_proj"], arrays["h0"], arrays["weight_hh"], arrays["bias_hh"])
            reference = recurrent_math.gru_forward(x_proj, arrays["h0"], arrays["weight_hh"],
                                                   arrays["bias_hh"])
        else:
            nonlinearity = cell.split("_")[1]
            fast = recurrent_fast.rnn_forward(arrays["x_proj"], arrays["h0"], arrays["weight_hh"],
                                              arrays["bias_hh"], nonlinearity)
            reference = recurrent_math.rnn_forward(x_proj, arrays["h0"], arrays["weight_hh"],
                                                   arrays["bias_hh"], nonlinearity)
    assert fast[-1] is None
    for expected, got in zip(reference[:-1], fast[:-1]):
        assert_same(expected, got, cell)


@pytest.mark.parametrize("lengths", [None, np.array([1, 0, 1, 0, 1, 1])], ids=["full", "lengths"])
def test_one_step_generation_path_matches(lengths):
    """L = 1 without a cache (sampling) takes a shorter path: same numbers, state kept where length is 0."""
    arrays = cell_arrays("lstm", seed=12, steps=1)
    with rnnlab.no_grad():
        expected = recurrent_math.lstm_forward(arrays["x_proj"], arrays["h0"], arrays["c0"], arrays["weight_hh"],
                                               arrays["bias_hh"], lengths=lengths)
        got = recurrent_fast.lstm_forward(arrays["x_proj"].copy(), arrays["h0"], arrays["c0"], arrays["weight_hh"],
                                          arrays["bias_hh"], lengths=lengths)
    assert got[3] is None
    for name, a, b in zip(("output", "h_n", "c_n"), expected[:3], got[:3]):
        assert_same(a, b, name)


def test_read_only_x_proj_is_copied_not_written():
    arrays = cell_arrays("lstm", seed=9)
    x_proj = arrays["x_proj"]
    x_proj.flags.writeable = False
    expected = recurrent_math.lstm_forward(x_proj, arrays["h0"], arrays["c0"], arrays["weight_hh"], None)
    got = recurrent_fast.lstm_forward(x_proj, arrays["h0"], arrays["c0"], arrays["weight_hh"], None)
    assert_same(expected[0], got[0], "output")
    np.testing.assert_array_equal(x_proj, cell_arrays("lstm", seed=9)["x_proj"])


def test_output_cannot_be_modified_in_place_before_backward():
    """The output is a view of the states the backward reads: in-place writes raise instead of
    silently changing the gradients (PyTorch raises for an in-place change of a saved tensor too)."""
    arrays = cell_arrays("lstm", seed=4)
    output, _, _, cache = recurrent_fast.lstm_forward(arrays["x_proj"].copy(), arrays["h0"], arrays["c0"],
                                                      arrays["weight_hh"], arrays["bias_hh"])
    with pytest.raises(ValueError, match="read-only"):
        output *= 2
    with rnnlab.no_grad():
        free, _, _, _ = recurrent_fast.lstm_forward(arrays["x_proj"].copy(), arrays["h0"], arrays["c0"],
                                                    arrays["weight_hh"], arrays["bias_hh"])
    free *= 2  # no backward to protect


def test_float64_goes_to_the_exact_reference():
    rng = np.random.default_rng(0)
    x_proj, h0, c0 = rng.standard_normal((4, 2, 12)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    weight_hh, bias_hh = rng.standard_normal((12, 3)), rng.standard_normal(12)
    fast = recurrent_fast.lstm_forward(x_proj, h0, c0, weight_hh, bias_hh)
    reference = recurrent_math.lstm_forward(x_proj, h0, c0, weight_hh, bias_hh)
    for expected, got in zip(reference[:3], fast[:3]):
        np.testing.assert_array_equal(got, expected)
    grad = np.ones((4, 2, 3))
    np.testing.assert_array_equal(recurrent_fast.lstm_backward(grad, None, None, fast[3])[0],
                                  recurrent_math.lstm_backward(grad, None, None, reference[3])[0])


def test_unknown_nonlinearity_is_rejected_like_the_reference():
    arrays = cell_arrays("rnn_tanh", seed=0)
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        recurrent_fast.rnn_forward(arrays["x_proj"], arrays["h0"], arrays["weight_hh"], None, "sigmoid")


def test_kernel_tanh_is_within_a_few_ulp_of_numpy():
    grid = np.concatenate([np.linspace(-12, 12, 200_001, dtype=np.float32),
                           np.array([0.0, -0.0, 1e-30, 3.9e-4, 4.1e-4, 7.9, 50.0, -50.0], dtype=np.float32)])
    got = np.empty_like(grid)
    recurrent_fast.tanh_array(grid, got)
    exact = np.tanh(grid.astype(np.float64))
    assert np.max(np.abs(got - exact)) < 4e-7
    assert np.all(np.abs(got) <= 1.0)
    # odd, and exact where float32 tanh is x itself
    np.testing.assert_array_equal(got[grid == 1e-30], np.float32(1e-30))
    mirrored = np.empty_like(grid)
    recurrent_fast.tanh_array(-grid, mirrored)
    np.testing.assert_array_equal(mirrored, -got)


# ------------------------------------------------------------------------------------------------
# layer level: the kernels behind real layers
# ------------------------------------------------------------------------------------------------
def run_layer(kernels, make_layer, x, lengths, seed):
    """Build the layer with a fixed seed, run forward (dropout draws reseeded) and backward."""
    recurrent.set_kernels(kernels)
    rnnlab.manual_seed(seed)
    layer = make_layer()
    layer.train()
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
def test_layers_match_reference(name, lengths, reference_kernels):
    x = np.random.default_rng(11).standard_normal((5, 6, 4)).astype(np.float32)  # (N, L, H_in)
    expected = run_layer(None, LAYERS[name], x, lengths, seed=21)
    got = run_layer(recurrent_fast, LAYERS[name], x, lengths, seed=21)
    assert expected.keys() == got.keys()
    for key in expected:
        assert_same(expected[key], got[key], f"{name} {key}")


def test_fast_path_is_the_default_and_switchable(reference_kernels):
    fast_setup.install()
    assert fast_setup.active_kernels_name() == ("fast" if fast_setup.fast_requested() else "reference")
    fast_setup.use_fast(False)
    assert recurrent.get_kernels() is recurrent_math
    fast_setup.use_fast(True)
    nn.LSTM(2, 3)(np.zeros((1, 2), dtype=np.float32))  # the first forward resolves the lazy choice
    assert recurrent.get_kernels() is recurrent_fast


def test_environment_variable_forces_the_reference():
    code = ("import rnnlab.nn, numpy as np; from rnnlab.nn import fast_setup, recurrent; "
            "fast_setup.install(); print(fast_setup.active_kernels_name())")
    env = dict(os.environ, RNNLAB_FAST="0")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "reference"


@pytest.mark.parametrize("cell", CELLS)
def test_long_sequences_use_the_transposed_weight_and_match_reference(cell, monkeypatch):
    """L >= _TRANSPOSE_MIN_STEPS: the forward's contiguous W_hh.T copy is the one the backward multiplies by."""
    steps = recurrent_fast._TRANSPOSE_MIN_STEPS + 5
    arrays = cell_arrays(cell, seed=3, steps=steps)
    expected = run_cell(recurrent_math, cell, arrays, None)
    used = []
    original = recurrent_fast._BackwardProduct.__init__

    def spy(self, weight, num_steps, batch, weight_t=None):
        original(self, weight, num_steps, batch, weight_t)
        used.append(self.weight_t is weight_t and weight_t is not None)

    monkeypatch.setattr(recurrent_fast._BackwardProduct, "__init__", spy)
    got = run_cell(recurrent_fast, cell, arrays, None)
    assert used == [True]
    for name in expected:
        if expected[name] is not None:
            assert_same(expected[name], got[name], name)
