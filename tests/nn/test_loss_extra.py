"""MSELoss and BCEWithLogitsLoss: parity with PyTorch for every reduction (and BCE's weight, pos_weight),
gradcheck, numerical stability at extreme logits, errors."""
from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab.nn import BCEWithLogitsLoss, MSELoss, Module

REDUCTIONS = ["mean", "sum", "none"]


def _torch_value_and_grad(torch, function, x, y, grad, **kwargs):
    xt = torch.from_numpy(x.copy()).requires_grad_()
    kwargs = {k: (None if v is None else torch.from_numpy(np.asarray(v, dtype=x.dtype))) for k, v in kwargs.items()}
    loss = function(xt, torch.from_numpy(y), **kwargs)
    loss.backward(torch.as_tensor(np.asarray(grad, dtype=x.dtype)))
    return loss.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5)])
def test_mse_matches_torch(torch, reduction, shape):
    rng = np.random.default_rng(len(shape))
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    criterion = MSELoss(reduction=reduction)
    loss = criterion(x, y)
    grad = rng.standard_normal(shape) if reduction == "none" else 0.7
    grad_x = criterion.backward(grad)
    expected, expected_grad = _torch_value_and_grad(
        torch, lambda a, b: torch.nn.functional.mse_loss(a, b, reduction=reduction), x, y, grad)
    np.testing.assert_allclose(loss, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad_x, expected_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
def test_bce_with_logits_matches_torch(torch, reduction, weighted, pos_weighted):
    rng = np.random.default_rng(11)
    x = 4 * rng.standard_normal((3, 6, 5))
    x[0, 0, :2] = [60.0, -60.0]                       # saturated logits stay finite and exact
    y = rng.random((3, 6, 5))
    y[1] = (y[1] > 0.5)                              # hard and soft targets
    weight = rng.random((6, 5)) + 0.1 if weighted else None
    pos_weight = rng.random(5) * 3 if pos_weighted else None
    criterion = BCEWithLogitsLoss(weight=weight, reduction=reduction, pos_weight=pos_weight)
    loss = criterion(x, y)
    grad = rng.standard_normal(x.shape) if reduction == "none" else 1.3
    grad_x = criterion.backward(grad)
    expected, expected_grad = _torch_value_and_grad(
        torch, lambda a, b, **kw: torch.nn.functional.binary_cross_entropy_with_logits(a, b, reduction=reduction,
                                                                                       **kw),
        x, y, grad, weight=weight, pos_weight=pos_weight)
    np.testing.assert_allclose(loss, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad_x, expected_grad, rtol=1e-9, atol=1e-12)


def test_bce_float32_matches_torch_and_keeps_dtype(torch):
    rng = np.random.default_rng(12)
    x = (10 * rng.standard_normal((64, 28))).astype(np.float32)
    y = rng.random((64, 28)).astype(np.float32)
    criterion = BCEWithLogitsLoss()
    loss = criterion(x, y)
    grad_x = criterion.backward()
    assert loss.dtype == np.float32 and grad_x.dtype == np.float32
    expected, expected_grad = _torch_value_and_grad(torch, torch.nn.functional.binary_cross_entropy_with_logits,
                                                    x, y, 1.0)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(grad_x, expected_grad, rtol=1e-4, atol=1e-8)


def test_bce_is_stable_at_extreme_logits():
    x = np.array([1e4, -1e4, 800.0, -800.0])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    criterion = BCEWithLogitsLoss(reduction="none")
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # no overflow, no nan, no log(0)
        loss = criterion(x, y)
        grad = criterion.backward(np.ones(4))
    np.testing.assert_allclose(loss, [0.0, 0.0, 800.0, 800.0])
    np.testing.assert_allclose(grad, [0.0, 0.0, 1.0, -1.0])


class _Composed(Module):
    """A loss as a module of its input, so gradcheck checks d loss / d input."""

    def __init__(self, criterion, target):
        super().__init__()
        self.criterion, self.target = criterion, target

    def forward(self, x):
        return self.criterion(x, self.target)

    def backward(self, grad):
        return self.criterion.backward(grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(reduction):
    rng = np.random.default_rng(13)
    x, y = rng.standard_normal((4, 5)), rng.random((4, 5))
    rnnlab.gradcheck(_Composed(MSELoss(reduction), y), x).assert_passed(1e-6)
    bce = BCEWithLogitsLoss(weight=rng.random(5), reduction=reduction, pos_weight=rng.random(5) + 0.5)
    rnnlab.gradcheck(_Composed(bce, y), x).assert_passed(1e-6)


def test_errors():
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="same shape"):
        MSELoss()(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="must be the same as input size"):
        BCEWithLogitsLoss()(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(RuntimeError, match="without a matching forward"):
        BCEWithLogitsLoss().backward()
    criterion = MSELoss()
    criterion(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="grad_loss must be a scalar"):
        criterion.backward(np.ones(3))
    assert repr(BCEWithLogitsLoss(reduction="sum", pos_weight=np.ones(3))) == \
        "BCEWithLogitsLoss(reduction='sum', pos_weight=<shape (3,)>)"
