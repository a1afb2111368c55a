"""What the recurrent layers and cells do at their edge: cast inputs, check ``lengths``, reverse time
within each sequence, and PyTorch's initialisation."""
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
