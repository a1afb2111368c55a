"""Recurrent layers with PyTorch's names, shapes, equations and initialisation: ``RNN``, ``LSTM``, ``GRU``
and their one-step cells ``RNNCell``, ``LSTMCell``, ``GRUCell``, with hand-written backward passes.

:class:`RNNBase` holds everything the three layers share: parameters created in a layer x direction
loop from PyTorch's name templates (``weight_ih_l{k}{suffix}``), initialisation, input and state shape
checks, variable ``lengths``, dropout between layers, ``extra_repr``. The math of each cell over a
whole sequence lives in :mod:`rnnlab.nn.recurrent_math`.

Choosing the implementation of the math. The layers call the kernels through one module-level hook,
so a faster implementation with the same function signatures (``rnn_forward``, ``rnn_backward``,
``lstm_forward``, ``lstm_backward``, ``gru_forward``, ``gru_backward``) can be switched in without
touching the layer code::

    from rnnlab.nn import recurrent, recurrent_fast
    recurrent.set_kernels(recurrent_fast)   # every layer and cell uses it from the next forward on
    recurrent.set_kernels(None)             # back to the reference recurrent_math
    recurrent.get_kernels()                 # the module in use

A forward remembers which kernels it used, so its backward always runs the matching backward.
"""
from __future__ import annotations

import math
import numbers
import warnings

from .. import backend
from . import recurrent_math
from .module import Module, Parameter

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell",
           "set_kernels", "get_kernels"]

_kernels = recurrent_math


def set_kernels(module=None) -> None:
    """Use ``module``'s ``*_forward``/``*_backward`` functions for every recurrent layer and cell
    (``None``: the reference :mod:`rnnlab.nn.recurrent_math`)."""
    global _kernels
    _kernels = recurrent_math if module is None else module


def get_kernels():
    """The module whose kernels the recurrent layers use now."""
    return _kernels


# ------------------------------------------------------------------------------------------------
# helpers at the layer's edge
# ------------------------------------------------------------------------------------------------
def _as_float_array(value, dtype, what: str):
    """NumPy arrays, array-likes and PyTorch tensors -> an ``xp`` array of the layer's dtype.

    Integer and floating inputs are cast to the layer's dtype (PyTorch would raise on a dtype
    mismatch; casting is friendlier and loses nothing a float32 layer keeps); anything else is a
    ``TypeError``.
    """
    xp = backend.xp
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    array = xp.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{what} must hold numbers (float or int), got an array of dtype {array.dtype}")
    return array.astype(dtype, copy=False)


def _reverse_time(sequence, lengths):
    """Reverse ``(L, N, ...)`` along time within each sequence's own length (padding stays put).

    Applying it twice gives back the original, so the same call turns outputs back around.
    """
    xp = backend.xp
    if lengths is None:
        return sequence[::-1]
    num_steps, batch = sequence.shape[:2]
    steps = xp.arange(num_steps)[:, None]
    source = xp.where(steps < lengths[None, :], lengths[None, :] - 1 - steps, steps)  # (L, N)
    return sequence[source, xp.arange(batch)[None, :]]


def _check_lengths(lengths, batch: int, num_steps: int):
    """``lengths`` -> an int array (N,), or ``None`` when every sequence fills all ``L`` steps."""
    xp = backend.xp
    if hasattr(lengths, "detach") and hasattr(lengths, "cpu"):
        lengths = lengths.detach().cpu().numpy()
    array = xp.asarray(lengths)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ValueError(f"lengths must be a 1-D list or array of ints, got {lengths!r}")
    if array.shape[0] != batch:
        raise ValueError(f"lengths must hold one length per sequence: expected {batch}, got {array.shape[0]}")
    if array.size and (int(array.min()) < 1 or int(array.max()) > num_steps):
        raise ValueError(
            f"every length must lie in [1, {num_steps}] (the padded sequence length), got {array.tolist()}"
        )
    array = array.astype(xp.int64)
    if bool((array == num_steps).all()):
        return None  # nothing to mask
    return array


def _uniform_init(module: Module, hidden_size: int) -> None:
    """PyTorch's init: every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), in registration order."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for param in module.parameters():
        draw = backend.generator().uniform(-bound, bound, size=param.data.shape)
        param.data[...] = backend.xp.asarray(draw, dtype=param.data.dtype)


# ------------------------------------------------------------------------------------------------
# the shared base of RNN, LSTM and GRU
# ------------------------------------------------------------------------------------------------
class RNNBase(Module):
    r"""Base class of :class:`RNN`, :class:`LSTM` and :class:`GRU` (PyTorch's ``RNNBase``).

    Args:
        mode: ``'RNN_TANH'``, ``'RNN_RELU'``, ``'LSTM'`` or ``'GRU'``.
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size:
            as in :class:`LSTM`.
        dtype: ``float32`` (the default, see :func:`rnnlab.set_default_dtype`) or ``float64``.

    ``forward(input, hx=None, lengths=None)`` caches what ``backward`` needs (unless inside
    :func:`rnnlab.no_grad`); ``backward(grad_output, grad_state)`` accumulates every parameter's
    ``.grad`` and returns the gradients of the input and of the initial state. The cache stays until
    the next forward, so ``backward`` may be called again (gradients add up).
    """

    _gates_per_mode = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype=None):
        super().__init__()
        if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] "
                             "representing the probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=3)
        for name, value, kind in (("bias", bias, bool), ("batch_first", batch_first, bool),
                                  ("bidirectional", bidirectional, bool), ("input_size", input_size, int),
                                  ("hidden_size", hidden_size, int), ("num_layers", num_layers, int),
                                  ("proj_size", proj_size, int)):
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise TypeError(f"{name} should be of type {kind.__name__}, got: {type(value).__name__}")
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode not in self._gates_per_mode:
            raise ValueError("Unrecognized RNN mode: " + str(mode))
        if proj_size > 0 and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")

        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.dtype = backend.resolve_dtype(dtype)

        num_directions = 2 if bidirectional else 1
        gate_size = self._gates_per_mode[mode] * hidden_size
        real_hidden_size = proj_size if proj_size > 0 else hidden_size
        xp = backend.xp
        self._weight_names = []  # [layer][direction] -> {"ih", "hh", "b_ih", "b_hh", "hr"} -> name or None
        for layer in range(num_layers):
            per_direction = []
            for direction in range(num_directions):
                suffix = "_reverse" if direction == 1 else ""
                layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
                names = {"ih": f"weight_ih_l{layer}{suffix}", "hh": f"weight_hh_l{layer}{suffix}",
                         "b_ih": None, "b_hh": None, "hr": None}
                setattr(self, names["ih"], Parameter(xp.empty((gate_size, layer_input_size), dtype=self.dtype)))
                setattr(self, names["hh"], Parameter(xp.empty((gate_size, real_hidden_size), dtype=self.dtype)))
                if bias:
                    names["b_ih"], names["b_hh"] = f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"
                    setattr(self, names["b_ih"], Parameter(xp.empty((gate_size,), dtype=self.dtype)))
                    setattr(self, names["b_hh"], Parameter(xp.empty((gate_size,), dtype=self.dtype)))
                if proj_size > 0:
                    names["hr"] = f"weight_hr_l{layer}{suffix}"
                    setattr(self, names["hr"], Parameter(xp.empty((proj_size, hidden_size), dtype=self.dtype)))
                per_direction.append(names)
            self._weight_names.append(per_direction)
        self._cache = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), drawn from rnnlab's generator."""
        _uniform_init(self, self.hidden_size)

    @property
    def all_weights(self) -> list:
        """``[[weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, (weight_hr_l0)], ...]`` per layer and direction."""
        return [[getattr(self, name) for name in names.values() if name is not None]
                for per_direction in self._weight_names for names in per_direction]

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if self.proj_size != 0:
            s += ", proj_size={proj_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    # --- the parts that differ between RNN, LSTM and GRU ----------------------------------------
    @property
    def _is_lstm(self) -> bool:
        return self.mode == "LSTM"

    @property
    def _output_size(self) -> int:
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def _dim_error(self, ndim: int) -> str:
        # PyTorch's wording differs by one word between RNN and LSTM/GRU; keep it.
        if self.mode.startswith("RNN"):
            return f"RNN: Expected input to be 2D or 3D, got {ndim}D tensor instead"
        return f"{self.mode}: Expected input to be 2D or 3D, got {ndim}D instead"

    def _kernel_forward(self, kernels, x_proj, state, names, lengths):
        hh = getattr(self, names["hh"]).data
        b_hh = getattr(self, names["b_hh"]).data if names["b_hh"] else None
        if self.mode == "LSTM":
            hr = getattr(self, names["hr"]).data if names["hr"] else None
            output, h_n, c_n, cache = kernels.lstm_forward(x_proj, state[0], state[1], hh, b_hh, hr, lengths=lengths)
            return output, (h_n, c_n), cache
        if self.mode == "GRU":
            output, h_n, cache = kernels.gru_forward(x_proj, state[0], hh, b_hh, lengths=lengths)
        else:
            nonlinearity = "tanh" if self.mode == "RNN_TANH" else "relu"
            output, h_n, cache = kernels.rnn_forward(x_proj, state[0], hh, b_hh, nonlinearity, lengths=lengths)
        return output, (h_n,), cache

    def _kernel_backward(self, kernels, grad_output, grad_state, cache):
        if self.mode == "LSTM":
            grad_x_proj, grad_h0, grad_c0, grads = kernels.lstm_backward(grad_output, grad_state[0], grad_state[1], cache)
            return grad_x_proj, (grad_h0, grad_c0), grads
        backward = kernels.gru_backward if self.mode == "GRU" else kernels.rnn_backward
        grad_x_proj, grad_h0, grads = backward(grad_output, grad_state[0], cache)
        return grad_x_proj, (grad_h0,), grads

    # --- input and state checks -----------------------------------------------------------------
    def _state_shapes(self, batch: int) -> list[tuple]:
        layers_x_directions = self.num_layers * (2 if self.bidirectional else 1)
        shapes = [(layers_x_directions, batch, self._output_size)]
        if self._is_lstm:
            shapes.append((layers_x_directions, batch, self.hidden_size))
        return shapes

    def _prepare_state(self, hx, batched: bool, batch: int, dtype) -> list:
        """``hx`` in the user's layout -> a list of time-major ``(D*num_layers, N, H)`` arrays (zeros if None)."""
        xp = backend.xp
        shapes = self._state_shapes(batch)
        if hx is None:
            return [xp.zeros(shape, dtype=dtype) for shape in shapes]
        if self._is_lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("LSTM expects hx as a tuple (h_0, c_0)")
            states = [_as_float_array(hx[0], dtype, "h_0"), _as_float_array(hx[1], dtype, "c_0")]
            want = 3 if batched else 2
            if states[0].ndim != want or states[1].ndim != want:
                kind = "batched 3-D" if batched else "unbatched 2-D"
                raise ValueError(f"For {kind} input, hx and cx should also be {want}-D but got "
                                 f"({states[0].ndim}-D, {states[1].ndim}-D) tensors")
            messages = ["Expected hidden[0] size {}, got {}", "Expected hidden[1] size {}, got {}"]
        else:
            states = [_as_float_array(hx, dtype, "h_0")]
            if batched and states[0].ndim != 3:
                raise ValueError(f"For batched 3-D input, hx should also be 3-D but got {states[0].ndim}-D tensor")
            if not batched and states[0].ndim != 2:
                raise ValueError(f"For unbatched 2-D input, hx should also be 2-D but got {states[0].ndim}-D tensor")
            messages = ["Expected hidden size {}, got {}"]
        if not batched:
            states = [state[:, None, :] for state in states]
        for state, shape, message in zip(states, shapes, messages):
            if tuple(state.shape) != shape:
                raise ValueError(message.format(shape, list(state.shape)))
        return states

    # --- forward ----------------------------------------------------------------------------------
    def forward(self, input, hx=None, lengths=None):
        """Run the stack over whole sequences. See the class docstring of :class:`RNN`/:class:`LSTM`/:class:`GRU`."""
        return self._forward(input, hx, lengths, projected=False)

    def forward_projected(self, input_projection, hx=None, lengths=None):
        r""":meth:`forward` given layer 0's input projection instead of the input.

        ``input_projection`` is :math:`x W_{ih\_l0}^T + b_{ih\_l0}`, shaped like the input with
        ``G = gates * hidden_size`` features (``(L, N, G)``, ``(N, L, G)`` when ``batch_first``,
        ``(L, G)`` unbatched). A caller whose inputs come from a small table (a character model:
        ``embedding.weight[ids]``) computes it as a lookup in ``embedding.weight @ W_ih_l0.T + b_ih_l0``,
        a (vocabulary x G) table, instead of one large product per call. The array is consumed: the
        fast kernels write the gates over it, so pass a fresh one.

        The following :meth:`backward` returns the gradient with respect to ``input_projection`` in
        place of ``grad_input`` and leaves ``weight_ih_l0``'s and ``bias_ih_l0``'s gradients to the
        caller (:math:`\partial L/\partial W_{ih\_l0} = g^T x`, :math:`\partial L/\partial b_{ih\_l0} = \sum g`).
        Unidirectional layers only.
        """
        if self.bidirectional:
            raise ValueError("forward_projected supports unidirectional layers only (each direction has its "
                             "own weight_ih_l0)")
        return self._forward(input_projection, hx, lengths, projected=True)

    def _forward(self, input, hx, lengths, projected: bool):
        xp = backend.xp
        dtype = getattr(self, self._weight_names[0][0]["ih"]).data.dtype
        x = _as_float_array(input, dtype, "input_projection" if projected else "input")
        if x.ndim not in (2, 3):
            raise ValueError(self._dim_error(x.ndim))
        batched = x.ndim == 3
        if not batched:
            if lengths is not None:
                raise ValueError("lengths needs batched (3-D) input; an unbatched sequence has one length, its own")
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        if projected:
            gate_size = self._gates_per_mode[self.mode] * self.hidden_size
            if x.shape[-1] != gate_size:
                raise ValueError(f"input_projection.size(-1) must be equal to {self._gates_per_mode[self.mode]} * "
                                 f"hidden_size. Expected {gate_size}, got {x.shape[-1]}")
        elif x.shape[-1] != self.input_size:
            raise ValueError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {x.shape[-1]}")
        num_steps, batch = x.shape[0], x.shape[1]
        states = self._prepare_state(hx, batched, batch, dtype)
        if lengths is not None:
            lengths = _check_lengths(lengths, batch, num_steps)

        kernels = _kernels
        keep_cache = backend.is_grad_enabled()
        num_directions = 2 if self.bidirectional else 1
        out_size = self._output_size
        use_dropout = self.training and self.dropout > 0 and self.num_layers > 1
        final_states = [[] for _ in states]
        layer_inputs, dropout_masks, kernel_caches = [], [], []
        layer_input = x
        for layer in range(self.num_layers):
            if layer > 0 and use_dropout:
                # Dropout on the previous layer's output (never the last layer's), inverted scaling.
                keep = backend.generator().random(layer_input.shape) >= self.dropout
                mask = (xp.asarray(keep, dtype=dtype) / (1.0 - self.dropout) if self.dropout < 1
                        else xp.zeros(layer_input.shape, dtype=dtype))
                layer_input = layer_input * mask
                dropout_masks.append(mask)
            else:
                dropout_masks.append(None)
            outputs, caches = [], []
            for direction in range(num_directions):
                names = self._weight_names[layer][direction]
                if layer == 0 and projected:
                    x_proj = layer_input  # the caller's x W_ih_l0^T + b_ih_l0 (see forward_projected)
                else:
                    # all steps at once, as ONE 2-D product: a 3-D `@` is a loop of L small products (2.7x slower)
                    steps, rows = layer_input.shape[0], layer_input.shape[1]
                    x_proj = (layer_input.reshape(steps * rows, -1) @ getattr(self, names["ih"]).data.T
                              ).reshape(steps, rows, -1)  # (L, N, G)
                    if names["b_ih"]:
                        x_proj += getattr(self, names["b_ih"]).data
                if direction == 1:
                    x_proj = _reverse_time(x_proj, lengths)
                index = layer * num_directions + direction
                output, final, cache = self._kernel_forward(
                    kernels, x_proj, [state[index] for state in states], names, lengths)
                if direction == 1:
                    output = _reverse_time(output, lengths)
                outputs.append(output)
                caches.append(cache)
                for collected, value in zip(final_states, final):
                    collected.append(value)
            layer_inputs.append(None if layer == 0 and projected else layer_input)
            kernel_caches.append(caches)
            layer_input = outputs[0] if num_directions == 1 else xp.concatenate(outputs, axis=-1)

        output = layer_input  # (L, N, D * H_out)
        finals = [xp.stack(collected) for collected in final_states]
        self._cache = None
        if keep_cache:
            self._cache = {"kernels": kernels, "layer_inputs": layer_inputs, "dropout_masks": dropout_masks,
                           "kernel_caches": kernel_caches, "lengths": lengths, "batched": batched,
                           "output_shape": output.shape, "state_shapes": [f.shape for f in finals],
                           "dtype": dtype, "projected": projected}
        if not batched:
            output = output[:, 0, :]
            finals = [f[:, 0, :] for f in finals]
        elif self.batch_first:
            output = xp.ascontiguousarray(output.transpose(1, 0, 2))
        if self._is_lstm:
            return output, (finals[0], finals[1])
        return output, finals[0]

    # --- backward ---------------------------------------------------------------------------------
    def _to_time_major(self, grad, shape, batched: bool, what: str, dtype, is_output: bool):
        """A gradient in the user's layout -> time-major, checked against the forward's result shape."""
        if grad is None:
            return None
        grad = _as_float_array(grad, dtype, what)
        if not batched:
            user_shape = (shape[0], shape[2])
        elif is_output and self.batch_first:
            user_shape = (shape[1], shape[0], shape[2])
        else:
            user_shape = tuple(shape)
        if tuple(grad.shape) != user_shape:
            raise ValueError(f"{what} must have the shape of the forward's result {user_shape}, got {list(grad.shape)}")
        if not batched:
            return grad[:, None, :]
        if is_output and self.batch_first:
            return grad.transpose(1, 0, 2)
        return grad

    def backward(self, grad_output, grad_state=None):
        """Back-propagate through time: ``grad_output`` (shape of ``output`` or ``None``) and ``grad_state``
        (``grad_h_n``, or for LSTM ``(grad_h_n, grad_c_n)``; ``None`` or ``None`` entries mean zero) ->
        ``(grad_input, grad_h_0)`` (LSTM: ``(grad_input, (grad_h_0, grad_c_0))``), in the input's layout.
        Parameter gradients accumulate into ``.grad``."""
        xp = backend.xp
        cache = self._cache
        if cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() needs a forward pass first (with gradients "
                               "enabled: a forward under rnnlab.no_grad() keeps nothing to back-propagate)")
        batched, lengths, dtype = cache["batched"], cache["lengths"], cache["dtype"]
        if self._is_lstm:
            if grad_state is None:
                grad_state = (None, None)
            if not isinstance(grad_state, (tuple, list)) or len(grad_state) != 2:
                raise TypeError("LSTM.backward expects grad_state as a tuple (grad_h_n, grad_c_n) or None")
            grad_states = list(grad_state)
        else:
            grad_states = [grad_state]
        grad_states = [self._to_time_major(g, shape, batched, ("grad_h_n", "grad_c_n")[k], dtype, False)
                       for k, (g, shape) in enumerate(zip(grad_states, cache["state_shapes"]))]
        grad_layer_output = self._to_time_major(grad_output, cache["output_shape"], batched, "grad_output", dtype, True)
        grad_initial = [xp.zeros(shape, dtype=dtype) for shape in cache["state_shapes"]]

        kernels = cache["kernels"]
        num_directions = 2 if self.bidirectional else 1
        out_size = self._output_size
        for layer in reversed(range(self.num_layers)):
            layer_input = cache["layer_inputs"][layer]
            grad_layer_input = None
            for direction in range(num_directions):
                names = self._weight_names[layer][direction]
                index = layer * num_directions + direction
                grad_out = None
                if grad_layer_output is not None:
                    grad_out = grad_layer_output[:, :, direction * out_size:(direction + 1) * out_size]
                    if direction == 1:
                        grad_out = _reverse_time(grad_out, lengths)
                grad_final = [None if g is None else g[index] for g in grad_states]
                grad_x_proj, grad_start, grads = self._kernel_backward(
                    kernels, grad_out, grad_final, cache["kernel_caches"][layer][direction])
                if direction == 1:
                    grad_x_proj = _reverse_time(grad_x_proj, lengths)
                for collected, value in zip(grad_initial, grad_start):
                    collected[index] = value
                getattr(self, names["hh"]).accumulate_grad(grads["weight_hh"], owned=True)
                if names["b_hh"]:
                    getattr(self, names["b_hh"]).accumulate_grad(grads["bias_hh"])
                if names["hr"]:
                    getattr(self, names["hr"]).accumulate_grad(grads["weight_hr"])
                if layer_input is None:  # forward_projected: the caller back-propagates layer 0's projection
                    grad_layer_input = grad_x_proj
                    continue
                num_steps, batch, in_size = layer_input.shape
                weight_ih = getattr(self, names["ih"])
                flat_grad = grad_x_proj.reshape(num_steps * batch, -1)
                weight_ih.accumulate_grad(flat_grad.T @ layer_input.reshape(num_steps * batch, in_size), owned=True)
                if names["b_ih"]:
                    # RNN, LSTM: b_ih and b_hh are added to the same pre-activation, so their gradients
                    # are one sum (GRU's b_hn sits inside r * (...)): not computed twice
                    same_sum = self.mode != "GRU" and grads["bias_hh"] is not None
                    getattr(self, names["b_ih"]).accumulate_grad(
                        grads["bias_hh"] if same_sum else flat_grad.sum(axis=0))
                grad_input = (flat_grad @ weight_ih.data).reshape(num_steps, batch, in_size)  # one 2-D product
                grad_layer_input = grad_input if grad_layer_input is None else grad_layer_input + grad_input
            mask = cache["dropout_masks"][layer]
            if mask is not None:
                grad_layer_input = grad_layer_input * mask
            grad_layer_output = grad_layer_input

        grad_x = grad_layer_output
        if not batched:
            grad_x = grad_x[:, 0, :]
            grad_initial = [g[:, 0, :] for g in grad_initial]
        elif self.batch_first:
            grad_x = xp.ascontiguousarray(grad_x.transpose(1, 0, 2))
        if self._is_lstm:
            return grad_x, (grad_initial[0], grad_initial[1])
        return grad_x, grad_initial[0]




class RNN(RNNBase):
    r"""A multi-layer Elman RNN with :math:`\tanh` or :math:`\text{ReLU}` non-linearity.

    For each element in the input sequence, each layer computes

    .. math::
        h_t = \tanh(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})

    where :math:`h_t` is the hidden state at time `t`, :math:`x_t` is the input at time `t`, and
    :math:`h_{(t-1)}` is the hidden state of the previous layer at time `t-1` or the initial hidden
    state at time `0`. With ``nonlinearity='relu'``, :math:`\text{ReLU}` replaces :math:`\tanh`.
    In a multilayer RNN the input of layer :math:`l \ge 2` is the output of layer :math:`l-1`,
    multiplied (in training mode) by a dropout mask :math:`\delta` of probability ``dropout``.

    Args:
        input_size: The number of expected features in the input `x`
        hidden_size: The number of features in the hidden state `h`
        num_layers: Number of recurrent layers stacked. Default: 1
        nonlinearity: The non-linearity to use. Can be either ``'tanh'`` or ``'relu'``. Default: ``'tanh'``
        bias: If ``False``, the layer does not use bias weights `b_ih` and `b_hh`. Default: ``True``
        batch_first: If ``True``, input and output are `(batch, seq, feature)` instead of
            `(seq, batch, feature)`. Does not apply to hidden states. Default: ``False``
        dropout: If non-zero, a Dropout layer on the outputs of each RNN layer except the last,
            with probability ``dropout``, in training mode only. Default: 0
        bidirectional: If ``True``, a bidirectional RNN. Default: ``False``
        dtype: ``float32`` (default: :func:`rnnlab.get_default_dtype`) or ``float64``.

    Inputs: input, hx, lengths
        * **input**: array of shape :math:`(L, H_{in})` for unbatched input, :math:`(L, N, H_{in})` when
          ``batch_first=False`` or :math:`(N, L, H_{in})` when ``batch_first=True``. Float or int
          input is cast to the layer's dtype; anything else raises ``TypeError``.
        * **hx**: array of shape :math:`(D * \text{num\_layers}, H_{out})` (unbatched) or
          :math:`(D * \text{num\_layers}, N, H_{out})`: the initial hidden state. Defaults to zeros.
        * **lengths** (rnnlab's stand-in for a ``PackedSequence``): ``None`` or one int per sequence,
          each in ``[1, L]`` (batched input only, any order). Results equal PyTorch's
          ``pack_padded_sequence(input, lengths, enforce_sorted=False)`` -> layer ->
          ``pad_packed_sequence(..., total_length=L)``: outputs past a sequence's end are 0, ``h_n`` holds
          each sequence's state at its own last step, and the reverse direction starts at each
          sequence's own last element. Gradients of padded inputs are 0.

    Outputs: output, h_n
        * **output**: :math:`(L, D * H_{out})` (unbatched), :math:`(L, N, D * H_{out})` or, with
          ``batch_first=True``, :math:`(N, L, D * H_{out})`: the last layer's :math:`h_t` for every `t`.
        * **h_n**: :math:`(D * \text{num\_layers}, H_{out})` or :math:`(D * \text{num\_layers}, N, H_{out})`:
          the final hidden state of every layer and direction, ordered layer by layer, forward
          direction before reverse (index ``layer * D + direction``).
    where:

    .. math::
        \begin{aligned}
            N ={} & \text{batch size} \\
            L ={} & \text{sequence length} \\
            D ={} & 2 \text{ if bidirectional=True otherwise } 1 \\
            H_{in} ={} & \text{input\_size} \\
            H_{out} ={} & \text{hidden\_size (LSTM: proj\_size if proj\_size > 0)}
        \end{aligned}

    Backward: ``grad_input, grad_h_0 = rnn.backward(grad_output, grad_h_n)``; either gradient may be
    ``None`` (zero). ``grad_h_0`` is returned even when ``hx`` was not passed. Parameter gradients
    accumulate into ``.grad`` until :meth:`zero_grad`.

    Attributes:
        weight_ih_l[k]: the learnable input-hidden weights of the k-th layer, of shape
            `(hidden_size, input_size)` for `k = 0`, otherwise `(hidden_size, num_directions * hidden_size)`
        weight_hh_l[k]: the learnable hidden-hidden weights of the k-th layer, of shape `(hidden_size, hidden_size)`
        bias_ih_l[k]: the learnable input-hidden bias of the k-th layer, of shape `(hidden_size)`
        bias_hh_l[k]: the learnable hidden-hidden bias of the k-th layer, of shape `(hidden_size)`

        The reverse direction's parameters carry the suffix ``_reverse``. All are initialised from
        :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})` with :math:`k = 1/\text{hidden\_size}`.

    Example (PyTorch's basics, in rnnlab)::

        >>> import numpy as np, rnnlab
        >>> from rnnlab import nn
        >>> _ = rnnlab.manual_seed(0)
        >>> rnn = nn.RNN(4, 2, batch_first=True)
        >>> rnn
        RNN(4, 2, batch_first=True)
        >>> [(name, p.shape) for name, p in rnn.named_parameters()]
        [('weight_ih_l0', (2, 4)), ('weight_hh_l0', (2, 2)), ('bias_ih_l0', (2,)), ('bias_hh_l0', (2,))]
        >>> x = np.ones((3, 5, 4), dtype=np.float32)       # 3 sequences, 5 steps, 4 features
        >>> out, h_n = rnn(x)
        >>> out.shape, h_n.shape
        ((3, 5, 2), (1, 3, 2))
        >>> bool(np.allclose(out[:, -1], h_n[0]))            # the last output is the final state
        True
        >>> grad_x, grad_h0 = rnn.backward(np.ones_like(out), None)
        >>> grad_x.shape, grad_h0.shape, rnn.weight_hh_l0.grad.shape
        ((3, 5, 4), (1, 3, 2), (2, 2))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=None):
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None, lengths=None):
        """``output, h_n = rnn(input, hx=None, lengths=None)`` (see the class docstring)."""
        return super().forward(input, hx, lengths)

    def backward(self, grad_output, grad_h_n=None):
        """``grad_input, grad_h_0 = rnn.backward(grad_output, grad_h_n)``; ``None`` means zero."""
        return super().backward(grad_output, grad_h_n)


class LSTM(RNNBase):
    r"""A multi-layer long short-term memory (LSTM) RNN.

    For each element in the input sequence, each layer computes

    .. math::
        \begin{array}{ll}
            i_t = \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
            f_t = \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
            g_t = \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
            o_t = \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
            c_t = f_t \odot c_{t-1} + i_t \odot g_t \\
            h_t = o_t \odot \tanh(c_t) \\
        \end{array}

    where :math:`h_t` is the hidden state, :math:`c_t` the cell state, :math:`x_t` the input at time `t`,
    :math:`i_t, f_t, g_t, o_t` the input, forget, cell and output gates (stacked in this order in
    ``weight_ih``/``weight_hh``), :math:`\sigma` the sigmoid and :math:`\odot` the Hadamard product.
    In a multilayer LSTM the input of layer :math:`l \ge 2` is the previous layer's :math:`h_t`
    multiplied (in training mode) by a dropout mask of probability ``dropout``.

    With ``proj_size > 0`` the hidden state is projected, :math:`h_t = W_{hr}(o_t \odot \tanh(c_t))`,
    so ``h_t`` (and ``output``, ``h_n``, ``weight_hh``'s second dimension) has ``proj_size`` features
    while ``c_t`` keeps ``hidden_size``.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype: as in :class:`RNN`
        proj_size: If ``> 0``, use an LSTM with projections of that size. Default: 0

    Inputs: input, (h_0, c_0), lengths
        * **input**, **lengths**: as in :class:`RNN`.
        * **h_0**: :math:`(D * \text{num\_layers}, H_{out})` or :math:`(D * \text{num\_layers}, N, H_{out})`
        * **c_0**: :math:`(D * \text{num\_layers}, H_{cell})` or :math:`(D * \text{num\_layers}, N, H_{cell})`,
          :math:`H_{cell}` = ``hidden_size``. Both default to zeros if ``(h_0, c_0)`` is not given.

    Outputs: output, (h_n, c_n)
        * **output**: :math:`(L, D * H_{out})`, :math:`(L, N, D * H_{out})` or (batch_first) :math:`(N, L, D * H_{out})`
        * **h_n**, **c_n**: the final hidden and cell states, shaped like ``h_0`` and ``c_0``; index
          ``layer * D + direction`` (for a bidirectional LSTM, ``h_n[-1]`` is the last layer's reverse
          direction, whose final step is the sequence's first element, while ``output[-1]``'s
          second half is that direction's first step).
    where:

    .. math::
        \begin{aligned}
            N ={} & \text{batch size} \\
            L ={} & \text{sequence length} \\
            D ={} & 2 \text{ if bidirectional=True otherwise } 1 \\
            H_{in} ={} & \text{input\_size} \\
            H_{out} ={} & \text{hidden\_size (LSTM: proj\_size if proj\_size > 0)}
        \end{aligned}

    Backward: ``grad_input, (grad_h_0, grad_c_0) = lstm.backward(grad_output, (grad_h_n, grad_c_n))``;
    ``grad_output``, the tuple and its entries may be ``None`` (zero).

    Attributes:
        weight_ih_l[k]: `(4*hidden_size, input_size)` for `k = 0`, otherwise `(4*hidden_size, num_directions * H_out)`
        weight_hh_l[k]: `(4*hidden_size, H_out)` (`W_hi|W_hf|W_hg|W_ho`)
        bias_ih_l[k], bias_hh_l[k]: `(4*hidden_size)`
        weight_hr_l[k]: `(proj_size, hidden_size)`, only when ``proj_size > 0``

        Reverse-direction parameters carry the suffix ``_reverse``; all start from
        :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`.

    Example::

        >>> import numpy as np, rnnlab
        >>> from rnnlab import nn
        >>> _ = rnnlab.manual_seed(0)
        >>> lstm = nn.LSTM(10, 20, num_layers=2, batch_first=True, bidirectional=True)
        >>> lstm
        LSTM(10, 20, num_layers=2, batch_first=True, bidirectional=True)
        >>> x = np.zeros((3, 5, 10), dtype=np.float32)
        >>> out, (h_n, c_n) = lstm(x, lengths=[5, 3, 2])
        >>> out.shape, h_n.shape, c_n.shape
        ((3, 5, 40), (4, 3, 20), (4, 3, 20))
        >>> float(abs(out[2, 2:]).max())                  # past a sequence's end the output is 0
        0.0
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, dtype=dtype)

    def forward(self, input, hx=None, lengths=None):
        """``output, (h_n, c_n) = lstm(input, (h_0, c_0)=None, lengths=None)`` (see the class docstring)."""
        return super().forward(input, hx, lengths)

    def backward(self, grad_output, grad_state=None):
        """``grad_input, (grad_h_0, grad_c_0) = lstm.backward(grad_output, (grad_h_n, grad_c_n))``."""
        return super().backward(grad_output, grad_state)


class GRU(RNNBase):
    r"""A multi-layer gated recurrent unit (GRU) RNN.

    For each element in the input sequence, each layer computes

    .. math::
        \begin{array}{ll}
            r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{(t-1)} + b_{hr}) \\
            z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{(t-1)} + b_{hz}) \\
            n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{(t-1)}+ b_{hn})) \\
            h_t = (1 - z_t) \odot n_t + z_t \odot h_{(t-1)}
        \end{array}

    where :math:`r_t, z_t, n_t` are the reset, update and new gates (stacked in this order in
    ``weight_ih``/``weight_hh``). Note :math:`b_{hn}` sits *inside* :math:`r_t \odot (\dots)`, as in
    PyTorch and cuDNN (the original paper puts the reset gate before the product with :math:`W_{hn}`),
    so :math:`b_{in}` and :math:`b_{hn}` are not interchangeable.

    Args, inputs, outputs, backward and the ``lengths`` semantics: as in :class:`RNN`
    (``output, h_n = gru(input, h_0=None, lengths=None)``; ``grad_input, grad_h_0 = gru.backward(grad_output, grad_h_n)``).
    where:

    .. math::
        \begin{aligned}
            N ={} & \text{batch size} \\
            L ={} & \text{sequence length} \\
            D ={} & 2 \text{ if bidirectional=True otherwise } 1 \\
            H_{in} ={} & \text{input\_size} \\
            H_{out} ={} & \text{hidden\_size (LSTM: proj\_size if proj\_size > 0)}
        \end{aligned}

    Attributes:
        weight_ih_l[k]: `(3*hidden_size, input_size)` for `k = 0`, otherwise `(3*hidden_size, num_directions * hidden_size)`
        weight_hh_l[k]: `(3*hidden_size, hidden_size)` (`W_hr|W_hz|W_hn`)
        bias_ih_l[k], bias_hh_l[k]: `(3*hidden_size)`

    Example::

        >>> import numpy as np, rnnlab
        >>> from rnnlab import nn
        >>> _ = rnnlab.manual_seed(0)
        >>> gru = nn.GRU(4, 3, num_layers=2)
        >>> out, h_n = gru(np.zeros((5, 4)))                 # unbatched: (L, H_in)
        >>> out.shape, h_n.shape
        ((5, 3), (2, 3))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype)

    def forward(self, input, hx=None, lengths=None):
        """``output, h_n = gru(input, h_0=None, lengths=None)`` (see the class docstring)."""
        return super().forward(input, hx, lengths)

    def backward(self, grad_output, grad_h_n=None):
        """``grad_input, grad_h_0 = gru.backward(grad_output, grad_h_n)``; ``None`` means zero."""
        return super().backward(grad_output, grad_h_n)


# ------------------------------------------------------------------------------------------------
# cells: one step; the sequence math with L = 1
# ------------------------------------------------------------------------------------------------
class RNNCellBase(Module):
    """Base of the one-step cells: parameters ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``.

    Each forward pushes its cache on a stack and each ``backward`` pops the latest, so a Python loop
    of forward calls followed by backward calls in reverse order is back-propagation through time
    written by hand. Under :func:`rnnlab.no_grad` nothing is pushed; :meth:`clear_cache` drops
    whatever forwards left without a backward.
    """

    _mode = ""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, dtype=None):
        super().__init__()
        for name, value, kind in (("input_size", input_size, int), ("hidden_size", hidden_size, int),
                                  ("bias", bias, bool)):
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise TypeError(f"{name} should be of type {kind.__name__}, got: {type(value).__name__}")
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        xp = backend.xp
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.dtype = backend.resolve_dtype(dtype)
        self.weight_ih = Parameter(xp.empty((num_chunks * hidden_size, input_size), dtype=self.dtype))
        self.weight_hh = Parameter(xp.empty((num_chunks * hidden_size, hidden_size), dtype=self.dtype))
        if bias:
            self.bias_ih = Parameter(xp.empty((num_chunks * hidden_size,), dtype=self.dtype))
            self.bias_hh = Parameter(xp.empty((num_chunks * hidden_size,), dtype=self.dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self._cache_stack = []
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), drawn from rnnlab's generator."""
        _uniform_init(self, self.hidden_size)

    def clear_cache(self) -> None:
        """Forget the caches of forwards that will not be back-propagated."""
        self._cache_stack.clear()

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if self.bias is not True:
            s += ", bias={bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += ", nonlinearity={nonlinearity}"
        return s.format(**self.__dict__)

    def _prepare(self, input, states):
        """-> (x (N, H_in), [state (N, H)], batched); states entries may be None (zeros)."""
        xp = backend.xp
        dtype = self.weight_ih.data.dtype
        x = _as_float_array(input, dtype, "input")
        if x.ndim not in (1, 2):
            raise ValueError(f"{self._mode}: Expected input to be 1D or 2D, got {x.ndim}D instead")
        batched = x.ndim == 2
        if not batched:
            x = x[None, :]
        if x.shape[1] != self.input_size:
            raise ValueError(f"input has inconsistent input_size: got {x.shape[1]} expected {self.input_size}")
        prepared = []
        for k, state in enumerate(states):
            label = "hidden" if len(states) == 1 else f"hx[{k}]"
            if state is None:
                prepared.append(xp.zeros((x.shape[0], self.hidden_size), dtype=dtype))
                continue
            state = _as_float_array(state, dtype, label)
            if state.ndim not in (1, 2):
                raise ValueError(f"{self._mode}: Expected {label} to be 1D or 2D, got {state.ndim}D instead")
            if not batched:
                state = state[None, :] if state.ndim == 1 else state
            if tuple(state.shape) != (x.shape[0], self.hidden_size):
                raise ValueError(f"Expected {label} of shape {(x.shape[0], self.hidden_size) if batched else (self.hidden_size,)}, "
                                 f"got {list(state.shape if batched else state.shape[1:])}")
            prepared.append(state)
        return x, prepared, batched

    def _project_input(self, x):
        x_proj = x @ self.weight_ih.data.T
        if self.bias_ih is not None:
            x_proj += self.bias_ih.data
        return x_proj[None]  # a sequence of one step: (1, N, G)

    def _pop_cache(self):
        if not self._cache_stack:
            raise RuntimeError(f"{type(self).__name__}.backward() called more times than forward() (or after a "
                               "forward under rnnlab.no_grad(), which keeps nothing to back-propagate)")
        return self._cache_stack.pop()

    def _accumulate(self, x, grad_x_proj, grads):
        """Parameter gradients from one step; returns grad_x (N, H_in)."""
        grad_x_proj = grad_x_proj[0]
        self.weight_ih.accumulate_grad(grad_x_proj.T @ x)
        self.weight_hh.accumulate_grad(grads["weight_hh"])
        if self.bias_ih is not None:
            self.bias_ih.accumulate_grad(grad_x_proj.sum(axis=0))
            self.bias_hh.accumulate_grad(grads["bias_hh"])
        return grad_x_proj @ self.weight_ih.data

    def _grad_state(self, grad, batch, batched, what):
        if grad is None:
            return None
        grad = _as_float_array(grad, self.weight_ih.data.dtype, what)
        if not batched:
            grad = grad[None, :] if grad.ndim == 1 else grad
        if tuple(grad.shape) != (batch, self.hidden_size):
            raise ValueError(f"{what} must have the shape of the forward's result, got {list(grad.shape)}")
        return grad


class _SingleStateCell(RNNCellBase):
    """What :class:`RNNCell` and :class:`GRUCell` share: one state ``h``; the cell's kernels run a
    sequence of length 1 (``_kernel_forward`` / ``_kernel_backward`` pick the cell's math)."""

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, [hx])
        kernels = _kernels
        b_hh = None if self.bias_hh is None else self.bias_hh.data
        _, h_next, cache = self._kernel_forward(kernels, self._project_input(x), h, b_hh)
        if backend.is_grad_enabled():
            self._cache_stack.append((kernels, x, cache, batched))
        return h_next if batched else h_next[0]

    def backward(self, grad_h):
        kernels, x, cache, batched = self._pop_cache()
        grad_h = self._grad_state(grad_h, x.shape[0], batched, "grad_h")
        grad_x_proj, grad_h_prev, grads = self._kernel_backward(kernels, grad_h, cache)
        grad_x = self._accumulate(x, grad_x_proj, grads)
        if not batched:
            return grad_x[0], grad_h_prev[0]
        return grad_x, grad_h_prev


class RNNCell(_SingleStateCell):
    r"""An Elman RNN cell with tanh or ReLU non-linearity: one step of :class:`RNN`.

    .. math::
        h' = \tanh(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})

    Args:
        input_size, hidden_size: features in the input `x` and the hidden state `h`
        bias: If ``False``, no `b_ih` and `b_hh`. Default: ``True``
        nonlinearity: ``'tanh'`` or ``'relu'``. Default: ``'tanh'``
        dtype: ``float32`` (default) or ``float64``

    Inputs: input, hidden
        * **input**: :math:`(N, H_{in})` or :math:`(H_{in})`
        * **hidden**: :math:`(N, H_{out})` or :math:`(H_{out})`; zeros if not given.

    Output: h' of shape :math:`(N, H_{out})` or :math:`(H_{out})`.

    Backward: ``grad_input, grad_hidden = cell.backward(grad_h)`` pops the latest forward's cache.

    Attributes:
        weight_ih `(hidden_size, input_size)`, weight_hh `(hidden_size, hidden_size)`,
        bias_ih `(hidden_size)`, bias_hh `(hidden_size)`; all from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`,
        :math:`k = 1/\text{hidden\_size}`.

    Example (BPTT by hand)::

        >>> import numpy as np, rnnlab
        >>> from rnnlab import nn
        >>> _ = rnnlab.manual_seed(0)
        >>> cell = nn.RNNCell(3, 4)
        >>> xs = np.ones((6, 2, 3))                     # 6 steps, batch of 2
        >>> h = None
        >>> for x_t in xs:
        ...     h = cell(x_t, h)
        >>> grad_h = np.ones_like(h)                    # d(sum of h_6) / d h_6
        >>> for t in reversed(range(6)):
        ...     grad_x_t, grad_h = cell.backward(grad_h)
        >>> grad_x_t.shape, grad_h.shape, cell.weight_hh.grad.shape
        ((2, 3), (2, 4), (4, 4))
    """

    _mode = "RNNCell"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, num_chunks=1, dtype=dtype)
        self.nonlinearity = nonlinearity

    def _kernel_forward(self, kernels, x_proj, h, b_hh):
        return kernels.rnn_forward(x_proj, h, self.weight_hh.data, b_hh, self.nonlinearity)

    def _kernel_backward(self, kernels, grad_h, cache):
        return kernels.rnn_backward(None, grad_h, cache)


class LSTMCell(RNNCellBase):
    r"""A long short-term memory (LSTM) cell: one step of :class:`LSTM`.

    .. math::
        \begin{array}{ll}
        i = \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}) \\
        f = \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}) \\
        g = \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}) \\
        o = \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}) \\
        c' = f \odot c + i \odot g \\
        h' = o \odot \tanh(c') \\
        \end{array}

    Inputs: input, (h_0, c_0)
        * **input**: :math:`(N, H_{in})` or :math:`(H_{in})`
        * **h_0**, **c_0**: :math:`(N, H_{out})` or :math:`(H_{out})`; zeros if not given.

    Outputs: (h_1, c_1), shaped like h_0 and c_0.

    Backward: ``grad_input, (grad_h_0, grad_c_0) = cell.backward(grad_h_1, grad_c_1)`` (``grad_c_1`` may
    be ``None``) pops the latest forward's cache.

    Attributes:
        weight_ih `(4*hidden_size, input_size)`, weight_hh `(4*hidden_size, hidden_size)`,
        bias_ih, bias_hh `(4*hidden_size)`; gate order i, f, g, o; all from
        :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`.
    """

    _mode = "LSTMCell"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, dtype=dtype)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("LSTMCell expects hx as a tuple (h_0, c_0)")
        x, (h, c), batched = self._prepare(input, [None, None] if hx is None else list(hx))
        kernels = _kernels
        b_hh = None if self.bias_hh is None else self.bias_hh.data
        _, h_next, c_next, cache = kernels.lstm_forward(self._project_input(x), h, c, self.weight_hh.data, b_hh)
        if backend.is_grad_enabled():
            self._cache_stack.append((kernels, x, cache, batched))
        if not batched:
            return h_next[0], c_next[0]
        return h_next, c_next

    def backward(self, grad_h, grad_c=None):
        kernels, x, cache, batched = self._pop_cache()
        grad_h = self._grad_state(grad_h, x.shape[0], batched, "grad_h")
        grad_c = self._grad_state(grad_c, x.shape[0], batched, "grad_c")
        grad_x_proj, grad_h_prev, grad_c_prev, grads = kernels.lstm_backward(None, grad_h, grad_c, cache)
        grad_x = self._accumulate(x, grad_x_proj, grads)
        if not batched:
            return grad_x[0], (grad_h_prev[0], grad_c_prev[0])
        return grad_x, (grad_h_prev, grad_c_prev)


class GRUCell(_SingleStateCell):
    r"""A gated recurrent unit (GRU) cell: one step of :class:`GRU`.

    .. math::
        \begin{array}{ll}
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
        h' = (1 - z) \odot n + z \odot h
        \end{array}

    (:math:`b_{hn}` inside :math:`r \odot (\dots)`, as in :class:`GRU`.)

    Inputs: input `(N, H_in)` or `(H_in)`, hidden `(N, H_out)` or `(H_out)` (zeros if not given).
    Output: h' shaped like hidden. Backward: ``grad_input, grad_hidden = cell.backward(grad_h)``.

    Attributes:
        weight_ih `(3*hidden_size, input_size)`, weight_hh `(3*hidden_size, hidden_size)`,
        bias_ih, bias_hh `(3*hidden_size)`; gate order r, z, n; all from
        :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`.
    """

    _mode = "GRUCell"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, dtype=dtype)

    def _kernel_forward(self, kernels, x_proj, h, b_hh):
        return kernels.gru_forward(x_proj, h, self.weight_hh.data, b_hh)

    def _kernel_backward(self, kernels, grad_h, cache):
        return kernels.gru_backward(None, grad_h, cache)
