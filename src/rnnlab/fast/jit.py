"""The one module of rnnlab that imports numba: the decorators every compiled kernel uses.

- :data:`kernel`: element-wise kernels of the training path. ``error_model="numpy"``: a division by
  zero gives inf like NumPy instead of a Python exception check, which is what lets LLVM vectorise
  loops containing a division. Of the fast-math flags only ``contract`` is on: ``a * b + c`` may become
  one fused multiply-add (rounded once instead of twice, 1.3x faster activations); no reassociation,
  no approximate division, so NaN and inf behave as in NumPy.
- :data:`inline`: small functions inlined into their callers (the activations, a row of a cell update);
  they take the caller's fast-math flags.
- :data:`exact`: no fast-math at all, each ``*``, ``/``, ``sqrt`` rounded as NumPy rounds it (the Adam
  update, the scatter-add, the sampler's draw).
- :data:`dot_products`: ``contract`` and ``reassoc``: sums may be reordered, so LLVM vectorises dot
  products (the sampler's matrix-vector products).

Every kernel is cached on disk (``cache=True``): compiled once per machine, in ``__pycache__`` beside
this package; when that folder is read-only (a system site-packages), numba writes to the user cache
folder instead (``~/.cache/numba`` on Linux, ``~/Library/Caches/numba`` on macOS, ``%LOCALAPPDATA%\numba``
on Windows); ``NUMBA_CACHE_DIR`` overrides both.
"""
from __future__ import annotations

import numba
from numba import types  # noqa: F401  (numba's type objects, for declaring external C functions: fast/blas.py)

FASTMATH = {"contract"}

kernel = numba.njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
inline = numba.njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
exact = numba.njit(cache=True, error_model="numpy", nogil=True)
dot_products = numba.njit(cache=True, fastmath={"contract", "reassoc"}, error_model="numpy", nogil=True)
