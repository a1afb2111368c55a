"""The one-pass compiled Adam/AdamW update (rnnlab.fast.adam) gives the NumPy code's numbers bit for bit."""
import numpy as np
import pytest

from helpers import require_optional

require_optional("numba")  # skip locally without numba, fail under CI

from compiled_paths import on_path  # noqa: E402
from rnnlab.fast import adam as compiled_adam  # noqa: E402
from rnnlab.nn.module import Parameter  # noqa: E402
from rnnlab.optim import Adam, AdamW  # noqa: E402


def _run(optimizer_class, dtype, path, steps=5, **options):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(shape).astype(dtype)) for shape in [(7, 5), (13,), (3, 4, 2)]]
    optimizer = optimizer_class(params, lr=0.01, **options)
    with on_path(path, "adam"):
        for step in range(steps):
            for p in params:
                grad = rng.standard_normal(p.data.shape).astype(dtype)
                if step == 2:
                    grad *= 1e-6  # small second moments: the eps and the amsgrad maximum matter
                p.grad = grad
            optimizer.step()
    state = [optimizer.state[p] for p in params]
    return [p.data for p in params], state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [{}, {"amsgrad": True}, {"weight_decay": 0.1}, {"betas": (0.8, 0.99)}])
@pytest.mark.parametrize("optimizer_class", [Adam, AdamW])
def test_compiled_adam_is_bit_identical_to_numpy(optimizer_class, dtype, options):
    fast_params, fast_state = _run(optimizer_class, dtype, "compiled", **options)
    slow_params, slow_state = _run(optimizer_class, dtype, "reference", **options)
    for fast, slow in zip(fast_params, slow_params):
        assert fast.dtype == dtype
        np.testing.assert_array_equal(fast, slow)
    for fast, slow in zip(fast_state, slow_state):
        assert fast.keys() == slow.keys()
        for key in fast:
            np.testing.assert_array_equal(fast[key], slow[key])


def test_compiled_adam_used_only_for_contiguous_arrays_of_one_dtype():
    a = np.zeros((4, 3), dtype=np.float32)
    assert compiled_adam.fusable(a, a.copy(), None)
    assert not compiled_adam.fusable(a, a.astype(np.float64))
    assert not compiled_adam.fusable(a.T, a)                     # a flat view would not be the array
    assert not compiled_adam.fusable(a.astype(np.int64))


def test_adam_with_non_contiguous_gradient_falls_back_and_still_updates():
    w = Parameter(np.zeros((3, 2), dtype=np.float32))
    w.grad = np.ones((2, 3), dtype=np.float32).T         # a transposed view
    with on_path("compiled"):
        Adam([w], lr=0.1).step()
    np.testing.assert_allclose(w.data, -0.1, rtol=1e-6)
