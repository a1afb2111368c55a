r"""A recurrent layer whose input is an Embedding's output: layer 0's input projection from the table.

When ``x = table[ids]`` (an :class:`~rnnlab.nn.layers.Embedding` with fewer rows ``V`` than ids, e.g. a
character model: 65 symbols, 2048 ids a batch), layer 0's projection and its weight gradient need no
product over the ``L * N`` rows:

.. math::
    x W_{ih}^T + b_{ih} = (\text{table}\, W_{ih}^T + b_{ih})[\text{ids}], \qquad
    \frac{\partial L}{\partial W_{ih}} = g^T x = \bar g^T\, \text{table}, \qquad
    \bar g_v = \sum_{k:\, \text{ids}_k = v} g_k ,

two products over ``V`` rows and one scatter-add instead of two over ``L * N``. ``grad_x = g W_ih`` and
``b_ih``'s gradient (``sum_k g_k``) are computed as on the plain path. This is what
:meth:`Embedding.forward_projected` does for ``CharRNN``, found here without the caller's help: the
layer (:class:`rnnlab.nn.RNNBase`) asks :func:`rnnlab.nn.layers.gathered_rows` whether its input is
such an output, unchanged, and takes this path only on the compiled path (float32), unidirectional; the
numbers are the plain path's up to float32 rounding. float64 (the reference) always multiplies.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import backend, fast
from .layers import gathered_rows, scatter_add_rows


class TableInput(NamedTuple):
    """Layer 0's input as rows of a table."""
    ids: Any                  # (L * N,) time-major ids
    table: Any                # (V, H_in): the table as the forward read it (a copy while gradients are on)


def find_table_input(input, batched: bool, batch_first: bool, dtype):
    """A :class:`TableInput` when ``input`` (as the user passed it) is an Embedding output that still holds
    ``table[ids]`` (:func:`gathered_rows`: compiled path only) of ``dtype``; else None."""
    found = gathered_rows(input)
    if found is None or found[1].dtype != dtype:
        return None
    ids, table = found
    ids = ids[:, None] if not batched else (ids.T if batch_first else ids)  # time-major, as the layer's x
    fast.record("table_input")
    return TableInput(np.ascontiguousarray(ids).reshape(-1), table.copy() if backend.is_grad_enabled() else table)


def table_projection(table_input: TableInput, weight_ih, bias_ih, num_steps: int, batch: int):
    """(L, N, G): ``(table W_ih^T + b_ih)[ids]``, the bias added after the product as in ``project_input``."""
    projected_table = table_input.table @ weight_ih.T  # (V, G)
    if bias_ih is not None:
        projected_table += bias_ih
    return projected_table[table_input.ids].reshape(num_steps, batch, -1)


def table_projection_backward(grad_projection, table_input: TableInput, weight_ih, has_bias: bool, input_grad: bool):
    """grad_projection (L,N,G) -> grad_x (L,N,H_in) or None (``input_grad=False``), grad_W_ih (G,H_in),
    grad_b_ih (G,) or None."""
    steps, batch, gates = grad_projection.shape
    flat_grad = grad_projection.reshape(steps * batch, gates)
    grad_table = scatter_add_rows(table_input.ids, flat_grad, table_input.table.shape[0])  # (V, G)
    grad_weight_ih = grad_table.T @ table_input.table
    grad_bias_ih = flat_grad.sum(axis=0) if has_bias else None  # the plain path's sum (RNN/LSTM: b_hh's too)
    grad_x = (flat_grad @ weight_ih).reshape(steps, batch, -1) if input_grad else None
    return grad_x, grad_weight_ih, grad_bias_ih
