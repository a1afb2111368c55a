"""A recurrent layer fed an Embedding's output (rnnlab.nn.table_input): on the compiled path layer 0's
projection is a lookup in ``table @ W_ih.T + b_ih`` and its weight gradient comes from per-id sums; the
numbers are the plain path's (the same array copied, so not recognised) to float32 rounding, and the
path is taken only when the input is the untouched output itself."""
import numpy as np
import pytest

import rnnlab
from compiled_paths import compiled_path, on_path
from rnnlab import fast, nn
from rnnlab.nn.layers import Embedding, gathered_rows

V, E, H, L, N = 11, 8, 16, 12, 5


def _run(embedding, layer, ids, grad_seed=1, copy_input=False, lengths=None, input_grad=True):
    """One forward and backward of Embedding -> layer; -> output, grad_input, {name: grad}."""
    embedding.zero_grad()
    layer.zero_grad()
    rows = embedding(ids)
    out, _ = layer(rows.copy() if copy_input else rows, lengths=lengths)
    grad_out = np.random.default_rng(grad_seed).standard_normal(out.shape).astype(np.float32)
    grad_input, _ = layer.backward(grad_out, input_grad=input_grad)
    if grad_input is not None:
        embedding.backward(grad_input)
    grads = {name: p.grad.copy() for module in (embedding, layer) for name, p in module.named_parameters()
             if p.grad is not None}
    return out.copy(), None if grad_input is None else grad_input.copy(), grads


def _models(layer_class, **options):
    rnnlab.manual_seed(0)
    return Embedding(V, E), layer_class(E, H, **options)


def _ids(shape):
    return np.random.default_rng(0).integers(0, V, size=shape)


def _assert_close(a, b):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("layer_class", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("options, shape", [({}, (L, N)), ({"batch_first": True}, (N, L)), ({}, (L,)),
                                            ({"num_layers": 2}, (L, N))])
def test_table_path_matches_the_plain_path(layer_class, options, shape):
    embedding, layer = _models(layer_class, **options)
    ids = _ids(shape)
    with compiled_path("table_input", "table_rows_check", "scatter_add"):
        table = _run(embedding, layer, ids)
    before = fast.calls["table_input"]
    with compiled_path():
        plain = _run(embedding, layer, ids, copy_input=True)
    assert fast.calls["table_input"] == before  # a copy is not the Embedding's output
    _assert_close(table[0], plain[0])
    _assert_close(table[1], plain[1])
    assert table[2].keys() == plain[2].keys()
    for name in table[2]:
        _assert_close(table[2][name], plain[2][name])


def test_table_path_of_an_lstm_with_a_projection():
    embedding, layer = _models(nn.LSTM, proj_size=4, num_layers=2)
    ids = _ids((L, N))
    with compiled_path("table_input"):
        table = _run(embedding, layer, ids)
    with compiled_path():
        plain = _run(embedding, layer, ids, copy_input=True)
    _assert_close(table[0], plain[0])
    for name in table[2]:
        _assert_close(table[2][name], plain[2][name])


def test_table_path_with_lengths_and_without_the_input_gradient():
    embedding, layer = _models(nn.LSTM)
    ids, lengths = _ids((L, N)), [L, 3, 7, 1, L]
    with compiled_path("table_input"):
        table = _run(embedding, layer, ids, lengths=lengths, input_grad=False)
    with compiled_path():
        plain = _run(embedding, layer, ids, lengths=lengths, input_grad=False, copy_input=True)
    assert table[1] is None and plain[1] is None
    _assert_close(table[0], plain[0])
    for name in ("weight_ih_l0", "bias_ih_l0", "weight_hh_l0", "bias_hh_l0"):
        _assert_close(table[2][name], plain[2][name])


def test_lstm_bias_gradients_stay_equal_on_the_table_path():
    embedding, layer = _models(nn.LSTM)
    with compiled_path("table_input"):
        _, _, grads = _run(embedding, layer, _ids((L, N)))
    np.testing.assert_array_equal(grads["bias_ih_l0"], grads["bias_hh_l0"])


def test_an_output_changed_in_place_is_multiplied_as_it_is():
    embedding, layer = _models(nn.LSTM)
    ids = _ids((L, N))
    with compiled_path("table_rows_check"):
        rows = embedding(ids)
        rows[3, 2, 1] += 1.0
        assert gathered_rows(rows) is None
        before = fast.calls["table_input"]
        out, _ = layer(rows)
        assert fast.calls["table_input"] == before
        expected, _ = layer(rows.copy())
    np.testing.assert_array_equal(out, expected)


def test_a_table_updated_after_the_lookup_is_not_used():
    embedding, layer = _models(nn.LSTM)
    with compiled_path():
        rows = embedding(_ids((L, N)))
        embedding.weight.data += 1.0  # as an optimizer step would
        assert gathered_rows(rows) is None
        assert gathered_rows(rows.copy()) is None and gathered_rows(rows[1:]) is None


def test_backward_uses_the_table_as_the_forward_read_it():
    embedding, layer = _models(nn.LSTM)
    ids = _ids((L, N))
    with compiled_path("table_input"):
        rows = embedding(ids)
        out, _ = layer(rows)
        embedding.weight.data += 1.0  # between the forward and the backward
        layer.backward(np.ones_like(out))
        table_grad = layer.weight_ih_l0.grad.copy()
        layer.zero_grad()
        layer(rows.copy())
        layer.backward(np.ones_like(out))
    _assert_close(table_grad, layer.weight_ih_l0.grad)


@pytest.mark.parametrize("why", ["reference", "float64", "bidirectional"])
def test_the_table_path_is_not_taken(why):
    rnnlab.manual_seed(0)
    dtype = np.float64 if why == "float64" else np.float32
    embedding = Embedding(V, E, dtype=dtype)
    layer = nn.LSTM(E, H, bidirectional=why == "bidirectional", dtype=dtype)
    before = fast.calls["table_input"]
    with on_path("reference" if why == "reference" else "compiled"):
        out, _ = layer(embedding(_ids((L, N))))
        layer.backward(np.ones_like(out))
    assert fast.calls["table_input"] == before


def test_rows_check_compares_bit_patterns():
    with compiled_path():
        scatter = fast.load("scatter")
    table = np.array([[0.0, np.nan], [1.0, 2.0]], dtype=np.float32)
    ids = np.array([1, 0, 1], dtype=np.intp)
    rows = table[ids]
    assert scatter.rows_are_table_rows(ids, table, rows)  # nan matches its own bits
    rows[1, 0] = -0.0
    assert not scatter.rows_are_table_rows(ids, table, rows)


def test_an_output_whose_shape_was_reassigned_is_not_taken():
    embedding, layer = _models(nn.LSTM, batch_first=True)
    with compiled_path():
        rows = embedding(_ids((N, L)))
        rows.shape = (L, N, E)  # the same memory read as another layout
        assert gathered_rows(rows) is None
