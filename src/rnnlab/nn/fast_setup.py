"""The switch between the fast kernels and the readable reference.

The fast path (:mod:`rnnlab.nn.recurrent_fast`, numba-compiled) is on by default when numba imports;
``RNNLAB_FAST=0`` in the environment forces the reference (:mod:`rnnlab.nn.recurrent_math`) everywhere,
and without numba the reference is used silently. Both give the same numbers to float32 rounding
(``tests/nn/test_fast_path.py``).

numba is imported on the first recurrent forward, not at ``import rnnlab.nn``, so commands that never
run a recurrent layer (``rnnlab --help``) do not pay its ~0.4 s import::

    from rnnlab.nn import fast_setup
    fast_setup.install()          # done once by rnnlab.nn; picks the kernels lazily
    fast_setup.use_fast(False)    # the reference from now on (True: back to the fast path)
"""
from __future__ import annotations

import os

from . import recurrent


def fast_requested() -> bool:
    """False when the environment says ``RNNLAB_FAST=0`` (or ``false``/``no``/``off``)."""
    return os.environ.get("RNNLAB_FAST", "1").strip().lower() not in {"0", "false", "no", "off"}


def load_fast_kernels():
    """The :mod:`recurrent_fast` module, or ``None`` when numba cannot be imported."""
    try:
        from . import recurrent_fast
    except ImportError:
        return None
    return recurrent_fast


class _LazyFastKernels:
    """Stands in for :mod:`recurrent_fast` until a layer first asks for a kernel; then it imports the
    module (numba), installs it (or the reference if numba is missing) and gets out of the way."""

    def __getattr__(self, name):
        module = load_fast_kernels() or recurrent.recurrent_math
        if recurrent.get_kernels() is self:
            recurrent.set_kernels(module)
        value = getattr(module, name)
        setattr(self, name, value)  # a holder of this stand-in (a sampling loop) pays the lookup once
        return value

    def __repr__(self) -> str:
        return "<rnnlab fast kernels, loaded on first use>"


def use_fast(enabled: bool = True) -> None:
    """Select the fast kernels (loaded on first use) or, with ``enabled=False``, the reference."""
    recurrent.set_kernels(_LazyFastKernels() if enabled else None)


def install() -> None:
    """The default: the fast path unless ``RNNLAB_FAST=0``."""
    use_fast(fast_requested())


def active_kernels_name() -> str:
    """``"fast"`` or ``"reference"``: which kernels the next forward will use (imports numba if needed)."""
    kernels = recurrent.get_kernels()
    if isinstance(kernels, _LazyFastKernels):
        kernels.rnn_forward  # noqa: B018  (resolves the lazy choice)
        kernels = recurrent.get_kernels()
    return "reference" if kernels is recurrent.recurrent_math else "fast"
