"""Check any module's hand-written ``backward`` against central finite differences.

The method (cs231n's ``eval_numerical_gradient_array`` applied to a whole module):

1. Run ``outputs = module(*inputs, **forward_kwargs)`` and turn the outputs into one number with a
   fixed random linear functional, ``loss = sum_k <R_k, output_k>``, where each ``R_k`` has the
   shape of float output ``k`` and is drawn from a generator seeded with ``seed``. A random ``R``
   exercises every output element with a different weight, so a gradient that is right only for
   ``sum(output)`` still gets caught.
2. The analytic gradient: zero the module's gradients, then call ``module.backward(*R)``, where the
   arguments mirror the outputs (a tuple of outputs -> positional arguments, nested tuples kept as
   tuples, e.g. LSTM's ``backward(R_out, (R_h, R_c))``; one array -> one argument; a scalar output,
   a loss -> one Python float). Parameter gradients are read from ``.grad``; input gradients come
   from the return value (a non-tuple return is wrapped as ``(ret,)`` and matched positionally to
   ``inputs``; nested tuples match nested tuple inputs; extra entries are ignored; integer inputs
   and ``None`` are skipped; a ``None`` gradient counts as zeros).
3. The numerical gradient: for each element ``x_i`` of each float input and each parameter,
   ``(loss(x_i + eps) - loss(x_i - eps)) / (2 eps)``, restoring ``x_i`` afterwards.
4. Compare element by element with the relative error
   ``|a - n| / max(|a| + |n|, 1e-3 * max|a over the tensor|, 1e-8)`` and keep the worst per tensor
   (cs231n's ``rel_error``, with a floor at the tensor's scale so that elements a thousand times
   smaller than their neighbours are not judged on finite-difference rounding noise). In float64 with ``eps=1e-6`` a
   correct backward gives errors around ``1e-10``-``1e-8``; a wrong one gives ``1e-2`` or more.

Before every forward (the analytic one and each finite-difference evaluation) the global generator is
seeded with ``rnnlab.manual_seed(seed)``, so dropout masks repeat exactly; the generator's previous
state is restored when the check finishes. The module must be float64 (finite differences in float32
are too coarse to say anything): float inputs are cast to float64, float32 parameters raise
``TypeError``.

>>> import numpy as np, rnnlab
>>> from rnnlab.nn.module import Module, Parameter
>>> class Scale(Module):
...     def __init__(self):
...         super().__init__()
...         self.weight = Parameter(np.array([2.0, -1.0]))
...     def forward(self, x):
...         self.x = x
...         return x * self.weight.data
...     def backward(self, grad_y):
...         self.weight.accumulate_grad((grad_y * self.x).sum(axis=0))
...         return grad_y * self.weight.data
>>> report = rnnlab.gradcheck(Scale(), np.ones((3, 2)))
>>> report.passed()
True
>>> sorted(report.errors)
['input[0]', 'weight']
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import backend

__all__ = ["gradcheck", "GradcheckReport", "GradcheckEntry"]

_DENOMINATOR_FLOOR = 1e-8
_SCALE_FRACTION = 1e-3


@dataclass
class GradcheckEntry:
    """One checked tensor: its name, shape, how many elements were checked and the worst errors."""

    name: str
    shape: tuple
    checked: int
    max_error: float  # worst relative error over the checked elements
    max_abs_error: float  # worst |analytic - numerical| over the checked elements


class GradcheckReport:
    """What :func:`gradcheck` found.

    ``errors``: name -> worst relative error (``'input[0]'``, ``'input[1][0]'``, ``'weight_ih_l0'``);
    ``max_error``: the worst over all tensors; ``passed(tol)``; ``assert_passed(tol)``; ``str(report)``
    is a table of name, shape, elements checked and worst errors.
    """

    def __init__(self, entries: list[GradcheckEntry], eps: float):
        self.entries = list(entries)
        self.eps = eps

    @property
    def errors(self) -> dict[str, float]:
        return {entry.name: entry.max_error for entry in self.entries}

    @property
    def max_error(self) -> float:
        return max((entry.max_error for entry in self.entries), default=0.0)

    def passed(self, tol: float = 1e-6) -> bool:
        """``True`` when every checked element's relative error is at most ``tol``."""
        return self.max_error <= tol

    def assert_passed(self, tol: float = 1e-6) -> None:
        """Raise ``AssertionError`` with the table when some relative error exceeds ``tol``."""
        if not self.passed(tol):
            raise AssertionError(f"gradcheck failed: max relative error {self.max_error:.3e} > tol {tol:.1e}\n{self}")

    def __str__(self) -> str:
        header = ("tensor", "shape", "checked", "max rel error", "max abs error")
        rows = [(e.name, str(tuple(e.shape)), str(e.checked), f"{e.max_error:.3e}", f"{e.max_abs_error:.3e}")
                for e in self.entries]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"GradcheckReport(max_error={self.max_error:.3e}, tensors={len(self.entries)})"


# --- helpers over nested structures ------------------------------------------------------------
def _is_float_array(value) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _is_scalar(value) -> bool:
    return isinstance(value, (float, np.floating)) or (_is_float_array(value) and value.ndim == 0)


def _cast_inputs(value):
    """Float arrays become float64 copies (we perturb them in place); everything else is kept."""
    if isinstance(value, tuple):
        return tuple(_cast_inputs(item) for item in value)
    if _is_float_array(value):
        return np.array(value, dtype=np.float64, copy=True)
    return value


def _float_leaves(value, name: str):
    """``(name, array)`` for every float array in a nested tuple, named like ``input[1][0]``."""
    if isinstance(value, tuple):
        for index, item in enumerate(value):
            yield from _float_leaves(item, f"{name}[{index}]")
    elif _is_float_array(value) and value.ndim > 0:
        yield name, value


def _draw_functional(outputs, rng: np.random.Generator):
    """``R`` mirroring ``outputs``: an array per float array, a float per scalar, ``None`` otherwise."""
    if isinstance(outputs, tuple):
        return tuple(_draw_functional(item, rng) for item in outputs)
    if _is_scalar(outputs):
        return float(rng.standard_normal())
    if _is_float_array(outputs):
        return rng.standard_normal(outputs.shape)
    return None


def _pair(outputs, functional) -> float:
    """``sum_k <R_k, output_k>`` over the float outputs."""
    if isinstance(outputs, tuple):
        if not isinstance(functional, tuple) or len(functional) != len(outputs):
            raise ValueError("the module's outputs changed structure between forward calls")
        return sum((_pair(o, r) for o, r in zip(outputs, functional)), 0.0)
    if functional is None:
        return 0.0
    return float(np.sum(np.asarray(outputs, dtype=np.float64) * functional))


def _copy_outputs(outputs):
    if isinstance(outputs, tuple):
        return tuple(_copy_outputs(item) for item in outputs)
    return np.array(outputs, copy=True) if isinstance(outputs, np.ndarray) else outputs


def _pair_difference(plus, minus, functional) -> float:
    """``<R, plus> - <R, minus>`` summed as ``<R, plus - minus>``: the outputs' difference first, so
    rounding noise scales with each output, not with the whole (possibly large) functional."""
    if isinstance(plus, tuple):
        return sum((_pair_difference(p, m, r) for p, m, r in zip(plus, minus, functional)), 0.0)
    if functional is None:
        return 0.0
    return float(np.sum((np.asarray(plus, dtype=np.float64) - np.asarray(minus, dtype=np.float64)) * functional))


def _match_grads(inputs, grads, name: str):
    """Yield ``(name, input array, analytic grad or None)`` for every float input, matched positionally."""
    if isinstance(inputs, tuple):
        if grads is None:
            grads = ()
        elif not isinstance(grads, tuple):
            grads = (grads,)
        for index, item in enumerate(inputs):
            grad = grads[index] if index < len(grads) else None
            yield from _match_grads(item, grad, f"{name}[{index}]")
    elif _is_float_array(inputs) and inputs.ndim > 0:
        yield name, inputs, grads


def _choose_indices(size: int, max_checks, rng: np.random.Generator) -> np.ndarray:
    if max_checks is None or max_checks >= size:
        return np.arange(size)
    return np.sort(rng.choice(size, size=int(max_checks), replace=False))


def gradcheck(module, *inputs, forward_kwargs=None, eps: float = 1e-6, seed: int = 0, check_inputs: bool = True,
              max_checks: int | None = None) -> GradcheckReport:
    """Compare ``module.backward`` with central finite differences; return a :class:`GradcheckReport`.

    Args:
        module: any rnnlab module (float64) with ``forward``/``backward``; a module without
            ``named_parameters`` is checked on its inputs only.
        *inputs: the forward's positional inputs (arrays, nested tuples of arrays, integer arrays,
            ``None``). Float arrays are cast to float64 copies; integer arrays are passed unchanged
            and not checked.
        forward_kwargs: keyword arguments for every forward call (e.g. ``{"lengths": lengths}``).
        eps: the finite-difference step.
        seed: seeds the random functional ``R``, the element subsets, and (through
            ``rnnlab.manual_seed``) every forward, so dropout masks repeat.
        check_inputs: also check the gradients ``backward`` returns for the float inputs.
        max_checks: check at most this many randomly chosen elements per tensor (``None``: all).

    See the module docstring for the method. Raises ``TypeError`` for a float32 module.
    """
    forward_kwargs = dict(forward_kwargs or {})
    named_parameters = list(module.named_parameters()) if hasattr(module, "named_parameters") else []
    for name, param in named_parameters:
        if param.data.dtype != np.float64:
            raise TypeError(f"gradcheck needs a float64 module, but parameter {name!r} is {param.data.dtype}; "
                            f"call module.double() first")
    named_parameters = [(name, p) for name, p in named_parameters if getattr(p, "requires_grad", True)]
    inputs = _cast_inputs(tuple(inputs))
    rng = np.random.default_rng(seed)  # private: R and subsets must not shift the forward's random draws
    saved_rng_state = backend.get_rng_state()

    def forward():
        backend.manual_seed(seed)
        return module(*inputs, **forward_kwargs)

    try:
        # Analytic gradients.
        outputs = forward()
        functional = _draw_functional(outputs, rng)
        if hasattr(module, "zero_grad"):
            module.zero_grad()
        if isinstance(outputs, tuple):
            returned = module.backward(*functional)
        else:
            returned = module.backward(functional)
        if not isinstance(returned, tuple):
            returned = (returned,)

        targets = []  # (name, array perturbed in place, analytic gradient)
        if check_inputs:
            for name, array, grad in _match_grads(inputs, returned, "input"):
                targets.append((name, array, grad))
        for name, param in named_parameters:
            targets.append((name, param.data, param.grad))

        checked = []
        for name, array, grad in targets:
            analytic = np.zeros(array.shape) if grad is None else np.asarray(grad, dtype=np.float64)
            if analytic.shape != array.shape:
                raise ValueError(f"backward gave a gradient of shape {analytic.shape} for {name} "
                                 f"of shape {array.shape}")
            checked.append((name, array, np.array(analytic, copy=True)))

        # Numerical gradients, one element at a time.
        entries = []
        for name, array, analytic in checked:
            flat = array.reshape(-1)  # a view: perturbing it perturbs what the module reads
            if not np.shares_memory(flat, array):
                raise ValueError(f"{name} is not contiguous; cannot perturb it in place")
            indices = _choose_indices(flat.size, max_checks, rng)
            numerical = np.empty(indices.size)
            for k, index in enumerate(indices):
                original = flat[index]
                flat[index] = original + eps
                outputs_plus = forward()
                _pair(outputs_plus, functional)  # checks the structure is unchanged
                outputs_plus = _copy_outputs(outputs_plus)  # the module may reuse its output buffers
                flat[index] = original - eps
                outputs_minus = forward()
                flat[index] = original
                numerical[k] = _pair_difference(outputs_plus, outputs_minus, functional) / (2 * eps)
            analytic_checked = analytic.reshape(-1)[indices]
            abs_error = np.abs(analytic_checked - numerical)
            # Elements far below the tensor's scale are compared against that scale (1e-3 of it): their
            # finite-difference rounding noise (~1e-16 |loss| / eps) is not a relative error of theirs.
            floor = max(_DENOMINATOR_FLOOR, _SCALE_FRACTION * float(np.abs(analytic).max(initial=0.0)))
            rel_error = abs_error / np.maximum(np.abs(analytic_checked) + np.abs(numerical), floor)
            entries.append(GradcheckEntry(
                name=name, shape=tuple(array.shape), checked=int(indices.size),
                max_error=float(rel_error.max(initial=0.0)), max_abs_error=float(abs_error.max(initial=0.0))))
    finally:
        backend.set_rng_state(saved_rng_state)
    return GradcheckReport(entries, eps)


class _CallableModule(type(np)):
    """``rnnlab.gradcheck(...)`` must call the function even when ``import rnnlab.gradcheck`` ran first
    (the import then binds the *module* to ``rnnlab.gradcheck``), so the module itself is callable."""

    def __call__(self, *args, **kwargs) -> GradcheckReport:
        return gradcheck(*args, **kwargs)


import sys as _sys  # noqa: E402  (only for the line below)

_sys.modules[__name__].__class__ = _CallableModule
