"""RNN, LSTM, GRU and their cells against PyTorch (the oracle): outputs, final states, and the gradients
of the input, the initial state and every parameter by name.

Weights are copied by name (``ours.load_state_dict(theirs.state_dict())``); PyTorch's gradients come
from autograd on ``sum(output * R_out) + sum(h_n * R_h) (+ sum(c_n * R_c))``, ours from ``backward``
with the same ``R``. Variable lengths are compared with PyTorch's
``pack_padded_sequence(..., enforce_sorted=False)`` -> layer -> ``pad_packed_sequence(..., total_length=L)``.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from compiled_paths import on_path
from rnnlab import nn

# float64 runs the NumPy reference (the compiled path is float32-only); float32 runs on both paths.

INPUT_SIZE, HIDDEN_SIZE, PROJ_SIZE, SEQ_LEN, BATCH = 3, 4, 2, 4, 3
UNSORTED_LENGTHS = [2, 4, 1]  # unsorted, with a full-length and a length-1 sequence
KINDS = ["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"]


def rel_error(ours, theirs) -> float:
    """max|a - b| / max(|a|, |b|, tiny): 0 for identical arrays, ~1e-16 for float64 round-off."""
    if hasattr(theirs, "detach"):
        theirs = theirs.detach().numpy()
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"shape {ours.shape} != {theirs.shape}"
    scale = max(np.abs(ours).max(initial=0.0), np.abs(theirs).max(initial=0.0), 1e-300)
    return float(np.abs(ours - theirs).max(initial=0.0) / scale)


def make_pair(torch, kind, dtype=np.float64, **kwargs):
    """The same layer in rnnlab and PyTorch, with PyTorch's weights copied into ours by name."""
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    if kind.startswith("rnn"):
        kwargs["nonlinearity"] = kind[4:]
        ours, theirs = nn.RNN(INPUT_SIZE, HIDDEN_SIZE, dtype=dtype, **kwargs), torch.nn.RNN(INPUT_SIZE, HIDDEN_SIZE, **kwargs)
    elif kind.startswith("lstm"):
        if kind == "lstm_proj":
            kwargs["proj_size"] = PROJ_SIZE
        ours, theirs = nn.LSTM(INPUT_SIZE, HIDDEN_SIZE, dtype=dtype, **kwargs), torch.nn.LSTM(INPUT_SIZE, HIDDEN_SIZE, **kwargs)
    else:
        ours, theirs = nn.GRU(INPUT_SIZE, HIDDEN_SIZE, dtype=dtype, **kwargs), torch.nn.GRU(INPUT_SIZE, HIDDEN_SIZE, **kwargs)
    theirs = theirs.to(torch_dtype)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def run_and_compare(torch, kind, *, num_layers=1, bidirectional=False, batch_first=False, bias=True,
                    input_mode="batched", dtype=np.float64, grad_output_given=True, seed=0):
    """Run both layers forward and backward; return {what: relative error}."""
    torch.manual_seed(seed)
    ours, theirs = make_pair(torch, kind, dtype, num_layers=num_layers, bidirectional=bidirectional,
                             batch_first=batch_first, bias=bias)
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    is_lstm = kind.startswith("lstm")
    directions = 2 if bidirectional else 1
    out_size = PROJ_SIZE if kind == "lstm_proj" else HIDDEN_SIZE
    batched = input_mode != "unbatched"
    lengths = UNSORTED_LENGTHS if input_mode.startswith("lengths") else None
    give_state = input_mode != "lengths_no_h0"

    if not batched:
        x_shape, h_shape, c_shape = (SEQ_LEN, INPUT_SIZE), (directions * num_layers, out_size), (directions * num_layers, HIDDEN_SIZE)
    else:
        x_shape = (BATCH, SEQ_LEN, INPUT_SIZE) if batch_first else (SEQ_LEN, BATCH, INPUT_SIZE)
        h_shape, c_shape = (directions * num_layers, BATCH, out_size), (directions * num_layers, BATCH, HIDDEN_SIZE)
    x = torch.randn(x_shape, dtype=torch_dtype, requires_grad=True)
    h0 = torch.randn(h_shape, dtype=torch_dtype, requires_grad=True)
    c0 = torch.randn(c_shape, dtype=torch_dtype, requires_grad=True)
    torch_state = ((h0, c0) if is_lstm else h0) if give_state else None

    # PyTorch
    if lengths is None:
        out_t, state_t = theirs(x, torch_state)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
        packed_out, state_t = theirs(packed, torch_state)
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(packed_out, batch_first=batch_first, total_length=SEQ_LEN)
    finals_t = list(state_t) if is_lstm else [state_t]
    grad_out = torch.randn_like(out_t) if grad_output_given else None
    grad_finals = [torch.randn_like(f) for f in finals_t]
    loss = sum((f * g).sum() for f, g in zip(finals_t, grad_finals))
    if grad_out is not None:
        loss = loss + (out_t * grad_out).sum()
    loss.backward()

    # rnnlab
    def np_(t):
        return t.detach().numpy()

    our_state = None
    if give_state:
        our_state = (np_(h0), np_(c0)) if is_lstm else np_(h0)
    out, state = ours(np_(x), our_state, lengths=lengths)
    finals = list(state) if is_lstm else [state]
    grad_out_np = None if grad_out is None else np_(grad_out)
    if is_lstm:
        grad_x, (grad_h0, grad_c0) = ours.backward(grad_out_np, (np_(grad_finals[0]), np_(grad_finals[1])))
        grad_initial = [grad_h0, grad_c0]
    else:
        grad_x, grad_h0 = ours.backward(grad_out_np, np_(grad_finals[0]))
        grad_initial = [grad_h0]

    assert out.dtype == dtype and grad_x.dtype == dtype
    errors = {"output": rel_error(out, out_t), "grad_input": rel_error(grad_x, x.grad)}
    for k, (ours_final, theirs_final) in enumerate(zip(finals, finals_t)):
        errors[f"final_state[{k}]"] = rel_error(ours_final, theirs_final)
    if give_state:
        for k, (ours_grad, leaf) in enumerate(zip(grad_initial, [h0, c0])):
            errors[f"grad_initial_state[{k}]"] = rel_error(ours_grad, leaf.grad)
    else:  # zero-state gradients still come back, shaped like the state
        assert grad_initial[0].shape == h_shape
    theirs_params = dict(theirs.named_parameters())
    assert [name for name, _ in ours.named_parameters()] == list(theirs_params)
    for name, param in ours.named_parameters():
        errors[name] = rel_error(param.grad, theirs_params[name].grad)
    return errors


GRID = list(itertools.product(KINDS, [1, 3], [False, True], [False, True], [True, False],
                              ["batched", "unbatched", "lengths_h0", "lengths_no_h0"]))


@pytest.mark.parametrize("kind,num_layers,bidirectional,batch_first,bias,input_mode", GRID,
                         ids=["-".join(map(str, case)) for case in GRID])
def test_layer_matches_torch_float64(torch, kind, num_layers, bidirectional, batch_first, bias, input_mode):
    errors = run_and_compare(torch, kind, num_layers=num_layers, bidirectional=bidirectional,
                             batch_first=batch_first, bias=bias, input_mode=input_mode)
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-9, f"{worst}: relative error {errors[worst]:.2e}\n{errors}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("input_mode", ["batched", "lengths_h0"])
def test_final_state_only_loss_matches_torch(torch, kind, input_mode):
    """grad_output=None: the loss reads only h_n (and c_n), as when classifying a sequence."""
    errors = run_and_compare(torch, kind, num_layers=2, bidirectional=True, input_mode=input_mode,
                             grad_output_given=False)
    assert max(errors.values()) < 1e-9, errors


@pytest.mark.parametrize("path", ["reference", "compiled"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidirectional,input_mode", [(False, "batched"), (True, "lengths_h0")])
def test_layer_matches_torch_float32(torch, kind, bidirectional, input_mode, path):
    cell = kind.split("_")[0]
    with on_path(path, f"{cell}_forward", f"{cell}_backward"):
        errors = run_and_compare(torch, kind, num_layers=2, bidirectional=bidirectional, batch_first=True,
                                 input_mode=input_mode, dtype=np.float32)
    assert max(errors.values()) < 1e-5, errors


# --- cells: a Python loop of steps, backward in reverse order -------------------------------------
CELL_CASES = [("rnn_tanh", True), ("rnn_relu", True), ("rnn_tanh", False), ("lstm", True), ("lstm", False),
              ("gru", True), ("gru", False)]


@pytest.mark.parametrize("kind,bias", CELL_CASES)
@pytest.mark.parametrize("batched", [True, False])
def test_cell_loop_matches_torch(torch, kind, bias, batched):
    torch.manual_seed(1)
    steps = 5
    if kind.startswith("rnn"):
        nonlinearity = kind[4:]
        ours = nn.RNNCell(INPUT_SIZE, HIDDEN_SIZE, bias, nonlinearity, dtype=np.float64)
        theirs = torch.nn.RNNCell(INPUT_SIZE, HIDDEN_SIZE, bias, nonlinearity).double()
    elif kind == "lstm":
        ours = nn.LSTMCell(INPUT_SIZE, HIDDEN_SIZE, bias, dtype=np.float64)
        theirs = torch.nn.LSTMCell(INPUT_SIZE, HIDDEN_SIZE, bias).double()
    else:
        ours = nn.GRUCell(INPUT_SIZE, HIDDEN_SIZE, bias, dtype=np.float64)
        theirs = torch.nn.GRUCell(INPUT_SIZE, HIDDEN_SIZE, bias).double()
    ours.load_state_dict(theirs.state_dict())
    is_lstm = kind == "lstm"
    lead = (BATCH,) if batched else ()
    xs = torch.randn((steps, *lead, INPUT_SIZE), dtype=torch.float64, requires_grad=True)
    h0 = torch.randn((*lead, HIDDEN_SIZE), dtype=torch.float64, requires_grad=True)
    c0 = torch.randn((*lead, HIDDEN_SIZE), dtype=torch.float64, requires_grad=True)
    weights_h = torch.randn((steps, *lead, HIDDEN_SIZE), dtype=torch.float64)  # loss = sum_t <w_t, h_t> (+ <v, c_T>)
    weight_c = torch.randn((*lead, HIDDEN_SIZE), dtype=torch.float64)

    # PyTorch
    h, c, loss = h0, c0, 0.0
    torch_hs = []
    for t in range(steps):
        if is_lstm:
            h, c = theirs(xs[t], (h, c))
        else:
            h = theirs(xs[t], h)
        torch_hs.append(h)
        loss = loss + (h * weights_h[t]).sum()
    if is_lstm:
        loss = loss + (c * weight_c).sum()
    loss.backward()

    # rnnlab: forward loop, then backward in reverse order
    h, c = h0.detach().numpy(), c0.detach().numpy()
    for t in range(steps):
        if is_lstm:
            h, c = ours(xs[t].detach().numpy(), (h, c))
        else:
            h = ours(xs[t].detach().numpy(), h)
        assert rel_error(h, torch_hs[t]) < 1e-12
    grad_h = np.zeros_like(h)
    grad_c = weight_c.numpy().copy()
    grad_xs = [None] * steps
    for t in reversed(range(steps)):
        grad_h = grad_h + weights_h[t].numpy()
        if is_lstm:
            grad_xs[t], (grad_h, grad_c) = ours.backward(grad_h, grad_c)
        else:
            grad_xs[t], grad_h = ours.backward(grad_h)
    errors = {"grad_x": rel_error(np.stack(grad_xs), xs.grad), "grad_h0": rel_error(grad_h, h0.grad)}
    if is_lstm:
        errors["grad_c0"] = rel_error(grad_c, c0.grad)
    theirs_params = dict(theirs.named_parameters())
    assert [name for name, _ in ours.named_parameters()] == list(theirs_params)
    for name, param in ours.named_parameters():
        errors[name] = rel_error(param.grad, theirs_params[name].grad)
    assert max(errors.values()) < 1e-9, errors
    with pytest.raises(RuntimeError, match="more times than forward"):
        ours.backward(grad_h) if not is_lstm else ours.backward(grad_h, grad_c)


def test_cell_steps_equal_layer(torch):
    """A cell looped over time gives the one-layer layer's outputs (same weights)."""
    layer = nn.GRU(INPUT_SIZE, HIDDEN_SIZE, dtype=np.float64)
    cell = nn.GRUCell(INPUT_SIZE, HIDDEN_SIZE, dtype=np.float64)
    cell.load_state_dict({name[:-3]: value for name, value in layer.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((SEQ_LEN, BATCH, INPUT_SIZE))
    out, _ = layer(x)
    h = None
    for t in range(SEQ_LEN):
        h = cell(x[t], h)
        assert rel_error(h, out[t]) < 1e-14
