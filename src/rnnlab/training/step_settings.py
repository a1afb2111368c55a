"""What the settings of the step-scheduled trainers (:class:`~rnnlab.training.seq2seq.Seq2SeqConfig`,
:class:`~rnnlab.training.tagging.TagConfig`) share: the checks of their sizes, limits and learning-rate
schedule, and the default time budget.

Each config keeps its own fields (with their defaults and comments) and its own ``validate``, which
checks its own settings and calls :meth:`StepSettings.check_sizes_limits_and_rates` in the middle, so
the first nonsensical flag is named in the same order as the flags are listed.
"""
from __future__ import annotations

import math

from ..errors import require
from .config import DEFAULT_TIME_BUDGET, Settings


class StepSettings(Settings):
    """A dataclass mixin for settings with ``hidden_size``, ``num_layers``, ``batch_size``,
    ``max_bad_steps``, ``embedding_size``, ``steps``, ``epochs``, ``time_budget``, ``seed``, ``dropout``,
    ``lr``, ``lr_decay``, ``lr_decay_every``, ``min_lr`` and ``grad_clip``."""

    def check_sizes_limits_and_rates(self, positive: tuple) -> None:
        """RnnlabError naming the first nonsensical setting among ``positive`` (positive integers),
        the optional sizes, the limits, the seed, dropout and the learning-rate schedule."""
        for flag in positive:
            value = getattr(self, flag)
            require(isinstance(value, int) and value >= 1, "--" + flag.replace("_", "-"), value, "a positive integer")
        for flag in ("embedding_size", "steps"):
            value = getattr(self, flag)
            require(value is None or (isinstance(value, int) and value >= 1), "--" + flag.replace("_", "-"), value,
                    "a positive integer")
        require(self.epochs is None or (math.isfinite(self.epochs) and self.epochs > 0), "--epochs", self.epochs,
                "> 0 and finite")
        require(isinstance(self.seed, int) and 0 <= self.seed < 2 ** 63, "--seed", self.seed,
                "an integer in [0, 2**63)")
        require(self.time_budget is None or self.time_budget > 0, "--time-budget", self.time_budget, "> 0 seconds")
        require(0.0 <= self.dropout < 1.0, "--dropout", self.dropout, "in [0, 1)")
        require(math.isfinite(self.lr) and self.lr > 0, "--lr", self.lr, "> 0")
        require(0.0 < self.lr_decay <= 1.0, "--lr-decay", self.lr_decay, "in (0, 1]")
        require(isinstance(self.lr_decay_every, int) and self.lr_decay_every >= 1, "--lr-decay-every",
                self.lr_decay_every, "a positive number of steps")
        require(math.isfinite(self.min_lr) and self.min_lr >= 0, "--min-lr", self.min_lr, ">= 0")
        require(self.grad_clip >= 0, "--grad-clip", self.grad_clip, ">= 0 (0 turns clipping off)")

    def limits(self) -> tuple[int | None, float | None, float | None]:
        """``(steps, epochs, time_budget)``, the time budget defaulting when no limit is given."""
        if self.steps is None and self.epochs is None and self.time_budget is None:
            return None, None, DEFAULT_TIME_BUDGET
        return self.steps, self.epochs, self.time_budget
