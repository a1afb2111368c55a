"""Whole time loops of the compiled path as single compiled calls (where :func:`rnnlab.fast.blas.available`).

Each function is the Python loop of :mod:`rnnlab.fast.recurrent` it replaces, step for step: the same
product (``gemm``, NumPy's sgemm with the arguments ``np.matmul`` passes) and the same step kernel of
:mod:`rnnlab.fast.cell_steps`, so the numbers are identical; only the interpreter's per-step work is
gone. Weights are passed C-contiguous with a flag for ``W.T`` (``transpose_w``).

The backward product ``grad @ W_hh`` is :class:`rnnlab.fast.recurrent.BackwardProduct`'s: either
directly, or (long sequences) as ``(W_hh.T @ grad.T).T`` with the transposes of the two small blocks.
"""
from __future__ import annotations

from .blas import gemm
from .cell_steps import (gru_backward_step, gru_forward_step, lstm_backward_step, lstm_forward_step,
                         rnn_backward_step, rnn_forward_step, transpose_into)
from .jit import kernel


@kernel
def _backward_product(grad, weight, weight_t, transposed, grad_t, out_t, out):
    """out = grad @ W_hh (see the module docstring)."""
    if transposed:
        transpose_into(grad, grad_t)
        gemm(weight_t, grad_t, False, out_t)
        transpose_into(out_t, out)
    else:
        gemm(grad, weight, False, out)


@kernel
def rnn_forward_loop(x_proj, states, weight, transpose_w, bias, active, relu, pre):
    for t in range(x_proj.shape[0]):
        gemm(states[t], weight, transpose_w, pre)
        rnn_forward_step(pre, x_proj[t], bias, states[t], active[t], relu, states[t + 1])


@kernel
def lstm_forward_loop(gates, states, cells, weight, transpose_w, bias, scale, offset, active, pre):
    """``cells`` holds every step's cell (L+1 rows, with a cache) or two rolling rows (without one)."""
    rolling = cells.shape[0] == 2 and gates.shape[0] > 1
    for t in range(gates.shape[0]):
        if rolling:
            c_prev, c_next = cells[t % 2], cells[(t + 1) % 2]
        else:
            c_prev, c_next = cells[t], cells[t + 1]
        gemm(states[t], weight, transpose_w, pre)
        lstm_forward_step(pre, gates[t], bias, scale, offset, c_prev, states[t], active[t], c_next, states[t + 1])


@kernel
def gru_forward_loop(rzn, states, hidden_n, weight, transpose_w, bias, active, hidden_gates):
    """``hidden_n`` holds every step's (with a cache) or one rolling row (without one)."""
    for t in range(rzn.shape[0]):
        k = t if hidden_n.shape[0] > 1 else 0
        gemm(states[t], weight, transpose_w, hidden_gates)
        gru_forward_step(hidden_gates, rzn[t], bias, states[t], active[t], hidden_n[k], states[t + 1])


@kernel
def rnn_backward_loop(states, grad_rec, grad_carry, grad_output, active, relu, grad_pre, weight, weight_t,
                      transposed, grad_t, out_t):
    """``grad_output``: (L, N, H), or (1, N, H) zeros when the output gets no gradient."""
    for t in range(grad_pre.shape[0] - 1, -1, -1):
        out_t_index = t if grad_output.shape[0] > 1 else 0
        rnn_backward_step(states[t + 1], grad_rec, grad_carry, grad_output[out_t_index], active[t], relu,
                          grad_pre[t])
        _backward_product(grad_pre[t], weight, weight_t, transposed, grad_t, out_t, grad_rec)


@kernel
def lstm_backward_loop(gates, cells, grad_rec, grad_carry, grad_output, grad_c, active, grad_pre, weight,
                       weight_t, transposed, grad_t, out_t):
    for t in range(grad_pre.shape[0] - 1, -1, -1):
        out_t_index = t if grad_output.shape[0] > 1 else 0
        lstm_backward_step(gates[t], cells[t], cells[t + 1], grad_rec, grad_carry, grad_output[out_t_index],
                           grad_c, active[t], grad_pre[t])
        _backward_product(grad_pre[t], weight, weight_t, transposed, grad_t, out_t, grad_rec)


@kernel
def gru_backward_loop(rzn, hidden_n, states, grad_rec, grad_carry, grad_output, active, grad_x_proj,
                      grad_hidden_gates, weight, weight_t, transposed, grad_t, out_t):
    for t in range(grad_x_proj.shape[0] - 1, -1, -1):
        out_t_index = t if grad_output.shape[0] > 1 else 0
        gru_backward_step(rzn[t], hidden_n[t], states[t], grad_rec, grad_carry, grad_output[out_t_index],
                          active[t], grad_x_proj[t], grad_hidden_gates)
        _backward_product(grad_hidden_gates, weight, weight_t, transposed, grad_t, out_t, grad_rec)
