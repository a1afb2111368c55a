"""Learning-rate schedules against torch.optim.lr_scheduler, and WarmupCosineLR against its formula."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rnnlab.nn.module import Parameter
from rnnlab.optim import SGD, Adam, ExponentialLR, LambdaLR, StepLR, WarmupCosineLR, WarmupStepLR


def two_group_optimizer(cls=SGD):
    return cls([{"params": [Parameter(np.zeros(2))]}, {"params": [Parameter(np.zeros(1))], "lr": 0.3}], lr=0.1)


def torch_two_group_optimizer(torch):
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(2))]},
                            {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.3}], lr=0.1)


def lambda_rule(epoch):
    return 1.0 / (1 + epoch) ** 0.5


@pytest.mark.parametrize("name, kwargs", [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("StepLR", dict(step_size=1)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("LambdaLR", dict(lr_lambda=lambda_rule)),
])
def test_schedule_matches_torch(torch, name, kwargs):
    import rnnlab.optim as optim

    ours = getattr(optim, name)(two_group_optimizer(), **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(torch_two_group_optimizer(torch), **kwargs)
    for epoch in range(12):
        assert ours.get_last_lr() == theirs.get_last_lr(), f"epoch {epoch}"
        assert [g["lr"] for g in ours.optimizer.param_groups] == [g["lr"] for g in theirs.optimizer.param_groups]
        ours.optimizer.step()
        theirs.optimizer.step()
        ours.step()
        theirs.step()
    assert ours.last_epoch == theirs.last_epoch == 12


def test_warmup_cosine_follows_its_formula():
    base_lr, min_lr, warmup, total = 0.02, 0.001, 10, 50
    scheduler = WarmupCosineLR(Adam([Parameter(np.zeros(1))], lr=base_lr), warmup, total, min_lr=min_lr)
    seen = []
    for t in range(total + 5):
        seen.append(scheduler.get_last_lr()[0])
        scheduler.step()
    for t, lr in enumerate(seen):
        if t < warmup:
            expected = base_lr * (t + 1) / (warmup + 1)
        elif t <= total:
            expected = min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * (t - warmup) / (total - warmup)))
        else:
            expected = min_lr
        assert lr == pytest.approx(expected, rel=1e-14, abs=1e-18), t
    assert seen[0] == pytest.approx(base_lr / (warmup + 1)) and seen[warmup] == pytest.approx(base_lr) and seen[total] == pytest.approx(min_lr)
    assert all(a <= b for a, b in zip(seen[:warmup], seen[1:warmup + 1]))   # rising
    assert all(a >= b for a, b in zip(seen[warmup:total], seen[warmup + 1:total + 1]))   # falling


def test_warmup_cosine_without_warmup_starts_at_base_lr():
    scheduler = WarmupCosineLR(SGD([Parameter(np.zeros(1))], lr=1.0), warmup_steps=0, total_steps=2)
    assert scheduler.get_last_lr() == [1.0]


@pytest.mark.parametrize("make", [
    lambda opt: StepLR(opt, step_size=2, gamma=0.5),
    lambda opt: ExponentialLR(opt, gamma=0.7),
    lambda opt: LambdaLR(opt, lr_lambda=lambda_rule),
    lambda opt: WarmupCosineLR(opt, warmup_steps=3, total_steps=9, min_lr=0.01),
    lambda opt: WarmupStepLR(opt, warmup_steps=2, step_size=3, gamma=0.5, min_lr=0.02),
])
def test_state_dict_resume_continues_the_same_schedule(make):
    reference = make(two_group_optimizer())
    resumed_from = make(two_group_optimizer())
    for _ in range(4):
        reference.step()
        resumed_from.step()
    state = json.loads(json.dumps(resumed_from.state_dict()))   # must be JSON-able (checkpoint metadata)
    # PyTorch's resume order: build both, then load the optimizer's state, then the scheduler's.
    optimizer = two_group_optimizer()
    resumed = make(optimizer)
    optimizer.load_state_dict(resumed_from.optimizer.state_dict())
    resumed.load_state_dict(state)
    assert resumed.get_last_lr() == resumed_from.get_last_lr()
    for _ in range(6):
        reference.step()
        resumed.step()
        assert resumed.get_last_lr() == reference.get_last_lr()


def test_warmup_step_follows_its_formula():
    base_lr, warmup, size, gamma, min_lr = 0.02, 4, 5, 0.7, 0.005
    scheduler = WarmupStepLR(Adam([Parameter(np.zeros(1))], lr=base_lr), warmup, size, gamma, min_lr)
    for t in range(40):
        expected = base_lr * (t + 1) / (warmup + 1) if t < warmup else max(min_lr, base_lr * gamma ** ((t - warmup) // size))
        assert scheduler.get_last_lr()[0] == pytest.approx(expected, rel=1e-14, abs=1e-18), t
        scheduler.step()
    assert scheduler.get_last_lr() == [min_lr]


def test_warmup_step_without_warmup_is_torchs_step_lr(torch):
    ours = WarmupStepLR(two_group_optimizer(), step_size=3, gamma=0.5)
    theirs = torch.optim.lr_scheduler.StepLR(torch_two_group_optimizer(torch), step_size=3, gamma=0.5)
    for epoch in range(12):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-15), epoch
        ours.step()
        theirs.optimizer.step()
        theirs.step()


@pytest.mark.parametrize("make", [
    lambda opt, last: WarmupCosineLR(opt, warmup_steps=3, total_steps=20, min_lr=0.01, last_epoch=last),
    lambda opt, last: WarmupStepLR(opt, warmup_steps=3, step_size=4, gamma=0.5, last_epoch=last),
])
def test_closed_form_schedules_rebuilt_at_a_step_give_the_same_rates(make):
    """How a training run resumes: set initial_lr, build with last_epoch = k - 1; the rates go on unchanged."""
    reference = make(two_group_optimizer(), -1)
    for _ in range(7):
        reference.step()
    optimizer = two_group_optimizer()
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    rebuilt = make(optimizer, 6)
    for _ in range(10):
        assert rebuilt.get_last_lr() == reference.get_last_lr() and rebuilt.last_epoch == reference.last_epoch
        rebuilt.step()
        reference.step()


def test_invalid_schedule_arguments():
    optimizer = two_group_optimizer()
    with pytest.raises(ValueError, match="step_size"):
        StepLR(optimizer, step_size=0)
    with pytest.raises(ValueError, match="total_steps"):
        WarmupCosineLR(optimizer, warmup_steps=10, total_steps=5)
    with pytest.raises(ValueError, match="step_size"):
        WarmupStepLR(optimizer, step_size=0)
    with pytest.raises(ValueError, match="gamma"):
        WarmupStepLR(optimizer, step_size=2, gamma=0)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        LambdaLR(optimizer, lr_lambda=[lambda_rule])
