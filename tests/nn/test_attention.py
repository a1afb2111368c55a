"""Attention: gradcheck (float64) for every score, with and without a key mask and separate values; parity
with the same computation in PyTorch (context, weights, every gradient by name, 1e-9); masking; errors."""
from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab.nn import Attention

SCORES = ["dot", "general", "additive"]


def _inputs(rng, steps=3, batch=4, keys=5, query_size=6, key_size=6, value_size=None, masked=True):
    query = rng.standard_normal((steps, batch, query_size))
    key = rng.standard_normal((keys, batch, key_size))
    value = None if value_size is None else rng.standard_normal((keys, batch, value_size))
    mask = None
    if masked:
        lengths = rng.integers(1, keys + 1, batch)
        lengths[0] = keys
        lengths[1] = 1
        mask = np.arange(keys)[None, :] >= lengths[:, None]
    return query, key, value, mask


def _attention(score, query_size=6, key_size=6, **kwargs):
    rnnlab.manual_seed(3)
    return Attention(query_size, key_size, score=score, attention_size=7, dtype=np.float64, **kwargs)


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("separate_values", [False, True])
def test_gradcheck(score, masked, separate_values):
    rng = np.random.default_rng(0)
    key_size = 6 if score == "dot" else 5
    attention = _attention(score, key_size=key_size)
    query, key, value, mask = _inputs(rng, key_size=key_size, value_size=4 if separate_values else None,
                                      masked=masked)
    report = rnnlab.gradcheck(attention, query, key, value, mask)
    report.assert_passed(1e-6)
    names = set(report.errors)
    assert {"input[0]", "input[1]"} <= names and ("input[2]" in names) == separate_values


@pytest.mark.parametrize("score", SCORES)
def test_gradcheck_one_step_batch_first(score):
    rng = np.random.default_rng(1)
    attention = _attention(score, batch_first=True)
    query, key, _, mask = _inputs(rng)
    rnnlab.gradcheck(attention, query[0], key.transpose(1, 0, 2).copy(), None, mask).assert_passed(1e-6)


def _torch_attention(torch, score, params, query, key, value, mask):
    Q, K = query.transpose(0, 1), key.transpose(0, 1)                      # (N, T, Hq), (N, S, Hk)
    V = K if value is None else value.transpose(0, 1)
    if score == "dot":
        scores = Q @ K.transpose(1, 2)
    elif score == "general":
        scores = (Q @ params["weight"]) @ K.transpose(1, 2)
    else:
        hidden = torch.tanh((Q @ params["query_weight"].T)[:, :, None, :]
                            + (K @ params["key_weight"].T + params["bias"])[:, None, :, :])
        scores = hidden @ params["score_weight"]
    if mask is not None:
        scores = scores.masked_fill(torch.from_numpy(mask)[:, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (weights @ V).transpose(0, 1), weights


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("separate_values", [False, True])
def test_matches_torch(torch, score, separate_values):
    rng = np.random.default_rng(2)
    key_size = 6 if score == "dot" else 5
    attention = _attention(score, key_size=key_size)
    query, key, value, mask = _inputs(rng, key_size=key_size, value_size=3 if separate_values else None)
    context, weights = attention(query, key, value, key_padding_mask=mask)
    grad_context, grad_weights = rng.standard_normal(context.shape), rng.standard_normal(weights.shape)
    grad_query, grad_key, grad_value = attention.backward(grad_context, grad_weights)

    params = {name: torch.tensor(p.data, requires_grad=True) for name, p in attention.named_parameters()}
    tq, tk = (torch.tensor(a, requires_grad=True) for a in (query, key))
    tv = None if value is None else torch.tensor(value, requires_grad=True)
    expected_context, expected_weights = _torch_attention(torch, score, params, tq, tk, tv, mask)
    ((expected_context * torch.from_numpy(grad_context)).sum()
     + (expected_weights * torch.from_numpy(grad_weights)).sum()).backward()

    np.testing.assert_allclose(context, expected_context.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weights, expected_weights.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad_query, tq.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad_key, tk.grad.numpy(), rtol=1e-9, atol=1e-12)
    if separate_values:
        np.testing.assert_allclose(grad_value, tv.grad.numpy(), rtol=1e-9, atol=1e-12)
    else:
        assert grad_value is None
    assert set(params) == {"dot": set(), "general": {"weight"},
                           "additive": {"query_weight", "key_weight", "bias", "score_weight"}}[score]
    for name, param in attention.named_parameters():
        np.testing.assert_allclose(param.grad, params[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("score", SCORES)
def test_masked_keys_get_zero_weight_and_no_gradient(score):
    rng = np.random.default_rng(4)
    attention = _attention(score)
    query, key, _, mask = _inputs(rng)
    context, weights = attention(query, key, key_padding_mask=mask)
    assert np.all(weights.transpose(1, 0, 2)[:, mask] == 0.0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    _, grad_key, _ = attention.backward(rng.standard_normal(context.shape))
    assert np.all(grad_key.transpose(1, 0, 2)[mask] == 0.0)
    # changing a masked key changes nothing
    key2 = key.copy()
    key2.transpose(1, 0, 2)[mask] = 1e3
    context2, _ = attention(query, key2, key_padding_mask=mask)
    np.testing.assert_array_equal(context, context2)


def test_attend_matches_forward_step_by_step():
    rng = np.random.default_rng(5)
    for score in SCORES:
        attention = _attention(score)
        query, key, _, mask = _inputs(rng)
        context, weights = attention(query, key, key_padding_mask=mask)
        memory = attention.prepare(key, key_padding_mask=mask)
        for t in range(query.shape[0]):
            step_context, step_weights = attention.attend(query[t], memory)
            np.testing.assert_allclose(step_context, context[t], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(step_weights, weights[:, t], rtol=1e-12, atol=1e-14)
        beam = memory.repeat(3)
        assert beam.keys.shape[0] == 3 * key.shape[1]
        np.testing.assert_allclose(attention.attend(np.repeat(query[0], 3, axis=0), beam)[0],
                                   np.repeat(context[0], 3, axis=0), rtol=1e-12)


def test_errors():
    attention = _attention("general")
    rng = np.random.default_rng(6)
    query, key, _, _ = _inputs(rng)
    full = np.zeros((4, 5), dtype=bool)
    full[2] = True
    with pytest.raises(ValueError, match="masks every key of batch element 2"):
        attention(query, key, key_padding_mask=full)
    with pytest.raises(ValueError, match="key_padding_mask must be a bool array"):
        attention(query, key, key_padding_mask=np.zeros((4, 5)))
    with pytest.raises(ValueError, match="query.size"):
        attention(query[..., :3], key)
    with pytest.raises(ValueError, match="needs key_size == query_size"):
        Attention(4, 5, score="dot")
    with pytest.raises(ValueError, match="score must be one of"):
        Attention(4, score="cosine")
    with pytest.raises(RuntimeError, match="without a matching forward"):
        _attention("dot").backward(np.zeros((3, 4, 6)))
    assert repr(_attention("additive")) == "Attention(6, 6, score='additive', attention_size=7)"
