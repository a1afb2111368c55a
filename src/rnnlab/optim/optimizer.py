"""``Optimizer``: the base every optimizer shares, with PyTorch's interface.

An optimizer holds ``param_groups`` (a list of dicts, each with ``'params'`` and its own
hyper-parameters, so a learning-rate scheduler changes ``group['lr']``) and ``state`` (a dict from
each :class:`~rnnlab.nn.module.Parameter` to its running buffers: moments, step counts). A subclass
only writes ``_update(param, grad, state, group)``: the update rule for one parameter, in place,
in the parameter's dtype.

``state_dict()`` is PyTorch's layout: parameters are identified by their index across all groups
(in the order they were given), so a state saved from one model loads into a freshly built copy::

    {'state': {0: {'step': 3, 'exp_avg': array, ...}, ...},
     'param_groups': [{'lr': 0.001, ..., 'params': [0, 1, 2]}]}

:func:`flatten_state` turns that into flat named arrays plus JSON-able metadata (for one
safetensors file), and :func:`unflatten_state` is its inverse.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Iterable

import numpy as np

from ..nn.module import Parameter, _to_numpy


class Optimizer:
    """Base class: param groups, per-parameter state, ``zero_grad``, ``step``, ``state_dict``.

    Args:
        params: an iterable of :class:`Parameter`, or of dicts ``{'params': [...], 'lr': ...}``
            whose missing hyper-parameters take the optimizer's defaults.
        defaults: the optimizer's hyper-parameters (``lr``, ...).
    """

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.state: dict[Parameter, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Parameter):
            raise TypeError("params argument given to the optimizer should be an iterable of Parameters "
                            "or dicts, but got Parameter")
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyper-parameters (missing ones take the defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Parameter) else list(params)
        for param in group["params"]:
            if not isinstance(param, Parameter):
                raise TypeError(f"optimizer can only optimize Parameters, but one of the params is "
                                f"{type(param).__name__}")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        if len({id(p) for p in group["params"]}) != len(group["params"]):
            raise ValueError("a parameter group contains the same parameter more than once")
        self.param_groups.append(group)

    # --- the training-loop interface ----------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter this optimizer updates (to ``None``, or to zeros)."""
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none or param.grad is None:
                    param.grad = None
                else:
                    param.grad[...] = 0

    def step(self) -> None:
        """Update every parameter that has a gradient (parameters whose ``grad`` is ``None`` are skipped)."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state.get(param)
                if state is None:
                    state = self.state[param] = self._init_state(param, group)
                self._update(param, param.grad, state, group)

    def _init_state(self, param: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        """The state a parameter starts with, created at its first update."""
        return {}

    def _update(self, param: Parameter, grad, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    # --- saving and resuming ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout: ``{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}``.

        Arrays are copies; hyper-parameters are plain Python values.
        """
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            indices = []
            for param in group["params"]:
                index_of.setdefault(id(param), len(index_of))
                indices.append(index_of[id(param)])
            packed["params"] = indices
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for param in group["params"]:
                if self.state.get(param):  # plain SGD keeps no state, so none is saved (as PyTorch)
                    state[index_of[id(param)]] = {
                        key: (np.array(value, copy=True) if isinstance(value, np.ndarray) else value)
                        for key, value in self.state[param].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (ours, or a ``torch.optim`` one with tensors).

        The saved groups must have the same sizes as this optimizer's; buffers are cast to each
        parameter's dtype, step counts become ints.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(saved["params"]) != len(group["params"])
               for saved, group in zip(saved_groups, self.param_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size "
                             "of optimizer's group")
        param_of = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for index, param in zip(saved["params"], group["params"]):
                param_of[int(index)] = param
        new_state: dict[Parameter, dict[str, Any]] = {}
        for index, buffers in state_dict["state"].items():
            param = param_of.get(int(index))
            if param is None:
                continue
            restored = {}
            for key, value in buffers.items():
                if key == "step":
                    restored[key] = int(round(float(_to_numpy(value))))
                elif value is None:
                    restored[key] = None
                else:
                    array = _to_numpy(value)
                    if array.shape != param.data.shape:
                        raise ValueError(f"state {key!r} of parameter {index} has shape {array.shape}, "
                                         f"expected {param.data.shape}")
                    restored[key] = np.array(array, dtype=param.data.dtype, copy=True)
            new_state[param] = restored
        self.state = new_state
        for saved, group in zip(saved_groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    group[key] = tuple(value) if isinstance(group.get(key), tuple) else copy.deepcopy(value)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def flatten_state(state_dict: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into flat named arrays and JSON-able metadata.

    Arrays are named ``state.<index>.<buffer>`` (``state.0.exp_avg``); everything else (step
    counts, ``param_groups``) goes into the metadata, which ``json.dumps`` accepts.

    >>> import numpy as np
    >>> arrays, meta = flatten_state({'state': {0: {'step': 2, 'exp_avg': np.zeros(3)}},
    ...                               'param_groups': [{'lr': 0.1, 'betas': (0.9, 0.999), 'params': [0]}]})
    >>> sorted(arrays), meta['scalars']
    (['state.0.exp_avg'], {'0': {'step': 2}})
    >>> unflatten_state(arrays, meta)['state'][0]['step']
    2
    """
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, buffers in state_dict["state"].items():
        for key, value in buffers.items():
            if key == "step" or value is None or isinstance(value, (bool, int, float)):
                scalar = value if value is None else _to_numpy(value).item()
                scalars.setdefault(str(int(index)), {})[key] = scalar
            else:
                arrays[f"state.{int(index)}.{key}"] = np.asarray(_to_numpy(value), order="C")
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()}
              for group in state_dict["param_groups"]]
    meta = {"param_groups": groups, "scalars": scalars}
    json.dumps(meta)  # fail here, not at save time, if a hyper-parameter is not JSON-able
    return arrays, meta


def unflatten_state(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten_state`: a ``state_dict`` for :meth:`Optimizer.load_state_dict`."""
    state: dict[int, dict[str, Any]] = {}
    for name, array in arrays.items():
        prefix, index, key = name.split(".", 2)
        if prefix != "state":
            raise ValueError(f"unexpected optimizer array name {name!r}")
        state.setdefault(int(index), {})[key] = array
    for index, scalars in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(scalars)
    groups = [dict(group) for group in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def check_non_negative(name: str, value: float) -> None:
    """PyTorch's hyper-parameter checks: ``Invalid learning rate: -1``."""
    if not 0.0 <= value:
        raise ValueError(f"Invalid {name}: {value}")


def lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """``start += weight * (end - start)`` in place, in PyTorch's ``lerp_`` form (exact for small weights)."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        # PyTorch's other branch keeps the result exact when the weight is near 1.
        np.subtract(end, (end - start) * (1 - weight), out=start)
    return start
