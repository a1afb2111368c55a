"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_non_negative, lerp_


class RMSprop(Optimizer):
    r"""PyTorch's ``torch.optim.RMSprop``.

    .. math::
        g &\leftarrow g + \lambda \theta \\
        v &\leftarrow \alpha v + (1 - \alpha) g^2 \\
        \bar g &\leftarrow \alpha \bar g + (1 - \alpha) g \qquad\text{(centered only)} \\
        d &= \sqrt{v - \bar g^2} + \epsilon \text{ (centered) or } \sqrt{v} + \epsilon \\
        b &\leftarrow \mu b + g / d, \quad \theta \leftarrow \theta - \gamma b \quad\text{(momentum } \mu > 0\text{)} \\
        \theta &\leftarrow \theta - \gamma g / d \quad\text{(otherwise)}

    State per parameter: ``step`` (int), ``square_avg``, ``momentum_buffer`` (momentum > 0),
    ``grad_avg`` (centered).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False):
        check_non_negative("learning rate", lr)
        check_non_negative("epsilon value", eps)
        check_non_negative("momentum value", momentum)
        check_non_negative("weight_decay value", weight_decay)
        check_non_negative("alpha value", alpha)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _init_state(self, param, group):
        state = {"step": 0, "square_avg": np.zeros_like(param.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(param.data)
        if group["centered"]:
            state["grad_avg"] = np.zeros_like(param.data)
        return state

    def _update(self, param, grad, state, group):
        alpha = group["alpha"]
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param.data
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * (grad * grad)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            lerp_(grad_avg, grad, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += group["eps"]
        if group["momentum"] > 0:
            buffer = state["momentum_buffer"]
            buffer *= group["momentum"]
            buffer += grad / avg
            param.data -= group["lr"] * buffer
        else:
            param.data -= group["lr"] * (grad / avg)
