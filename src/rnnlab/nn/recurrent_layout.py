"""The recurrent layers' edge: the user's layouts (``batch_first``, unbatched) to time-major and back,
with PyTorch's checks and messages; inputs cast to the layer's dtype; ``lengths``; time reversal within
each sequence; PyTorch's initialisation. :mod:`rnnlab.nn.recurrent` and :mod:`rnnlab.nn.cells` use it."""
from __future__ import annotations

import math

from .. import backend
from .module import Module


def as_float_array(value, dtype, what: str):
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


def reverse_time(sequence, lengths):
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


def check_lengths(lengths, batch: int, num_steps: int):
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


def uniform_init(module: Module, hidden_size: int) -> None:
    """PyTorch's init: every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), in registration order."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for param in module.parameters():
        draw = backend.generator().uniform(-bound, bound, size=param.data.shape)
        param.data[...] = backend.xp.asarray(draw, dtype=param.data.dtype)


def check_types(*checks) -> None:
    """``(name, value, int or bool)`` triples -> PyTorch's TypeError for the first of the wrong type
    (a bool is not an int here)."""
    for name, value, kind in checks:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"{name} should be of type {kind.__name__}, got: {type(value).__name__}")


def check_greater_than_zero(*sizes) -> None:
    """``(name, value)`` pairs -> PyTorch's ValueError for the first that is not > 0."""
    for name, value in sizes:
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero")


class RecurrentLayout:
    """The layouts and shape checks of :class:`rnnlab.nn.RNNBase` (a mixin: it reads the layer's ``mode``,
    ``batch_first``, sizes, ``_output_size`` and ``_cell``, the mode's registered
    :class:`~rnnlab.nn.recurrent_math.Cell`: its gate count and ``state_names``). Inside, everything is
    time-major ``(L, N, features)``; states ``(D * num_layers, N, H)``, ``h`` first (``H_out``
    features), the others (LSTM's ``c``) ``hidden_size``; more than one state is a tuple for the user."""

    def _dim_error(self, ndim: int) -> str:
        # PyTorch's wording differs by one word between RNN and LSTM/GRU; keep it.
        if self.mode.startswith("RNN"):
            return f"RNN: Expected input to be 2D or 3D, got {ndim}D tensor instead"
        return f"{self.mode}: Expected input to be 2D or 3D, got {ndim}D instead"

    def _state_shapes(self, batch: int) -> list[tuple]:
        layers_x_directions = self.num_layers * (2 if self.bidirectional else 1)
        h_shape = (layers_x_directions, batch, self._output_size)
        other_shape = (layers_x_directions, batch, self.hidden_size)
        return [h_shape] + [other_shape] * (len(self._cell.state_names) - 1)

    def _prepare_state(self, hx, batched: bool, batch: int, dtype) -> list:
        """``hx`` in the user's layout -> a list of time-major ``(D*num_layers, N, H)`` arrays (zeros if None)."""
        xp = backend.xp
        shapes = self._state_shapes(batch)
        if hx is None:
            return [xp.zeros(shape, dtype=dtype) for shape in shapes]
        names = self._cell.state_names
        if len(names) > 1:  # LSTM's (h_0, c_0), with PyTorch's messages
            if not isinstance(hx, (tuple, list)) or len(hx) != len(names):
                raise TypeError(f"{self.mode} expects hx as a tuple ({', '.join(n + '_0' for n in names)})")
            states = [as_float_array(state, dtype, f"{name}_0") for state, name in zip(hx, names)]
            want = 3 if batched else 2
            if any(state.ndim != want for state in states):
                kind = "batched 3-D" if batched else "unbatched 2-D"
                raise ValueError(f"For {kind} input, hx and cx should also be {want}-D but got "
                                 f"({', '.join(f'{state.ndim}-D' for state in states)}) tensors")
            messages = [f"Expected hidden[{k}] size {{}}, got {{}}" for k in range(len(names))]
        else:
            states = [as_float_array(hx, dtype, "h_0")]
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

    def _time_major_input(self, input, dtype, projected: bool):
        """The user's input -> a time-major ``(L, N, features)`` array, checked; and whether it was batched."""
        x = as_float_array(input, dtype, "input_projection" if projected else "input")
        if x.ndim not in (2, 3):
            raise ValueError(self._dim_error(x.ndim))
        batched = x.ndim == 3
        if not batched:
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        if projected:
            gates = self._cell.gates
            gate_size = gates * self.hidden_size
            if x.shape[-1] != gate_size:
                raise ValueError(f"input_projection.size(-1) must be equal to {gates} * "
                                 f"hidden_size. Expected {gate_size}, got {x.shape[-1]}")
        elif x.shape[-1] != self.input_size:
            raise ValueError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {x.shape[-1]}")
        return x, batched

    def _user_layout(self, sequence, states, batched: bool):
        """Time-major results -> the user's layout (unbatched, batch_first); several states (LSTM) as a tuple.
        A ``sequence`` of None (the input gradient not computed) stays None."""
        if not batched:
            sequence = None if sequence is None else sequence[:, 0, :]
            states = [s[:, 0, :] for s in states]
        elif self.batch_first and sequence is not None:
            sequence = backend.xp.ascontiguousarray(sequence.transpose(1, 0, 2))
        return sequence, tuple(states) if len(states) > 1 else states[0]

    def _to_time_major(self, grad, shape, batched: bool, what: str, dtype, is_output: bool):
        """A gradient in the user's layout -> time-major, checked against the forward's result shape."""
        if grad is None:
            return None
        grad = as_float_array(grad, dtype, what)
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

    def _time_major_grad_states(self, grad_state, cache) -> list:
        names = [f"grad_{name}_n" for name in self._cell.state_names]
        if len(names) > 1:
            if grad_state is None:
                grad_state = (None,) * len(names)
            if not isinstance(grad_state, (tuple, list)) or len(grad_state) != len(names):
                raise TypeError(f"{self.mode}.backward expects grad_state as a tuple ({', '.join(names)}) or None")
            grad_states = list(grad_state)
        else:
            grad_states = [grad_state]
        return [self._to_time_major(g, shape, cache.batched, name, cache.dtype, False)
                for g, shape, name in zip(grad_states, cache.state_shapes, names)]
