"""Losses with PyTorch's arguments, shapes and reductions, each with its backward:
``CrossEntropyLoss`` (log-softmax and negative log-likelihood in one numerically stable step, with
``weight``, ``ignore_index``, ``label_smoothing``), ``MSELoss``, and ``BCEWithLogitsLoss`` (log-sigmoid
computed without overflow, with ``weight`` and ``pos_weight``).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .module import Module

__all__ = ["CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss", "log_softmax"]

_REDUCTIONS = ("none", "mean", "sum")


def log_softmax(logits, axis: int = -1):
    r""":math:`\log \mathrm{softmax}(z)_c = z_c - \max z - \log \sum_k \exp(z_k - \max z)`.

    Subtracting the maximum first keeps every ``exp`` in ``(0, 1]``: no overflow for large logits,
    and the largest term contributes exactly 1 to the sum, so the ``log`` never sees 0.
    """
    xp = backend.xp
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class CrossEntropyLoss(Module):
    r"""The cross entropy between the softmax of ``input`` (unnormalised logits) and class-index targets.

    With :math:`p = \mathrm{log\_softmax}(x)` over the class dimension, :math:`w` the class weights
    (all ones when ``weight`` is ``None``), :math:`\varepsilon` the label smoothing and :math:`C` the
    number of classes, the unreduced loss of element :math:`n` is

    .. math::
        \ell_n = -(1 - \varepsilon)\, w_{y_n} p_{n, y_n}
                 - \frac{\varepsilon}{C} \sum_{c=1}^{C} w_c\, p_{n, c}
                 \qquad (\ell_n = 0 \text{ when } y_n = \text{ignore\_index}),

    and the reductions are

    .. math::
        \text{mean: } \frac{\sum_n \ell_n}{\sum_{n:\, y_n \ne \text{ignore\_index}} w_{y_n}}, \qquad
        \text{sum: } \sum_n \ell_n, \qquad \text{none: } (\ell_n)_n.

    So ``'mean'`` divides by the number of non-ignored targets, or by their total weight when
    ``weight`` is given, exactly as PyTorch (and is ``nan`` when every target is ignored).

    Backward: writing the loss as :math:`\ell_n = -\sum_c a_{n,c} p_{n,c}` with
    :math:`a_{n,c} = (1-\varepsilon) w_{y_n} [c = y_n] + \frac{\varepsilon}{C} w_c` and
    :math:`A_n = \sum_c a_{n,c}`, the gradient with respect to the logits is

    .. math::
        \frac{\partial L}{\partial x_{n,c}} = g_n \left( A_n\, \mathrm{softmax}(x_n)_c - a_{n,c} \right),

    where :math:`g_n` is ``grad_loss`` (``'sum'``), ``grad_loss`` divided by the mean's denominator
    (``'mean'``), or ``grad_loss[n]`` (``'none'``). Without weights or smoothing this is the familiar
    :math:`\mathrm{softmax}(x_n) - \mathrm{onehot}(y_n)`.

    Args:
        weight: optional array of :math:`C` class weights.
        ignore_index: targets equal to this value contribute neither loss nor gradient. Default: -100.
        reduction: ``'none'``, ``'mean'`` (default) or ``'sum'``.
        label_smoothing: :math:`\varepsilon \in [0, 1]`; the target becomes a mix of the one-hot class
            and the uniform distribution, as in PyTorch. Default: 0.0.

    Shape:
        - Input: :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, \ldots, d_K)`, floating.
        - Target: :math:`()`, :math:`(N)` or :math:`(N, d_1, \ldots, d_K)`, integer class indices in
          :math:`[0, C)` (or ``ignore_index``).
        - Output: a scalar (0-d array); with ``reduction='none'`` the shape of the target.
        - ``backward(grad_loss=1.0)`` returns the gradient with respect to ``input``, same shape as it.

    >>> import numpy as np
    >>> from rnnlab.nn.loss import CrossEntropyLoss
    >>> criterion = CrossEntropyLoss()
    >>> logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> loss = criterion(logits, np.array([0, 2]))
    >>> round(float(loss), 6)  # mean of -log(e^2/(e^2+2)) and -log(1/3)
    0.669079
    >>> criterion.backward().round(4)  # (softmax - onehot) / N
    array([[-0.1065,  0.0533,  0.0533],
           [ 0.1667,  0.1667, -0.3333]])
    """

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{reduction} is not a valid value for reduction (use 'none', 'mean' or 'sum')")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
        if weight is not None:
            weight = np.asarray(weight.detach().cpu().numpy() if hasattr(weight, "detach") else weight)
            if weight.ndim != 1 or weight.dtype.kind not in "fiu":
                raise ValueError(f"weight must be a 1-D array of class weights, got shape {weight.shape}")
            weight = backend.xp.asarray(weight)
        self.weight = weight  # a plain array, not a Parameter: it is not trained
        self.ignore_index = int(ignore_index)
        self.reduction = reduction
        self.label_smoothing = float(label_smoothing)
        self._cache = None

    def _flatten(self, input, target):
        """(M, C) logits with classes last and (M,) targets, checking shapes as PyTorch does."""
        xp = backend.xp
        if input.ndim == 0:
            raise ValueError("Expected 1 or more dimensions (got 0)")
        if target.dtype.kind not in "iu":
            raise TypeError(f"CrossEntropyLoss expects integer class indices as target, got dtype {target.dtype} "
                            f"(probability targets are not supported)")
        if input.ndim == 1:
            if target.ndim != 0:
                raise ValueError(f"for unbatched input of shape {input.shape} the target must be a scalar class "
                                 f"index, got shape {target.shape}")
            return input.reshape(1, -1), target.reshape(1)
        if target.ndim == 0 or input.shape[0] != target.shape[0]:
            got = target.shape[0] if target.ndim else "a scalar"
            raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size ({got}).")
        expected = (input.shape[0],) + input.shape[2:]
        if target.shape != expected:
            raise ValueError(f"Expected target size {list(expected)}, got {list(target.shape)}")
        classes = input.shape[1]
        logits = xp.moveaxis(input, 1, -1).reshape(-1, classes)  # (N, d1.., C) -> (M, C)
        return logits, target.reshape(-1)

    def forward(self, input, target):
        xp = backend.xp
        input = xp.asarray(input)
        if input.dtype.kind != "f":
            raise TypeError(f"CrossEntropyLoss expects floating-point logits, got dtype {input.dtype}")
        target = xp.asarray(target)
        logits, targets = self._flatten(input, target)
        dtype = logits.dtype
        num_classes = logits.shape[1]
        if self.weight is not None and self.weight.shape != (num_classes,):
            raise ValueError(f"weight tensor should be defined either for all {num_classes} classes or no classes "
                             f"but got weight tensor of shape: {list(self.weight.shape)}")

        valid = targets != self.ignore_index  # (M,)
        bad = targets[valid & ((targets < 0) | (targets >= num_classes))]
        if bad.size:
            raise IndexError(f"Target {int(bad[0])} is out of bounds: class indices must lie in "
                             f"[0, {num_classes - 1}] (or equal ignore_index={self.ignore_index})")
        safe_targets = xp.where(valid, targets, 0).astype(xp.intp)
        class_weight = None if self.weight is None else self.weight.astype(dtype)
        target_weight = valid.astype(dtype) if class_weight is None else class_weight[safe_targets] * valid  # (M,)

        log_probs = log_softmax(logits, axis=1)  # (M, C)
        rows = xp.arange(logits.shape[0])
        losses = -target_weight * log_probs[rows, safe_targets]  # (M,)
        smoothing = self.label_smoothing
        if smoothing > 0:
            weighted = log_probs if class_weight is None else log_probs * class_weight
            losses = (1 - smoothing) * losses - (smoothing / num_classes) * weighted.sum(axis=1) * valid

        denominator = target_weight.sum()
        if self.reduction == "none":
            output = losses.reshape(target.shape)
        elif self.reduction == "sum":
            output = losses.sum()
        elif denominator == 0:  # every target ignored: PyTorch gives nan (0/0), without a warning here
            output = xp.asarray(np.nan, dtype=dtype)
        else:
            output = losses.sum() / denominator
        output = xp.asarray(output, dtype=dtype)

        if backend.is_grad_enabled():
            self._cache = (input.shape, target.shape, log_probs, safe_targets, valid, target_weight,
                           class_weight, denominator)
        else:
            self._cache = None
        return output

    def backward(self, grad_loss=1.0):
        xp = backend.xp
        if self._cache is None:
            raise RuntimeError("CrossEntropyLoss.backward() called without a matching forward: run forward first, "
                               "with gradients enabled (not under rnnlab.no_grad()), and call backward once per "
                               "forward")
        input_shape, target_shape, log_probs, safe_targets, valid, target_weight, class_weight, denominator = \
            self._cache
        self._cache = None
        dtype = log_probs.dtype
        num_rows, num_classes = log_probs.shape
        grad_loss = xp.asarray(grad_loss, dtype=dtype)
        if self.reduction == "none":
            scale = xp.broadcast_to(grad_loss, target_shape).reshape(num_rows)  # g_n
        elif grad_loss.ndim != 0:
            raise ValueError(f"grad_loss must be a scalar for reduction='{self.reduction}', got shape "
                             f"{grad_loss.shape}")
        elif self.reduction == "mean":
            scale = grad_loss / denominator if denominator != 0 else xp.zeros((), dtype=dtype)
        else:
            scale = grad_loss

        smoothing = self.label_smoothing
        on_target = (1 - smoothing) * target_weight  # a_{n, y_n} without the smoothing part
        total = on_target  # A_n
        valid = valid.astype(dtype)  # a bool mask times a Python float would be float64 whatever the logits
        if smoothing > 0:
            class_total = num_classes if class_weight is None else class_weight.sum()
            total = on_target + (smoothing / num_classes) * class_total * valid
        grad = xp.exp(log_probs) * (scale * total)[:, None]  # g_n A_n softmax_nc
        rows = xp.arange(num_rows)
        grad[rows, safe_targets] -= scale * on_target
        if smoothing > 0:
            spread = xp.ones(num_classes, dtype=dtype) if class_weight is None else class_weight
            grad -= ((scale * valid) * (smoothing / num_classes))[:, None] * spread

        if len(input_shape) == 1:
            return grad.reshape(input_shape)
        moved_shape = (input_shape[0],) + input_shape[2:] + (input_shape[1],)
        return xp.ascontiguousarray(xp.moveaxis(grad.reshape(moved_shape), -1, 1))

    def extra_repr(self) -> str:
        parts = []
        if self.weight is not None:
            parts.append(f"weight=<{self.weight.shape[0]} classes>")
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.reduction != "mean":
            parts.append(f"reduction='{self.reduction}'")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


def _as_float(value, dtype=None):
    """An ``xp`` float array from an array, an array-like or a PyTorch tensor (without importing torch)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    array = backend.xp.asarray(value)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"expected numbers, got an array of dtype {array.dtype}")
    if dtype is not None:
        return array.astype(dtype, copy=False)
    return array if array.dtype.kind == "f" else array.astype(backend.get_default_dtype())


def _reduce(losses, reduction: str):
    return losses if reduction == "none" else (losses.sum() if reduction == "sum" else losses.mean())


def _grad_scale(grad_loss, reduction: str, shape, dtype):
    """``g`` for each element: ``grad_loss`` (sum), ``grad_loss / numel`` (mean), ``grad_loss[...]`` (none)."""
    xp = backend.xp
    grad_loss = xp.asarray(grad_loss, dtype=dtype)
    if reduction == "none":
        return xp.broadcast_to(grad_loss, shape)
    if grad_loss.ndim != 0:
        raise ValueError(f"grad_loss must be a scalar for reduction='{reduction}', got shape {grad_loss.shape}")
    count = int(np.prod(shape))
    return grad_loss / count if reduction == "mean" and count else grad_loss


def _check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction (use 'none', 'mean' or 'sum')")
    return reduction


def _take(module, name: str):
    cache = module._cache
    if cache is None:
        raise RuntimeError(f"{name}.backward() called without a matching forward: run forward first, with "
                           "gradients enabled (not under rnnlab.no_grad()), and call backward once per forward")
    module._cache = None
    return cache


class MSELoss(Module):
    r"""The mean squared error between ``input`` and ``target``, element by element.

    .. math::
        \ell_n = (x_n - y_n)^2, \qquad \text{mean: } \frac{1}{M} \sum_n \ell_n, \quad
        \text{sum: } \sum_n \ell_n, \quad \text{none: } (\ell_n)_n;
        \qquad \frac{\partial L}{\partial x_n} = 2\, g_n (x_n - y_n)

    with :math:`g_n` = ``grad_loss`` (sum), ``grad_loss / M`` (mean, :math:`M` elements) or
    ``grad_loss[n]`` (none). ``'mean'`` of an empty input is ``nan``, as in PyTorch.

    Args:
        reduction: ``'none'``, ``'mean'`` (default) or ``'sum'``.

    Shape: input and target of the same shape :math:`(*)` (rnnlab does not broadcast them: a shape
    mismatch is usually a bug, which PyTorch only warns about); output a scalar, or :math:`(*)` for
    ``'none'``. ``backward(grad_loss=1.0)`` returns the gradient with respect to ``input``.

    >>> import numpy as np
    >>> from rnnlab.nn import MSELoss
    >>> criterion = MSELoss()
    >>> float(criterion(np.array([1.0, 2.0]), np.array([0.0, 4.0])))   # (1 + 4) / 2
    2.5
    >>> criterion.backward().tolist()                                   # 2 (x - y) / 2
    [1.0, -2.0]
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)
        self._cache = None

    def forward(self, input, target):
        input = _as_float(input)
        target = _as_float(target, input.dtype)
        if input.shape != target.shape:
            raise ValueError(f"MSELoss: input and target must have the same shape, got {input.shape} and {target.shape}")
        difference = input - target
        with np.errstate(invalid="ignore"):  # the mean of nothing is nan, as in PyTorch
            output = backend.xp.asarray(_reduce(difference * difference, self.reduction), dtype=input.dtype)
        self._cache = difference if backend.is_grad_enabled() else None
        return output

    def backward(self, grad_loss=1.0):
        difference = _take(self, "MSELoss")
        return 2.0 * _grad_scale(grad_loss, self.reduction, difference.shape, difference.dtype) * difference

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction='{self.reduction}'"


class BCEWithLogitsLoss(Module):
    r"""Binary cross entropy of ``sigmoid(input)`` against targets in :math:`[0, 1]`, computed from the logits.

    With :math:`w` the element weights (``weight``, broadcast to the input; 1 if ``None``) and :math:`p` the
    positive-class weights (``pos_weight``, broadcast along the last dimension, the classes; 1 if ``None``):

    .. math::
        \ell_n = -w_n \big[ p\, y_n \log \sigma(x_n) + (1 - y_n) \log (1 - \sigma(x_n)) \big]
               = w_n \big[ (1 - y_n)\, x_n + (1 + (p - 1) y_n)\, \mathrm{softplus}(-x_n) \big],

    where :math:`\mathrm{softplus}(-x) = -\log \sigma(x) = \log(1 + e^{-|x|}) + \max(-x, 0)` never overflows
    (PyTorch's formulation). Reductions as in :class:`MSELoss` (``'mean'`` over all elements). Backward:

    .. math::
        \frac{\partial L}{\partial x_n} = g_n w_n \big[ (1 - y_n) - (1 + (p - 1) y_n)\, \sigma(-x_n) \big]
        \;\;(= g_n w_n (\sigma(x_n) - y_n) \text{ without } p).

    Args:
        weight: optional element weights, broadcastable to the input.
        reduction: ``'none'``, ``'mean'`` (default) or ``'sum'``.
        pos_weight: optional weights of the positive examples, broadcastable to the input
            (usually one per class, shape :math:`(C)`).

    Shape: input and target :math:`(*)`, the same shape; output a scalar or :math:`(*)` (``'none'``).
    ``backward(grad_loss=1.0)`` returns the gradient with respect to ``input``.

    >>> import numpy as np
    >>> from rnnlab.nn import BCEWithLogitsLoss
    >>> criterion = BCEWithLogitsLoss()
    >>> round(float(criterion(np.array([0.0, 1000.0]), np.array([1.0, 1.0]))), 6)   # (log 2 + 0) / 2
    0.346574
    >>> criterion.backward().round(4).tolist()                                     # (sigmoid(x) - y) / 2
    [-0.25, 0.0]
    """

    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None):
        super().__init__()
        self.reduction = _check_reduction(reduction)
        self.weight = None if weight is None else _as_float(weight)  # plain arrays: not trained
        self.pos_weight = None if pos_weight is None else _as_float(pos_weight)
        self._cache = None

    def forward(self, input, target):
        xp = backend.xp
        input = _as_float(input)
        target = _as_float(target, input.dtype)
        if input.shape != target.shape:
            raise ValueError(f"Target size ({list(target.shape)}) must be the same as input size ({list(input.shape)})")
        dtype = input.dtype
        log_weight = None if self.pos_weight is None else 1.0 + (self.pos_weight.astype(dtype) - 1.0) * target
        softplus_neg = xp.log1p(xp.exp(-xp.abs(input))) + xp.maximum(-input, 0)   # -log sigmoid(x)
        losses = (1.0 - target) * input + (softplus_neg if log_weight is None else log_weight * softplus_neg)
        weight = None if self.weight is None else self.weight.astype(dtype)
        if weight is not None:
            losses = losses * weight
        losses = xp.broadcast_to(losses, input.shape)
        with np.errstate(invalid="ignore"):
            output = xp.asarray(_reduce(losses, self.reduction), dtype=dtype)
        self._cache = (input, target, log_weight, weight) if backend.is_grad_enabled() else None
        return output

    def backward(self, grad_loss=1.0):
        xp = backend.xp
        input, target, log_weight, weight = _take(self, "BCEWithLogitsLoss")
        sigmoid_neg = xp.exp(-xp.logaddexp(0.0, input))                            # sigmoid(-x), stable
        grad = (1.0 - target) - (sigmoid_neg if log_weight is None else log_weight * sigmoid_neg)
        if weight is not None:
            grad = grad * weight
        grad = xp.broadcast_to(grad, input.shape)
        return _grad_scale(grad_loss, self.reduction, input.shape, input.dtype) * grad

    def extra_repr(self) -> str:
        parts = [] if self.reduction == "mean" else [f"reduction='{self.reduction}'"]
        if self.weight is not None:
            parts.append(f"weight=<shape {tuple(self.weight.shape)}>")
        if self.pos_weight is not None:
            parts.append(f"pos_weight=<shape {tuple(self.pos_weight.shape)}>")
        return ", ".join(parts)
