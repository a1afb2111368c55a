"""rnnlab's compiled code (numba), behind ONE switch.

Everything numba-compiled lives in this package; nothing else imports numba:

==================  ===================================================================================
``jit``             the one module that imports numba; the decorators every kernel uses
``activations``     the vectorisable tanh and sigmoid every kernel shares
``recurrent``       RNN/LSTM/GRU forward and backward, same signatures and caches as
                    :mod:`rnnlab.nn.recurrent_math` (the reference)
``scatter``         Embedding's backward: per-id sums of gradient rows in one pass
``adam``            the Adam/AdamW update in one pass, bit-identical to the NumPy update
``sampler``         one stream of :meth:`CharRNN.generate`, stepped and drawn in one compiled loop
==================  ===================================================================================

The switch. The compiled path is on when numba is importable, unless the environment says
``RNNLAB_FAST=0`` (or ``false``/``no``/``off``); code and tests can force it::

    import rnnlab.fast
    rnnlab.fast.enabled()              # is the compiled path on?
    rnnlab.fast.use(False)             # the NumPy reference from now on (True: compiled; None: as the environment says)
    with rnnlab.fast.use(True):        # ... or only inside a block
        ...

Callers ask :func:`load` for a compiled module (``None`` when the switch is off) and keep their NumPy
code otherwise. numba is imported on the first :func:`load`, not at ``import rnnlab``, so commands that
never run a kernel (``rnnlab --help``) do not pay its ~0.4 s import. The recurrent kernels cover
float32 only; float64 (``rnnlab.gradcheck``) always runs the reference, which is exact in float64.

What ran. Each compiled entry point adds one to :data:`calls` under its name (``"lstm_forward"``,
``"adam"``, ...), so a test can assert that the compiled path, not a silent fallback, produced the
numbers it compares.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections import Counter

__all__ = ["enabled", "requested", "available", "use", "load", "loaded", "calls", "record"]

calls: Counter = Counter()   # compiled entry point -> times it ran in this process

_forced: bool | None = None   # set by use(); None: the environment decides
_available: bool | None = None
_modules: dict = {}


def requested() -> bool:
    """False when the environment says ``RNNLAB_FAST=0`` (or ``false``/``no``/``off``)."""
    return os.environ.get("RNNLAB_FAST", "1").strip().lower() not in {"0", "false", "no", "off"}


def available() -> bool:
    """True when numba can be imported (checked without importing it)."""
    global _available
    if _available is None:
        _available = importlib.util.find_spec("numba") is not None
    return _available


def enabled() -> bool:
    """Is the compiled path on? (numba importable, and :func:`use` or ``RNNLAB_FAST`` say so.)"""
    wanted = requested() if _forced is None else _forced
    return wanted and available()


class use:
    """Switch the compiled path on (``True``), off (``False``) or back to the environment's choice (``None``).

    Takes effect at once; used as a context manager it restores the previous choice on exit."""

    def __init__(self, on: bool | None = True):
        global _forced
        self.previous = _forced
        _forced = None if on is None else bool(on)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        global _forced
        _forced = self.previous
        return False


def load(name: str):
    """The compiled module ``rnnlab.fast.<name>`` (importing numba the first time), or ``None`` when the
    switch is off."""
    if not enabled():
        return None
    module = _modules.get(name)
    if module is None:
        module = _modules[name] = importlib.import_module(f"{__name__}.{name}")
    return module


def loaded(name: str) -> bool:
    """Has ``rnnlab.fast.<name>`` been imported in this process (so numba's import is already paid)?"""
    return f"{__name__}.{name}" in sys.modules


def record(name: str) -> None:
    """Count one run of the compiled entry point ``name`` (see :data:`calls`)."""
    calls[name] += 1
