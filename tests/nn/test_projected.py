"""Layer 0's input projection computed by the caller: ``Embedding.forward_projected`` (a lookup in a table of
projected embeddings) and ``RNNBase.forward_projected``, against the plain Embedding -> layer path (float64)."""
import numpy as np
import pytest

import rnnlab
from compiled_paths import on_path
from rnnlab import nn
from rnnlab.nn.layers import Embedding
from rnnlab.nn.module import Parameter


def _param_grads(module):
    return {name: (None if p.grad is None else p.grad.copy()) for name, p in module.named_parameters()}


@pytest.mark.parametrize("layer_class", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("num_ids", [40, 3])  # more ids than table rows (the lookup) and fewer (the product)
def test_embedding_then_projected_layer_equals_the_plain_path(layer_class, num_ids):
    rnnlab.manual_seed(0)
    embedding = Embedding(7, 5, padding_idx=2, dtype=np.float64)
    layer = layer_class(5, 6, num_layers=2, dtype=np.float64)
    rng = np.random.default_rng(1)
    steps = 4 if num_ids == 40 else 1
    ids = rng.integers(0, 7, size=(steps, num_ids // steps if num_ids == 40 else 3))
    grad_out = rng.standard_normal(ids.shape + (6,))

    output, _ = layer(embedding(ids))  # the plain path
    grad_embedded, _ = layer.backward(grad_out)
    embedding.backward(grad_embedded)
    plain_grads = {**_param_grads(layer), "embedding": embedding.weight.grad.copy()}

    layer.zero_grad(); embedding.zero_grad()
    x_proj = embedding.forward_projected(ids, layer.weight_ih_l0, layer.bias_ih_l0)
    assert x_proj.shape == ids.shape + (layer.weight_ih_l0.shape[0],)
    projected_output, _ = layer.forward_projected(x_proj)
    np.testing.assert_allclose(projected_output, output, rtol=1e-12, atol=1e-12)
    grad_x_proj, _ = layer.backward(grad_out)
    assert grad_x_proj.shape == x_proj.shape
    embedding.backward_projected(grad_x_proj)
    projected_grads = {**_param_grads(layer), "embedding": embedding.weight.grad.copy()}
    assert projected_grads.keys() == plain_grads.keys()
    for name in plain_grads:
        np.testing.assert_allclose(projected_grads[name], plain_grads[name], rtol=1e-10, atol=1e-12, err_msg=name)
    assert not projected_grads["embedding"][2].any()  # padding row


def test_projected_paths_refuse_misuse():
    rnnlab.manual_seed(0)
    embedding = Embedding(4, 3)
    layer = nn.LSTM(3, 2)
    with pytest.raises(ValueError, match="input_projection.size\\(-1\\) must be equal to 4 \\* hidden_size. Expected 8, got 3"):
        layer.forward_projected(np.zeros((2, 1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="unidirectional"):
        nn.GRU(3, 2, bidirectional=True).forward_projected(np.zeros((2, 1, 6), dtype=np.float32))
    with pytest.raises(ValueError, match="weight must have shape"):
        embedding.forward_projected(np.zeros((2, 1), dtype=np.int64), Parameter(np.zeros((8, 2), dtype=np.float32)))
    with pytest.raises(IndexError, match="id 4 is out of range"):
        embedding.forward_projected(np.array([[4]]), layer.weight_ih_l0)
    embedding.forward_projected(np.zeros((2, 1), dtype=np.int64), layer.weight_ih_l0, layer.bias_ih_l0)
    with pytest.raises(RuntimeError, match="backward_projected"):
        embedding.backward(np.zeros((2, 1, 3), dtype=np.float32))
    embedding(np.zeros((2, 1), dtype=np.int64))
    with pytest.raises(RuntimeError, match="forward_projected"):
        embedding.backward_projected(np.zeros((2, 1, 8), dtype=np.float32))


def test_charrnn_style_step_on_the_compiled_path_matches_reference_to_float32_rounding():
    rnnlab.manual_seed(0)
    embedding, layer = Embedding(11, 8), nn.LSTM(8, 16, num_layers=2)
    ids = np.random.default_rng(0).integers(0, 11, size=(12, 5))
    grad_out = np.random.default_rng(1).standard_normal((12, 5, 16)).astype(np.float32)
    results = []
    for path in ("compiled", "reference"):
        with on_path(path, "lstm_forward", "lstm_backward", "scatter_add"):
            layer.zero_grad(); embedding.zero_grad()
            out, _ = layer.forward_projected(embedding.forward_projected(ids, layer.weight_ih_l0, layer.bias_ih_l0))
            embedding.backward_projected(layer.backward(grad_out)[0])
            results.append([out.copy(), embedding.weight.grad.copy(), layer.weight_ih_l0.grad.copy(),
                            layer.bias_ih_l0.grad.copy()])
    for compiled, reference in zip(*results):
        np.testing.assert_allclose(compiled, reference, rtol=2e-4, atol=2e-5)
