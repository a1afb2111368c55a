"""``Linear``, ``Embedding`` and ``Dropout``: PyTorch's names, shapes and initialisation, with the
backward pass written beside each forward.

Each forward keeps what its backward needs (only while gradients are enabled, see
:func:`rnnlab.no_grad`); each backward consumes that cache, accumulates parameter gradients into
``.grad`` and returns the gradient with respect to the input. The cache holds the input itself (not
a copy): do not modify an input in place between a forward and its backward.
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from .. import backend, fast
from .module import Module, Parameter

__all__ = ["Linear", "Embedding", "Dropout"]


def _take_cache(module: Module):
    """The forward's cache, removed from the module; ``RuntimeError`` if there is none."""
    cache = module.__dict__.get("_cache")
    if cache is None:
        raise RuntimeError(
            f"{type(module).__name__}.backward() called without a matching forward: run forward first, with "
            f"gradients enabled (not under rnnlab.no_grad()), and call backward once per forward"
        )
    module._cache = None
    return cache


class Linear(Module):
    r"""Applies an affine transformation to the last dimension: :math:`y = x A^T + b`.

    Backward (for ``grad_output`` :math:`= \partial L / \partial y`, rows flattened over ``*``):

    .. math::
        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} A, \qquad
        \frac{\partial L}{\partial A} = \Big(\frac{\partial L}{\partial y}\Big)^T x, \qquad
        \frac{\partial L}{\partial b} = \sum_{\text{rows}} \frac{\partial L}{\partial y}

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: if ``False``, the layer has no additive bias. Default: ``True``.
        dtype: ``float32`` or ``float64``; ``None`` takes :func:`rnnlab.get_default_dtype`.

    Shape:
        - Input: :math:`(*, H_{in})`, where :math:`*` is any number of dimensions (including none)
          and :math:`H_{in} = \text{in\_features}`.
        - Output: :math:`(*, H_{out})`, where :math:`H_{out} = \text{out\_features}`.

    Attributes:
        weight: the learnable weights of shape :math:`(\text{out\_features}, \text{in\_features})`,
            initialised from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{in\_features}`
            (what PyTorch's ``kaiming_uniform_(a=sqrt(5))`` amounts to).
        bias: the learnable bias of shape :math:`(\text{out\_features})`, from the same distribution.

    >>> import numpy as np, rnnlab
    >>> from rnnlab.nn.layers import Linear
    >>> _ = rnnlab.manual_seed(0)
    >>> layer = Linear(3, 4)
    >>> layer
    Linear(in_features=3, out_features=4, bias=True)
    >>> y = layer(np.ones((2, 5, 3), dtype=np.float32))
    >>> y.shape
    (2, 5, 4)
    >>> layer.backward(np.ones_like(y)).shape, layer.weight.grad.shape
    ((2, 5, 3), (4, 3))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"in_features and out_features must be positive, got {in_features} and {out_features}")
        dtype = backend.resolve_dtype(dtype)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        bound = 1.0 / math.sqrt(in_features)
        rng = backend.generator()
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype))
        if bias:
            self.bias = Parameter(rng.uniform(-bound, bound, (out_features,)).astype(dtype))
        else:
            self.register_parameter("bias", None)
        self._cache = None

    def forward(self, input):
        xp = backend.xp
        input = xp.asarray(input, dtype=self.weight.data.dtype)
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            got = input.shape[-1] if input.ndim else "a scalar"
            raise ValueError(f"input.size(-1) must be equal to in_features. Expected {self.in_features}, got {got}")
        # all rows as ONE 2-D product: a 3-D `@` is a loop of small products (2.7x slower)
        output = (input.reshape(-1, self.in_features) @ self.weight.data.T).reshape(
            input.shape[:-1] + (self.out_features,))  # (*, out)
        if self.bias is not None:
            output += self.bias.data
        self._cache = input if backend.is_grad_enabled() else None
        return output

    def backward(self, grad_output):
        xp = backend.xp
        input = _take_cache(self)
        grad_output = xp.asarray(grad_output, dtype=self.weight.data.dtype)
        expected = input.shape[:-1] + (self.out_features,)
        if grad_output.shape != expected:
            raise ValueError(f"grad_output must have shape {expected}, got {grad_output.shape}")
        grad_rows = grad_output.reshape(-1, self.out_features)  # (rows, out)
        self.weight.accumulate_grad(grad_rows.T @ input.reshape(-1, self.in_features), owned=True)  # (out, in)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_rows.sum(axis=0))
        return (grad_rows @ self.weight.data).reshape(input.shape)  # (*, in), one 2-D product

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# Embedding's backward sums gradient rows that share an id. Measured on 2 cores (numpy 2.4, best of 7;
# vocabulary x dim x ids): 65x512x6400 float32: np.add.at 21 ms, sort+np.add.reduceat 26 ms, flat
# np.bincount 17 ms, sort + one block sum per distinct id 2.1 ms; 10000x32x100000: add.at 24 ms,
# bincount 15 ms, block sums 27 ms; 65x16x100000: add.at 12 ms, bincount 5 ms, block sums 8 ms.
# So: block sums when each distinct id has plenty of work (wide rows, few distinct ids: char models),
# one flat bincount otherwise (many distinct ids or narrow rows). On the compiled path (rnnlab.fast.scatter)
# one pass adding each row into its id's row beats both (2048x512 float32, 65 ids: 0.7 ms -> ~0.15 ms).
_BLOCK_SUM_MIN_DIM = 32
_BLOCK_SUM_MIN_WORK_PER_ID = 2000  # elements summed per distinct id before a Python-level block sum pays


def scatter_add_rows(ids, rows, num_rows: int):
    """``out[i] = sum of rows[k] over k with ids[k] == i``: the backward of a row gather ``table[ids]``.

    ``ids``: (n,) integers in ``[0, num_rows)``; ``rows``: (n, dim). Returns (num_rows, dim) in ``rows``'
    dtype. No one-hot products and no per-sample Python loop; see the timings above for the choice.
    """
    xp = backend.xp
    if xp is np and rows.dtype in (np.float32, np.float64) and rows.flags.c_contiguous:
        compiled = fast.load("scatter")  # None when the switch is off
        if compiled is not None:
            out = np.zeros((num_rows, rows.shape[1]), dtype=rows.dtype)
            compiled.scatter_add_rows_into(ids, rows, out)
            return out
    count_per_id = xp.bincount(ids, minlength=num_rows)
    present_ids = xp.flatnonzero(count_per_id)
    n, dim = rows.shape
    if dim >= _BLOCK_SUM_MIN_DIM and present_ids.size * _BLOCK_SUM_MIN_WORK_PER_ID <= n * dim:
        sorted_rows = rows[xp.argsort(ids, kind="stable")]  # rows grouped by id, original order within
        ends = xp.cumsum(count_per_id)
        out = xp.zeros((num_rows, dim), dtype=rows.dtype)
        for row_id in present_ids.tolist():  # one contiguous (pairwise) sum per distinct id
            out[row_id] = sorted_rows[ends[row_id] - count_per_id[row_id]: ends[row_id]].sum(axis=0)
        return out
    flat_index = (ids[:, None] * dim + xp.arange(dim)).reshape(-1)  # element (k, j) -> ids[k] * dim + j
    summed = xp.bincount(flat_index, weights=rows.reshape(-1), minlength=num_rows * dim)  # float64 sums
    return summed.reshape(num_rows, dim).astype(rows.dtype)


# The latest outputs of Embedding.forward on the compiled path with fewer table rows than ids, so that a
# recurrent layer given one as its input can compute layer 0's projection from the table
# (rnnlab.nn.recurrent): id(output) -> (weak reference to output, ids (output.shape[:-1]), the table).
_GATHERED: dict = {}
_GATHERED_KEPT = 8


def _remember_gathered(output, ids, table) -> None:
    if len(_GATHERED) >= _GATHERED_KEPT:
        for key in [key for key, entry in _GATHERED.items() if entry[0]() is None]:
            del _GATHERED[key]
        if len(_GATHERED) >= _GATHERED_KEPT:
            del _GATHERED[next(iter(_GATHERED))]
    key = id(output)
    _GATHERED[key] = (weakref.ref(output, lambda _, key=key: _GATHERED.pop(key, None)), ids, table)


def gathered_rows(array):
    """``(ids, table)`` when ``array`` is an output of :meth:`Embedding.forward` (the array itself, not a
    copy or a view) that still holds exactly ``table[ids]``, bit for bit (``table`` is the embedding's
    weight, as it is now); None otherwise, and always None off the compiled path. A caller may then use
    ``(table @ A^T)[ids]`` for ``array @ A^T``: the same numbers up to the products' rounding."""
    if not _GATHERED:
        return None
    entry = _GATHERED.get(id(array))
    if entry is None or entry[0]() is not array:
        return None
    compiled = fast.load("scatter")
    _, ids, table = entry
    if (compiled is None or table.dtype != array.dtype or not table.flags.c_contiguous
            or array.shape[:-1] != ids.shape):  # (a reassigned .shape)
        return None
    if not compiled.rows_are_table_rows(ids.reshape(-1), table, array.reshape(-1, table.shape[1])):
        return None  # changed in place since the lookup, or the table was updated
    return ids, table


class Embedding(Module):
    r"""A lookup table: row :math:`i` of ``weight`` is the embedding of id :math:`i`.

    :math:`y[\ldots] = W[\text{ids}[\ldots]]`; backward adds each ``grad_output`` row into the row of
    ``weight.grad`` it was read from (ids that repeat accumulate), and the ``padding_idx`` row's
    gradient is always zero. Ids are not differentiable, so ``backward`` returns ``None``.

    Args:
        num_embeddings: size of the table (ids run from 0 to ``num_embeddings - 1``).
        embedding_dim: size of each embedding vector.
        padding_idx: if given, this row is initialised to zeros and never receives gradient
            (a negative value counts from the end, as in PyTorch).
        dtype: ``float32`` or ``float64``; ``None`` takes :func:`rnnlab.get_default_dtype`.

    Shape:
        - Input: :math:`(*)`, integer ids of any shape.
        - Output: :math:`(*, H)`, where :math:`H = \text{embedding\_dim}`.

    Attributes:
        weight: the learnable table of shape (num_embeddings, embedding_dim), initialised from
            :math:`\mathcal{N}(0, 1)`.

    >>> import numpy as np, rnnlab
    >>> from rnnlab.nn.layers import Embedding
    >>> _ = rnnlab.manual_seed(0)
    >>> embedding = Embedding(10, 3, padding_idx=0)
    >>> embedding
    Embedding(10, 3, padding_idx=0)
    >>> e = embedding(np.array([[1, 2, 0], [2, 2, 9]]))
    >>> e.shape
    (2, 3, 3)
    >>> embedding.backward(np.ones_like(e))
    >>> embedding.weight.grad[[0, 1, 2, 9], 0]
    array([0., 1., 3., 1.], dtype=float32)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, dtype=None):
        super().__init__()
        if num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError(f"num_embeddings and embedding_dim must be positive, got {num_embeddings} "
                             f"and {embedding_dim}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx must be within num_embeddings ({num_embeddings}), got {padding_idx}")
            padding_idx = int(padding_idx) % num_embeddings
        dtype = backend.resolve_dtype(dtype)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.padding_idx = padding_idx
        weight = backend.generator().standard_normal((num_embeddings, embedding_dim)).astype(dtype)
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.weight = Parameter(weight)
        self._cache = None

    def _checked_ids(self, input):
        ids = backend.xp.asarray(input)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding expects integer ids, got an array of dtype {ids.dtype}")
        if ids.size:
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= self.num_embeddings:
                bad = low if low < 0 else high
                raise IndexError(f"id {bad} is out of range for Embedding({self.num_embeddings}, "
                                 f"{self.embedding_dim}): ids must lie in [0, {self.num_embeddings - 1}]")
        return ids

    def forward(self, input):
        xp = backend.xp
        ids = self._checked_ids(input)
        output = self.weight.data[ids]  # (*, H): a copy, so later updates to weight do not change it
        flat_ids = ids.reshape(-1).astype(xp.intp)
        self._cache = (ids.shape, flat_ids) if backend.is_grad_enabled() else None
        if (self.num_embeddings < flat_ids.size and output.dtype == np.float32 and xp is np and ids.ndim
                and fast.enabled()):
            _remember_gathered(output, flat_ids.reshape(ids.shape), self.weight.data)
        return output

    def forward_projected(self, input, weight: Parameter, bias: Parameter | None = None):
        r"""The embedding followed by an affine map, :math:`y = W_{\text{emb}}[\text{ids}]\, A^T + b`, shape
        ``(*, G)`` for ``weight`` :math:`A` ``(G, embedding_dim)`` and ``bias`` ``(G,)`` (the next layer's
        Parameters: a recurrent layer's ``weight_ih_l0``, ``bias_ih_l0``).

        With fewer table rows than ids (a character model: 65 symbols, 2048 ids per batch) it is a
        lookup in the projected table :math:`W_{\text{emb}} A^T + b` (``num_embeddings x G``) instead
        of one ``(ids x embedding_dim) x (embedding_dim x G)`` product, and :meth:`backward_projected`
        sums the incoming gradient per id first (:func:`scatter_add_rows`), then
        :math:`\partial L/\partial A = \bar g^T W_{\text{emb}}`, :math:`\partial L/\partial b = \sum_v \bar g_v`,
        :math:`\partial L/\partial W_{\text{emb}} = \bar g A` with :math:`\bar g` (``num_embeddings x G``)
        the per-id sums: three products over the table instead of over every id. The result is a fresh
        array. Only the rounding differs from ``Linear``-style products on ``forward(ids)``.
        """
        xp = backend.xp
        ids = self._checked_ids(input)
        if weight.data.ndim != 2 or weight.data.shape[1] != self.embedding_dim:
            raise ValueError(f"weight must have shape (G, {self.embedding_dim}), got {weight.data.shape}")
        table_rows = self.num_embeddings < ids.size
        if table_rows:
            table = self.weight.data @ weight.data.T  # (V, G)
            if bias is not None:
                table += bias.data
            output = table[ids]  # (*, G)
            rows_in = None
        else:
            rows_in = self.weight.data[ids.reshape(-1)]  # (n, E)
            output = rows_in @ weight.data.T
            if bias is not None:
                output += bias.data
            output = output.reshape(ids.shape + (weight.data.shape[0],))
        self._cache = None
        if backend.is_grad_enabled():
            self._cache = ("projected", ids.shape, ids.reshape(-1).astype(xp.intp), weight, bias, rows_in)
        return output

    def backward_projected(self, grad_output) -> None:
        """The backward of :meth:`forward_projected`: gradients into this table, ``weight`` and ``bias``."""
        cache = _take_cache(self)
        if cache[0] != "projected":
            raise RuntimeError("Embedding.backward_projected() follows forward_projected(); use backward() after forward()")
        _, ids_shape, flat_ids, weight, bias, rows_in = cache
        gates = weight.data.shape[0]
        grad_output = backend.xp.asarray(grad_output, dtype=self.weight.data.dtype)
        if grad_output.shape != ids_shape + (gates,):
            raise ValueError(f"grad_output must have shape {ids_shape + (gates,)}, got {grad_output.shape}")
        grad_rows = grad_output.reshape(-1, gates)
        if rows_in is None:
            grad_table = scatter_add_rows(flat_ids, grad_rows, self.num_embeddings)  # (V, G)
            weight.accumulate_grad(grad_table.T @ self.weight.data, owned=True)
            if bias is not None:
                bias.accumulate_grad(grad_table.sum(axis=0))
            grad_weight = grad_table @ weight.data  # (V, E)
        else:
            weight.accumulate_grad(grad_rows.T @ rows_in, owned=True)
            if bias is not None:
                bias.accumulate_grad(grad_rows.sum(axis=0))
            grad_weight = scatter_add_rows(flat_ids, grad_rows @ weight.data, self.num_embeddings)
        if self.padding_idx is not None:
            grad_weight[self.padding_idx] = 0
        self.weight.accumulate_grad(grad_weight, owned=True)

    def backward(self, grad_output) -> None:
        xp = backend.xp
        cache = _take_cache(self)
        if cache[0] == "projected":
            raise RuntimeError("Embedding.backward() follows forward(); use backward_projected() after forward_projected()")
        ids_shape, flat_ids = cache
        grad_output = xp.asarray(grad_output, dtype=self.weight.data.dtype)
        expected = ids_shape + (self.embedding_dim,)
        if grad_output.shape != expected:
            raise ValueError(f"grad_output must have shape {expected}, got {grad_output.shape}")
        grad_weight = scatter_add_rows(flat_ids, grad_output.reshape(-1, self.embedding_dim), self.num_embeddings)
        if self.padding_idx is not None:
            grad_weight[self.padding_idx] = 0
        self.weight.accumulate_grad(grad_weight)
        return None

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        return text


class Dropout(Module):
    r"""Inverted dropout: in training mode each element is zeroed with probability :math:`p` and the
    survivors are scaled by :math:`1/(1-p)`, so the expected output equals the input; in evaluation
    mode (``module.eval()``) it is the identity.

    .. math::
        y = x \odot m / (1 - p), \quad m_i \sim \text{Bernoulli}(1 - p), \qquad
        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} \odot m / (1 - p)

    The mask comes from :func:`rnnlab.backend.generator` (so :func:`rnnlab.manual_seed` fixes it) and
    ``backward`` reuses the mask of the forward it follows. With :math:`p = 1` every output is zero.

    Args:
        p: probability of an element to be zeroed. Default: 0.5.

    Shape:
        - Input: :math:`(*)`, any shape. Output: :math:`(*)`, the same shape.

    >>> import numpy as np, rnnlab
    >>> from rnnlab.nn.layers import Dropout
    >>> _ = rnnlab.manual_seed(0)
    >>> dropout = Dropout(p=0.5)
    >>> y = dropout(np.ones(8))
    >>> sorted(set(y.tolist())) == [0.0, 2.0]
    True
    >>> bool(np.array_equal(dropout.backward(np.ones(8)), y))
    True
    >>> dropout.eval()(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = float(p)
        self._cache = None

    def forward(self, input):
        xp = backend.xp
        input = xp.asarray(input)
        if not self.training or self.p == 0.0:
            scaled_mask = None  # identity
            output = input
        else:
            dtype = input.dtype if input.dtype.kind == "f" else backend.get_default_dtype()
            if self.p == 1.0:
                scaled_mask = xp.zeros(input.shape, dtype=dtype)
            else:
                keep = backend.generator().random(input.shape, dtype=dtype) >= dtype.type(self.p)
                scaled_mask = keep.astype(dtype) * dtype.type(1.0 / (1.0 - self.p))
            output = input * scaled_mask
        # the cache is a 1-tuple so that "identity" (None inside) differs from "no forward" (no tuple)
        self._cache = (scaled_mask,) if backend.is_grad_enabled() else None
        return output

    def backward(self, grad_output):
        (scaled_mask,) = _take_cache(self)
        if scaled_mask is None:
            return grad_output
        grad_output = backend.xp.asarray(grad_output)
        if grad_output.shape != scaled_mask.shape:
            raise ValueError(f"grad_output must have shape {scaled_mask.shape}, got {grad_output.shape}")
        return grad_output * scaled_mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
