"""The fast path: the same six functions as :mod:`rnnlab.nn.recurrent_math`, same signatures, same numbers.

Read ``recurrent_math.py`` for the math; this file only changes how it is executed:

- **One fused kernel per step.** NumPy walks memory once per operation and allocates a temporary for
  each; an LSTM step is ~20 of them. Here each step is one matrix product (BLAS, ``out=`` into a
  preallocated buffer) and one numba-compiled call that does all the element-wise work of the step
  (bias, activations, cell update, masking) row by row, in a few short loops that LLVM vectorises (it
  gives up on a loop that touches too many arrays: one big loop ran 5x slower).
- **Vectorisable activations.** numba calls the C library's scalar ``tanhf`` (15 ns each), which would
  cost more than the matrix products. Activations use Eigen's rational approximation of tanh
  (plain arithmetic, so LLVM vectorises the loop; max error 3.4e-7 absolute, a few float32 ulp) and
  ``sigmoid(z) = 0.5 * (1 + tanh(z / 2))``, the same formula as the reference.
- **Preallocated caches, kept small.** The forward writes straight into the arrays its backward reads:
  one ``(L+1, N, H)`` array of states (the output is a view of it) and, for LSTM and GRU, the gate
  activations written over ``x_proj`` itself (**the fast LSTM/GRU forward overwrites ``x_proj``**: the
  layer computes it afresh for each call and never reads it again; pass a copy if you need it). The
  LSTM backward recomputes ``tanh(c)`` instead of keeping it. Together this keeps a training step's
  peak memory at or below PyTorch's. The backward writes each step's gate gradients straight into
  ``grad_x_proj``; weight gradients are one product over all steps.
- **Transposes made once per call.** ``W_hh.T`` is copied contiguous (32 rows at a time: NumPy's own
  transposing copy of a 2048 x 512 matrix takes 9x longer) when the sequence is long enough to pay
  for the copy (BLAS runs ~30% faster on it); short calls (sampling) use the strided view.

Measured effect and what limits it (OpenBLAS's small per-step products): ``benchmarks/RESULTS.md``.

Only float32 is accelerated (the default dtype); float64 arrays (``rnnlab.gradcheck``) go to the
reference, which is exact in float64.

Variable lengths follow the reference: a row with ``t >= lengths[n]`` keeps its state and outputs 0;
in the backward pass its state gradient is carried past the step unchanged.

Kernels are compiled on first use and cached on disk (``cache=True``); set ``RNNLAB_FAST=0`` to use
the reference everywhere (see :mod:`rnnlab.nn.fast_setup`).
"""
from __future__ import annotations

import numba
import numpy as np

from .. import backend
from . import recurrent_math

# error_model="numpy": a division by zero gives inf like NumPy instead of a Python exception check,
# which is what lets LLVM vectorise loops containing a division. Of the fast-math flags only "contract"
# is on: a * b + c may become one fused multiply-add (rounded once instead of twice, 1.3x faster
# activations); no reassociation, no approximate division, so NaN and inf behave as in NumPy.
_FASTMATH = {"contract"}
_jit = numba.njit(cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)
_inline = numba.njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")

_f32 = np.float32
# Eigen's float tanh: tanh(x) ~ x * P(x^2) / Q(x^2) on [-c, c]; beyond c tanh rounds to +-1 in float32.
_CLAMP = _f32(7.90531110763549805)
_A13, _A11, _A9 = _f32(-2.76076847742355e-16), _f32(2.00018790482477e-13), _f32(-8.60467152213735e-11)
_A7, _A5, _A3, _A1 = _f32(5.12229709037114e-08), _f32(1.48572235717979e-05), _f32(6.37261928875436e-04), \
    _f32(4.89352455891786e-03)
_B6, _B4, _B2, _B0 = _f32(1.19825839466702e-06), _f32(1.18534705686654e-04), _f32(2.26843463243900e-03), \
    _f32(4.89352518554385e-03)
_TINY = _f32(0.0004)  # below this tanh(x) == x in float32
_HALF, _ONE, _ZERO = _f32(0.5), _f32(1.0), _f32(0.0)

# Below this many steps the transposed copy of W_hh costs more than it saves.
_TRANSPOSE_MIN_STEPS = 8


@_inline
def _tanh(a):
    x = a if a < _CLAMP else _CLAMP
    x = x if x > -_CLAMP else -_CLAMP
    x2 = x * x
    p = x2 * _A13 + _A11
    p = p * x2 + _A9
    p = p * x2 + _A7
    p = p * x2 + _A5
    p = p * x2 + _A3
    p = p * x2 + _A1
    p = p * x
    q = x2 * _B6 + _B4
    q = q * x2 + _B2
    q = q * x2 + _B0
    r = p / q
    return a if abs(a) < _TINY else r


@_inline
def _sigmoid(a):
    return _HALF * (_ONE + _tanh(_HALF * a))


@_jit
def tanh_array(x, out):
    """Element-wise tanh of a C-contiguous float32 array (the kernels' tanh, exposed for tests)."""
    flat_in, flat_out = x.ravel(), out.ravel()
    for k in range(flat_in.shape[0]):
        flat_out[k] = _tanh(flat_in[k])


# ------------------------------------------------------------------------------------------------
# Step kernels. Each works row by row on 1-D row views with short loops of one purpose each: LLVM
# vectorises a loop only when it can check at run time that its arrays do not overlap, and gives up
# when a loop touches too many of them, so the work of a step is split into passes over few arrays.
# The output of a layer is not written here: it is the array of states (zeros at padded steps are
# put in once, after the loop).
# ------------------------------------------------------------------------------------------------
@_jit
def _rnn_forward_step(pre, x_proj_t, bias, h_prev, active, relu, h_out):
    """pre (N,H) = h_prev @ W_hh.T on entry. h_out = act(x + pre + b) on active rows, h_prev elsewhere."""
    batch, hidden = pre.shape
    for n in range(batch):
        out_row = h_out[n]
        if active[n]:
            pre_row, x_row = pre[n], x_proj_t[n]
            for j in range(hidden):
                pre_row[j] = (x_row[j] + pre_row[j]) + bias[j]
            if relu:
                for j in range(hidden):
                    z = pre_row[j]
                    out_row[j] = z if z > _ZERO else _ZERO
            else:
                for j in range(hidden):
                    out_row[j] = _tanh(pre_row[j])
        else:
            out_row[:] = h_prev[n]


@_jit
def _rnn_backward_step(h_t, grad_rec, grad_carry, grad_output_t, active, relu, grad_pre_t):
    """Incoming state gradient = grad_rec + grad_carry. Active rows: grad_pre = (that + grad_out) * act';
    carried rows keep it in grad_carry for the step before."""
    batch, hidden = h_t.shape
    for n in range(batch):
        rec_row, carry_row, pre_row = grad_rec[n], grad_carry[n], grad_pre_t[n]
        if active[n]:
            y_row, out_row = h_t[n], grad_output_t[n]
            for j in range(hidden):
                pre_row[j] = (rec_row[j] + carry_row[j]) + out_row[j]
            if relu:
                for j in range(hidden):
                    pre_row[j] = pre_row[j] if y_row[j] > _ZERO else _ZERO
            else:
                for j in range(hidden):
                    pre_row[j] = pre_row[j] * (_ONE - y_row[j] * y_row[j])
            carry_row[:] = _ZERO
        else:
            for j in range(hidden):
                carry_row[j] = rec_row[j] + carry_row[j]
            pre_row[:] = _ZERO


@_jit
def _lstm_forward_step(pre, gates, bias, scale, offset, c_prev, h_prev, active, c_out, h_out):
    """pre (N,4H) = h_prev @ W_hh.T; gates holds x_proj_t on entry, activated i, f, g, o on exit
    (active rows). h_out gets o * tanh(c) (before any projection); inactive rows keep c and h.

    All four activations in one loop: act(z) = offset + scale * tanh(scale * z), with (offset, scale)
    = (0.5, 0.5) for the sigmoid gates i, f, o (0.5 * (1 + tanh(z / 2)), as the reference) and (0, 1)
    for g — one loop instead of four is 2x faster, with the same numbers."""
    batch, four_hidden = gates.shape
    hidden = four_hidden // 4
    for n in range(batch):
        if active[n]:
            gate_row, pre_row = gates[n], pre[n]
            for k in range(four_hidden):
                z = (gate_row[k] + pre_row[k]) + bias[k]
                gate_row[k] = offset[k] + scale[k] * _tanh(scale[k] * z)
            c_prev_row, c_row, h_row = c_prev[n], c_out[n], h_out[n]
            for j in range(hidden):
                c_row[j] = gate_row[hidden + j] * c_prev_row[j] + gate_row[j] * gate_row[2 * hidden + j]
            for j in range(hidden):
                h_row[j] = gate_row[3 * hidden + j] * _tanh(c_row[j])
        else:
            c_out[n, :] = c_prev[n]
            h_out[n, :] = h_prev[n]


_LSTM_ACTIVATIONS = {}  # hidden size -> (scale, offset) of i, f, g, o


def _lstm_activation_constants(hidden):
    constants = _LSTM_ACTIVATIONS.get(hidden)
    if constants is None:
        scale = np.full(4 * hidden, 0.5, dtype=np.float32)
        offset = np.full(4 * hidden, 0.5, dtype=np.float32)
        scale[2 * hidden:3 * hidden], offset[2 * hidden:3 * hidden] = 1.0, 0.0
        if len(_LSTM_ACTIVATIONS) > 64:
            _LSTM_ACTIVATIONS.clear()
        constants = _LSTM_ACTIVATIONS[hidden] = (scale, offset)
    return constants


@_jit
def _lstm_backward_step(gates_t, c_prev_t, c_t, grad_rec, grad_carry, grad_output_t, grad_c, active,
                        grad_pre_t):
    """Incoming grad h = grad_rec + grad_carry (+ grad_output_t on active rows); grad_c is updated in
    place to the gradient of c_{t-1}; grad_pre_t gets the gate pre-activation gradients. tanh(c_t) is
    recomputed (one activation per cell) rather than kept from the forward: L*N*H floats less."""
    batch, four_hidden = gates_t.shape
    hidden = four_hidden // 4
    for n in range(batch):
        rec_row, carry_row, grad_c_row, pre_row = grad_rec[n], grad_carry[n], grad_c[n], grad_pre_t[n]
        if active[n]:
            gate_row, c_row, out_row = gates_t[n], c_t[n], grad_output_t[n]
            # pass 1: grad h (kept in the o slot for now) and grad c
            for j in range(hidden):
                grad_h = (rec_row[j] + carry_row[j]) + out_row[j]
                tanh_c = _tanh(c_row[j])
                o = gate_row[3 * hidden + j]
                pre_row[3 * hidden + j] = grad_h * tanh_c
                grad_c_row[j] = grad_c_row[j] + grad_h * o * (_ONE - tanh_c * tanh_c)
            # pass 2: the four pre-activation gradients and grad c_{t-1}
            c_prev_row = c_prev_t[n]
            for j in range(hidden):
                i = gate_row[j]
                f = gate_row[hidden + j]
                g = gate_row[2 * hidden + j]
                o = gate_row[3 * hidden + j]
                grad_c_new = grad_c_row[j]
                pre_row[j] = grad_c_new * g * i * (_ONE - i)
                pre_row[hidden + j] = grad_c_new * c_prev_row[j] * f * (_ONE - f)
                pre_row[2 * hidden + j] = grad_c_new * i * (_ONE - g * g)
                pre_row[3 * hidden + j] = pre_row[3 * hidden + j] * o * (_ONE - o)
                grad_c_row[j] = grad_c_new * f
            carry_row[:] = _ZERO
        else:
            for j in range(hidden):
                carry_row[j] = rec_row[j] + carry_row[j]
            pre_row[:] = _ZERO


@_jit
def _mask_state(h_new, h_prev, active, h_out):
    """Projected LSTM: h_out = h_new on active rows, h_prev elsewhere."""
    for n in range(h_new.shape[0]):
        h_out[n, :] = h_new[n] if active[n] else h_prev[n]


@_jit
def _masked_grad_sum(grad_rec, grad_carry, grad_output_t, active, grad_h_new):
    """Projected LSTM: grad of the projected h_new = rec + carry + out (active rows), else carried."""
    batch, size = grad_rec.shape
    for n in range(batch):
        rec_row, carry_row, new_row = grad_rec[n], grad_carry[n], grad_h_new[n]
        if active[n]:
            out_row = grad_output_t[n]
            for j in range(size):
                new_row[j] = (rec_row[j] + carry_row[j]) + out_row[j]
            carry_row[:] = _ZERO
        else:
            for j in range(size):
                carry_row[j] = rec_row[j] + carry_row[j]
            new_row[:] = _ZERO


@_jit
def _gru_forward_step(hidden_gates, rzn, bias, h_prev, active, hidden_n_out, h_out):
    """hidden_gates (N,3H) = h_prev @ W_hh.T; rzn holds x_proj_t on entry, activated r, z, n on exit."""
    batch, three_hidden = hidden_gates.shape
    hidden = three_hidden // 3
    for n in range(batch):
        if active[n]:
            hg_row, rzn_row, hn_row = hidden_gates[n], rzn[n], hidden_n_out[n]
            h_prev_row, h_row = h_prev[n], h_out[n]
            for k in range(2 * hidden):                      # r, z
                rzn_row[k] = _sigmoid(rzn_row[k] + (hg_row[k] + bias[k]))
            for j in range(hidden):                          # n
                hidden_n = hg_row[2 * hidden + j] + bias[2 * hidden + j]
                hn_row[j] = hidden_n
                rzn_row[2 * hidden + j] = rzn_row[2 * hidden + j] + rzn_row[j] * hidden_n
            for j in range(hidden):
                rzn_row[2 * hidden + j] = _tanh(rzn_row[2 * hidden + j])
            for j in range(hidden):
                new = rzn_row[2 * hidden + j]
                h_row[j] = new + rzn_row[hidden + j] * (h_prev_row[j] - new)
        else:
            h_out[n, :] = h_prev[n]
            rzn[n, :] = _ZERO
            hidden_n_out[n, :] = _ZERO


@_jit
def _gru_backward_step(rzn_t, hidden_n_t, h_prev_t, grad_rec, grad_carry, grad_output_t, active,
                       grad_x_proj_t, grad_hidden_gates_t):
    """grad_carry on exit: the part of grad h_{t-1} that does not go through W_hh (z * grad h_new on
    active rows, the whole incoming gradient on carried rows)."""
    batch, three_hidden = rzn_t.shape
    hidden = three_hidden // 3
    for n in range(batch):
        rec_row, carry_row = grad_rec[n], grad_carry[n]
        x_row, hg_row = grad_x_proj_t[n], grad_hidden_gates_t[n]
        if active[n]:
            rzn_row, hn_row, h_prev_row, out_row = rzn_t[n], hidden_n_t[n], h_prev_t[n], grad_output_t[n]
            for j in range(hidden):   # grad h, parked in the r slot of grad_hidden_gates
                hg_row[j] = (rec_row[j] + carry_row[j]) + out_row[j]
            for j in range(hidden):
                grad_h = hg_row[j]
                r = rzn_row[j]
                z = rzn_row[hidden + j]
                new = rzn_row[2 * hidden + j]
                grad_n_pre = grad_h * (_ONE - z) * (_ONE - new * new)
                grad_z_pre = grad_h * (h_prev_row[j] - new) * z * (_ONE - z)
                grad_r_pre = grad_n_pre * hn_row[j] * r * (_ONE - r)
                x_row[j] = grad_r_pre
                x_row[hidden + j] = grad_z_pre
                x_row[2 * hidden + j] = grad_n_pre
                carry_row[j] = grad_h * z
            for j in range(hidden):
                hg_row[j] = x_row[j]
                hg_row[hidden + j] = x_row[hidden + j]
                hg_row[2 * hidden + j] = x_row[2 * hidden + j] * rzn_row[j]
        else:
            for j in range(hidden):
                carry_row[j] = rec_row[j] + carry_row[j]
            x_row[:] = _ZERO
            hg_row[:] = _ZERO


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
_FLOAT32 = np.dtype(np.float32)


def _accelerated(*arrays) -> bool:
    """True when the fast kernels apply: NumPy float32 arrays (None entries ignored)."""
    if backend.xp is not np:
        return False
    for array in arrays:
        if array is not None and (type(array) is not np.ndarray or array.dtype != _FLOAT32):
            return False
    return True


def _gate_buffer(x_proj):
    """x_proj itself when it can take the gate activations in place (C-contiguous, float32, writeable)."""
    flags = x_proj.flags
    if flags.c_contiguous and flags.writeable and x_proj.dtype == _FLOAT32:
        return x_proj
    return np.array(x_proj, dtype=np.float32, order="C")


def _is_fast_cache(cache) -> bool:
    """Fast caches start with the tag "fast"; anything else came from the reference (float64)."""
    return isinstance(cache[0], str) and cache[0] == "fast"


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


def _layer_output(states, active, lengths):
    """The layer's output: the states after each step, a view when no step is padded; 0 at padded steps.

    The view is read-only while a backward pass still needs the states: writing into the output in
    place raises (as PyTorch does for a tensor saved for backward) instead of corrupting gradients."""
    if lengths is None:
        output = states[1:]
        if backend.is_grad_enabled():
            output.flags.writeable = False
        return output
    return np.where(active[:, :, None], states[1:], np.float32(0))


def _transposed(weight, num_steps):
    """weight.T, copied C-contiguous when the sequence is long enough to pay for the copy."""
    if num_steps < _TRANSPOSE_MIN_STEPS:
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


@_jit
def _transpose_into(a, out):
    """out = a.T for small blocks (one step's gradients)."""
    rows, cols = a.shape
    for k in range(cols):
        for n in range(rows):
            out[k, n] = a[n, k]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def scatter_add_rows_into(ids, rows, out):
    """out[ids[k]] += rows[k] for every k, in order (the Embedding backward's per-id sums, one pass:
    3-7x faster than NumPy's sort-and-sum for a char model's (2048, 512) gradient)."""
    for k in range(rows.shape[0]):
        out_row, row = out[ids[k]], rows[k]
        for j in range(row.shape[0]):
            out_row[j] += row[j]


class _BackwardProduct:
    """``out = grad @ W_hh`` for every step of a backward pass, ``grad`` (N, G), ``W_hh`` (G, H).

    For long sequences it is computed as ``(W_hh.T @ grad.T).T`` with ``W_hh.T`` copied contiguous once:
    OpenBLAS runs that shape 1.3-1.7x faster (32x512 @ 512x128: 42 -> 24 us; 32x2048 @ 2048x512:
    457 -> 343 us), which more than pays for transposing the two small blocks each step."""

    def __init__(self, weight, num_steps, batch, weight_t=None):
        self.transposed = num_steps >= _TRANSPOSE_MIN_STEPS
        if self.transposed:
            # the forward's contiguous copy of W_hh.T when it made one (W_hh is unchanged until the update)
            reuse = weight_t is not None and weight_t.flags.c_contiguous and weight_t.shape == weight.shape[::-1]
            self.weight_t = weight_t if reuse else _transposed(weight, num_steps)  # (H, G)
            self.grad_t = np.empty((weight.shape[0], batch), dtype=np.float32)
            self.out_t = np.empty((weight.shape[1], batch), dtype=np.float32)
        else:
            self.weight = _contiguous(weight)

    def __call__(self, grad, out):
        if self.transposed:
            _transpose_into(grad, self.grad_t)
            np.matmul(self.weight_t, self.grad_t, out=self.out_t)
            _transpose_into(self.out_t, out)
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
def rnn_forward(x_proj, h0, weight_hh, bias_hh, nonlinearity="tanh", lengths=None):
    """x_proj (L,N,H), h0 (N,H) -> output (L,N,H), h_n (N,H), cache (as :func:`recurrent_math.rnn_forward`)"""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    if not _accelerated(x_proj, h0, weight_hh, bias_hh):
        return recurrent_math.rnn_forward(x_proj, h0, weight_hh, bias_hh, nonlinearity, lengths)
    x_proj = _contiguous(x_proj)
    num_steps, batch, hidden = x_proj.shape
    active = _active_rows(lengths, num_steps, batch)
    relu = nonlinearity == "relu"
    bias = _bias_or_zeros(bias_hh, hidden)
    weight_t = _transposed(weight_hh, num_steps)
    states = np.empty((num_steps + 1, batch, hidden), dtype=np.float32)  # states[t] = h_{t-1}
    states[0] = h0
    pre = np.empty((batch, hidden), dtype=np.float32)
    for t in range(num_steps):
        np.matmul(states[t], weight_t, out=pre)
        _rnn_forward_step(pre, x_proj[t], bias, states[t], active[t], relu, states[t + 1])
    output = _layer_output(states, active, lengths)
    cache = None
    if backend.is_grad_enabled():
        cache = ("fast", states, weight_hh, bias_hh is not None, relu, active, weight_t)
    return output, states[num_steps].copy(), cache


def rnn_backward(grad_output, grad_h_n, cache):
    """-> grad_x_proj (L,N,H), grad_h0 (N,H), {"weight_hh", "bias_hh"}"""
    if cache is None:
        raise RuntimeError("rnn_backward: no cache (the forward ran under no_grad)")
    if not _is_fast_cache(cache):
        return recurrent_math.rnn_backward(grad_output, grad_h_n, cache)
    _, states, weight_hh, has_bias, relu, active, weight_t = cache
    num_steps, batch, hidden = states.shape[0] - 1, states.shape[1], states.shape[2]
    product = _BackwardProduct(weight_hh, num_steps, batch, weight_t)
    grad_outputs = _grad_output_steps(grad_output, num_steps, batch, hidden)
    grad_rec = _start_grad(grad_h_n, (batch, hidden))
    grad_carry = np.zeros((batch, hidden), dtype=np.float32)
    grad_pre = np.empty((num_steps, batch, hidden), dtype=np.float32)
    for t in reversed(range(num_steps)):
        _rnn_backward_step(states[t + 1], grad_rec, grad_carry, grad_outputs[t], active[t], relu, grad_pre[t])
        product(grad_pre[t], grad_rec)
    flat_grad_pre = grad_pre.reshape(num_steps * batch, hidden)
    grads = {
        "weight_hh": flat_grad_pre.T @ states[:num_steps].reshape(num_steps * batch, hidden),
        "bias_hh": flat_grad_pre.sum(axis=0) if has_bias else None,
    }
    return grad_pre, grad_rec + grad_carry, grads


# ------------------------------------------------------------------------------------------------
# LSTM
# ------------------------------------------------------------------------------------------------
def lstm_forward(x_proj, h0, c0, weight_hh, bias_hh, weight_hr=None, lengths=None):
    """x_proj (L,N,4H), h0 (N,H_out), c0 (N,H) -> output (L,N,H_out), h_n, c_n, cache"""
    if not _accelerated(x_proj, h0, c0, weight_hh, bias_hh, weight_hr):
        return recurrent_math.lstm_forward(x_proj, h0, c0, weight_hh, bias_hh, weight_hr, lengths)
    x_proj = _gate_buffer(x_proj)
    num_steps, batch, four_hidden = x_proj.shape
    hidden = four_hidden // 4
    out_size = h0.shape[-1]
    keep_cache = backend.is_grad_enabled()
    active = _active_rows(lengths, num_steps, batch)
    bias = _bias_or_zeros(bias_hh, four_hidden)
    weight_t = _transposed(weight_hh, num_steps)
    projected = weight_hr is not None
    scale, offset = _lstm_activation_constants(hidden)
    if num_steps == 1 and not keep_cache and not projected:
        # One step without a cache (generation, one character at a time): no state arrays to build.
        pre = np.matmul(h0, weight_t)
        c_n, h_n = np.empty_like(c0), np.empty((batch, out_size), dtype=np.float32)
        _lstm_forward_step(pre, x_proj[0], bias, scale, offset, c0, h0, active[0], c_n, h_n)
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
    if projected:
        weight_hr_t = _transposed(weight_hr, num_steps)
        h_full_all = np.empty((cache_steps, batch, hidden), dtype=np.float32)  # o * tanh(c), unprojected
        h_new = np.empty((batch, out_size), dtype=np.float32)
        zeros_hidden = np.zeros((batch, hidden), dtype=np.float32)
    for t in range(num_steps):
        k = t if keep_cache else 0
        c_prev, c_next = (cells[t], cells[t + 1]) if keep_cache else (cells[t % 2], cells[(t + 1) % 2])
        np.matmul(states[t], weight_t, out=pre)
        if not projected:
            _lstm_forward_step(pre, gates_all[t], bias, scale, offset, c_prev, states[t], active[t], c_next,
                               states[t + 1])
        else:
            h_full = h_full_all[k]
            _lstm_forward_step(pre, gates_all[t], bias, scale, offset, c_prev, zeros_hidden, active[t], c_next,
                               h_full)
            np.matmul(h_full, weight_hr_t, out=h_new)
            _mask_state(h_new, states[t], active[t], states[t + 1])
    c_n = (cells[num_steps] if keep_cache else cells[num_steps % 2]).copy()
    output = _layer_output(states, active, lengths)
    cache = None
    if keep_cache:
        cache = ("fast", gates_all, cells, states, weight_hh, bias_hh is not None, weight_hr,
                 h_full_all if projected else None, active, weight_t)
    return output, states[num_steps].copy(), c_n, cache


def lstm_backward(grad_output, grad_h_n, grad_c_n, cache):
    """-> grad_x_proj (L,N,4H), grad_h0 (N,H_out), grad_c0 (N,H), {"weight_hh", "bias_hh", "weight_hr"}"""
    if cache is None:
        raise RuntimeError("lstm_backward: no cache (the forward ran under no_grad)")
    if not _is_fast_cache(cache):
        return recurrent_math.lstm_backward(grad_output, grad_h_n, grad_c_n, cache)
    _, gates_all, cells, states, weight_hh, has_bias, weight_hr, h_full_all, active, weight_t = cache
    num_steps, batch, four_hidden = gates_all.shape
    hidden = four_hidden // 4
    out_size = states.shape[-1]
    product = _BackwardProduct(weight_hh, num_steps, batch, weight_t)
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
    for t in reversed(range(num_steps)):
        if not projected:
            _lstm_backward_step(gates_all[t], cells[t], cells[t + 1], grad_rec, grad_carry, grad_outputs[t],
                                grad_c, active[t], grad_pre[t])
        else:
            _masked_grad_sum(grad_rec, grad_carry, grad_outputs[t], active[t], grad_h_new_all[t])
            np.matmul(grad_h_new_all[t], weight_hr_c, out=grad_h_full)
            scratch_carry[:] = 0.0
            _lstm_backward_step(gates_all[t], cells[t], cells[t + 1], grad_h_full, scratch_carry, zeros_hidden,
                                grad_c, active[t], grad_pre[t])
        product(grad_pre[t], grad_rec)
    flat_grad_pre = grad_pre.reshape(num_steps * batch, four_hidden)
    grads = {
        "weight_hh": flat_grad_pre.T @ states[:num_steps].reshape(num_steps * batch, out_size),
        "bias_hh": flat_grad_pre.sum(axis=0) if has_bias else None,
        "weight_hr": None,
    }
    if projected:
        grads["weight_hr"] = (grad_h_new_all.reshape(num_steps * batch, out_size).T
                              @ h_full_all.reshape(num_steps * batch, hidden))
    return grad_pre, grad_rec + grad_carry, grad_c, grads


# ------------------------------------------------------------------------------------------------
# GRU
# ------------------------------------------------------------------------------------------------
def gru_forward(x_proj, h0, weight_hh, bias_hh, lengths=None):
    """x_proj (L,N,3H), h0 (N,H) -> output (L,N,H), h_n (N,H), cache"""
    if not _accelerated(x_proj, h0, weight_hh, bias_hh):
        return recurrent_math.gru_forward(x_proj, h0, weight_hh, bias_hh, lengths)
    x_proj = _gate_buffer(x_proj)
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
    for t in range(num_steps):
        k = t if keep_cache else 0
        np.matmul(states[t], weight_t, out=hidden_gates)
        _gru_forward_step(hidden_gates, rzn_all[t], bias, states[t], active[t], hidden_n_all[k], states[t + 1])
    output = _layer_output(states, active, lengths)
    cache = None
    if keep_cache:
        cache = ("fast", rzn_all, hidden_n_all, states, weight_hh, bias_hh is not None, active, weight_t)
    return output, states[num_steps].copy(), cache


def gru_backward(grad_output, grad_h_n, cache):
    """-> grad_x_proj (L,N,3H), grad_h0 (N,H), {"weight_hh", "bias_hh"}"""
    if cache is None:
        raise RuntimeError("gru_backward: no cache (the forward ran under no_grad)")
    if not _is_fast_cache(cache):
        return recurrent_math.gru_backward(grad_output, grad_h_n, cache)
    _, rzn_all, hidden_n_all, states, weight_hh, has_bias, active, weight_t = cache
    num_steps, batch, three_hidden = rzn_all.shape
    hidden = three_hidden // 3
    product = _BackwardProduct(weight_hh, num_steps, batch, weight_t)
    grad_outputs = _grad_output_steps(grad_output, num_steps, batch, hidden)
    grad_rec = _start_grad(grad_h_n, (batch, hidden))
    grad_carry = np.zeros((batch, hidden), dtype=np.float32)
    grad_x_proj = np.empty_like(rzn_all)
    grad_hidden_gates = np.empty((batch, three_hidden), dtype=np.float32)  # one step's; rebuilt below for W_hh
    for t in reversed(range(num_steps)):
        _gru_backward_step(rzn_all[t], hidden_n_all[t], states[t], grad_rec, grad_carry, grad_outputs[t],
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
    grads = {"weight_hh": grad_weight_hh, "bias_hh": None}
    if has_bias:
        grads["bias_hh"] = np.concatenate([flat_x[:, : 2 * hidden].sum(axis=0), grad_hidden_n.sum(axis=0)])
    return grad_x_proj, grad_rec + grad_carry, grads
