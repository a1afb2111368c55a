"""BLAS's ``sgemm`` called from compiled code, so a whole time loop can be one compiled call.

A recurrent layer's step is one matrix product and one compiled element-wise call; driven from Python,
each step also pays the interpreter (slicing, argument checks of two calls: a few microseconds, which
is a large share of a small layer's step). Here the product is NumPy's own BLAS, called from numba
through the symbol its wheel exports (``scipy_cblas_sgemm64_`` of the bundled OpenBLAS), so the loops of
:mod:`rnnlab.fast.time_loops` run every step without returning to Python, with the very call
``np.matmul`` makes (same library, same threads, the same numbers bit for bit).

:func:`available` is False where NumPy's BLAS is not that OpenBLAS (another build, Accelerate): the
layers then step in Python as before.
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_SYMBOL = "scipy_cblas_sgemm64_"   # cblas_sgemm of numpy's bundled OpenBLAS (64-bit integers)
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _find_library():
    folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "libscipy_openblas*"))):
        try:
            if hasattr(ctypes.CDLL(path), _SYMBOL):
                return path
        except OSError:
            continue
    return None


_LIBRARY = _find_library()


def available() -> bool:
    """Can compiled code call NumPy's sgemm here?"""
    return _LIBRARY is not None


if _LIBRARY is not None:
    import llvmlite.binding as llvm

    from .jit import kernel, types

    llvm.load_library_permanently(_LIBRARY)   # the symbol resolves in compiled (and cached) code
    _sgemm = types.ExternalFunction(_SYMBOL, types.void(
        types.int32, types.int32, types.int32, types.int64, types.int64, types.int64, types.float32,
        types.intp, types.int64, types.intp, types.int64, types.float32, types.intp, types.int64))

    @kernel
    def gemm(a, b, transpose_b, out):
        """out = a @ b, or a @ b.T with ``transpose_b``: C-contiguous float32 2-D arrays (views of rows
        included), as ``np.matmul(a, b, out=out)`` computes it."""
        m, k = a.shape
        n = out.shape[1]
        ldb = b.shape[1]
        _sgemm(_ROW_MAJOR, _NO_TRANS, _TRANS if transpose_b else _NO_TRANS, m, n, k, np.float32(1.0),
               a.ctypes.data, k, b.ctypes.data, ldb, np.float32(0.0), out.ctypes.data, n)
