"""The run's learning-rate schedule: the rates each step gets, rebuilding at a step, and the flag checks."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rnnlab.errors import RnnlabError
from rnnlab.nn.module import Parameter
from rnnlab.optim import Adam
from rnnlab.training.schedule import build_scheduler, check_horizon, check_schedule, describe, implied_schedule


def rates(schedule, steps, start_step=0, **settings):
    optimizer = Adam([Parameter(np.zeros(2))], lr=123.0)  # the schedule's lr replaces the optimizer's
    scheduler = build_scheduler(optimizer, schedule, start_step=start_step, **settings)
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    return seen


def test_constant_with_warmup_rises_then_stays():
    assert rates("constant", 6, lr=0.01, warmup=4) == pytest.approx([0.002, 0.004, 0.006, 0.008, 0.01, 0.01])
    assert rates("constant", 3, lr=0.01) == [0.01] * 3


def test_step_decays_every_n_steps_down_to_min_lr():
    seen = rates("step", 9, lr=1.0, lr_decay=0.5, lr_decay_every=2, min_lr=0.2)
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]


def test_cosine_reaches_min_lr_at_the_last_step():
    seen = rates("cosine", 11, lr=1.0, warmup=2, min_lr=0.1, total_steps=10)
    assert seen[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert seen[6] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 4 / 8)) / 2)
    assert seen[10] == pytest.approx(0.1)


@pytest.mark.parametrize("schedule, settings", [
    ("constant", dict(warmup=3)),
    ("step", dict(warmup=2, lr_decay=0.7, lr_decay_every=3, min_lr=0.001)),
    ("cosine", dict(warmup=2, min_lr=0.001, total_steps=15)),
])
def test_rebuilt_at_a_step_it_continues_with_the_same_rates(schedule, settings):
    whole = rates(schedule, 15, lr=0.02, **settings)
    for k in (1, 5, 9):
        assert rates(schedule, 15 - k, start_step=k, lr=0.02, **settings) == whole[k:], k


def test_implied_schedule():
    assert implied_schedule(None, 0.5, None) == "step" and implied_schedule(None, None, 10) == "step"
    assert implied_schedule(None, None, None) is None and implied_schedule("cosine", None, None) == "cosine"


GOOD = dict(schedule="constant", lr=0.002, warmup=0, min_lr=0.0, lr_decay=0.5, lr_decay_every=1000)


@pytest.mark.parametrize("change, message", [
    (dict(schedule="linear"), "--lr-schedule linear: must be one of constant, cosine, step"),
    (dict(warmup=-1), "--warmup -1"),
    (dict(min_lr=-0.1), "--min-lr -0.1"),
    (dict(min_lr=0.01), "below --lr"),
    (dict(min_lr=float("nan")), "--min-lr nan"),
    (dict(lr_decay=0.0), "--lr-decay 0.0: must be in (0, 1]"),
    (dict(lr_decay=1.5), "--lr-decay 1.5"),
    (dict(lr_decay_every=0), "--lr-decay-every 0"),
    (dict(given=("lr_decay",)), "--lr-decay applies to --lr-schedule step"),
    (dict(schedule="cosine", given=("lr_decay_every",)), "--lr-decay-every applies"),
    (dict(given=("min_lr",)), "--min-lr applies to --lr-schedule cosine or step"),
])
def test_bad_settings_are_one_line(change, message):
    with pytest.raises(RnnlabError) as info:
        check_schedule(**{**GOOD, **change})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_cosine_needs_a_last_step_after_the_warmup():
    with pytest.raises(RnnlabError, match="needs --steps or --epochs"):
        check_horizon("cosine", 0, None)
    with pytest.raises(RnnlabError, match="--warmup 10: must be below the run's 10 steps"):
        check_horizon("cosine", 10, 10)
    check_horizon("cosine", 9, 10)
    check_horizon("step", 0, None)


def test_good_settings_pass_and_describe_themselves():
    check_schedule(**GOOD)
    check_schedule(**{**GOOD, "schedule": "cosine", "warmup": 10, "min_lr": 1e-4, "given": ("min_lr",)})
    assert describe("cosine", 0.002, 10, 1e-4, 0.5, 1000) == "lr 0.002 cosine to 0.0001, warmup 10"
    assert describe("constant", 0.002, 0, 0, 0.5, 1000) == "lr 0.002"
