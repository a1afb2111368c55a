"""Gradient clipping against torch.nn.utils.clip_grad_norm_ / clip_grad_value_."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rnnlab.nn.module import Parameter
from rnnlab.optim import clip_grad_norm_, clip_grad_value_


def make_pair(torch, scale, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    grads = [(rng.standard_normal(shape) * scale).astype(dtype) for shape in [(4, 3), (7,), (2, 2, 2)]]
    ours = [Parameter(np.zeros_like(g)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype)) for g in grads]
    for p, tp, g in zip(ours, theirs, grads):
        p.grad = g.copy()
        tp.grad = torch.from_numpy(g.copy())
    ours.append(Parameter(np.zeros(3)))          # no grad: ignored by both
    theirs.append(torch.nn.Parameter(torch.zeros(3, dtype=torch.float64)))
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("scale", [0.01, 10.0])  # below and above max_norm
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 1e-6)])
def test_clip_grad_norm_matches_torch(torch, norm_type, scale, dtype, rtol):
    ours, theirs = make_pair(torch, scale, dtype)
    our_norm = clip_grad_norm_(ours, max_norm=1.5, norm_type=norm_type)
    their_norm = torch.nn.utils.clip_grad_norm_(theirs, max_norm=1.5, norm_type=norm_type)
    assert isinstance(our_norm, float)
    assert our_norm == pytest.approx(their_norm.item(), rel=rtol)
    for p, tp in zip(ours, theirs):
        if p.grad is None:
            assert tp.grad is None
            continue
        assert p.grad.dtype == np.dtype(dtype)
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=rtol, atol=1e-7 if dtype == np.float32 else 0)


def test_clip_grad_norm_leaves_small_gradients_untouched():
    p = Parameter(np.zeros(2))
    p.grad = np.array([0.3, 0.4])
    assert clip_grad_norm_(p, max_norm=1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(p.grad, [0.3, 0.4])


def test_clip_grad_norm_without_gradients_is_zero():
    assert clip_grad_norm_([Parameter(np.zeros(2))], 1.0) == 0.0


def test_clip_grad_norm_nonfinite(torch):
    p = Parameter(np.zeros(2))
    p.grad = np.array([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="is non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert math.isinf(clip_grad_norm_([p], 1.0))


@pytest.mark.parametrize("clip_value", [5.0, 0.3])
def test_clip_grad_value_matches_torch(torch, clip_value):
    ours, theirs = make_pair(torch, 4.0)
    clip_grad_value_(ours, clip_value)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for p, tp in zip(ours, theirs):
        if p.grad is not None:
            np.testing.assert_array_equal(p.grad, tp.grad.numpy())
    assert max(np.abs(p.grad).max() for p in ours if p.grad is not None) <= clip_value
