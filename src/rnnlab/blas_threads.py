"""How many threads NumPy's BLAS may use: one, for work that is a chain of small products.

Stepping a recurrent model one character at a time (sampling, tracing) is matrix-vector work: each
product is too small to share, and waking a pool of threads for each one costs more than it saves
(far more on a busy machine). :func:`one_blas_thread` limits NumPy's BLAS to the calling thread inside
a block, through threadpoolctl when it is installed (the ``fast`` extra), and does nothing otherwise.
"""
from __future__ import annotations

import contextlib

__all__ = ["one_blas_thread"]


def one_blas_thread():
    """A context manager: inside it NumPy's BLAS runs on one thread (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
