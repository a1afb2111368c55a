"""``Parameter`` and ``Module``: the little that every layer shares.

A :class:`Parameter` holds ``data`` (an array) and ``grad`` (``None`` until a backward pass
accumulates into it). A :class:`Module` registers the parameters and sub-modules assigned to its
attributes, in assignment order, so names are PyTorch's (``rnn.weight_ih_l0``, ``decoder.bias``) and
a ``state_dict`` moves between rnnlab and PyTorch unchanged.

Unlike PyTorch there is no tape: each module's ``forward`` keeps what its ``backward`` needs, and
``backward`` takes the gradient of the loss with respect to the module's outputs, accumulates
parameter gradients into ``.grad`` and returns the gradient with respect to its inputs.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

import numpy as np

from .. import backend


class Parameter:
    """A trainable array. ``data``: the values; ``grad``: the accumulated gradient or ``None``."""

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data, requires_grad: bool = True):
        self.data = backend.xp.asarray(data)
        self.grad = None
        self.requires_grad = requires_grad

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def accumulate_grad(self, grad, owned: bool = False) -> None:
        """``grad += g`` (``grad = g`` the first time); gradients add up over backward calls.

        ``owned=True`` says ``g`` is a fresh array that nothing else holds (a product just computed by a
        backward pass): the first time it is kept as the gradient instead of copied, when it already
        has the parameter's dtype and shape (saves a copy of every weight gradient per step)."""
        if not self.requires_grad:
            return
        if self.grad is None:
            if (owned and type(grad) is np.ndarray and grad.dtype == self.data.dtype
                    and grad.shape == self.data.shape and grad.flags.c_contiguous and grad.flags.writeable):
                self.grad = grad
                return
            self.grad = backend.xp.array(grad, dtype=self.data.dtype, copy=True)
        else:
            self.grad += grad

    def numel(self) -> int:
        return int(self.data.size)

    def __repr__(self) -> str:
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


def _to_numpy(value) -> np.ndarray:
    """Accept NumPy arrays, anything array-like, and PyTorch tensors (without importing torch)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


class Module:
    """Base class of every layer and model.

    Subclasses assign :class:`Parameter` and :class:`Module` attributes in ``__init__`` and define
    ``forward(*inputs)`` and ``backward(*grad_outputs)``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # --- registration -------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("call Module.__init__() before assigning attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name`` (``None`` leaves the attribute as ``None``)."""
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    # --- traversal ----------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._modules.items()

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(name, Parameter)`` pairs in registration order, with PyTorch's dotted names."""
        for name, param in self._parameters.items():
            yield (f"{prefix}.{name}" if prefix else name), param
        if recurse:
            for name, module in self._modules.items():
                yield from module.named_parameters(f"{prefix}.{name}" if prefix else name)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # --- state --------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Name -> a copy of each parameter's values (PyTorch's names, shapes and order)."""
        return OrderedDict((name, backend.xp.array(p.data, copy=True)) for name, p in self.named_parameters())

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values in by name. Accepts NumPy arrays or PyTorch tensors; keeps this module's dtype.

        With ``strict`` every key must match; returns ``(missing_keys, unexpected_keys)``.
        """
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("missing key(s): " + ", ".join(repr(k) for k in missing))
            if unexpected:
                parts.append("unexpected key(s): " + ", ".join(repr(k) for k in unexpected))
            raise KeyError(f"Error(s) in loading state_dict for {type(self).__name__}: " + "; ".join(parts))
        for name, param in own.items():
            if name not in state_dict:
                continue
            value = _to_numpy(state_dict[name])
            if tuple(value.shape) != tuple(param.data.shape):
                raise ValueError(
                    f"size mismatch for {name}: copying a param with shape {tuple(value.shape)}, "
                    f"the shape in current model is {tuple(param.data.shape)}"
                )
            param.data[...] = backend.xp.asarray(value, dtype=param.data.dtype)
        return missing, unexpected

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient (to ``None``, or to zeros)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def to(self, dtype) -> "Module":
        """Cast every parameter to ``dtype`` in place (``float32`` or ``float64``)."""
        dtype = backend.resolve_dtype(dtype)
        for module in self.modules():
            module._set_dtype(dtype)
            for name, p in module._parameters.items():
                p.data = p.data.astype(dtype)
                p.grad = None if p.grad is None else p.grad.astype(dtype)
        return self

    def _set_dtype(self, dtype) -> None:
        """Hook for modules that remember their dtype."""
        if "dtype" in self.__dict__:
            object.__setattr__(self, "dtype", dtype)

    def double(self) -> "Module":
        return self.to(np.float64)

    def float(self) -> "Module":
        return self.to(np.float32)

    # --- modes --------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active) or, with ``mode=False``, evaluation mode."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # --- calling ------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    # --- repr ---------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
