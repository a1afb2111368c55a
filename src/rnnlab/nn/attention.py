r"""``Attention``: a weighted sum of a padded batch of values, weighted by how well each key matches a query.

For query :math:`q_t` and keys :math:`k_s` (values :math:`v_s`, by default the keys themselves) of one
batch element, with ``key_padding_mask`` :math:`m_s` (``True`` = padding):

.. math::
    e_{t,s} = \text{score}(q_t, k_s), \qquad
    \alpha_{t,s} = \frac{[\lnot m_s] \exp e_{t,s}}{\sum_{s'} [\lnot m_{s'}] \exp e_{t,s'}}, \qquad
    c_t = \sum_s \alpha_{t,s} v_s

with one of three scores (Luong, Pham & Manning 2015; Bahdanau, Cho & Bengio 2014):

.. math::
    \text{dot: } q^T k, \qquad \text{general: } q^T W k, \qquad
    \text{additive: } w_s^T \tanh(W_q q + W_k k + b)

Backward, with :math:`g_t = \partial L / \partial c_t` and :math:`\bar g_{t,s} = \partial L / \partial \alpha_{t,s}
= g_t^T v_s` (plus any gradient given for the weights themselves):

.. math::
    \frac{\partial L}{\partial v_s} = \sum_t \alpha_{t,s} g_t, \qquad
    \frac{\partial L}{\partial e_{t,s}} = \alpha_{t,s} \Big(\bar g_{t,s} - \sum_{s'} \alpha_{t,s'} \bar g_{t,s'}\Big),

then through the score: dot :math:`\partial e/\partial q = k`, :math:`\partial e/\partial k = q`; general
:math:`\partial e/\partial q = W k`, :math:`\partial e/\partial k = W^T q`, :math:`\partial e/\partial W = q k^T`;
additive with :math:`u = \tanh(W_q q + W_k k + b)`: :math:`\partial e/\partial w_s = u` and
:math:`\partial e/\partial(\text{pre-activation}) = w_s \odot (1 - u^2)`, summed over keys for the query side
and over queries for the key side. Masked keys get weight exactly 0, so no gradient reaches them.

A batch element whose keys are *all* masked has no distribution to normalise (PyTorch's
``MultiheadAttention`` returns ``nan`` there); rnnlab raises ``ValueError`` naming the element instead.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import backend
from .module import Module, Parameter

__all__ = ["Attention", "AttentionMemory", "SCORES"]

SCORES = ("dot", "general", "additive")


class AttentionMemory(NamedTuple):
    """What a batch of keys and values gives every query, computed once (:meth:`Attention.prepare`).

    ``keys (N, S, H_k)``, ``values (N, S, H_v)``, ``mask (N, S)`` bool or ``None`` (``True`` = padding),
    ``projected_keys`` ``(N, S, A)`` (:math:`W_k k + b`, additive score only, else ``None``). Batch first.
    """

    keys: np.ndarray
    values: np.ndarray
    mask: np.ndarray | None
    projected_keys: np.ndarray | None

    def repeat(self, times: int) -> "AttentionMemory":
        """Each batch element ``times`` times in a row (``N`` -> ``N * times``): the memory of a beam."""
        return AttentionMemory(*(None if a is None else np.repeat(a, times, axis=0) for a in self))


def _uniform(shape, fan_in: int, dtype):
    bound = 1.0 / math.sqrt(fan_in)
    return backend.generator().uniform(-bound, bound, shape).astype(dtype)


class Attention(Module):
    r"""Attention of queries over a padded batch of keys/values (dot, general or additive score).

    Args:
        query_size: :math:`H_q`, features of a query (a decoder state).
        key_size: :math:`H_k`, features of a key (an encoder output). Default: ``query_size``. The
            ``'dot'`` score needs ``key_size == query_size``.
        score: ``'dot'`` (no parameters), ``'general'`` or ``'additive'``. Default: ``'general'``.
        attention_size: :math:`A`, the hidden size of the additive score. Default: ``query_size``.
        batch_first: queries, keys, values and contexts are ``(N, L, H)`` instead of ``(L, N, H)``.
        dtype: ``float32`` or ``float64``; ``None`` takes :func:`rnnlab.get_default_dtype`.

    Inputs: ``forward(query, key, value=None, key_padding_mask=None)``
        - query: :math:`(T, N, H_q)`, or one step :math:`(N, H_q)`; batch first :math:`(N, T, H_q)`.
        - key: :math:`(S, N, H_k)` (batch first :math:`(N, S, H_k)`).
        - value: :math:`(S, N, H_v)` or ``None`` (the keys are the values).
        - key_padding_mask: :math:`(N, S)` bool, ``True`` where a key is padding; or ``None``.

    Outputs: ``(context, weights)``
        - context: :math:`(T, N, H_v)` (batch first :math:`(N, T, H_v)`; one step :math:`(N, H_v)`).
        - weights: :math:`(N, T, S)` (one step :math:`(N, S)`), rows sum to 1, 0 at masked keys.

    Backward: ``grad_query, grad_key, grad_value = attention.backward(grad_context, grad_weights=None)``,
    in the inputs' layouts; when ``value`` was ``None`` the values' gradient is added into ``grad_key``
    and ``grad_value`` is ``None``. Parameter gradients accumulate; one backward per forward.

    Attributes:
        weight (general): :math:`W`, shape :math:`(H_q, H_k)`.
        query_weight, key_weight, bias, score_weight (additive): :math:`W_q (A, H_q)`, :math:`W_k (A, H_k)`,
        :math:`b (A)`, :math:`w_s (A)`. Initialised from :math:`\mathcal{U}(\pm 1/\sqrt{\text{fan\_in}})`.

    >>> import numpy as np, rnnlab
    >>> from rnnlab.nn import Attention
    >>> _ = rnnlab.manual_seed(0)
    >>> attention = Attention(4, score="dot")
    >>> keys = np.ones((3, 2, 4))                              # S=3 keys for N=2 elements
    >>> mask = np.array([[False, False, True], [False, False, False]])
    >>> context, weights = attention(np.ones((5, 2, 4)), keys, key_padding_mask=mask)
    >>> context.shape, weights.shape, weights[0, 0].round(3).tolist()
    ((5, 2, 4), (2, 5, 3), [0.5, 0.5, 0.0])
    """

    def __init__(self, query_size: int, key_size: int | None = None, score: str = "general",
                 attention_size: int | None = None, batch_first: bool = False, dtype=None):
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}; got {score!r}")
        key_size = query_size if key_size is None else key_size
        attention_size = query_size if attention_size is None else attention_size
        for name, value in (("query_size", query_size), ("key_size", key_size), ("attention_size", attention_size)):
            if int(value) < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        if score == "dot" and key_size != query_size:
            raise ValueError(f"the 'dot' score needs key_size == query_size, got {key_size} and {query_size} "
                             f"(use score='general' or 'additive')")
        dtype = backend.resolve_dtype(dtype)
        self.query_size, self.key_size = int(query_size), int(key_size)
        self.score = score
        self.attention_size = int(attention_size) if score == "additive" else None
        self.batch_first = bool(batch_first)
        if score == "general":
            self.weight = Parameter(_uniform((self.query_size, self.key_size), self.key_size, dtype))
        elif score == "additive":
            size = self.attention_size
            self.query_weight = Parameter(_uniform((size, self.query_size), self.query_size, dtype))
            self.key_weight = Parameter(_uniform((size, self.key_size), self.key_size, dtype))
            self.bias = Parameter(_uniform((size,), self.key_size, dtype))
            self.score_weight = Parameter(_uniform((size,), size, dtype))
        self._dtype = dtype
        self._cache = None

    def _set_dtype(self, dtype) -> None:
        object.__setattr__(self, "_dtype", dtype)

    def extra_repr(self) -> str:
        text = f"{self.query_size}, {self.key_size}, score={self.score!r}"
        if self.score == "additive":
            text += f", attention_size={self.attention_size}"
        return text + (", batch_first=True" if self.batch_first else "")

    # --- the memory: keys and values, batch first ------------------------------------------------
    def _batch_major(self, array, what: str, size: int | None):
        array = backend.xp.asarray(array, dtype=self._dtype)
        if array.ndim != 3:
            raise ValueError(f"{what} must be 3-D ({'(N, S, H)' if self.batch_first else '(S, N, H)'}), "
                             f"got shape {tuple(array.shape)}")
        if size is not None and array.shape[-1] != size:
            raise ValueError(f"{what}.size(-1) must be equal to {what}_size. Expected {size}, got {array.shape[-1]}")
        return array if self.batch_first else array.transpose(1, 0, 2)

    def prepare(self, key, value=None, key_padding_mask=None) -> AttentionMemory:
        """Check and lay out the keys and values once (and project the keys, for the additive score),
        for any number of :meth:`attend` calls, e.g. one per decoding step."""
        keys = self._batch_major(key, "key", self.key_size)                       # (N, S, Hk)
        values = keys if value is None else self._batch_major(value, "value", None)  # (N, S, Hv)
        if values.shape[:2] != keys.shape[:2]:
            raise ValueError(f"key and value must have the same batch size and length, got {tuple(key.shape)} "
                             f"and {tuple(value.shape)}")
        mask = None
        if key_padding_mask is not None:
            mask = np.asarray(key_padding_mask)
            if mask.dtype != bool or mask.shape != keys.shape[:2]:
                raise ValueError(f"key_padding_mask must be a bool array of shape (N, S) = {keys.shape[:2]}, got "
                                 f"{mask.dtype} of shape {mask.shape}")
            full = np.flatnonzero(mask.all(axis=1))
            if full.size:
                raise ValueError(f"key_padding_mask masks every key of batch element {int(full[0])}: attention "
                                 f"needs at least one key per element")
            if not mask.any():
                mask = None
        projected = None
        if self.score == "additive":
            batch, steps, _ = keys.shape
            projected = (keys.reshape(batch * steps, -1) @ self.key_weight.data.T
                         + self.bias.data).reshape(batch, steps, -1)              # (N, S, A)
        return AttentionMemory(keys, values, mask, projected)

    # --- forward beside backward ------------------------------------------------------------------
    def _scores(self, queries, memory: AttentionMemory):
        """queries ``(N, T, Hq)`` -> scores ``(N, T, S)`` and what their backward needs."""
        keys_t = memory.keys.transpose(0, 2, 1)                                   # (N, Hk, S)
        batch, steps, _ = queries.shape
        if self.score == "dot":
            return queries @ keys_t, None
        if self.score == "general":  # products with a weight as one 2-D product (a 3-D `@` loops over N)
            projected_queries = (queries.reshape(batch * steps, -1) @ self.weight.data
                                 ).reshape(batch, steps, -1)                       # (N, T, Hk): q^T W
            return projected_queries @ keys_t, projected_queries
        query_part = (queries.reshape(batch * steps, -1) @ self.query_weight.data.T).reshape(batch, steps, 1, -1)
        hidden = np.tanh(query_part + memory.projected_keys[:, None, :, :])      # (N, T, S, A)
        return hidden @ self.score_weight.data, hidden

    @staticmethod
    def _softmax(scores, mask):
        if mask is not None:
            scores = np.where(mask[:, None, :], -np.inf, scores)
        scores = scores - scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(axis=-1, keepdims=True)
        return weights                                                             # (N, T, S)

    def attend(self, query, memory: AttentionMemory):
        """One step for every row of ``memory``: query ``(N, Hq)`` -> context ``(N, Hv)``, weights
        ``(N, S)``. Keeps no cache (for decoding under :func:`rnnlab.no_grad`)."""
        queries = backend.xp.asarray(query, dtype=self._dtype)[:, None, :]       # (N, 1, Hq)
        scores, _ = self._scores(queries, memory)
        weights = self._softmax(scores, memory.mask)
        return (weights @ memory.values)[:, 0], weights[:, 0]

    def forward(self, query, key, value=None, key_padding_mask=None):
        xp = backend.xp
        memory = self.prepare(key, value, key_padding_mask)
        query = xp.asarray(query, dtype=self._dtype)
        one_step = query.ndim == 2
        if one_step:
            queries = query[:, None, :]
        elif query.ndim == 3:
            queries = query if self.batch_first else query.transpose(1, 0, 2)     # (N, T, Hq)
        else:
            raise ValueError(f"query must be 2-D (N, H) or 3-D, got shape {tuple(query.shape)}")
        if queries.shape[-1] != self.query_size:
            raise ValueError(f"query.size(-1) must be equal to query_size. Expected {self.query_size}, "
                             f"got {queries.shape[-1]}")
        if queries.shape[0] != memory.keys.shape[0]:
            raise ValueError(f"query and key must have the same batch size, got {queries.shape[0]} and "
                             f"{memory.keys.shape[0]}")
        scores, score_cache = self._scores(queries, memory)
        weights = self._softmax(scores, memory.mask)
        context = weights @ memory.values                                          # (N, T, Hv)
        self._cache = None
        if backend.is_grad_enabled():
            self._cache = (queries, memory, weights, score_cache, one_step, value is None)
        if one_step:
            return context[:, 0], weights[:, 0]
        if not self.batch_first:
            context = xp.ascontiguousarray(context.transpose(1, 0, 2))
        return context, weights

    def backward(self, grad_context, grad_weights=None):
        xp = backend.xp
        if self._cache is None:
            raise RuntimeError("Attention.backward() called without a matching forward: run forward first, with "
                               "gradients enabled (not under rnnlab.no_grad()), and call backward once per forward")
        queries, memory, weights, score_cache, one_step, values_are_keys = self._cache
        self._cache = None
        grad_context = xp.asarray(grad_context, dtype=self._dtype)
        if one_step:
            grad_context = grad_context[:, None, :]
        elif not self.batch_first:
            grad_context = grad_context.transpose(1, 0, 2)                         # (N, T, Hv)
        expected = weights.shape[:2] + memory.values.shape[-1:]
        if grad_context.shape != expected:
            raise ValueError(f"grad_context must have the shape of the context, got {grad_context.shape}")
        grad_alpha = grad_context @ memory.values.transpose(0, 2, 1)               # (N, T, S)
        if grad_weights is not None:
            grad_alpha = grad_alpha + xp.asarray(grad_weights, dtype=self._dtype).reshape(weights.shape)
        grad_values = weights.transpose(0, 2, 1) @ grad_context                    # (N, S, Hv)
        grad_scores = weights * (grad_alpha - (grad_alpha * weights).sum(axis=-1, keepdims=True))  # softmax'
        keys = memory.keys
        if self.score == "dot":
            grad_queries = grad_scores @ keys                                       # (N, T, Hk)
            grad_keys = grad_scores.transpose(0, 2, 1) @ queries                    # (N, S, Hq)
        elif self.score == "general":
            projected_queries = score_cache
            grad_projected = grad_scores @ keys                                     # (N, T, Hk)
            grad_keys = grad_scores.transpose(0, 2, 1) @ projected_queries          # (N, S, Hk)
            grad_queries = (grad_projected.reshape(-1, self.key_size)                # (N, T, Hq), one 2-D
                            @ self.weight.data.T).reshape(queries.shape)            # product (3-D is a loop)
            self.weight.accumulate_grad(queries.reshape(-1, self.query_size).T
                                        @ grad_projected.reshape(-1, self.key_size), owned=True)
        else:
            hidden = score_cache                                                    # (N, T, S, A)
            size = self.attention_size
            # one pass of BLAS for w_s's gradient; then the cache's tanh array becomes grad_pre in place
            self.score_weight.accumulate_grad(grad_scores.reshape(-1) @ hidden.reshape(-1, size))
            grad_pre = np.multiply(hidden, hidden, out=hidden)                      # u^2 (the cache is spent)
            np.subtract(1.0, grad_pre, out=grad_pre)
            grad_pre *= grad_scores[..., None]
            grad_pre *= self.score_weight.data
            grad_query_part = grad_pre.sum(axis=2).reshape(-1, size)                # (N*T, A)
            grad_key_part = grad_pre.sum(axis=1).reshape(-1, size)                  # (N*S, A)
            self.query_weight.accumulate_grad(grad_query_part.T @ queries.reshape(-1, self.query_size), owned=True)
            self.key_weight.accumulate_grad(grad_key_part.T @ keys.reshape(-1, self.key_size), owned=True)
            self.bias.accumulate_grad(grad_key_part.sum(axis=0))
            grad_queries = (grad_query_part @ self.query_weight.data).reshape(queries.shape)
            grad_keys = (grad_key_part @ self.key_weight.data).reshape(keys.shape)
        if values_are_keys:
            grad_keys = grad_keys + grad_values
            grad_values = None
        if one_step:
            grad_queries = grad_queries[:, 0]
        elif not self.batch_first:
            grad_queries = xp.ascontiguousarray(grad_queries.transpose(1, 0, 2))
        if not self.batch_first:
            grad_keys = xp.ascontiguousarray(grad_keys.transpose(1, 0, 2))
            if grad_values is not None:
                grad_values = xp.ascontiguousarray(grad_values.transpose(1, 0, 2))
        return grad_queries, grad_keys, grad_values
