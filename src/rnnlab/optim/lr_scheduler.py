"""Learning-rate schedules with PyTorch's protocol.

Build the scheduler after the optimizer; it records each group's ``initial_lr`` and sets the
learning rate for the first step. Call ``scheduler.step()`` after ``optimizer.step()``, once per
epoch (``StepLR``, ``ExponentialLR``) or once per optimizer step (``WarmupCosineLR``, ``WarmupStepLR``)::

    scheduler = StepLR(optimizer, step_size=10, gamma=0.5)
    for epoch in range(epochs):
        train_one_epoch(...)          # optimizer.step() inside
        scheduler.step()

``last_epoch`` counts the ``step()`` calls (0 right after construction). ``state_dict()`` is
JSON-able (it holds no optimizer and no function), so it goes into a checkpoint's metadata. To
resume, as in PyTorch: build the optimizer and the scheduler, then ``optimizer.load_state_dict``,
then ``scheduler.load_state_dict``. The closed-form schedules (``WarmupCosineLR``, ``WarmupStepLR``: the
rate is a function of the step count alone) can also be rebuilt at step ``k`` directly, as PyTorch allows:
set each group's ``initial_lr`` and pass ``last_epoch=k - 1``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from .optimizer import Optimizer


class LRScheduler:
    """Base class: sets ``group['lr']`` of every param group from :meth:`get_lr` at each :meth:`step`."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                                   "an optimizer")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        """The learning rate of every group for the current ``last_epoch``."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch (or one step) and set the new learning rates."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last :meth:`step`."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (and functions): JSON-able."""
        return {key: (list(value) if isinstance(value, list) else value)
                for key, value in self.__dict__.items()
                if key != "optimizer" and not callable(value) and key != "lr_lambdas"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update({key: value for key, value in state_dict.items() if key != "optimizer"})


class StepLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` every ``step_size`` epochs:
    :math:`\gamma_e = \gamma_0 \cdot \text{gamma}^{\lfloor e / \text{step\_size} \rfloor}`.

    >>> import numpy as np
    >>> from rnnlab.nn.module import Parameter
    >>> from rnnlab.optim import SGD
    >>> scheduler = StepLR(SGD([Parameter(np.zeros(1))], lr=1.0), step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     lrs.append(round(scheduler.get_last_lr()[0], 6)); scheduler.step()
    >>> lrs
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"step_size must be a positive integer, got {step_size}")
        self.step_size = int(step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        # PyTorch's chainable form: multiply the current lr, so other changes to it are kept.
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]


class ExponentialLR(StepLR):
    r"""Multiply the learning rate by ``gamma`` every epoch: :math:`\gamma_e = \gamma_0 \cdot \text{gamma}^e`."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        super().__init__(optimizer, step_size=1, gamma=gamma, last_epoch=last_epoch)


class LambdaLR(LRScheduler):
    r"""``lr = initial_lr * lr_lambda(epoch)``; ``lr_lambda`` is a function or one per param group.

    The functions are not saved by :meth:`state_dict`; build the scheduler with the same ones.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list, last_epoch: int = -1):
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(f"Expected {len(optimizer.param_groups)} lr_lambdas, but got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base_lr * lmbda(self.last_epoch) for lmbda, base_lr in zip(self.lr_lambdas, self.base_lrs)]


class WarmupCosineLR(LRScheduler):
    r"""Linear warmup from 0 to the base learning rate, then a half cosine down to ``min_lr``.

    Stepped once per optimizer step. With :math:`t` = ``last_epoch`` (the number of ``step()``
    calls so far), :math:`W` = ``warmup_steps``, :math:`T` = ``total_steps``, :math:`\gamma_0` the
    base rate and :math:`\gamma_{min}` = ``min_lr``:

    .. math::
        \gamma_t = \begin{cases}
            \gamma_0 \, (t + 1) / (W + 1) & t < W \\
            \gamma_{min} + \tfrac12 (\gamma_0 - \gamma_{min})
                \left(1 + \cos\left(\pi \frac{t - W}{T - W}\right)\right) & W \le t \le T \\
            \gamma_{min} & t > T
        \end{cases}

    So the warmup's steps run at :math:`\gamma_0/(W+1), 2\gamma_0/(W+1), \dots` (nanoGPT's
    ``(it + 1) / (warmup_iters + 1)``: the first step already learns), the peak :math:`\gamma_0` is
    reached at :math:`t = W`, and :math:`\gamma_T = \gamma_{min}`.

    >>> import numpy as np
    >>> from rnnlab.nn.module import Parameter
    >>> from rnnlab.optim import SGD
    >>> scheduler = WarmupCosineLR(SGD([Parameter(np.zeros(1))], lr=1.0), warmup_steps=2, total_steps=4)
    >>> lrs = []
    >>> for step in range(6):
    ...     lrs.append(round(scheduler.get_last_lr()[0], 6)); scheduler.step()
    >>> lrs
    [0.333333, 0.666667, 1.0, 0.5, 0.0, 0.0]
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int, min_lr: float = 0.0,
                 last_epoch: int = -1):
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if total_steps < warmup_steps or total_steps < 1:
            raise ValueError(f"total_steps must be >= max(1, warmup_steps), got total_steps={total_steps}, "
                             f"warmup_steps={warmup_steps}")
        if min_lr < 0:
            raise ValueError(f"Invalid min_lr: {min_lr}")
        self.warmup_steps, self.total_steps, self.min_lr = int(warmup_steps), int(total_steps), float(min_lr)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int, base_lr: float) -> float:
        """The formula above, for one base learning rate."""
        if step < self.warmup_steps:
            return base_lr * (step + 1) / (self.warmup_steps + 1)
        if step >= self.total_steps:
            return self.min_lr if self.total_steps > self.warmup_steps else base_lr
        progress = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return self.min_lr + 0.5 * (base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))

    def get_lr(self):
        return [self.lr_at(self.last_epoch, base_lr) for base_lr in self.base_lrs]


class WarmupStepLR(LRScheduler):
    r"""Linear warmup from 0 to the base learning rate, then a step decay: times ``gamma`` every
    ``step_size`` steps, never below ``min_lr`` (char-rnn's ``-learning_rate_decay``, torch-rnn's
    ``-lr_decay_every``). ``gamma=1`` keeps the rate constant after the warmup.

    Stepped once per optimizer step; a closed form of :math:`t` = ``last_epoch`` alone (unlike the
    chainable :class:`StepLR`), so a run rebuilt at any step gets the same rate. With :math:`W` =
    ``warmup_steps`` and :math:`S` = ``step_size``:

    .. math::
        \gamma_t = \begin{cases}
            \gamma_0 \, (t + 1) / (W + 1) & t < W \\
            \max\left(\gamma_{min},\ \gamma_0 \cdot \text{gamma}^{\lfloor (t - W) / S \rfloor}\right) & t \ge W
        \end{cases}

    >>> import numpy as np
    >>> from rnnlab.nn.module import Parameter
    >>> from rnnlab.optim import SGD
    >>> scheduler = WarmupStepLR(SGD([Parameter(np.zeros(1))], lr=1.0), warmup_steps=2, step_size=2, gamma=0.5,
    ...                          min_lr=0.3)
    >>> lrs = []
    >>> for step in range(8):
    ...     lrs.append(round(scheduler.get_last_lr()[0], 6)); scheduler.step()
    >>> lrs
    [0.333333, 0.666667, 1.0, 1.0, 0.5, 0.5, 0.3, 0.3]
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int = 0, step_size: int = 1, gamma: float = 1.0,
                 min_lr: float = 0.0, last_epoch: int = -1):
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"step_size must be a positive integer, got {step_size}")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        if min_lr < 0:
            raise ValueError(f"Invalid min_lr: {min_lr}")
        self.warmup_steps, self.step_size = int(warmup_steps), int(step_size)
        self.gamma, self.min_lr = float(gamma), float(min_lr)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int, base_lr: float) -> float:
        """The formula above, for one base learning rate."""
        if step < self.warmup_steps:
            return base_lr * (step + 1) / (self.warmup_steps + 1)
        decays = (step - self.warmup_steps) // self.step_size
        return max(self.min_lr, base_lr * self.gamma ** decays)

    def get_lr(self):
        return [self.lr_at(self.last_epoch, base_lr) for base_lr in self.base_lrs]
