"""Adam and AdamW: bias-corrected running moments of the gradient (Kingma & Ba; Loshchilov & Hutter)."""
from __future__ import annotations

import numpy as np

from .. import fast
from .optimizer import Optimizer, check_non_negative, lerp_


class Adam(Optimizer):
    r"""PyTorch's ``torch.optim.Adam``.

    At step :math:`t` (from 1), with :math:`\beta_1, \beta_2` = ``betas``:

    .. math::
        g &\leftarrow g + \lambda \theta \qquad\text{(AdamW instead: } \theta \leftarrow \theta (1 - \gamma\lambda)\text{)} \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        \hat v &\leftarrow \max(\hat v, v) \text{ (amsgrad) or } v \\
        \theta &\leftarrow \theta - \frac{\gamma}{1 - \beta_1^t} \,
            \frac{m}{\sqrt{\hat v} / \sqrt{1 - \beta_2^t} + \epsilon}

    State per parameter: ``step`` (int), ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).

    >>> import numpy as np
    >>> from rnnlab.nn.module import Parameter
    >>> w = Parameter(np.zeros(2))
    >>> opt = Adam([w], lr=0.1)
    >>> w.grad = np.array([3.0, -0.5])
    >>> opt.step()   # the first Adam step moves each element by about lr, against its gradient
    >>> np.round(w.data, 6)
    array([-0.1,  0.1])
    """

    _decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False):
        check_non_negative("learning rate", lr)
        check_non_negative("epsilon value", eps)
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        check_non_negative("weight_decay value", weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _init_state(self, param, group):
        state = {"step": 0, "exp_avg": np.zeros_like(param.data), "exp_avg_sq": np.zeros_like(param.data)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(param.data)
        return state

    def _update(self, param, grad, state, group):
        lr, weight_decay = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        state["step"] += 1
        step = state["step"]
        if weight_decay != 0:
            if self._decoupled_weight_decay:
                param.data *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param.data
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        step_size = lr / (1 - beta1 ** step)
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        max_exp_avg_sq = state["max_exp_avg_sq"] if group["amsgrad"] else None
        compiled = fast.load("adam") if 1 - beta1 < 0.5 else None  # None when the switch is off
        if compiled is not None and compiled.fusable(param.data, grad, exp_avg, exp_avg_sq, max_exp_avg_sq):
            # the lines below in one pass (same operations, same rounding): rnnlab/fast/adam.py
            compiled.adam_update(param.data, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, group["amsgrad"], beta1,
                                 beta2, step_size, bias_correction2_sqrt, group["eps"])
            return
        lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            second_moment = state["max_exp_avg_sq"]
        else:
            second_moment = exp_avg_sq
        denom = np.sqrt(second_moment) / bias_correction2_sqrt
        denom += group["eps"]
        param.data -= step_size * (exp_avg / denom)


class AdamW(Adam):
    r"""PyTorch's ``torch.optim.AdamW``: Adam with decoupled weight decay.

    Each step first shrinks the weights, :math:`\theta \leftarrow \theta (1 - \gamma\lambda)`, then
    applies the Adam update to the gradient without the :math:`\lambda\theta` term.
    """

    _decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
