"""The one place that decides the array namespace, the default dtype and the random state.

Every array operation in the engine is written against ``xp`` (NumPy today; CuPy exposes the same
namespace, so a GPU backend is a matter of swapping this module's choice). Every random draw
(initialisation, dropout masks, sampling) goes through :func:`generator`, so :func:`manual_seed`
fixes a whole run.
"""
from __future__ import annotations

import contextlib

import numpy as np

xp = np  # the array namespace used by all engine code

_default_dtype = np.dtype(np.float32)
_generator = np.random.default_rng(0)
_grad_enabled = True


def get_default_dtype() -> np.dtype:
    """The floating dtype new parameters get when a layer is built without ``dtype``."""
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Set the default floating dtype (``float32`` or ``float64``)."""
    global _default_dtype
    _default_dtype = resolve_dtype(dtype)


def resolve_dtype(dtype) -> np.dtype:
    """``None`` -> the default dtype; otherwise a floating NumPy dtype, or ``TypeError``."""
    if dtype is None:
        return _default_dtype
    resolved = np.dtype(dtype)
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {resolved}")
    return resolved


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the global generator: fixes initialisation, dropout masks and sampling."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    """The global random generator (a ``numpy.random.Generator``)."""
    return _generator


def get_rng_state() -> dict:
    """A JSON-serialisable snapshot of the global generator (for checkpoints)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a snapshot taken by :func:`get_rng_state`."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    global _generator
    _generator = np.random.Generator(bit_generator)


def is_grad_enabled() -> bool:
    """Whether forward passes keep the caches their backward needs."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad():
    """Inside this block forward passes keep no caches (inference, sampling): less memory, less work."""
    global _grad_enabled
    previous = _grad_enabled
    _grad_enabled = False
    try:
        yield
    finally:
        _grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Inside this block forward passes keep their caches even within :func:`no_grad` (PyTorch's
    ``torch.enable_grad``): for code that reads what a forward cached, such as :func:`rnnlab.inspect.trace`."""
    global _grad_enabled
    previous = _grad_enabled
    _grad_enabled = True
    try:
        yield
    finally:
        _grad_enabled = previous
