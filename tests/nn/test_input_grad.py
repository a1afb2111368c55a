"""``backward(..., input_grad=False)`` on the reference path: layer 0 skips ``grad_x = g @ W_ih_l0`` and
returns None in its place; every parameter gradient and the initial state's are bit-identical to
``input_grad=True`` (float64 and float32), and equal PyTorch's for an input without ``requires_grad``.
A registered cell that does not take the flag still works (its input gradient is dropped)."""
from __future__ import annotations

import numpy as np
import pytest
from compiled_paths import reference_path
from input_grad_cases import CASES, H, H_IN, L, N, assert_same_except_input, case_id, run_case

import rnnlab
from rnnlab import nn
from rnnlab.nn import recurrent_math
from rnnlab.nn.recurrent_math import Cell, register_cell, unregister_cell


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_no_input_gradient_leaves_every_other_gradient_unchanged(case, dtype):
    with reference_path():
        assert_same_except_input(run_case(case, dtype, True), run_case(case, dtype, False))


@pytest.mark.parametrize("layer_class", [nn.RNN, nn.LSTM, nn.GRU])
def test_parameter_gradients_equal_pytorchs_without_requires_grad(torch, layer_class):
    theirs = getattr(torch.nn, layer_class.__name__)(H_IN, H, num_layers=2, bidirectional=True).to(torch.float64)
    ours = layer_class(H_IN, H, num_layers=2, bidirectional=True, dtype=np.float64)
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((L, N, H_IN))
    weights = np.random.default_rng(1).standard_normal((L, N, 2 * H))
    out, _ = ours(x)
    grad_input, _ = ours.backward(weights, None, input_grad=False)
    x_t = torch.from_numpy(x)  # requires_grad=False: PyTorch skips the input's gradient too
    (theirs(x_t)[0] * torch.from_numpy(weights)).sum().backward()
    assert grad_input is None and not x_t.requires_grad
    for name, param in theirs.named_parameters():
        reference = param.grad.numpy()
        ours_grad = getattr(ours, name).grad
        assert np.abs(ours_grad - reference).max() <= 1e-9 * max(np.abs(reference).max(), 1e-300), name


@pytest.mark.parametrize("layer_class", [nn.RNN, nn.LSTM, nn.GRU])
def test_unbatched_input_gives_none(layer_class):
    rnnlab.manual_seed(0)
    layer = layer_class(H_IN, H, dtype=np.float64)
    out, _ = layer(np.random.default_rng(0).standard_normal((L, H_IN)))
    grad_input, grad_state = layer.backward(np.ones_like(out), input_grad=False)
    assert grad_input is None
    assert (grad_state[0] if isinstance(grad_state, tuple) else grad_state).shape == (1, H)


@pytest.mark.parametrize("layer_class", [nn.RNN, nn.LSTM, nn.GRU])
def test_forward_projected_gives_none_and_the_same_gradients(layer_class):
    rnnlab.manual_seed(0)
    layer = layer_class(H_IN, H, num_layers=2, dtype=np.float64)
    gates = recurrent_math.CELLS[layer.mode].gates * H
    projection = np.random.default_rng(0).standard_normal((L, N, gates))
    results = []
    for input_grad in (True, False):
        layer.zero_grad()
        out, _ = layer.forward_projected(projection.copy())
        grad_projection, grad_h0 = layer.backward(np.ones_like(out), None, input_grad=input_grad)
        grads = {name: None if p.grad is None else p.grad.copy() for name, p in layer.named_parameters()}
        results.append((grad_projection, grad_h0, grads))
    (full, full_h0, full_grads), (skipped, skipped_h0, skipped_grads) = results
    assert full.shape == projection.shape and skipped is None
    assert np.array_equal(full_h0[0] if isinstance(full_h0, tuple) else full_h0,
                          skipped_h0[0] if isinstance(skipped_h0, tuple) else skipped_h0)
    assert full_grads["weight_ih_l0"] is None and skipped_grads["weight_ih_l0"] is None  # the caller's
    for name, grad in full_grads.items():
        assert (grad is None and skipped_grads[name] is None) or np.array_equal(grad, skipped_grads[name]), name


def test_project_input_backward_skips_the_product():
    rng = np.random.default_rng(0)
    grad_x_proj, x = rng.standard_normal((L, N, 8)), rng.standard_normal((L, N, 3))
    weight_ih = rng.standard_normal((8, 3))
    grad_x, grad_w, grad_b = recurrent_math.project_input_backward(grad_x_proj, x, weight_ih, True)
    none, same_w, same_b = recurrent_math.project_input_backward(grad_x_proj, x, weight_ih, True, input_grad=False)
    assert grad_x.shape == x.shape and none is None
    assert np.array_equal(grad_w, same_w) and np.array_equal(grad_b, same_b)


# ------------------------------------------------------------------------------------------------
# the cell registry: a cell with or without the flag
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def lstm_copies():
    """LSTM's reference math registered twice: a backward that records its input_grad, and one that
    takes no flag at all (three arguments, like a cell written before the flag existed)."""
    lstm = recurrent_math.CELLS["LSTM"]
    seen = []

    def recording_backward(grad_output, grad_state, cache, input_grad=True):
        seen.append(input_grad)
        return lstm.backward(grad_output, grad_state, cache, input_grad=input_grad)

    def flagless_backward(grad_output, grad_state, cache):
        return lstm.backward(grad_output, grad_state, cache)

    register_cell("LSTM_FLAGGED", Cell(4, ("h", "c"), lstm.forward, recording_backward, skips_input_grad=True))
    register_cell("LSTM_FLAGLESS", Cell(4, ("h", "c"), lstm.forward, flagless_backward))
    yield seen
    unregister_cell("LSTM_FLAGGED")
    unregister_cell("LSTM_FLAGLESS")


def test_registered_cells_with_and_without_the_flag(lstm_copies):
    rnnlab.manual_seed(0)
    reference = nn.LSTM(H_IN, H, num_layers=2, bidirectional=True, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((L, N, H_IN))
    out, _ = reference(x)
    grad_out = np.random.default_rng(1).standard_normal(out.shape)
    reference.backward(grad_out, None, input_grad=False)
    for mode in ("LSTM_FLAGGED", "LSTM_FLAGLESS"):
        layer = nn.RNNBase(mode, H_IN, H, num_layers=2, bidirectional=True, dtype=np.float64)
        layer.load_state_dict(reference.state_dict())
        with reference_path():  # a registered copy has no compiled twin
            layer(x)
            grad_input, _ = layer.backward(grad_out, None, input_grad=False)
        assert grad_input is None
        for name, param in reference.named_parameters():
            assert np.array_equal(getattr(layer, name).grad, param.grad), (mode, name)
    # layer 0's two directions were told to skip; layer 1's were not (layer 0 needs their input gradient)
    assert lstm_copies == [True, True, False, False]
