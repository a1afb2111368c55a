"""Embedding's compiled scatter-add (rnnlab.fast.scatter) against np.add.at and the NumPy strategies."""
import numpy as np
import pytest

from compiled_paths import on_path
from rnnlab.nn import layers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_rows, n, dim", [(65, 2048, 64), (1000, 300, 8)])  # block sums / bincount in NumPy
def test_scatter_add_rows_compiled_and_numpy_paths_agree(dtype, num_rows, n, dim):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, num_rows, size=n).astype(np.intp)
    rows = rng.standard_normal((n, dim)).astype(dtype)
    expected = np.zeros((num_rows, dim))
    np.add.at(expected, ids, rows.astype(np.float64))
    results = []
    for path in ("compiled", "reference"):
        with on_path(path, "scatter_add"):
            results.append(layers.scatter_add_rows(ids, rows, num_rows))
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for result in results:
        assert result.dtype == dtype and result.shape == (num_rows, dim)
        np.testing.assert_allclose(result, expected, rtol=tolerance, atol=tolerance)


def test_embedding_backward_runs_the_compiled_scatter_add():
    embedding = layers.Embedding(10, 4)
    ids = np.array([[1, 2, 1], [3, 1, 9]])
    with on_path("compiled", "scatter_add"):
        embedding(ids)
        embedding.backward(np.ones((2, 3, 4), dtype=np.float32))
    np.testing.assert_array_equal(embedding.weight.grad[:, 0], [0, 3, 1, 1, 0, 0, 0, 0, 0, 1])
