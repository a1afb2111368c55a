"""Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_non_negative


class SGD(Optimizer):
    r"""PyTorch's ``torch.optim.SGD``.

    For each parameter :math:`\theta` with gradient :math:`g` (:math:`\lambda` weight decay,
    :math:`\mu` momentum, :math:`\tau` dampening, :math:`\gamma` learning rate):

    .. math::
        g &\leftarrow g + \lambda \theta \\
        b &\leftarrow g \text{ at the first step, else } \mu b + (1 - \tau) g \\
        g &\leftarrow g + \mu b \text{ (Nesterov) or } b \\
        \theta &\leftarrow \theta - \gamma g

    State per parameter: ``momentum_buffer`` (only when ``momentum != 0``).

    >>> import numpy as np
    >>> from rnnlab.nn.module import Parameter
    >>> w = Parameter(np.array([1.0, 2.0]))
    >>> opt = SGD([w], lr=0.1)
    >>> w.grad = np.array([1.0, -1.0])
    >>> opt.step()
    >>> w.data
    array([0.9, 2.1])
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False):
        check_non_negative("learning rate", lr)
        check_non_negative("momentum value", momentum)
        check_non_negative("weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, param, grad, state, group):
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        if weight_decay != 0:
            grad = grad + weight_decay * param.data
        if momentum != 0:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = np.array(grad, dtype=param.data.dtype, copy=True)
            else:
                buffer *= momentum
                buffer += (1 - group["dampening"]) * grad
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        param.data -= lr * grad
