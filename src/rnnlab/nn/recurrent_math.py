"""The math of each recurrent cell over a whole sequence, forward beside backward: the reference.

For each cell (Elman RNN, LSTM, GRU) this file holds everything: the input projection
``x_t @ W_ih.T + b_ih``, the recurrence, and the gradient of every parameter (``W_ih``, ``b_ih``,
``W_hh``, ``b_hh``, LSTM's ``W_hr``). Every function is pure: arrays in, arrays and a named cache
out; nothing about layers, parameter names, ``batch_first`` or shape checks (that is
:mod:`rnnlab.nn.recurrent`). Arrays are time-major ``(L, N, ...)``: ``L`` steps, ``N`` sequences;
``G`` is the gate width (``H``, ``4H`` or ``3H``).

Work that does not depend on the state is done for every step at once: the input projection is ONE
matrix product before the loop (:func:`project_input`), and the weight gradients are one product each
after it, e.g. ``grad_W_hh = dgates.reshape(L*N, G).T @ h_prev.reshape(L*N, H)``. Only the
recurrence loops over time.

Variable lengths. ``lengths`` (ints ``(N,)``, or ``None`` for "all of length L") masks the recurrence:
at a step ``t >= lengths[n]`` sequence ``n`` keeps its state and outputs 0, so ``h_n`` is each
sequence's state at its own last step. With the mask ``m_t`` (1 where ``t < length``)::

    h_t   = m_t * h_new_t + (1 - m_t) * h_{t-1}        out_t = m_t * h_new_t

and the backward pass follows the same two paths: ``grad h_new_t = m_t * (grad h_t + grad out_t)``
and ``grad h_{t-1}`` receives ``(1 - m_t) * grad h_t`` unchanged. Gradients at padded steps are 0.

Layer 0 of a character model gets its projection from a table lookup
(:meth:`rnnlab.nn.RNNBase.forward_projected`): pass ``weight_ih=None`` and the projection as ``x``; the
backward then returns the gradient of the projection in place of ``grad_x`` and no ``W_ih``/``b_ih``
gradients.

No input gradient. Every backward takes ``input_grad=True``; with ``input_grad=False`` it skips
``grad_x = g @ W_ih`` (layer 0 of a model whose input is data: images, not a learned embedding) and
returns None in its place; every parameter gradient and the initial state's are unchanged, bit for bit.

The caches are named tuples, the same types for this reference and the compiled path
(:mod:`rnnlab.fast.recurrent`, the same six functions with the same signatures); ``None`` when
gradients are disabled (:func:`rnnlab.no_grad`). The output is a view of the cached states, read-only
while a backward still needs them. Derivations: ``docs/backprop.md``.

The cell registry. :data:`CELLS` maps each mode of :class:`rnnlab.nn.RNNBase` (``"RNN_TANH"``,
``"RNN_RELU"``, ``"LSTM"``, ``"GRU"``) to a :class:`Cell`: its gate count, its state tensors and a
uniform forward/backward pair over the functions above. The layers read everything they need of a
mode from there, so a new cell is its two functions, their two adapters and ONE line::

    register_cell("MY_CELL", Cell(gates=2, state_names=("h",), forward=..., backward=...))

after which ``RNNBase("MY_CELL", input_size, hidden_size, ...)`` runs it (stacked, bidirectional,
with ``lengths`` and dropout). A cell whose backward takes ``input_grad=False`` says so with
``skips_input_grad=True``; without it the layer computes the input gradient and drops it. A compiled
twin in :data:`rnnlab.fast.recurrent.TWINS` is optional (it takes the same flag as its cell).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from .. import backend

Array = Any  # an xp array


class RNNCache(NamedTuple):
    """What :func:`rnn_backward` needs from :func:`rnn_forward`."""
    x: Array               # (L, N, H_in) the input, or the caller's projection when weight_ih is None
    weight_ih: Array       # (H, H_in) or None
    states: Array          # (L+1, N, H): states[0] = h_0, states[t + 1] = h after step t
    weight_hh: Array       # (H, H)
    weight_hh_t: Array     # W_hh.T as the compiled forward used it (its backward reuses it); None here
    has_bias: bool
    nonlinearity: str      # "tanh" or "relu"
    active: Array          # (L, N) bool, t < lengths[n]; None: every step of every sequence


class LSTMCache(NamedTuple):
    """What :func:`lstm_backward` needs from :func:`lstm_forward`."""
    x: Array               # (L, N, H_in) or the caller's projection
    weight_ih: Array       # (4H, H_in) or None
    gates: Array           # (L, N, 4H) activated i, f, g, o (at active steps)
    cells: Array           # (L+1, N, H): cells[0] = c_0, cells[t + 1] = c after step t
    states: Array          # (L+1, N, H_out): states[0] = h_0, states[t + 1] = h after step t
    h_full: Array          # (L, N, H) o * tanh(c) before the projection; None without one
    weight_hh: Array       # (4H, H_out)
    weight_hh_t: Array
    has_bias: bool
    weight_hr: Array       # (H_out, H) or None
    active: Array


class GRUCache(NamedTuple):
    """What :func:`gru_backward` needs from :func:`gru_forward`."""
    x: Array
    weight_ih: Array       # (3H, H_in) or None
    gates: Array           # (L, N, 3H) activated r, z, n (at active steps)
    hidden_n: Array        # (L, N, H) h_{t-1} @ W_hn.T + b_hn, the part r multiplies
    states: Array          # (L+1, N, H)
    weight_hh: Array       # (3H, H)
    weight_hh_t: Array
    has_bias: bool
    active: Array


# ------------------------------------------------------------------------------------------------
# the registry: all that RNNBase knows of a mode
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """A recurrent cell as :class:`rnnlab.nn.RNNBase` runs it, one layer and direction at a time.

    ``forward(x, state, weights, lengths, **options) -> (output, state_n, cache)``
        ``x`` (L,N,H_in), or the caller's projection (L,N,G) when ``weights["weight_ih"]`` is None;
        ``state`` a tuple of one (N,·) array per entry of ``state_names`` (``h`` first, H_out features;
        the others H); ``weights`` {"weight_ih", "bias_ih", "weight_hh", "bias_hh", "weight_hr"} ->
        array or None; ``lengths`` (N,) ints or None. ``output`` (L,N,H_out), ``state_n`` a tuple like
        ``state``, ``cache`` whatever the backward needs (None under :func:`rnnlab.no_grad`).
    ``backward(grad_output, grad_state_n, cache) -> (grad_x, grad_state_0, grads)``
        ``grad_output`` (L,N,H_out) or None, ``grad_state_n`` a tuple like ``state`` (entries may be
        None: zero); ``grads`` {weights key: gradient or None}, keyed like ``weights``. With
        ``skips_input_grad``, ``backward(..., input_grad=False)`` returns None for ``grad_x`` instead.
    """
    gates: int                  # G = gates * hidden_size: the rows of weight_ih, weight_hh and the biases
    state_names: tuple          # ("h",) or ("h", "c"): the state tensors, for shapes and messages
    forward: Callable
    backward: Callable
    options: dict = field(default_factory=dict)  # keyword arguments of forward (RNN's nonlinearity)
    projection: bool = False    # takes proj_size > 0 (weights["weight_hr"]), as LSTM does
    skips_input_grad: bool = False  # backward takes input_grad=False (and then returns grad_x None)

    def run_backward(self, grad_output, grad_state, cache, input_grad: bool = True):
        """:attr:`backward`, honouring ``input_grad=False``: passed on when the cell takes it, otherwise
        the input gradient is computed and dropped. -> (grad_x or None, grad_state_0, grads)"""
        if input_grad:
            return self.backward(grad_output, grad_state, cache)
        if self.skips_input_grad:
            return self.backward(grad_output, grad_state, cache, input_grad=False)
        return (None,) + tuple(self.backward(grad_output, grad_state, cache)[1:])


CELLS: dict[str, Cell] = {}  # mode name -> Cell, filled by register_cell (the end of each cell's section)


def register_cell(mode: str, cell: Cell) -> Cell:
    """Make ``mode`` a mode of :class:`rnnlab.nn.RNNBase`. A name already taken is a ValueError
    (:func:`unregister_cell` it first)."""
    if mode in CELLS:
        raise ValueError(f"the recurrent mode {mode!r} is already registered")
    CELLS[mode] = cell
    return cell


def unregister_cell(mode: str) -> None:
    """Remove ``mode`` from :data:`CELLS` (a no-op when absent); layers built with it stop working."""
    CELLS.pop(mode, None)


# ------------------------------------------------------------------------------------------------
# shared by the three cells (and by the compiled path)
# ------------------------------------------------------------------------------------------------
def project_input(x, weight_ih, bias_ih):
    """x (L,N,H_in) -> x @ W_ih.T + b_ih (L,N,G), all steps as ONE 2-D product (a 3-D ``@`` is a loop
    of L small products, 2.7x slower). With ``weight_ih`` None, ``x`` is already the projection."""
    if weight_ih is None:
        return x
    steps, rows = x.shape[0], x.shape[1]
    x_proj = (x.reshape(steps * rows, -1) @ weight_ih.T).reshape(steps, rows, -1)
    if bias_ih is not None:
        x_proj += bias_ih
    return x_proj


def project_input_backward(grad_x_proj, x, weight_ih, has_bias: bool, grad_bias_hh=None, input_grad=True):
    """grad_x_proj (L,N,G) -> grad_x (L,N,H_in), grad_W_ih (G,H_in) = sum_t g_t.T @ x_t, grad_b_ih (G,).
    ``input_grad=False``: grad_x is None (the product ``g @ W_ih`` is skipped).

    ``grad_bias_hh``: RNN and LSTM add ``b_ih`` and ``b_hh`` into the same pre-activation, so the two
    gradients are one sum, passed in instead of computed twice (GRU's ``b_hn`` sits inside
    ``r * (...)``: its ``b_ih`` gradient is its own sum). With ``weight_ih`` None (the caller projected):
    ``grad_x_proj``, None, None."""
    if weight_ih is None:
        return grad_x_proj if input_grad else None, None, None
    steps, batch, gates = grad_x_proj.shape
    flat_grad = grad_x_proj.reshape(steps * batch, gates)
    grad_weight_ih = flat_grad.T @ x.reshape(steps * batch, -1)
    grad_bias_ih = None
    if has_bias:
        grad_bias_ih = grad_bias_hh if grad_bias_hh is not None else flat_grad.sum(axis=0)
    grad_x = (flat_grad @ weight_ih).reshape(steps, batch, -1) if input_grad else None
    return grad_x, grad_weight_ih, grad_bias_ih


def parameter_grads(grad_x_proj, cache, grad_hidden_gates=None, grad_h_new=None, input_grad=True):
    """Every parameter gradient (and grad_x) from the gate gradients of all steps, one product each.

    ``grad_x_proj`` (L,N,G): the gradient of the input projection -> ``W_ih``, ``b_ih``, ``grad_x``.
    ``grad_hidden_gates`` (L,N,G): the gradient of ``h_{t-1} W_hh.T + b_hh`` -> ``W_hh``, ``b_hh``; the same
    array for RNN and LSTM (None), where ``b_ih`` then reuses ``b_hh``'s sum. ``grad_h_new`` (L,N,H_out):
    LSTM with a projection, the gradient of the projected state -> ``W_hr``. ``input_grad=False``: grad_x None.
    -> grad_x, {"weight_ih", "bias_ih", "weight_hh", "bias_hh"(, "weight_hr" for LSTM)}"""
    same_pre_activation = grad_hidden_gates is None
    if same_pre_activation:
        grad_hidden_gates = grad_x_proj
    num_steps, batch, gates = grad_hidden_gates.shape
    rows = num_steps * batch
    flat_grad = grad_hidden_gates.reshape(rows, gates)
    grads = {"weight_hh": flat_grad.T @ cache.states[:num_steps].reshape(rows, -1),
             "bias_hh": flat_grad.sum(axis=0) if cache.has_bias else None}
    grad_x, grads["weight_ih"], grads["bias_ih"] = project_input_backward(
        grad_x_proj, cache.x, cache.weight_ih, cache.has_bias, grads["bias_hh"] if same_pre_activation else None,
        input_grad)
    if isinstance(cache, LSTMCache):
        grads["weight_hr"] = None
        if grad_h_new is not None:
            grads["weight_hr"] = grad_h_new.reshape(rows, -1).T @ cache.h_full.reshape(rows, -1)
    return grad_x, grads


def step_mask(lengths, num_steps: int):
    """``(L, N)`` bool: step ``t`` is inside sequence ``n`` (``t < lengths[n]``); None without lengths."""
    if lengths is None:
        return None
    xp = backend.xp
    return xp.arange(num_steps)[:, None] < xp.asarray(lengths)[None, :]


def layer_output(states, active):
    """The output from the states: ``states[1:]`` (a view, read-only while a backward needs the states:
    an in-place write raises, as PyTorch does for a tensor saved for backward), 0 at padded steps."""
    xp = backend.xp
    if active is None:
        output = states[1:]
        if backend.is_grad_enabled() and hasattr(output, "flags"):
            output.flags.writeable = False
        return output
    return xp.where(active[:, :, None], states[1:], xp.zeros((), dtype=states.dtype))


def check_nonlinearity(nonlinearity: str) -> None:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")


def check_cache(cache, function: str) -> None:
    if cache is None:
        raise RuntimeError(f"{function}: no cache (the forward ran under no_grad)")


def _sigmoid(z):
    # Written as 0.5 * (1 + tanh(z / 2)): the same function, no overflow warning for large -z.
    return 0.5 * (1.0 + backend.xp.tanh(0.5 * z))


def _keep_where(active_t, new, old):
    """new on the active rows of a step, old elsewhere (``active_t`` (N,) bool or None)."""
    return new if active_t is None else backend.xp.where(active_t[:, None], new, old)


def _float_mask(active, dtype):
    return None if active is None else active[:, :, None].astype(dtype)


def _zeros_if_none(array, shape, dtype):
    return backend.xp.zeros(shape, dtype=dtype) if array is None else array


# ------------------------------------------------------------------------------------------------
# Elman RNN:  h_t = act(x_t W_ih.T + b_ih + h_{t-1} W_hh.T + b_hh),  act = tanh or relu
# ------------------------------------------------------------------------------------------------
def rnn_forward(x, h0, weight_ih, bias_ih, weight_hh, bias_hh, nonlinearity="tanh", lengths=None):
    """x (L,N,H_in), h0 (N,H) -> output (L,N,H), h_n (N,H), RNNCache"""
    xp = backend.xp
    check_nonlinearity(nonlinearity)
    x_proj = project_input(x, weight_ih, bias_ih)
    num_steps, batch, hidden = x_proj.shape
    active = step_mask(lengths, num_steps)
    states = xp.empty((num_steps + 1, batch, hidden), dtype=x_proj.dtype)
    states[0] = h0
    for t in range(num_steps):
        pre = x_proj[t] + states[t] @ weight_hh.T
        if bias_hh is not None:
            pre += bias_hh
        h_new = xp.tanh(pre) if nonlinearity == "tanh" else xp.maximum(pre, 0)
        states[t + 1] = _keep_where(None if active is None else active[t], h_new, states[t])
    cache = None
    if backend.is_grad_enabled():
        cache = RNNCache(x, weight_ih, states, weight_hh, None, bias_hh is not None, nonlinearity, active)
    return layer_output(states, active), states[num_steps].copy(), cache


def rnn_backward(grad_output, grad_h_n, cache: RNNCache, input_grad=True):
    """grad_output (L,N,H) or None, grad_h_n (N,H) or None -> grad_x (None if not input_grad), grad_h0 (N,H),
    {"weight_ih", "bias_ih", "weight_hh", "bias_hh"}"""
    xp = backend.xp
    check_cache(cache, "rnn_backward")
    states, weight_hh = cache.states, cache.weight_hh
    num_steps, batch, hidden = states.shape[0] - 1, states.shape[1], states.shape[2]
    mask = _float_mask(cache.active, states.dtype)
    h_all = states[1:]  # act(pre) at every active step, all the derivative needs (padded steps get no gradient)
    if cache.nonlinearity == "tanh":
        act_derivative = 1 - h_all * h_all  # tanh' = 1 - tanh^2
    else:
        act_derivative = (h_all > 0).astype(states.dtype)  # relu' = 1 where the output is positive
    grad_h = _zeros_if_none(grad_h_n, (batch, hidden), states.dtype)
    grad_pre_all = xp.empty((num_steps, batch, hidden), dtype=states.dtype)
    for t in reversed(range(num_steps)):
        grad_h_new = grad_h if grad_output is None else grad_h + grad_output[t]
        if mask is not None:
            grad_h_new = mask[t] * grad_h_new
        grad_pre = grad_h_new * act_derivative[t]
        grad_pre_all[t] = grad_pre
        grad_h_from_new = grad_pre @ weight_hh
        grad_h = grad_h_from_new if mask is None else grad_h_from_new + (1 - mask[t]) * grad_h
    grad_x, grads = parameter_grads(grad_pre_all, cache, input_grad=input_grad)
    return grad_x, grad_h, grads


def rnn_adapters(math):
    """The :class:`Cell` adapters of ``math.rnn_forward``/``math.rnn_backward`` (``math``: this module,
    or :mod:`rnnlab.fast.recurrent` for the compiled twins; looked up at each call): state ``(h0,)`` ->
    output, ``(h_n,)``, RNNCache; backward -> grad_x, ``(grad_h0,)``, grads."""
    def cell_forward(x, state, weights, lengths, nonlinearity="tanh"):
        output, h_n, cache = math.rnn_forward(x, state[0], weights["weight_ih"], weights["bias_ih"],
                                              weights["weight_hh"], weights["bias_hh"], nonlinearity, lengths)
        return output, (h_n,), cache

    def cell_backward(grad_output, grad_state, cache, input_grad=True):
        grad_x, grad_h0, grads = math.rnn_backward(grad_output, grad_state[0], cache, input_grad)
        return grad_x, (grad_h0,), grads

    return cell_forward, cell_backward


rnn_cell_forward, rnn_cell_backward = rnn_adapters(sys.modules[__name__])

register_cell("RNN_TANH", Cell(1, ("h",), rnn_cell_forward, rnn_cell_backward, {"nonlinearity": "tanh"},
                                skips_input_grad=True))
register_cell("RNN_RELU", Cell(1, ("h",), rnn_cell_forward, rnn_cell_backward, {"nonlinearity": "relu"},
                                skips_input_grad=True))


# ------------------------------------------------------------------------------------------------
# LSTM:  i, f, g, o = split(x_t W_ih.T + b_ih + h_{t-1} W_hh.T + b_hh)  (sigmoid, sigmoid, tanh, sigmoid)
#        c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)   [ then h_t = h_t @ W_hr.T with projections ]
# ------------------------------------------------------------------------------------------------
def lstm_forward(x, h0, c0, weight_ih, bias_ih, weight_hh, bias_hh, weight_hr=None, lengths=None):
    """x (L,N,H_in), h0 (N,H_out), c0 (N,H) -> output (L,N,H_out), h_n (N,H_out), c_n (N,H), LSTMCache"""
    xp = backend.xp
    x_proj = project_input(x, weight_ih, bias_ih)
    num_steps, batch, four_hidden = x_proj.shape
    hidden = four_hidden // 4
    dtype = x_proj.dtype
    active = step_mask(lengths, num_steps)
    keep_cache = backend.is_grad_enabled()
    gates_all = xp.empty_like(x_proj) if keep_cache else None
    h_full_all = xp.empty((num_steps, batch, hidden), dtype=dtype) if keep_cache and weight_hr is not None else None
    cells = xp.empty((num_steps + 1, batch, hidden), dtype=dtype)
    states = xp.empty((num_steps + 1, batch, h0.shape[-1]), dtype=dtype)
    cells[0], states[0] = c0, h0
    for t in range(num_steps):
        gates = x_proj[t] + states[t] @ weight_hh.T
        if bias_hh is not None:
            gates += bias_hh
        gates[:, : 2 * hidden] = _sigmoid(gates[:, : 2 * hidden])  # i, f
        gates[:, 2 * hidden : 3 * hidden] = xp.tanh(gates[:, 2 * hidden : 3 * hidden])  # g
        gates[:, 3 * hidden :] = _sigmoid(gates[:, 3 * hidden :])  # o
        i, f, g, o = (gates[:, k * hidden : (k + 1) * hidden] for k in range(4))
        c_new = f * cells[t] + i * g
        h_new = o * xp.tanh(c_new)
        if keep_cache:
            gates_all[t] = gates
            if h_full_all is not None:
                h_full_all[t] = h_new
        if weight_hr is not None:
            h_new = h_new @ weight_hr.T
        active_t = None if active is None else active[t]
        cells[t + 1] = _keep_where(active_t, c_new, cells[t])
        states[t + 1] = _keep_where(active_t, h_new, states[t])
    cache = None
    if keep_cache:
        cache = LSTMCache(x, weight_ih, gates_all, cells, states, h_full_all, weight_hh, None,
                          bias_hh is not None, weight_hr, active)
    return layer_output(states, active), states[num_steps].copy(), cells[num_steps].copy(), cache


def lstm_backward(grad_output, grad_h_n, grad_c_n, cache: LSTMCache, input_grad=True):
    """-> grad_x, grad_h0 (N,H_out), grad_c0 (N,H), {"weight_ih", "bias_ih", "weight_hh", "bias_hh", "weight_hr"}"""
    xp = backend.xp
    check_cache(cache, "lstm_backward")
    gates_all, cells, states, weight_hh, weight_hr = cache.gates, cache.cells, cache.states, cache.weight_hh, \
        cache.weight_hr
    num_steps, batch, four_hidden = gates_all.shape
    hidden = four_hidden // 4
    out_size = states.shape[-1]
    dtype = gates_all.dtype
    mask = _float_mask(cache.active, dtype)
    tanh_c_all = xp.tanh(cells[1:])
    grad_h = _zeros_if_none(grad_h_n, (batch, out_size), dtype)
    grad_c = _zeros_if_none(grad_c_n, (batch, hidden), dtype)
    grad_gates_all = xp.empty_like(gates_all)  # gradient of the pre-activations = grad of x_proj
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
        grad_f = grad_c_new * cells[t]
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
    grad_x, grads = parameter_grads(grad_gates_all, cache, grad_h_new=grad_h_new_all, input_grad=input_grad)
    return grad_x, grad_h, grad_c, grads


def lstm_adapters(math):
    """The :class:`Cell` adapters of ``math.lstm_forward``/``math.lstm_backward``: state ``(h0, c0)`` ->
    output, ``(h_n, c_n)``, LSTMCache; backward -> grad_x, ``(grad_h0, grad_c0)``, grads."""
    def cell_forward(x, state, weights, lengths):
        output, h_n, c_n, cache = math.lstm_forward(x, state[0], state[1], weights["weight_ih"],
                                                    weights["bias_ih"], weights["weight_hh"], weights["bias_hh"],
                                                    weights["weight_hr"], lengths)
        return output, (h_n, c_n), cache

    def cell_backward(grad_output, grad_state, cache, input_grad=True):
        grad_x, grad_h0, grad_c0, grads = math.lstm_backward(grad_output, grad_state[0], grad_state[1], cache,
                                                             input_grad)
        return grad_x, (grad_h0, grad_c0), grads

    return cell_forward, cell_backward


lstm_cell_forward, lstm_cell_backward = lstm_adapters(sys.modules[__name__])

register_cell("LSTM", Cell(4, ("h", "c"), lstm_cell_forward, lstm_cell_backward, projection=True,
                            skips_input_grad=True))


# ------------------------------------------------------------------------------------------------
# GRU:  r = sigmoid(x_r + h W_hr.T + b_hr);  z = sigmoid(x_z + h W_hz.T + b_hz)
#       n = tanh(x_n + r * (h W_hn.T + b_hn));  h_t = (1 - z) * n + z * h_{t-1}
# (x_* = x_t W_i*.T + b_i*; b_hn sits inside r * (...), as in PyTorch and cuDNN.)
# ------------------------------------------------------------------------------------------------
def gru_forward(x, h0, weight_ih, bias_ih, weight_hh, bias_hh, lengths=None):
    """x (L,N,H_in), h0 (N,H) -> output (L,N,H), h_n (N,H), GRUCache"""
    xp = backend.xp
    x_proj = project_input(x, weight_ih, bias_ih)
    num_steps, batch, three_hidden = x_proj.shape
    hidden = three_hidden // 3
    dtype = x_proj.dtype
    active = step_mask(lengths, num_steps)
    keep_cache = backend.is_grad_enabled()
    if keep_cache:
        gates_all = xp.empty_like(x_proj)  # activated r, z, n
        hidden_n_all = xp.empty((num_steps, batch, hidden), dtype=dtype)
    states = xp.empty((num_steps + 1, batch, hidden), dtype=dtype)
    states[0] = h0
    for t in range(num_steps):
        h = states[t]
        hidden_gates = h @ weight_hh.T
        if bias_hh is not None:
            hidden_gates += bias_hh
        r_z = _sigmoid(x_proj[t, :, : 2 * hidden] + hidden_gates[:, : 2 * hidden])
        r, z = r_z[:, :hidden], r_z[:, hidden:]
        hidden_n = hidden_gates[:, 2 * hidden :]
        n = xp.tanh(x_proj[t, :, 2 * hidden :] + r * hidden_n)
        h_new = n + z * (h - n)  # = (1 - z) * n + z * h
        if keep_cache:
            gates_all[t, :, : 2 * hidden] = r_z
            gates_all[t, :, 2 * hidden :] = n
            hidden_n_all[t] = hidden_n
        states[t + 1] = _keep_where(None if active is None else active[t], h_new, h)
    cache = None
    if keep_cache:
        cache = GRUCache(x, weight_ih, gates_all, hidden_n_all, states, weight_hh, None, bias_hh is not None, active)
    return layer_output(states, active), states[num_steps].copy(), cache


def gru_backward(grad_output, grad_h_n, cache: GRUCache, input_grad=True):
    """-> grad_x, grad_h0 (N,H), {"weight_ih", "bias_ih", "weight_hh", "bias_hh"}"""
    xp = backend.xp
    check_cache(cache, "gru_backward")
    gates_all, states, weight_hh = cache.gates, cache.states, cache.weight_hh
    num_steps, batch, three_hidden = gates_all.shape
    hidden = three_hidden // 3
    mask = _float_mask(cache.active, gates_all.dtype)
    grad_h = _zeros_if_none(grad_h_n, (batch, hidden), gates_all.dtype)
    grad_x_proj = xp.empty_like(gates_all)
    grad_hidden_gates_all = xp.empty_like(gates_all)  # gradient of h W_hh.T + b_hh
    for t in reversed(range(num_steps)):
        r, z, n = (gates_all[t, :, k * hidden : (k + 1) * hidden] for k in range(3))
        h_prev = states[t]
        grad_h_new = grad_h if grad_output is None else grad_h + grad_output[t]
        if mask is not None:
            grad_h_new = mask[t] * grad_h_new
        # h = (1 - z) * n + z * h_prev
        grad_n_pre = grad_h_new * (1 - z) * (1 - n * n)
        grad_z_pre = grad_h_new * (h_prev - n) * z * (1 - z)
        # n = tanh(x_n + r * hidden_n): r scales the whole hidden part, bias b_hn included.
        grad_r_pre = grad_n_pre * cache.hidden_n[t] * r * (1 - r)
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
    grad_x, grads = parameter_grads(grad_x_proj, cache, grad_hidden_gates=grad_hidden_gates_all,
                                    input_grad=input_grad)
    return grad_x, grad_h, grads


def gru_adapters(math):
    """The :class:`Cell` adapters of ``math.gru_forward``/``math.gru_backward``: state ``(h0,)`` -> output,
    ``(h_n,)``, GRUCache; backward -> grad_x, ``(grad_h0,)``, grads."""
    def cell_forward(x, state, weights, lengths):
        output, h_n, cache = math.gru_forward(x, state[0], weights["weight_ih"], weights["bias_ih"],
                                              weights["weight_hh"], weights["bias_hh"], lengths)
        return output, (h_n,), cache

    def cell_backward(grad_output, grad_state, cache, input_grad=True):
        grad_x, grad_h0, grads = math.gru_backward(grad_output, grad_state[0], cache, input_grad)
        return grad_x, (grad_h0,), grads

    return cell_forward, cell_backward


gru_cell_forward, gru_cell_backward = gru_adapters(sys.modules[__name__])

register_cell("GRU", Cell(3, ("h",), gru_cell_forward, gru_cell_backward, skips_input_grad=True))
