"""Adagrad: per-element learning rates from the running sum of squared gradients."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_non_negative


class Adagrad(Optimizer):
    r"""PyTorch's ``torch.optim.Adagrad``.

    At step :math:`t` (from 1), with :math:`\eta` the decay of the learning rate :math:`\gamma`:

    .. math::
        g &\leftarrow g + \lambda \theta \\
        \tilde\gamma &= \gamma / (1 + (t - 1)\eta) \\
        s &\leftarrow s + g^2 \qquad (s_0 = \text{initial\_accumulator\_value}) \\
        \theta &\leftarrow \theta - \tilde\gamma \, g / (\sqrt{s} + \epsilon)

    State per parameter: ``step`` (int), ``sum``.
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10):
        check_non_negative("learning rate", lr)
        check_non_negative("lr_decay value", lr_decay)
        check_non_negative("weight_decay value", weight_decay)
        check_non_negative("initial_accumulator_value value", initial_accumulator_value)
        check_non_negative("epsilon value", eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _init_state(self, param, group):
        return {"step": 0,
                "sum": np.full_like(param.data, group["initial_accumulator_value"])}

    def _update(self, param, grad, state, group):
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param.data
        decayed_lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        squared_sum = state["sum"]
        squared_sum += grad * grad
        std = np.sqrt(squared_sum)
        std += group["eps"]
        param.data -= decayed_lr * (grad / std)
