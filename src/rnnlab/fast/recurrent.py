"""The compiled path of the recurrent layers: the six functions of :mod:`rnnlab.nn.recurrent_math`,
same signatures, same named caches, same numbers to float32 rounding.

Read ``recurrent_math.py`` for the math; this file only changes how it is executed:

- **One fused kernel per step.** NumPy walks memory once per operation and allocates a temporary for
  each; an LSTM step is ~20 of them. Here each step is one matrix product (BLAS, ``out=`` into a
  preallocated buffer) and one compiled call doing all the element-wise work of the step (bias,
  activations, cell update, masking): :mod:`rnnlab.fast.cell_steps`.
- **Preallocated caches, kept small.** The forward writes straight into the arrays its backward reads:
  the ``(L+1, N, H)`` states (the output is a view of them) and, for LSTM and GRU, the gate
  activations written over the input projection itself (**with** ``weight_ih=None`` **the caller's
  projection is overwritten**: pass a fresh one). The LSTM backward recomputes ``tanh(c)`` instead of
  keeping it. This keeps a training step's peak memory at or below PyTorch's. Weight gradients are
  one product over all steps.
- **Transposes made once per call.** ``W_hh.T`` is copied contiguous (32 rows at a time: NumPy's own
  transposing copy of a 2048 x 512 matrix takes 9x longer) when the sequence is long enough to pay for
  the copy (BLAS runs ~30% faster on it); short calls (sampling) use the strided view. The backward
  multiplies by ``W_hh`` directly, or (``TRANSPOSED_BACKWARD_PRODUCT``) by the forward's copy
  (``cache.weight_hh_t``).

float32 NumPy arrays only (the layers send float64 to the reference); anything else is a TypeError.

:data:`TWINS` holds the compiled forward/backward of each registered cell that has them, by the
same mode name as :data:`rnnlab.nn.recurrent_math.CELLS` and with :class:`~rnnlab.nn.recurrent_math.Cell`'s
signatures (``input_grad`` included: ``False`` skips ``g @ W_ih``); :func:`compiled_cell` is the
registered Cell with them (None for a mode without a twin, which then runs the reference:
:func:`rnnlab.nn.recurrent.cell_for`).
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np

from .. import backend
from ..nn.recurrent_math import (CELLS, GRUCache, LSTMCache, RNNCache, check_cache, check_nonlinearity, gru_adapters,
                                 layer_output, lstm_adapters, parameter_grads, project_input, project_input_backward,
                                 rnn_adapters)
from . import blas, record
from .cell_steps import (gru_backward_step, gru_forward_step, lstm_activation_constants, lstm_backward_step,
                         lstm_forward_step, mask_state, masked_grad_sum, rnn_backward_step, rnn_forward_step,
                         transpose_into)

# Below this many steps the transposed copy of W_hh costs more than it saves.
TRANSPOSE_MIN_STEPS = 8
# The backward product as (W_hh.T @ grad.T).T for long sequences (see BackwardProduct); else grad @ W_hh,
# which measured faster on the 2-core EPYC with OpenBLAS's SkylakeX kernel (benchmarks/RESULTS.md).
TRANSPOSED_BACKWARD_PRODUCT = False
# Run each time loop as one compiled call (rnnlab.fast.time_loops) where compiled code can call NumPy's
# sgemm; otherwise (or set to False) step in Python. Both give the same numbers.
COMPILED_TIME_LOOPS = blas.available()
if COMPILED_TIME_LOOPS:
    from . import time_loops
_FLOAT32 = np.dtype(np.float32)


def _require_float32(*arrays) -> None:
    for array in arrays:
        if array is not None and (type(array) is not np.ndarray or array.dtype != _FLOAT32):
            raise TypeError(f"rnnlab.fast.recurrent takes float32 NumPy arrays, got {type(array).__name__} "
                            f"of dtype {getattr(array, 'dtype', '?')} (float64 runs rnnlab.nn.recurrent_math)")


def _gate_buffer(x_proj):
    """x_proj itself when it can take the gate activations in place (C-contiguous, float32, writeable)."""
    flags = x_proj.flags
    if flags.c_contiguous and flags.writeable and x_proj.dtype == _FLOAT32:
        return x_proj
    return np.array(x_proj, dtype=np.float32, order="C")


def _contiguous(array):
    return np.ascontiguousarray(array, dtype=np.float32)


_ALL_ACTIVE = {}  # (L, N) -> read-only all-True mask, shared by calls without lengths


def _active_rows(lengths, num_steps, batch):
    """(L, N) bool: step t is inside sequence n."""
    if lengths is None:
        mask = _ALL_ACTIVE.get((num_steps, batch))
        if mask is None:
            if len(_ALL_ACTIVE) > 64:
                _ALL_ACTIVE.clear()
            mask = np.ones((num_steps, batch), dtype=np.bool_)
            mask.flags.writeable = False
            _ALL_ACTIVE[(num_steps, batch)] = mask
        return mask
    return np.arange(num_steps)[:, None] < np.asarray(lengths)[None, :]


def _output(states, active, lengths):
    return layer_output(states, None if lengths is None else active)


def _transposed(weight, num_steps):
    """weight.T, copied C-contiguous when the sequence is long enough to pay for the copy."""
    if num_steps < TRANSPOSE_MIN_STEPS:
        return weight.T
    rows = weight.shape[0]
    if rows * weight.shape[1] < 65536:
        return np.ascontiguousarray(weight.T)
    # NumPy's own transposing copy walks one side of a large matrix with a huge stride (7.5 ms for
    # 2048 x 512); 32 rows at a time stay in cache (0.8 ms).
    out = np.empty((weight.shape[1], rows), dtype=weight.dtype)
    for start in range(0, rows, 32):
        out[:, start:start + 32] = weight[start:start + 32].T
    return out


def _bias_or_zeros(bias, size):
    return np.zeros(size, dtype=np.float32) if bias is None else _contiguous(bias)


_NO_MATRIX = np.zeros((1, 1), dtype=np.float32)  # stands in for an unused matrix argument


def _forward_weight(weight_t, weight_hh):
    """The forward product's weight as the compiled loops take it: (C-contiguous matrix, transpose it?)."""
    if weight_t.flags.c_contiguous:
        return weight_t, False
    return _contiguous(weight_hh), True


def _grad_output_blocks(grad_output, num_steps, batch, size):
    """grad_output as a contiguous (L, N, size) array, or (1, N, size) zeros for every step."""
    if grad_output is None:
        return np.zeros((1, batch, size), dtype=np.float32)
    return _contiguous(grad_output)


class BackwardProduct:
    """``out = grad @ W_hh`` for every step of a backward pass, ``grad`` (N, G), ``W_hh`` (G, H).

    For long sequences it is computed as ``(W_hh.T @ grad.T).T`` with ``W_hh.T`` copied contiguous once
    (the forward's copy when it made one): OpenBLAS runs that shape 1.3-1.7x faster, which more than
    pays for transposing the two small blocks each step."""

    def __init__(self, weight, num_steps, batch, weight_t=None):
        self.transposed = TRANSPOSED_BACKWARD_PRODUCT and num_steps >= TRANSPOSE_MIN_STEPS
        if self.transposed:
            # the forward's contiguous copy of W_hh.T when it made one (W_hh is unchanged until the update)
            reuse = weight_t is not None and weight_t.flags.c_contiguous and weight_t.shape == weight.shape[::-1]
            self.weight_t = weight_t if reuse else _transposed(weight, num_steps)  # (H, G)
            self.grad_t = np.empty((weight.shape[0], batch), dtype=np.float32)
            self.out_t = np.empty((weight.shape[1], batch), dtype=np.float32)
            self.weight = _NO_MATRIX
        else:
            self.weight = _contiguous(weight)
            self.weight_t = self.grad_t = self.out_t = _NO_MATRIX

    def loop_arguments(self) -> tuple:
        """(weight, weight_t, transposed, grad_t, out_t) for the compiled loops of rnnlab.fast.time_loops."""
        return self.weight, self.weight_t, self.transposed, self.grad_t, self.out_t

    def __call__(self, grad, out):
        if self.transposed:
            transpose_into(grad, self.grad_t)
            np.matmul(self.weight_t, self.grad_t, out=self.out_t)
            transpose_into(self.out_t, out)
        else:
            np.matmul(grad, self.weight, out=out)


def _grad_output_steps(grad_output, num_steps, batch, size):
    """grad_output as a contiguous (L, N, size) array, or one zero (N, size) block repeated."""
    if grad_output is None:
        zeros = np.zeros((batch, size), dtype=np.float32)
        return [zeros] * num_steps
    return _contiguous(grad_output)


def _start_grad(grad, shape):
    return np.zeros(shape, dtype=np.float32) if grad is None else np.array(grad, dtype=np.float32, order="C")


# ------------------------------------------------------------------------------------------------
# Elman RNN
# ------------------------------------------------------------------------------------------------
def rnn_forward(x, h0, weight_ih, bias_ih, weight_hh, bias_hh, nonlinearity="tanh", lengths=None):
    """x (L,N,H_in), h0 (N,H) -> output (L,N,H), h_n (N,H), RNNCache (as :func:`recurrent_math.rnn_forward`)"""
    check_nonlinearity(nonlinearity)
    _require_float32(x, h0, weight_ih, bias_ih, weight_hh, bias_hh)
    record("rnn_forward")
    x_proj = _contiguous(project_input(x, weight_ih, bias_ih))
    num_steps, batch, hidden = x_proj.shape
    active = _active_rows(lengths, num_steps, batch)
    relu = nonlinearity == "relu"
    bias = _bias_or_zeros(bias_hh, hidden)
    weight_t = _transposed(weight_hh, num_steps)
    states = np.empty((num_steps + 1, batch, hidden), dtype=np.float32)  # states[t] = h_{t-1}
    states[0] = h0
    pre = np.empty((batch, hidden), dtype=np.float32)
    if COMPILED_TIME_LOOPS:
        record("time_loop")
        time_loops.rnn_forward_loop(x_proj, states, *_forward_weight(weight_t, weight_hh), bias, active, relu, pre)
    else:
        for t in range(num_steps):
            np.matmul(states[t], weight_t, out=pre)
            rnn_forward_step(pre, x_proj[t], bias, states[t], active[t], relu, states[t + 1])
    cache = None
    if backend.is_grad_enabled():
        cache = RNNCache(x, weight_ih, states, weight_hh, weight_t, bias_hh is not None, nonlinearity, active)
    return _output(states, active, lengths), states[num_steps].copy(), cache


def rnn_backward(grad_output, grad_h_n, cache: RNNCache, input_grad=True):
    """-> grad_x (None if not input_grad), grad_h0 (N,H), {"weight_ih", "bias_ih", "weight_hh", "bias_hh"}"""
    check_cache(cache, "rnn_backward")
    record("rnn_backward")
    states, active = cache.states, cache.active
    num_steps, batch, hidden = states.shape[0] - 1, states.shape[1], states.shape[2]
    relu = cache.nonlinearity == "relu"
    product = BackwardProduct(cache.weight_hh, num_steps, batch, cache.weight_hh_t)
    grad_rec = _start_grad(grad_h_n, (batch, hidden))
    grad_carry = np.zeros((batch, hidden), dtype=np.float32)
    grad_pre = np.empty((num_steps, batch, hidden), dtype=np.float32)
    if COMPILED_TIME_LOOPS:
        record("time_loop")
        grad_output_blocks = _grad_output_blocks(grad_output, num_steps, batch, hidden)
        time_loops.rnn_backward_loop(states, grad_rec, grad_carry, grad_output_blocks, active, relu, grad_pre,
                                     *product.loop_arguments())
    else:
        grad_outputs = _grad_output_steps(grad_output, num_steps, batch, hidden)
        for t in reversed(range(num_steps)):
            rnn_backward_step(states[t + 1], grad_rec, grad_carry, grad_outputs[t], active[t], relu, grad_pre[t])
            product(grad_pre[t], grad_rec)
    grad_x, grads = parameter_grads(grad_pre, cache, input_grad=input_grad)
    return grad_x, grad_rec + grad_carry, grads


# ------------------------------------------------------------------------------------------------
# LSTM
# ------------------------------------------------------------------------------------------------
def lstm_forward(x, h0, c0, weight_ih, bias_ih, weight_hh, bias_hh, weight_hr=None, lengths=None):
    """x (L,N,H_in), h0 (N,H_out), c0 (N,H) -> output (L,N,H_out), h_n, c_n, LSTMCache"""
    _require_float32(x, h0, c0, weight_ih, bias_ih, weight_hh, bias_hh, weight_hr)
    record("lstm_forward")
    x_proj = _gate_buffer(project_input(x, weight_ih, bias_ih))
    num_steps, batch, four_hidden = x_proj.shape
    hidden = four_hidden // 4
    out_size = h0.shape[-1]
    keep_cache = backend.is_grad_enabled()
    active = _active_rows(lengths, num_steps, batch)
    bias = _bias_or_zeros(bias_hh, four_hidden)
    weight_t = _transposed(weight_hh, num_steps)
    projected = weight_hr is not None
    scale, offset = lstm_activation_constants(hidden)
    if num_steps == 1 and not keep_cache and not projected:
        # One step without a cache (generation, one character at a time): no state arrays to build.
        pre = np.matmul(h0, weight_t)
        c_n, h_n = np.empty_like(c0), np.empty((batch, out_size), dtype=np.float32)
        lstm_forward_step(pre, x_proj[0], bias, scale, offset, c0, h0, active[0], c_n, h_n)
        output = h_n[None] if lengths is None else np.where(active[:, :, None], h_n[None], np.float32(0))
        return output, h_n.copy(), c_n, None

    states = np.empty((num_steps + 1, batch, out_size), dtype=np.float32)  # states[t] = h_{t-1}
    states[0] = h0
    # With a cache every step keeps its own gates and cells; without one, two rolling buffers do.
    cache_steps = num_steps if keep_cache else 1
    gates_all = x_proj  # the gate activations are written over x_proj (see the module docstring)
    pre = np.empty((batch, four_hidden), dtype=np.float32)
    cells = np.empty((num_steps + 1 if keep_cache else 2, batch, hidden), dtype=np.float32)
    cells[0] = c0
    h_full_all = None
    if projected:
        weight_hr_t = _transposed(weight_hr, num_steps)
        h_full_all = np.empty((cache_steps, batch, hidden), dtype=np.float32)  # o * tanh(c), unprojected
        h_new = np.empty((batch, out_size), dtype=np.float32)
        zeros_hidden = np.zeros((batch, hidden), dtype=np.float32)
    if COMPILED_TIME_LOOPS and not projected:
        record("time_loop")
        time_loops.lstm_forward_loop(gates_all, states, cells, *_forward_weight(weight_t, weight_hh), bias, scale,
                                     offset, active, pre)
    for t in range(0 if COMPILED_TIME_LOOPS and not projected else num_steps):
        k = t if keep_cache else 0
        c_prev, c_next = (cells[t], cells[t + 1]) if keep_cache else (cells[t % 2], cells[(t + 1) % 2])
        np.matmul(states[t], weight_t, out=pre)
        if not projected:
            lstm_forward_step(pre, gates_all[t], bias, scale, offset, c_prev, states[t], active[t], c_next,
                              states[t + 1])
        else:
            h_full = h_full_all[k]
            lstm_forward_step(pre, gates_all[t], bias, scale, offset, c_prev, zeros_hidden, active[t], c_next,
                              h_full)
            np.matmul(h_full, weight_hr_t, out=h_new)
            mask_state(h_new, states[t], active[t], states[t + 1])
    c_n = (cells[num_steps] if keep_cache else cells[num_steps % 2]).copy()
    cache = None
    if keep_cache:
        cache = LSTMCache(x, weight_ih, gates_all, cells, states, h_full_all, weight_hh, weight_t,
                          bias_hh is not None, weight_hr, active)
    return _output(states, active, lengths), states[num_steps].copy(), c_n, cache


def lstm_backward(grad_output, grad_h_n, grad_c_n, cache: LSTMCache, input_grad=True):
    """-> grad_x, grad_h0 (N,H_out), grad_c0 (N,H), {"weight_ih", "bias_ih", "weight_hh", "bias_hh", "weight_hr"}"""
    check_cache(cache, "lstm_backward")
    record("lstm_backward")
    gates_all, cells, states, weight_hr, active = cache.gates, cache.cells, cache.states, cache.weight_hr, \
        cache.active
    num_steps, batch, four_hidden = gates_all.shape
    hidden = four_hidden // 4
    out_size = states.shape[-1]
    product = BackwardProduct(cache.weight_hh, num_steps, batch, cache.weight_hh_t)
    grad_outputs = _grad_output_steps(grad_output, num_steps, batch, out_size)
    grad_rec = _start_grad(grad_h_n, (batch, out_size))
    grad_carry = np.zeros((batch, out_size), dtype=np.float32)
    grad_c = _start_grad(grad_c_n, (batch, hidden))
    grad_pre = np.empty_like(gates_all)  # = grad_x_proj
    projected = weight_hr is not None
    if projected:
        weight_hr_c = _contiguous(weight_hr)
        grad_h_new_all = np.empty((num_steps, batch, out_size), dtype=np.float32)
        grad_h_full = np.empty((batch, hidden), dtype=np.float32)
        zeros_hidden = np.zeros((batch, hidden), dtype=np.float32)
        scratch_carry = np.zeros((batch, hidden), dtype=np.float32)
    if COMPILED_TIME_LOOPS and not projected:
        record("time_loop")
        time_loops.lstm_backward_loop(gates_all, cells, grad_rec, grad_carry,
                                      _grad_output_blocks(grad_output, num_steps, batch, out_size), grad_c, active,
                                      grad_pre, *product.loop_arguments())
    for t in reversed(range(0 if COMPILED_TIME_LOOPS and not projected else num_steps)):
        if not projected:
            lstm_backward_step(gates_all[t], cells[t], cells[t + 1], grad_rec, grad_carry, grad_outputs[t],
                               grad_c, active[t], grad_pre[t])
        else:
            masked_grad_sum(grad_rec, grad_carry, grad_outputs[t], active[t], grad_h_new_all[t])
            np.matmul(grad_h_new_all[t], weight_hr_c, out=grad_h_full)
            scratch_carry[:] = 0.0
            lstm_backward_step(gates_all[t], cells[t], cells[t + 1], grad_h_full, scratch_carry, zeros_hidden,
                               grad_c, active[t], grad_pre[t])
        product(grad_pre[t], grad_rec)
    grad_x, grads = parameter_grads(grad_pre, cache, grad_h_new=grad_h_new_all if projected else None,
                                    input_grad=input_grad)
    return grad_x, grad_rec + grad_carry, grad_c, grads


# ------------------------------------------------------------------------------------------------
# GRU
# ------------------------------------------------------------------------------------------------
def gru_forward(x, h0, weight_ih, bias_ih, weight_hh, bias_hh, lengths=None):
    """x (L,N,H_in), h0 (N,H) -> output (L,N,H), h_n (N,H), GRUCache"""
    _require_float32(x, h0, weight_ih, bias_ih, weight_hh, bias_hh)
    record("gru_forward")
    x_proj = _gate_buffer(project_input(x, weight_ih, bias_ih))
    num_steps, batch, three_hidden = x_proj.shape
    hidden = three_hidden // 3
    keep_cache = backend.is_grad_enabled()
    active = _active_rows(lengths, num_steps, batch)
    bias = _bias_or_zeros(bias_hh, three_hidden)
    weight_t = _transposed(weight_hh, num_steps)
    states = np.empty((num_steps + 1, batch, hidden), dtype=np.float32)
    states[0] = h0
    cache_steps = num_steps if keep_cache else 1
    rzn_all = x_proj  # the activations are written over x_proj (see the module docstring)
    hidden_n_all = np.empty((cache_steps, batch, hidden), dtype=np.float32)
    hidden_gates = np.empty((batch, three_hidden), dtype=np.float32)
    if COMPILED_TIME_LOOPS:
        record("time_loop")
        time_loops.gru_forward_loop(rzn_all, states, hidden_n_all, *_forward_weight(weight_t, weight_hh), bias, active,
                                    hidden_gates)
    else:
        for t in range(num_steps):
            k = t if keep_cache else 0
            np.matmul(states[t], weight_t, out=hidden_gates)
            gru_forward_step(hidden_gates, rzn_all[t], bias, states[t], active[t], hidden_n_all[k], states[t + 1])
    cache = None
    if keep_cache:
        cache = GRUCache(x, weight_ih, rzn_all, hidden_n_all, states, weight_hh, weight_t, bias_hh is not None,
                         active)
    return _output(states, active, lengths), states[num_steps].copy(), cache


def gru_backward(grad_output, grad_h_n, cache: GRUCache, input_grad=True):
    """-> grad_x, grad_h0 (N,H), {"weight_ih", "bias_ih", "weight_hh", "bias_hh"}"""
    check_cache(cache, "gru_backward")
    record("gru_backward")
    rzn_all, states, active = cache.gates, cache.states, cache.active
    num_steps, batch, three_hidden = rzn_all.shape
    hidden = three_hidden // 3
    product = BackwardProduct(cache.weight_hh, num_steps, batch, cache.weight_hh_t)
    grad_rec = _start_grad(grad_h_n, (batch, hidden))
    grad_carry = np.zeros((batch, hidden), dtype=np.float32)
    grad_x_proj = np.empty_like(rzn_all)
    grad_hidden_gates = np.empty((batch, three_hidden), dtype=np.float32)  # one step's; rebuilt below for W_hh
    if COMPILED_TIME_LOOPS:
        record("time_loop")
        time_loops.gru_backward_loop(rzn_all, cache.hidden_n, states, grad_rec, grad_carry,
                                     _grad_output_blocks(grad_output, num_steps, batch, hidden), active, grad_x_proj,
                                     grad_hidden_gates, *product.loop_arguments())
    else:
        grad_outputs = _grad_output_steps(grad_output, num_steps, batch, hidden)
        for t in reversed(range(num_steps)):
            gru_backward_step(rzn_all[t], cache.hidden_n[t], states[t], grad_rec, grad_carry, grad_outputs[t],
                              active[t], grad_x_proj[t], grad_hidden_gates)
            product(grad_hidden_gates, grad_rec)
    # grad of h W_hh.T + b_hh = grad_x_proj except the n part, which is scaled by r
    rows = num_steps * batch
    flat_x = grad_x_proj.reshape(rows, three_hidden)
    grad_hidden_n = (grad_x_proj[:, :, 2 * hidden:] * rzn_all[:, :, :hidden]).reshape(rows, hidden)
    h_prev = states[:num_steps].reshape(rows, hidden)
    grad_weight_hh = np.empty((three_hidden, hidden), dtype=np.float32)
    np.matmul(flat_x[:, : 2 * hidden].T, h_prev, out=grad_weight_hh[: 2 * hidden])
    np.matmul(grad_hidden_n.T, h_prev, out=grad_weight_hh[2 * hidden:])
    grad_bias_hh = None
    if cache.has_bias:
        grad_bias_hh = np.concatenate([flat_x[:, : 2 * hidden].sum(axis=0), grad_hidden_n.sum(axis=0)])
    grad_x, grad_weight_ih, grad_bias_ih = project_input_backward(grad_x_proj, cache.x, cache.weight_ih,
                                                                  cache.has_bias, input_grad=input_grad)
    grads = {"weight_ih": grad_weight_ih, "bias_ih": grad_bias_ih, "weight_hh": grad_weight_hh,
             "bias_hh": grad_bias_hh}
    return grad_x, grad_rec + grad_carry, grads


# ------------------------------------------------------------------------------------------------
# the compiled twins of the registered cells, by mode name (rnnlab.nn.recurrent_math.Cell's signatures)
# ------------------------------------------------------------------------------------------------
_THIS_MODULE = sys.modules[__name__]
TWINS = {  # mode -> (forward, backward); the options (RNN's nonlinearity) come from the registered Cell
    "RNN_TANH": rnn_adapters(_THIS_MODULE),
    "RNN_RELU": rnn_adapters(_THIS_MODULE),
    "LSTM": lstm_adapters(_THIS_MODULE),
    "GRU": gru_adapters(_THIS_MODULE),
}


_COMPILED_CELLS: dict = {}  # mode -> (the registered Cell, that Cell with its twin's functions)


def compiled_cell(mode: str):
    """The registered Cell ``mode`` with the forward and backward of its twin in :data:`TWINS` (its gate
    count, states and options unchanged), or None when ``mode`` has no twin."""
    twin = TWINS.get(mode)
    if twin is None:
        return None
    cell = CELLS[mode]
    known = _COMPILED_CELLS.get(mode)
    if known is None or known[0] is not cell:  # built once per registration, not once per forward
        known = _COMPILED_CELLS[mode] = (cell, dataclasses.replace(cell, forward=twin[0], backward=twin[1]))
    return known[1]
