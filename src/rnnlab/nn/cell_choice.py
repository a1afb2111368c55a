"""Which math runs a recurrent layer: the compiled twins or the NumPy reference, chosen once per
layer forward through the one switch (:func:`rnnlab.fast.enabled`); the forward's choice also runs
its backward (:class:`rnnlab.nn.RNNBase` keeps it in its cache)."""
from __future__ import annotations

import numpy as np

from .. import backend, fast
from . import recurrent_math

__all__ = ["cell_math", "cell_for"]


def cell_math(dtype):
    """The module whose ``*_forward``/``*_backward`` run for parameters of ``dtype``: the compiled
    :mod:`rnnlab.fast.recurrent` for float32 NumPy arrays when :func:`rnnlab.fast.enabled`, otherwise
    the reference :mod:`rnnlab.nn.recurrent_math` (exact in float64)."""
    if dtype == np.float32 and backend.xp is np:
        compiled = fast.load("recurrent")  # None when the switch is off
        if compiled is not None:
            return compiled
    return recurrent_math


def cell_for(mode: str, dtype) -> recurrent_math.Cell:
    """The registered cell ``mode`` as it runs for parameters of ``dtype``: its compiled twin
    (:func:`rnnlab.fast.recurrent.compiled_cell`) when :func:`cell_math` picks the compiled module and
    one exists for ``mode``; otherwise the reference (a cell without a twin runs it on either path)."""
    math = cell_math(dtype)
    compiled = None if math is recurrent_math else math.compiled_cell(mode)
    return recurrent_math.CELLS[mode] if compiled is None else compiled
