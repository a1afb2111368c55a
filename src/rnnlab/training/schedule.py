"""The learning-rate schedule of a character-model run (``--lr-schedule``, ``--warmup``, ``--min-lr``,
``--lr-decay``, ``--lr-decay-every``), built on :mod:`rnnlab.optim.lr_scheduler`.

With ``t`` the number of optimizer steps taken so far (the step being taken is ``t + 1``), ``lr0`` = ``--lr``,
``W`` = ``--warmup`` and ``T`` the run's last step, the rate rises linearly during the warmup
(``lr0 * (t + 1) / (W + 1)`` for ``t < W``: the first step already learns), then::

    constant   lr0                                                       WarmupStepLR(gamma=1)
    step       max(min_lr, lr0 * decay ** ((t - W) // every))             WarmupStepLR
               decay = --lr-decay, every = --lr-decay-every
    cosine     min_lr + (lr0 - min_lr) * (1 + cos(pi * (t - W) / (T - W))) / 2    WarmupCosineLR
               (min_lr at the last step, so it needs --steps or --epochs)

Every rate is a function of ``t`` and the settings alone, so a resumed run rebuilds its scheduler at
the saved step (:func:`build_scheduler` with ``start_step``) and continues with exactly the rates the
uninterrupted run would have used; nothing but the step needs saving.
"""
from __future__ import annotations

import math

from ..errors import RnnlabError

SCHEDULES = ("constant", "cosine", "step")
DEFAULT_LR_DECAY = 0.5         # --lr-decay: the step schedule halves the rate ...
DEFAULT_LR_DECAY_EVERY = 1000  # --lr-decay-every: ... every this many steps


def implied_schedule(schedule: str | None, lr_decay, lr_decay_every) -> str | None:
    """``--lr-decay``/``--lr-decay-every`` without ``--lr-schedule`` mean the step schedule (as char-rnn's
    ``-learning_rate_decay`` needs no other flag); otherwise the schedule as given (``None``: not given)."""
    if schedule is None and (lr_decay is not None or lr_decay_every is not None):
        return "step"
    return schedule


def check_schedule(schedule: str, lr: float, warmup: int, min_lr: float, lr_decay: float, lr_decay_every: int,
                   given=()) -> None:
    """One :class:`RnnlabError` line for settings that make no schedule.

    ``given`` names the flags the user typed (``"min_lr"``, ``"lr_decay"``, ``"lr_decay_every"``), so one
    that the chosen schedule would ignore is refused rather than silently dropped.
    """
    if schedule not in SCHEDULES:
        raise RnnlabError(f"--lr-schedule {schedule}: must be one of {', '.join(SCHEDULES)}")
    if not (isinstance(warmup, int) and warmup >= 0):
        raise RnnlabError(f"--warmup {warmup}: must be a number of steps >= 0")
    if not (math.isfinite(min_lr) and 0 <= min_lr < lr):
        raise RnnlabError(f"--min-lr {min_lr}: must be >= 0 and below --lr ({lr:g})")
    if not (math.isfinite(lr_decay) and 0 < lr_decay <= 1):
        raise RnnlabError(f"--lr-decay {lr_decay}: must be in (0, 1] (the factor the rate is multiplied by)")
    if not (isinstance(lr_decay_every, int) and lr_decay_every >= 1):
        raise RnnlabError(f"--lr-decay-every {lr_decay_every}: must be a positive number of steps")
    for name in ("lr_decay", "lr_decay_every"):
        if name in given and schedule != "step":
            raise RnnlabError(f"--{name.replace('_', '-')} applies to --lr-schedule step, not {schedule}; "
                              f"drop it or use --lr-schedule step")
    if "min_lr" in given and schedule == "constant":
        raise RnnlabError("--min-lr applies to --lr-schedule cosine or step, not constant; drop it or choose one")


def check_horizon(schedule: str, warmup: int, total_steps: int | None) -> None:
    """The cosine decays to ``--min-lr`` at the run's last step: one line when there is none (only a time
    budget ends the run) or the warmup does not end before it."""
    if schedule != "cosine":
        return
    if total_steps is None:
        raise RnnlabError("--lr-schedule cosine needs --steps or --epochs: it decays to --min-lr at the last "
                          "step, which a --time-budget alone does not fix")
    if warmup >= total_steps:
        raise RnnlabError(f"--warmup {warmup}: must be below the run's {total_steps} steps for the cosine "
                          f"to decay")


def build_scheduler(optimizer, schedule: str, lr: float, warmup: int = 0, min_lr: float = 0.0,
                    lr_decay: float = DEFAULT_LR_DECAY, lr_decay_every: int = DEFAULT_LR_DECAY_EVERY,
                    total_steps: int | None = None, start_step: int = 0):
    """The scheduler that sets every group's rate for step ``start_step + 1`` now, and for each next step
    at each ``scheduler.step()`` (call it once after every optimizer step, skipped steps included).

    ``lr`` replaces the groups' base rate (a new ``--lr`` takes effect on resume); ``start_step`` is the
    number of steps already taken (0 for a fresh run, the saved step on resume).
    """
    from ..optim import WarmupCosineLR, WarmupStepLR

    for group in optimizer.param_groups:
        group["initial_lr"] = lr
    last = start_step - 1  # PyTorch's protocol: built with last_epoch = k - 1, the first step() makes it k
    if schedule == "cosine":
        return WarmupCosineLR(optimizer, warmup, total_steps, min_lr=min_lr, last_epoch=last)
    if schedule == "step":
        return WarmupStepLR(optimizer, warmup, lr_decay_every, lr_decay, min_lr=min_lr, last_epoch=last)
    return WarmupStepLR(optimizer, warmup, 1, 1.0, last_epoch=last)


def describe(schedule: str, lr: float, warmup: int, min_lr: float, lr_decay: float, lr_decay_every: int) -> str:
    """A few words for the run's first line: ``lr 0.002 cosine to 0.0001, warmup 100``.

    >>> describe("step", 0.002, 0, 0.0, 0.5, 1000)
    'lr 0.002, x0.5 every 1000 steps'
    """
    text = f"lr {lr:g}"
    if schedule == "cosine":
        text += f" cosine to {min_lr:g}"
    elif schedule == "step":
        text += f", x{lr_decay:g} every {lr_decay_every} steps" + (f" down to {min_lr:g}" if min_lr else "")
    if warmup:
        text += f", warmup {warmup}"
    return text
