"""One step of each cell, compiled: the element-wise work between two matrix products.

The ``*_row`` functions update ONE sequence's row (1-D arrays) and are inlined into their callers:
the step kernels below (a whole batch, the training path :mod:`rnnlab.fast.recurrent`) and the
one-stream sampler (:mod:`rnnlab.fast.sampler`), so both run the same compiled cell update. The math
is :mod:`rnnlab.nn.recurrent_math`'s; read it there.

Each kernel works row by row with short loops of one purpose each: LLVM vectorises a loop only when
it can check at run time that its arrays do not overlap, and gives up when a loop touches too many of
them (one big loop ran 5x slower), so the work of a step is split into passes over few arrays. Rows
past a sequence's end (``active[n]`` False) keep their state.
"""
from __future__ import annotations

import numpy as np

from .activations import ONE, ZERO, sigmoid, tanh
from .jit import inline, kernel


# ------------------------------------------------------------------------------------------------
# one row: the cell update of one sequence
# ------------------------------------------------------------------------------------------------
@inline
def rnn_row(pre_row, x_row, bias, relu, h_row):
    """pre_row = h_prev @ W_hh.T on entry, the pre-activation on exit; h_row = act(x + pre + b_hh)."""
    hidden = pre_row.shape[0]
    for j in range(hidden):
        pre_row[j] = (x_row[j] + pre_row[j]) + bias[j]
    if relu:
        for j in range(hidden):
            z = pre_row[j]
            h_row[j] = z if z > ZERO else ZERO
    else:
        for j in range(hidden):
            h_row[j] = tanh(pre_row[j])


@inline
def lstm_row(gate_row, pre_row, bias, scale, offset, c_prev_row, c_row, h_row):
    """gate_row = x_proj_t on entry, activated i, f, g, o on exit; pre_row = h_prev @ W_hh.T.
    c_row = f * c_prev + i * g, h_row = o * tanh(c) (before any projection).

    All four activations in one loop: act(z) = offset + scale * tanh(scale * z), with (offset, scale)
    = (0.5, 0.5) for the sigmoid gates i, f, o (0.5 * (1 + tanh(z / 2)), as the reference) and (0, 1)
    for g: one loop instead of four is 2x faster, with the same numbers."""
    four_hidden = gate_row.shape[0]
    hidden = four_hidden // 4
    for k in range(four_hidden):
        z = (gate_row[k] + pre_row[k]) + bias[k]
        gate_row[k] = offset[k] + scale[k] * tanh(scale[k] * z)
    for j in range(hidden):
        c_row[j] = gate_row[hidden + j] * c_prev_row[j] + gate_row[j] * gate_row[2 * hidden + j]
    for j in range(hidden):
        h_row[j] = gate_row[3 * hidden + j] * tanh(c_row[j])


@inline
def gru_row(hg_row, rzn_row, bias, h_prev_row, hn_row, h_row):
    """hg_row = h_prev @ W_hh.T; rzn_row = x_proj_t on entry, activated r, z, n on exit;
    hn_row = h_prev W_hn.T + b_hn; h_row = n + z * (h_prev - n)."""
    hidden = h_row.shape[0]
    for k in range(2 * hidden):                      # r, z
        rzn_row[k] = sigmoid(rzn_row[k] + (hg_row[k] + bias[k]))
    for j in range(hidden):                          # n
        hidden_n = hg_row[2 * hidden + j] + bias[2 * hidden + j]
        hn_row[j] = hidden_n
        rzn_row[2 * hidden + j] = rzn_row[2 * hidden + j] + rzn_row[j] * hidden_n
    for j in range(hidden):
        rzn_row[2 * hidden + j] = tanh(rzn_row[2 * hidden + j])
    for j in range(hidden):
        new = rzn_row[2 * hidden + j]
        h_row[j] = new + rzn_row[hidden + j] * (h_prev_row[j] - new)


_LSTM_ACTIVATIONS = {}  # hidden size -> (scale, offset) of i, f, g, o


def lstm_activation_constants(hidden: int):
    """The (scale, offset) arrays (4H,) of :func:`lstm_row`."""
    constants = _LSTM_ACTIVATIONS.get(hidden)
    if constants is None:
        scale = np.full(4 * hidden, 0.5, dtype=np.float32)
        offset = np.full(4 * hidden, 0.5, dtype=np.float32)
        scale[2 * hidden:3 * hidden], offset[2 * hidden:3 * hidden] = 1.0, 0.0
        if len(_LSTM_ACTIVATIONS) > 64:
            _LSTM_ACTIVATIONS.clear()
        constants = _LSTM_ACTIVATIONS[hidden] = (scale, offset)
    return constants


# ------------------------------------------------------------------------------------------------
# forward steps: a batch of rows
# ------------------------------------------------------------------------------------------------
@kernel
def rnn_forward_step(pre, x_proj_t, bias, h_prev, active, relu, h_out):
    """pre (N,H) = h_prev @ W_hh.T on entry. h_out = act(x + pre + b) on active rows, h_prev elsewhere."""
    for n in range(pre.shape[0]):
        if active[n]:
            rnn_row(pre[n], x_proj_t[n], bias, relu, h_out[n])
        else:
            h_out[n, :] = h_prev[n]


@kernel
def lstm_forward_step(pre, gates, bias, scale, offset, c_prev, h_prev, active, c_out, h_out):
    """pre (N,4H) = h_prev @ W_hh.T; gates holds x_proj_t on entry, activated i, f, g, o on exit
    (active rows). h_out gets o * tanh(c) (before any projection); inactive rows keep c and h."""
    for n in range(gates.shape[0]):
        if active[n]:
            lstm_row(gates[n], pre[n], bias, scale, offset, c_prev[n], c_out[n], h_out[n])
        else:
            c_out[n, :] = c_prev[n]
            h_out[n, :] = h_prev[n]


@kernel
def gru_forward_step(hidden_gates, rzn, bias, h_prev, active, hidden_n_out, h_out):
    """hidden_gates (N,3H) = h_prev @ W_hh.T; rzn holds x_proj_t on entry, activated r, z, n on exit."""
    for n in range(rzn.shape[0]):
        if active[n]:
            gru_row(hidden_gates[n], rzn[n], bias, h_prev[n], hidden_n_out[n], h_out[n])
        else:
            h_out[n, :] = h_prev[n]
            rzn[n, :] = ZERO
            hidden_n_out[n, :] = ZERO


@kernel
def mask_state(h_new, h_prev, active, h_out):
    """Projected LSTM: h_out = h_new on active rows, h_prev elsewhere."""
    for n in range(h_new.shape[0]):
        h_out[n, :] = h_new[n] if active[n] else h_prev[n]


# ------------------------------------------------------------------------------------------------
# backward steps. The incoming state gradient is split in two: grad_rec (from the next step's
# product with W_hh) and grad_carry (what passes a step unchanged: padded rows, GRU's z * grad h).
# ------------------------------------------------------------------------------------------------
@inline
def incoming_grad(rec_row, carry_row, out_row, grad_row):
    """grad_row = the gradient of an active row's new state: grad_rec + grad_carry + grad_output."""
    for j in range(grad_row.shape[0]):
        grad_row[j] = (rec_row[j] + carry_row[j]) + out_row[j]


@inline
def carry_past(rec_row, carry_row, grad_row):
    """A padded row: its state passed the step unchanged, so does its gradient (kept in carry_row);
    no gradient for the step's gates (grad_row = 0)."""
    for j in range(carry_row.shape[0]):
        carry_row[j] = rec_row[j] + carry_row[j]
    grad_row[:] = ZERO


@kernel
def rnn_backward_step(h_t, grad_rec, grad_carry, grad_output_t, active, relu, grad_pre_t):
    """Active rows: grad_pre = (grad_rec + grad_carry + grad_out) * act'; carried rows keep the
    incoming gradient in grad_carry for the step before."""
    batch, hidden = h_t.shape
    for n in range(batch):
        rec_row, carry_row, pre_row = grad_rec[n], grad_carry[n], grad_pre_t[n]
        if active[n]:
            y_row = h_t[n]
            incoming_grad(rec_row, carry_row, grad_output_t[n], pre_row)
            if relu:
                for j in range(hidden):
                    pre_row[j] = pre_row[j] if y_row[j] > ZERO else ZERO
            else:
                for j in range(hidden):
                    pre_row[j] = pre_row[j] * (ONE - y_row[j] * y_row[j])
            carry_row[:] = ZERO
        else:
            carry_past(rec_row, carry_row, pre_row)


@kernel
def lstm_backward_step(gates_t, c_prev_t, c_t, grad_rec, grad_carry, grad_output_t, grad_c, active,
                       grad_pre_t):
    """grad_c is updated in place to the gradient of c_{t-1}; grad_pre_t gets the gate pre-activation
    gradients. tanh(c_t) is recomputed (one activation per cell) rather than kept from the forward."""
    batch, four_hidden = gates_t.shape
    hidden = four_hidden // 4
    for n in range(batch):
        rec_row, carry_row, grad_c_row, pre_row = grad_rec[n], grad_carry[n], grad_c[n], grad_pre_t[n]
        if active[n]:
            gate_row, c_row, out_row = gates_t[n], c_t[n], grad_output_t[n]
            # pass 1: grad h (kept in the o slot for now) and grad c
            for j in range(hidden):
                grad_h = (rec_row[j] + carry_row[j]) + out_row[j]
                tanh_c = tanh(c_row[j])
                o = gate_row[3 * hidden + j]
                pre_row[3 * hidden + j] = grad_h * tanh_c
                grad_c_row[j] = grad_c_row[j] + grad_h * o * (ONE - tanh_c * tanh_c)
            # pass 2: the four pre-activation gradients and grad c_{t-1}
            c_prev_row = c_prev_t[n]
            for j in range(hidden):
                i = gate_row[j]
                f = gate_row[hidden + j]
                g = gate_row[2 * hidden + j]
                o = gate_row[3 * hidden + j]
                grad_c_new = grad_c_row[j]
                pre_row[j] = grad_c_new * g * i * (ONE - i)
                pre_row[hidden + j] = grad_c_new * c_prev_row[j] * f * (ONE - f)
                pre_row[2 * hidden + j] = grad_c_new * i * (ONE - g * g)
                pre_row[3 * hidden + j] = pre_row[3 * hidden + j] * o * (ONE - o)
                grad_c_row[j] = grad_c_new * f
            carry_row[:] = ZERO
        else:
            carry_past(rec_row, carry_row, pre_row)


@kernel
def masked_grad_sum(grad_rec, grad_carry, grad_output_t, active, grad_h_new):
    """Projected LSTM: grad of the projected h_new = rec + carry + out (active rows), else carried."""
    batch, size = grad_rec.shape
    for n in range(batch):
        rec_row, carry_row, new_row = grad_rec[n], grad_carry[n], grad_h_new[n]
        if active[n]:
            incoming_grad(rec_row, carry_row, grad_output_t[n], new_row)
            carry_row[:] = ZERO
        else:
            carry_past(rec_row, carry_row, new_row)


@kernel
def gru_backward_step(rzn_t, hidden_n_t, h_prev_t, grad_rec, grad_carry, grad_output_t, active,
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
            incoming_grad(rec_row, carry_row, out_row, hg_row[:hidden])  # grad h, parked in the r slot
            for j in range(hidden):
                grad_h = hg_row[j]
                r = rzn_row[j]
                z = rzn_row[hidden + j]
                new = rzn_row[2 * hidden + j]
                grad_n_pre = grad_h * (ONE - z) * (ONE - new * new)
                grad_z_pre = grad_h * (h_prev_row[j] - new) * z * (ONE - z)
                grad_r_pre = grad_n_pre * hn_row[j] * r * (ONE - r)
                x_row[j] = grad_r_pre
                x_row[hidden + j] = grad_z_pre
                x_row[2 * hidden + j] = grad_n_pre
                carry_row[j] = grad_h * z
            for j in range(hidden):
                hg_row[j] = x_row[j]
                hg_row[hidden + j] = x_row[hidden + j]
                hg_row[2 * hidden + j] = x_row[2 * hidden + j] * rzn_row[j]
        else:
            carry_past(rec_row, carry_row, x_row)
            hg_row[:] = ZERO


@kernel
def transpose_into(a, out):
    """out = a.T for small blocks (one step's gradients)."""
    rows, cols = a.shape
    for k in range(cols):
        for n in range(rows):
            out[k, n] = a[n, k]
