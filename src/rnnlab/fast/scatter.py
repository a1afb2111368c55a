"""Embedding's backward on the compiled path: the per-id sums of gradient rows in one pass; and the check
that an array still holds the rows an Embedding gathered (:func:`rnnlab.nn.layers.gathered_rows`)."""
from __future__ import annotations

import numpy as np

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


@exact
def _rows_are_table_rows(ids, table, rows):
    for k in range(rows.shape[0]):
        table_row, row = table[ids[k]], rows[k]
        for j in range(row.shape[0]):
            if row[j] != table_row[j]:
                return False
    return True


def rows_are_table_rows(ids, table, rows) -> bool:
    """Is ``rows[k]`` bit for bit ``table[ids[k]]`` for every ``k``? ``ids`` (n,) ints in ``[0, len(table))``,
    ``rows`` (n, dim) and ``table`` (V, dim) C-contiguous float32. Compares bit patterns, so a NaN or a
    signed zero matches only itself; stops at the first difference."""
    record("table_rows_check")
    return bool(_rows_are_table_rows(ids, table.view(np.uint32), rows.view(np.uint32)))
