"""The Adam/AdamW update in one compiled pass: the same arithmetic as the NumPy code in
:mod:`rnnlab.optim.adam`, operation for operation, so the numbers are identical (bit for bit).

Written with NumPy an Adam update walks the parameter ~10 times and allocates a temporary per
operation; one compiled loop walks it once. No fast-math flags at all (:data:`rnnlab.fast.jit.exact`).
"""
from __future__ import annotations

import numpy as np

from . import record
from .jit import exact


@exact
def _adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, amsgrad, lerp_weight, beta2,
                 one_minus_beta2, step_size, bias_correction2_sqrt, eps):
    for k in range(param.shape[0]):
        g = grad[k]
        m = exp_avg[k] + lerp_weight * (g - exp_avg[k])
        exp_avg[k] = m
        v = exp_avg_sq[k] * beta2 + one_minus_beta2 * (g * g)
        exp_avg_sq[k] = v
        if amsgrad:
            if max_exp_avg_sq[k] < v or v != v:  # np.maximum propagates nan
                max_exp_avg_sq[k] = v
            v = max_exp_avg_sq[k]
        denom = np.sqrt(v) / bias_correction2_sqrt + eps
        param[k] = param[k] - step_size * (m / denom)


def fusable(*arrays) -> bool:
    """True when the arrays can be updated through flat views: NumPy, one float dtype, C-contiguous,
    same size (None entries ignored)."""
    dtype = None
    size = None
    for array in arrays:
        if array is None:
            continue
        if type(array) is not np.ndarray or not array.flags.c_contiguous or array.dtype.kind != "f":
            return False
        if dtype is None:
            dtype, size = array.dtype, array.size
        elif array.dtype != dtype or array.size != size:
            return False
    return dtype is not None and dtype in (np.float32, np.float64)


def adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, amsgrad: bool, beta1: float, beta2: float,
                step_size: float, bias_correction2_sqrt: float, eps: float) -> None:
    """One Adam step of one parameter, in place, arrays of any shape (:func:`fusable` ones)::

        exp_avg += (1 - beta1) * (grad - exp_avg)          (lerp_, weight < 0.5 as in PyTorch)
        exp_avg_sq = exp_avg_sq * beta2 + (1 - beta2) * grad^2
        v = max(max_exp_avg_sq, exp_avg_sq) if amsgrad else exp_avg_sq
        param -= step_size * exp_avg / (sqrt(v) / bias_correction2_sqrt + eps)

    Scalars are rounded to the arrays' dtype first, as NumPy does (so float32 stays float32)."""
    record("adam")
    scalar = param.dtype.type
    _adam_update(param.reshape(-1), grad.reshape(-1), exp_avg.reshape(-1), exp_avg_sq.reshape(-1),
                 (exp_avg_sq if max_exp_avg_sq is None else max_exp_avg_sq).reshape(-1), amsgrad,
                 scalar(1 - beta1), scalar(beta2), scalar(1 - beta2), scalar(step_size),
                 scalar(bias_correction2_sqrt), scalar(eps))
