"""Linear, Embedding, Dropout: parity with PyTorch (values and every gradient), init, gradcheck, errors."""
from __future__ import annotations

import numpy as np
import pytest

from compiled_paths import reference_path

import rnnlab
from rnnlab import backend
from rnnlab.nn.layers import Dropout, Embedding, Linear, scatter_add_rows

TOL = {np.float64: dict(rtol=1e-9, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, bias", [((5, 3), True), ((2, 4, 3), True), ((2, 4, 3), False)])
def test_linear_matches_torch(torch, dtype, shape, bias):
    rnnlab.manual_seed(0)
    layer = Linear(3, 4, bias=bias, dtype=dtype)
    reference = torch.nn.Linear(3, 4, bias=bias).to(torch.float64 if dtype == np.float64 else torch.float32)
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    grad_y = rng.standard_normal(shape[:-1] + (4,)).astype(dtype)
    y = layer(x)
    grad_x = layer.backward(grad_y)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    yt = reference(xt)
    yt.backward(torch.from_numpy(grad_y))
    assert y.dtype == dtype and grad_x.dtype == dtype
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), **TOL[dtype])
    grads = dict(reference.named_parameters())
    assert [n for n, _ in layer.named_parameters()] == list(grads)
    for name, param in layer.named_parameters():
        np.testing.assert_allclose(param.grad, grads[name].grad.numpy(), **TOL[dtype])


def test_linear_init_bounds_and_moments():
    rnnlab.manual_seed(3)
    layer = Linear(400, 300)
    bound = 1 / np.sqrt(400)
    for param in (layer.weight.data, layer.bias.data):
        assert param.dtype == np.float32 and np.abs(param).max() <= bound
    w = layer.weight.data
    assert abs(w.mean()) < 0.01 * bound and abs(w.std() - bound / np.sqrt(3)) < 0.01 * bound
    assert np.abs(w).max() > 0.99 * bound  # uses the whole interval


def test_linear_repr_errors_and_accumulation():
    layer = Linear(3, 4, bias=False, dtype=np.float64)
    assert repr(layer) == "Linear(in_features=3, out_features=4, bias=False)"
    with pytest.raises(ValueError, match="Expected 3, got 2"):
        layer(np.ones((5, 2)))
    with pytest.raises(RuntimeError, match="without a matching forward"):
        layer.backward(np.ones((5, 4)))
    x = np.ones((5, 3))
    layer(x); layer.backward(np.ones((5, 4)))
    first = layer.weight.grad.copy()
    layer(x); layer.backward(np.ones((5, 4)))
    np.testing.assert_allclose(layer.weight.grad, 2 * first)
    with rnnlab.no_grad():
        layer(x)
    with pytest.raises(RuntimeError):
        layer.backward(np.ones((5, 4)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch_with_repeated_ids(torch, dtype, padding_idx):
    rnnlab.manual_seed(0)
    layer = Embedding(7, 5, padding_idx=padding_idx, dtype=dtype)
    reference = torch.nn.Embedding(7, 5, padding_idx=padding_idx).to(
        torch.float64 if dtype == np.float64 else torch.float32)
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    rng = np.random.default_rng(2)
    ids = np.concatenate([np.full(30, 3), rng.integers(0, 7, 48), [2, 6]]).reshape(4, 20)  # id 3 many times
    grad_e = rng.standard_normal((4, 20, 5)).astype(dtype)
    e = layer(ids)
    assert layer.backward(grad_e) is None
    et = reference(torch.from_numpy(ids))
    et.backward(torch.from_numpy(grad_e))
    np.testing.assert_allclose(e, et.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(layer.weight.grad, reference.weight.grad.numpy(), **TOL[dtype])
    if padding_idx is not None:
        assert not layer.weight.data[padding_idx].any() and not layer.weight.grad[padding_idx].any()


@pytest.mark.parametrize("num_rows, dim, n", [(65, 64, 3000), (5, 3, 100), (1000, 8, 500), (3, 40, 5000)])
def test_scatter_add_rows_both_strategies_match_add_at(num_rows, dim, n):
    rng = np.random.default_rng(4)
    ids = rng.integers(0, num_rows, n) if num_rows > 3 else np.repeat(np.array([0, 2]), n // 2)
    rows = rng.standard_normal((ids.size, dim))
    expected = np.zeros((num_rows, dim))
    np.add.at(expected, ids, rows)
    with reference_path():  # the NumPy strategies (the compiled one: tests/fast/test_scatter.py)
        np.testing.assert_allclose(scatter_add_rows(ids, rows, num_rows), expected, rtol=1e-12, atol=1e-12)


def test_embedding_init_errors_and_repr():
    rnnlab.manual_seed(5)
    layer = Embedding(300, 200, padding_idx=-1)
    assert repr(layer) == "Embedding(300, 200, padding_idx=299)"
    w = layer.weight.data[:-1]
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01
    with pytest.raises(IndexError, match=r"id 300 .*\[0, 299\]"):
        layer(np.array([1, 300]))
    with pytest.raises(IndexError, match="id -1"):
        layer(np.array([-1]))
    with pytest.raises(TypeError, match="integer ids"):
        layer(np.array([1.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        Embedding(3, 2, padding_idx=3)
    with pytest.raises(RuntimeError):
        Embedding(3, 2).backward(np.ones((1, 2)))


def test_dropout_statistics_mask_reuse_and_seed():
    rnnlab.manual_seed(0)
    dropout = Dropout(p=0.3)
    x = np.ones((200, 100))
    y = dropout(x)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7)
    np.testing.assert_array_equal(dropout.backward(2 * x), 2 * y)
    rnnlab.manual_seed(0)
    np.testing.assert_array_equal(Dropout(p=0.3)(x), y)
    dropout.eval()
    assert dropout(x) is x and dropout.backward(x) is x
    assert not Dropout(p=1.0)(x).any()
    assert repr(Dropout(0.2)) == "Dropout(p=0.2)"
    with pytest.raises(ValueError, match="between 0 and 1"):
        Dropout(1.5)


def test_gradcheck_passes_on_layers():
    rnnlab.manual_seed(0)
    rng = np.random.default_rng(0)
    rnnlab.gradcheck(Linear(3, 4, dtype=np.float64), rng.standard_normal((2, 5, 3))).assert_passed(1e-6)
    # the padding row's gradient is zero by definition although the output reads it, so its id stays out here
    report = rnnlab.gradcheck(Embedding(6, 4, padding_idx=1, dtype=np.float64), np.array([[0, 3, 5], [5, 5, 2]]))
    assert set(report.errors) == {"weight"}
    report.assert_passed(1e-6)
    dropout = Dropout(0.4)
    assert dropout.training
    rnnlab.gradcheck(dropout, rng.standard_normal((6, 7))).assert_passed(1e-6)


def test_gradcheck_catches_a_wrong_linear_backward():
    class WrongLinear(Linear):
        def backward(self, grad_output):
            grad_input = super().backward(grad_output)
            self.bias.grad *= 0.5  # forgets half of the bias gradient
            return grad_input

    rnnlab.manual_seed(0)
    report = rnnlab.gradcheck(WrongLinear(3, 2, dtype=np.float64), np.random.default_rng(0).standard_normal((4, 3)))
    assert not report.passed() and report.errors["bias"] > 0.1 and report.errors["weight"] < 1e-6
