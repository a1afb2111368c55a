"""The activations every compiled kernel shares: a vectorisable float32 tanh, and the sigmoid from it.

numba calls the C library's scalar ``tanhf`` (15 ns each), which would cost more than the matrix
products. :func:`tanh` is Eigen's rational approximation (plain arithmetic, so LLVM vectorises the loop
around it; max error 3.4e-7 absolute, a few float32 ulp), and ``sigmoid(z) = 0.5 * (1 + tanh(z / 2))``
is the formula of the reference (:mod:`rnnlab.nn.recurrent_math`).
"""
from __future__ import annotations

import numpy as np

from .jit import inline, kernel

_f32 = np.float32
# Eigen's float tanh: tanh(x) ~ x * P(x^2) / Q(x^2) on [-c, c]; beyond c tanh rounds to +-1 in float32.
_CLAMP = _f32(7.90531110763549805)
_A13, _A11, _A9 = _f32(-2.76076847742355e-16), _f32(2.00018790482477e-13), _f32(-8.60467152213735e-11)
_A7, _A5, _A3, _A1 = _f32(5.12229709037114e-08), _f32(1.48572235717979e-05), _f32(6.37261928875436e-04), \
    _f32(4.89352455891786e-03)
_B6, _B4, _B2, _B0 = _f32(1.19825839466702e-06), _f32(1.18534705686654e-04), _f32(2.26843463243900e-03), \
    _f32(4.89352518554385e-03)
_TINY = _f32(0.0004)  # below this tanh(x) == x in float32
HALF, ONE, ZERO = _f32(0.5), _f32(1.0), _f32(0.0)


@inline
def tanh(a):
    x = a if a < _CLAMP else _CLAMP
    x = x if x > -_CLAMP else -_CLAMP
    x2 = x * x
    p = x2 * _A13 + _A11
    p = p * x2 + _A9
    p = p * x2 + _A7
    p = p * x2 + _A5
    p = p * x2 + _A3
    p = p * x2 + _A1
    p = p * x
    q = x2 * _B6 + _B4
    q = q * x2 + _B2
    q = q * x2 + _B0
    r = p / q
    return a if abs(a) < _TINY else r


@inline
def sigmoid(a):
    return HALF * (ONE + tanh(HALF * a))


@kernel
def tanh_array(x, out):
    """Element-wise :func:`tanh` of a C-contiguous float32 array (exposed for tests)."""
    flat_in, flat_out = x.ravel(), out.ravel()
    for k in range(flat_in.shape[0]):
        flat_out[k] = tanh(flat_in[k])
