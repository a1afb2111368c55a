"""CrossEntropyLoss: parity with PyTorch for every reduction, ignore_index, weight, label smoothing and
shape form; gradcheck; stability; errors."""
from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab.nn.loss import CrossEntropyLoss

SHAPES = {"2d": ((6, 4), (6,)), "unbatched": ((4,), ()), "3d": ((3, 4, 5), (3, 5)), "4d": ((2, 4, 3, 2), (2, 3, 2))}


def _torch_loss(torch, x, t, grad, **kwargs):
    xt = torch.from_numpy(x.copy()).requires_grad_()
    weight = kwargs.pop("weight")
    weight = None if weight is None else torch.from_numpy(weight.astype(x.dtype))
    loss = torch.nn.functional.cross_entropy(xt, torch.from_numpy(np.asarray(t)), weight=weight, **kwargs)
    loss.backward(torch.as_tensor(np.asarray(grad, dtype=x.dtype)))
    return loss.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("form", list(SHAPES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 1])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
def test_matches_torch_float64(torch, form, reduction, weighted, ignore_index, label_smoothing):
    rng = np.random.default_rng(hash((form, reduction, weighted, ignore_index)) % 2**32)
    shape, target_shape = SHAPES[form]
    x = 3 * rng.standard_normal(shape)
    t = rng.integers(0, 4, target_shape)
    if form == "unbatched":
        t = np.array(0)  # keep it non-ignored
    weight = rng.random(4) + 0.2 if weighted else None
    criterion = CrossEntropyLoss(weight=weight, ignore_index=ignore_index, reduction=reduction,
                                 label_smoothing=label_smoothing)
    loss = criterion(x, t)
    grad = rng.standard_normal(loss.shape) if reduction == "none" else 1.3
    grad_x = criterion.backward(grad)
    expected_loss, expected_grad = _torch_loss(torch, x, t, grad, weight=weight, ignore_index=ignore_index,
                                               reduction=reduction, label_smoothing=label_smoothing)
    assert loss.shape == expected_loss.shape and grad_x.shape == x.shape
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad_x, expected_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_torch_float32(torch, reduction):
    rng = np.random.default_rng(7)
    x = (4 * rng.standard_normal((50, 65))).astype(np.float32)
    t = rng.integers(0, 65, 50)
    t[::7] = -100
    weight = (rng.random(65) + 0.5).astype(np.float32)
    criterion = CrossEntropyLoss(weight=weight, reduction=reduction)
    loss = criterion(x, t)
    grad = np.ones(loss.shape, np.float32) if reduction == "none" else 1.0
    grad_x = criterion.backward(grad)
    assert loss.dtype == np.float32 and grad_x.dtype == np.float32
    expected_loss, expected_grad = _torch_loss(torch, x, t, grad, weight=weight, reduction=reduction)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_x, expected_grad, rtol=1e-5, atol=1e-6)


def test_all_ignored_mean_is_nan_with_zero_grad(torch):
    x = np.random.default_rng(0).standard_normal((3, 4))
    criterion = CrossEntropyLoss()
    loss = criterion(x, np.full(3, -100))
    assert np.isnan(loss)
    assert not criterion.backward().any()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [{}, {"ignore_index": 2}, {"weight": np.array([0.5, 2.0, 1.0, 3.0])},
                                     {"label_smoothing": 0.1, "weight": np.array([0.5, 2.0, 1.0, 3.0])}])
def test_gradcheck(reduction, options):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4, 3))
    t = np.array([[0, 2, 3], [1, 1, 2], [3, 0, 0], [2, 2, 2], [1, 3, 0]])
    # a scalar loss pairs with one number, so its finite differences carry ~1e-16 |loss| / eps of noise
    rnnlab.gradcheck(CrossEntropyLoss(reduction=reduction, **options), x, t).assert_passed(1e-5)


def test_gradcheck_catches_a_wrong_loss_backward():
    class Wrong(CrossEntropyLoss):
        def backward(self, grad_loss=1.0):
            return super().backward(grad_loss) * 1.1

    report = rnnlab.gradcheck(Wrong(), np.random.default_rng(2).standard_normal((4, 3)), np.array([0, 1, 2, 1]))
    assert not report.passed(1e-5)


def test_stable_for_huge_logits():
    x = np.array([[1000.0, 0.0, -1000.0], [1e4, 1e4, 0.0]], dtype=np.float32)
    criterion = CrossEntropyLoss(reduction="none")
    loss = criterion(x, np.array([0, 2]))
    assert np.isfinite(loss).all()
    np.testing.assert_allclose(loss, [0.0, 1e4 + np.log(2)], rtol=1e-6)
    assert np.isfinite(criterion.backward(np.ones(2))).all()


def test_errors_and_repr():
    criterion = CrossEntropyLoss()
    assert repr(criterion) == "CrossEntropyLoss()"
    assert repr(CrossEntropyLoss(reduction="sum", ignore_index=0)) == "CrossEntropyLoss(ignore_index=0, reduction='sum')"
    x = np.zeros((3, 4))
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        criterion(x, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match="Target -3 is out of bounds"):
        criterion(x, np.array([0, -3, 1]))
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target batch_size \(2\)"):
        criterion(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"Expected target size \[2, 5\], got \[2, 4\]"):
        criterion(np.zeros((2, 3, 5)), np.zeros((2, 4), dtype=int))
    with pytest.raises(TypeError, match="integer class indices"):
        criterion(x, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="weight tensor should be defined"):
        CrossEntropyLoss(weight=np.ones(3))(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        CrossEntropyLoss(reduction="avg")
    with pytest.raises(RuntimeError, match="without a matching forward"):
        CrossEntropyLoss().backward()


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1}, {"ignore_index": 1, "label_smoothing": 0.2},
                                     {"weight": np.array([0.5, 2.0, 1.0], dtype=np.float32), "label_smoothing": 0.1}])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_float32_logits_get_a_float32_loss_and_gradient(options, reduction):
    x = np.random.default_rng(3).standard_normal((6, 3)).astype(np.float32)
    criterion = CrossEntropyLoss(reduction=reduction, **options)
    loss = criterion(x, np.array([0, 1, 2, 1, 0, 2]))
    grad = criterion.backward(np.ones_like(loss) if reduction == "none" else 1.0)
    assert np.asarray(loss).dtype == np.float32 and grad.dtype == np.float32
