"""The math of each recurrent cell over a whole sequence: forward beside backward.

Every function here is pure: arrays in, arrays (and a cache) out; nothing about layers, parameter
names, ``batch_first`` or shape checks (that is :mod:`rnnlab.nn.recurrent`). All arrays are
time-major ``(L, N, ...)``: ``L`` steps, ``N`` sequences.

The input half of each cell, ``x_t @ weight_ih.T + bias_ih``, does not depend on the state, so the
layer computes it for every step in one matrix product and passes it in as ``x_proj`` (and turns
``grad_x_proj`` back into ``grad_x`` and ``grad_weight_ih`` with one product each). Only the
recurrence loops over time here; the hidden-to-hidden weight gradients are formed after the loop
with ONE product over all steps, ``grad_weight_hh = dgates.reshape(L*N, G).T @ h_prev.reshape(L*N, H)``.

Variable lengths. ``lengths`` (an int array of shape ``(N,)``, or ``None`` for "all of length L")
masks the recurrence forward in time: at a step ``t >= lengths[n]`` sequence ``n`` keeps its state
and outputs 0, so ``h_n`` is each sequence's state at its own last step. With the mask ``m_t``
(1 where ``t < length``)::

    h_t   = m_t * h_new_t + (1 - m_t) * h_{t-1}        out_t = m_t * h_new_t

and the backward pass follows the same two paths: ``grad h_new_t = m_t * (grad h_t + grad out_t)``
and ``grad h_{t-1}`` receives ``(1 - m_t) * grad h_t`` unchanged. Gradients at padded steps are 0.

The derivation of every backward pass is in ``docs/backprop.md``. The fast path
(``recurrent_fast.py``) has exactly these signatures; the layer picks one through
:func:`rnnlab.nn.recurrent.set_kernels`.

Caches are ``None`` when gradients are disabled (:func:`rnnlab.no_grad`).
"""
from __future__ import annotations

from .. import backend


def _sigmoid(z):
    xp = backend.xp
    # Written as 0.5 * (1 + tanh(z / 2)): the same function, no overflow warning for large -z.
    return 0.5 * (1.0 + xp.tanh(0.5 * z))


def _step_mask(lengths, num_steps, dtype):
    """``(L, N, 1)`` array: 1 where step ``t`` is inside sequence ``n`` (``t < lengths[n]``), else 0."""
    if lengths is None:
        return None
    xp = backend.xp
    lengths = xp.asarray(lengths)
    return (xp.arange(num_steps)[:, None] < lengths[None, :]).astype(dtype)[:, :, None]


def _zeros_if_none(array, shape, dtype):
    return backend.xp.zeros(shape, dtype=dtype) if array is None else array


# ------------------------------------------------------------------------------------------------
# Elman RNN:  h_t = act(x_proj_t + h_{t-1} @ W_hh.T + b_hh),  act = tanh or relu
# ------------------------------------------------------------------------------------------------
def rnn_forward(x_proj, h0, weight_hh, bias_hh, nonlinearity="tanh", lengths=None):
    """x_proj (L,N,H), h0 (N,H) -> output (L,N,H), h_n (N,H), cache"""
    xp = backend.xp
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    num_steps = x_proj.shape[0]
    mask = _step_mask(lengths, num_steps, x_proj.dtype)
    output = xp.empty_like(x_proj)
    keep_cache = backend.is_grad_enabled()
    h_prev_all = xp.empty_like(x_proj) if keep_cache else None  # the state each step started from
    h = h0
    for t in range(num_steps):
        if keep_cache:
            h_prev_all[t] = h
        pre = x_proj[t] + h @ weight_hh.T
        if bias_hh is not None:
            pre += bias_hh
        h_new = xp.tanh(pre) if nonlinearity == "tanh" else xp.maximum(pre, 0)
        if mask is None:
            h = h_new
            output[t] = h_new
        else:
            output[t] = mask[t] * h_new
            h = output[t] + (1 - mask[t]) * h
    cache = None
    if keep_cache:
        # `output` holds act(pre) where the mask is 1, which is all the derivative needs
        # (masked steps receive no gradient).
        cache = (output, h_prev_all, weight_hh, bias_hh is not None, nonlinearity, mask)
    return output, h, cache


def rnn_backward(grad_output, grad_h_n, cache):
    """grad_output (L,N,H) or None, grad_h_n (N,H) or None -> grad_x_proj (L,N,H), grad_h0 (N,H), {"weight_hh", "bias_hh"}"""
    xp = backend.xp
    if cache is None:
        raise RuntimeError("rnn_backward: no cache (the forward ran under no_grad)")
    output, h_prev_all, weight_hh, has_bias, nonlinearity, mask = cache
    num_steps, batch, hidden = output.shape
    grad_h = _zeros_if_none(grad_h_n, (batch, hidden), output.dtype)
    grad_pre_all = xp.empty_like(output)
    if nonlinearity == "tanh":
        act_derivative = 1 - output * output  # tanh' = 1 - tanh^2
    else:
        act_derivative = (output > 0).astype(output.dtype)  # relu' = 1 where the output is positive
    for t in reversed(range(num_steps)):
        grad_h_new = grad_h if grad_output is None else grad_h + grad_output[t]
        if mask is not None:
            grad_h_new = mask[t] * grad_h_new
        grad_pre = grad_h_new * act_derivative[t]
        grad_pre_all[t] = grad_pre
        grad_h_from_new = grad_pre @ weight_hh
        grad_h = grad_h_from_new if mask is None else grad_h_from_new + (1 - mask[t]) * grad_h
    flat_grad_pre = grad_pre_all.reshape(num_steps * batch, hidden)
    grads = {
        "weight_hh": flat_grad_pre.T @ h_prev_all.reshape(num_steps * batch, hidden),
        "bias_hh": flat_grad_pre.sum(axis=0) if has_bias else None,
    }
    return grad_pre_all, grad_h, grads


# ------------------------------------------------------------------------------------------------
# LSTM:  i, f, g, o = split(x_proj_t + h_{t-1} @ W_hh.T + b_hh)  (sigmoid, sigmoid, tanh, sigmoid)
#        c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)   [ then h_t = h_t @ W_hr.T with projections ]
# ------------------------------------------------------------------------------------------------
def lstm_forward(x_proj, h0, c0, weight_hh, bias_hh, weight_hr=None, lengths=None):
    """x_proj (L,N,4H), h0 (N,H_out), c0 (N,H) -> output (L,N,H_out), h_n (N,H_out), c_n (N,H), cache"""
    xp = backend.xp
    num_steps, batch, four_hidden = x_proj.shape
    hidden = four_hidden // 4
    out_size = h0.shape[-1]
    mask = _step_mask(lengths, num_steps, x_proj.dtype)
    output = xp.empty((num_steps, batch, out_size), dtype=x_proj.dtype)
    keep_cache = backend.is_grad_enabled()
    if keep_cache:
        gates_all = xp.empty_like(x_proj)  # activated i, f, g, o
        tanh_c_all = xp.empty((num_steps, batch, hidden), dtype=x_proj.dtype)
        c_prev_all = xp.empty((num_steps, batch, hidden), dtype=x_proj.dtype)
        h_prev_all = xp.empty((num_steps, batch, out_size), dtype=x_proj.dtype)
    h, c = h0, c0
    for t in range(num_steps):
        gates = x_proj[t] + h @ weight_hh.T
        if bias_hh is not None:
            gates += bias_hh
        gates[:, : 2 * hidden] = _sigmoid(gates[:, : 2 * hidden])  # i, f
        gates[:, 2 * hidden : 3 * hidden] = xp.tanh(gates[:, 2 * hidden : 3 * hidden])  # g
        gates[:, 3 * hidden :] = _sigmoid(gates[:, 3 * hidden :])  # o
        i, f, g, o = (gates[:, k * hidden : (k + 1) * hidden] for k in range(4))
        c_new = f * c + i * g
        tanh_c = xp.tanh(c_new)
        h_new = o * tanh_c
        if weight_hr is not None:
            h_new = h_new @ weight_hr.T
        if keep_cache:
            gates_all[t], tanh_c_all[t], c_prev_all[t], h_prev_all[t] = gates, tanh_c, c, h
        if mask is None:
            h, c = h_new, c_new
            output[t] = h_new
        else:
            output[t] = mask[t] * h_new
            h = output[t] + (1 - mask[t]) * h
            c = mask[t] * c_new + (1 - mask[t]) * c
    cache = None
    if keep_cache:
        cache = (gates_all, tanh_c_all, c_prev_all, h_prev_all, weight_hh, bias_hh is not None, weight_hr, mask)
    return output, h, c, cache


def lstm_backward(grad_output, grad_h_n, grad_c_n, cache):
    """-> grad_x_proj (L,N,4H), grad_h0 (N,H_out), grad_c0 (N,H), {"weight_hh", "bias_hh", "weight_hr"}"""
    xp = backend.xp
    if cache is None:
        raise RuntimeError("lstm_backward: no cache (the forward ran under no_grad)")
    gates_all, tanh_c_all, c_prev_all, h_prev_all, weight_hh, has_bias, weight_hr, mask = cache
    num_steps, batch, four_hidden = gates_all.shape
    hidden = four_hidden // 4
    out_size = h_prev_all.shape[-1]
    dtype = gates_all.dtype
    grad_h = _zeros_if_none(grad_h_n, (batch, out_size), dtype)
    grad_c = _zeros_if_none(grad_c_n, (batch, hidden), dtype)
    grad_gates_all = xp.empty_like(gates_all)  # gradient of the pre-activations = grad_x_proj
    grad_h_new_all = xp.empty((num_steps, batch, out_size), dtype=dtype) if weight_hr is not None else None
    for t in reversed(range(num_steps)):
        i, f, g, o = (gates_all[t, :, k * hidden : (k + 1) * hidden] for k in range(4))
        tanh_c = tanh_c_all[t]
        grad_h_new = grad_h if grad_output is None else grad_h + grad_output[t]
        grad_c_new = grad_c
        if mask is not None:
            grad_h_new = mask[t] * grad_h_new
            grad_c_new = mask[t] * grad_c
        if weight_hr is not None:
            grad_h_new_all[t] = grad_h_new
            grad_h_new = grad_h_new @ weight_hr  # back through the projection: (N, H_out) -> (N, H)
        # h = o * tanh(c): two paths, to o and (through tanh) to c.
        grad_o = grad_h_new * tanh_c
        grad_c_new = grad_c_new + grad_h_new * o * (1 - tanh_c * tanh_c)
        # c = f * c_prev + i * g
        grad_i = grad_c_new * g
        grad_f = grad_c_new * c_prev_all[t]
        grad_g = grad_c_new * i
        grad_pre = grad_gates_all[t]
        grad_pre[:, :hidden] = grad_i * i * (1 - i)  # sigmoid' = s (1 - s)
        grad_pre[:, hidden : 2 * hidden] = grad_f * f * (1 - f)
        grad_pre[:, 2 * hidden : 3 * hidden] = grad_g * (1 - g * g)  # tanh' = 1 - tanh^2
        grad_pre[:, 3 * hidden :] = grad_o * o * (1 - o)
        grad_h_prev = grad_pre @ weight_hh
        grad_c_prev = grad_c_new * f
        if mask is not None:
            grad_h_prev += (1 - mask[t]) * grad_h
            grad_c_prev += (1 - mask[t]) * grad_c
        grad_h, grad_c = grad_h_prev, grad_c_prev
    flat_grad_gates = grad_gates_all.reshape(num_steps * batch, four_hidden)
    grads = {
        "weight_hh": flat_grad_gates.T @ h_prev_all.reshape(num_steps * batch, out_size),
        "bias_hh": flat_grad_gates.sum(axis=0) if has_bias else None,
        "weight_hr": None,
    }
    if weight_hr is not None:
        # The unprojected hidden state o * tanh(c) is recomputed for all steps at once.
        h_full = gates_all[:, :, 3 * hidden :] * tanh_c_all
        grads["weight_hr"] = (
            grad_h_new_all.reshape(num_steps * batch, out_size).T @ h_full.reshape(num_steps * batch, hidden)
        )
    return grad_gates_all, grad_h, grad_c, grads


# ------------------------------------------------------------------------------------------------
# GRU:  r = sigmoid(x_r + h W_hr.T + b_hr);  z = sigmoid(x_z + h W_hz.T + b_hz)
#       n = tanh(x_n + r * (h W_hn.T + b_hn));  h_t = (1 - z) * n + z * h_{t-1}
# (b_hn sits inside r * (...), as in PyTorch and cuDNN.)
# ------------------------------------------------------------------------------------------------
def gru_forward(x_proj, h0, weight_hh, bias_hh, lengths=None):
    """x_proj (L,N,3H), h0 (N,H) -> output (L,N,H), h_n (N,H), cache"""
    xp = backend.xp
    num_steps, batch, three_hidden = x_proj.shape
    hidden = three_hidden // 3
    mask = _step_mask(lengths, num_steps, x_proj.dtype)
    output = xp.empty((num_steps, batch, hidden), dtype=x_proj.dtype)
    keep_cache = backend.is_grad_enabled()
    if keep_cache:
        rzn_all = xp.empty_like(x_proj)  # activated r, z, n
        hidden_n_all = xp.empty((num_steps, batch, hidden), dtype=x_proj.dtype)  # h W_hn.T + b_hn
        h_prev_all = xp.empty((num_steps, batch, hidden), dtype=x_proj.dtype)
    h = h0
    for t in range(num_steps):
        hidden_gates = h @ weight_hh.T
        if bias_hh is not None:
            hidden_gates += bias_hh
        r_z = _sigmoid(x_proj[t, :, : 2 * hidden] + hidden_gates[:, : 2 * hidden])
        r, z = r_z[:, :hidden], r_z[:, hidden:]
        hidden_n = hidden_gates[:, 2 * hidden :]
        n = xp.tanh(x_proj[t, :, 2 * hidden :] + r * hidden_n)
        h_new = n + z * (h - n)  # = (1 - z) * n + z * h
        if keep_cache:
            rzn_all[t, :, : 2 * hidden] = r_z
            rzn_all[t, :, 2 * hidden :] = n
            hidden_n_all[t], h_prev_all[t] = hidden_n, h
        if mask is None:
            h = h_new
            output[t] = h_new
        else:
            output[t] = mask[t] * h_new
            h = output[t] + (1 - mask[t]) * h
    cache = None
    if keep_cache:
        cache = (rzn_all, hidden_n_all, h_prev_all, weight_hh, bias_hh is not None, mask)
    return output, h, cache


def gru_backward(grad_output, grad_h_n, cache):
    """-> grad_x_proj (L,N,3H), grad_h0 (N,H), {"weight_hh", "bias_hh"}"""
    xp = backend.xp
    if cache is None:
        raise RuntimeError("gru_backward: no cache (the forward ran under no_grad)")
    rzn_all, hidden_n_all, h_prev_all, weight_hh, has_bias, mask = cache
    num_steps, batch, three_hidden = rzn_all.shape
    hidden = three_hidden // 3
    grad_h = _zeros_if_none(grad_h_n, (batch, hidden), rzn_all.dtype)
    grad_x_proj = xp.empty_like(rzn_all)
    grad_hidden_gates_all = xp.empty_like(rzn_all)  # gradient of h W_hh.T + b_hh
    for t in reversed(range(num_steps)):
        r, z, n = (rzn_all[t, :, k * hidden : (k + 1) * hidden] for k in range(3))
        h_prev = h_prev_all[t]
        grad_h_new = grad_h if grad_output is None else grad_h + grad_output[t]
        if mask is not None:
            grad_h_new = mask[t] * grad_h_new
        # h = (1 - z) * n + z * h_prev
        grad_n_pre = grad_h_new * (1 - z) * (1 - n * n)
        grad_z_pre = grad_h_new * (h_prev - n) * z * (1 - z)
        # n = tanh(x_n + r * hidden_n): r scales the whole hidden part, bias b_hn included.
        grad_r_pre = grad_n_pre * hidden_n_all[t] * r * (1 - r)
        grad_x_proj[t, :, :hidden] = grad_r_pre
        grad_x_proj[t, :, hidden : 2 * hidden] = grad_z_pre
        grad_x_proj[t, :, 2 * hidden :] = grad_n_pre
        grad_hidden_gates = grad_hidden_gates_all[t]
        grad_hidden_gates[:, :hidden] = grad_r_pre
        grad_hidden_gates[:, hidden : 2 * hidden] = grad_z_pre
        grad_hidden_gates[:, 2 * hidden :] = grad_n_pre * r
        grad_h_prev = grad_hidden_gates @ weight_hh + grad_h_new * z
        if mask is not None:
            grad_h_prev += (1 - mask[t]) * grad_h
        grad_h = grad_h_prev
    flat_grad_hidden_gates = grad_hidden_gates_all.reshape(num_steps * batch, three_hidden)
    grads = {
        "weight_hh": flat_grad_hidden_gates.T @ h_prev_all.reshape(num_steps * batch, hidden),
        "bias_hh": flat_grad_hidden_gates.sum(axis=0) if has_bias else None,
    }
    return grad_x_proj, grad_h, grads
