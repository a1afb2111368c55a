"""Gradient clipping, in place, with PyTorch's semantics.

Recurrent nets are prone to exploding gradients (a product of many Jacobians through time), so
char-RNN training clips the global gradient norm (``clip_grad_norm_``); min-char-rnn clips every
element to ±5 (``clip_grad_value_``).
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..nn.module import Parameter


def _grads(parameters) -> list[np.ndarray]:
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Iterable[Parameter] | Parameter, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    r"""Scale all gradients together so that their global norm is at most ``max_norm``.

    The global norm is the norm of the vector of every gradient element,
    :math:`\|g\| = (\sum_p \|g_p\|^q)^{1/q}` (``norm_type`` :math:`q`; ``inf`` takes the largest
    absolute element). As PyTorch, every gradient is multiplied by
    ``clip_coef = max_norm / (total_norm + 1e-6)`` only when that is below 1.

    Returns the total norm *before* clipping (a Python float), 0.0 when no parameter has a gradient.
    Raises ``RuntimeError`` for a nan/inf norm when ``error_if_nonfinite``.

    >>> import numpy as np
    >>> from rnnlab.nn.module import Parameter
    >>> w = Parameter(np.zeros(2)); w.grad = np.array([3.0, 4.0])
    >>> clip_grad_norm_([w], max_norm=1.0)
    5.0
    >>> np.round(w.grad, 6)
    array([0.6, 0.8])
    """
    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return 0.0
    dtype = np.result_type(*grads)
    if math.isinf(norm_type):
        per_grad = [np.max(np.abs(g)) if g.size else dtype.type(0) for g in grads]
        total_norm = np.max(np.array(per_grad, dtype=dtype))
    else:
        per_grad = np.array([np.linalg.norm(g.ravel(), ord=norm_type) if g.size else 0.0 for g in grads],
                            dtype=dtype)
        total_norm = np.linalg.norm(per_grad, ord=norm_type)
    total_norm = dtype.type(total_norm)
    if error_if_nonfinite and not np.isfinite(total_norm):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot "
            "be clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`")
    clip_coef = dtype.type(max_norm) / (total_norm + dtype.type(1e-6))
    if clip_coef < 1 or np.isnan(clip_coef):
        with np.errstate(invalid="ignore"):  # an inf norm turns inf elements into nan, as in PyTorch
            for g in grads:
                g *= g.dtype.type(clip_coef)
    return float(total_norm)


def clip_grad_value_(parameters: Iterable[Parameter] | Parameter, clip_value: float) -> None:
    """Clip every gradient element to ``[-clip_value, clip_value]`` in place.

    >>> import numpy as np
    >>> from rnnlab.nn.module import Parameter
    >>> w = Parameter(np.zeros(3)); w.grad = np.array([-9.0, 0.5, 7.0])
    >>> clip_grad_value_([w], 5)
    >>> w.grad
    array([-5. ,  0.5,  5. ])
    """
    clip_value = float(clip_value)
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)
