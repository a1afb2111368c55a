"""Every optimizer against torch.optim: same start, same gradients, several steps, same numbers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rnnlab.nn.module import Parameter
from rnnlab.optim import SGD, Adagrad, Adam, AdamW, RMSprop, flatten_state, unflatten_state

SHAPES = [(3, 4), (5,), (2, 1, 3)]
STEPS = 6

CASES = [
    (SGD, dict(lr=0.1)),
    (SGD, dict(lr=0.1, momentum=0.9)),
    (SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.02)),
    (Adagrad, dict()),
    (Adagrad, dict(lr=0.1, lr_decay=0.1, weight_decay=0.05, initial_accumulator_value=0.2, eps=1e-6)),
    (RMSprop, dict()),
    (RMSprop, dict(lr=0.01, momentum=0.9)),
    (RMSprop, dict(lr=0.01, centered=True)),
    (RMSprop, dict(lr=0.003, alpha=0.4, centered=True, momentum=0.5, weight_decay=0.1, eps=1e-6)),
    (Adam, dict(lr=0.01)),
    (Adam, dict(lr=0.01, amsgrad=True)),
    (Adam, dict(lr=0.02, betas=(0.3, 0.9), eps=1e-6, weight_decay=0.1)),
    (AdamW, dict(lr=0.01)),
    (AdamW, dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.3, amsgrad=True)),
]


def case_id(case):
    cls, kwargs = case
    return cls.__name__ + "(" + ",".join(f"{k}={v}" for k, v in kwargs.items()) + ")"


def make_data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    # Varied magnitudes; parameter 1 gets no gradient at step 2 (must be skipped, as in torch).
    grads = [[(rng.standard_normal(shape) * 10.0 ** rng.integers(-2, 2)).astype(dtype) for shape in SHAPES]
             for _ in range(STEPS)]
    grads[2][1] = None
    return initial, grads


def run_rnnlab(cls, kwargs, initial, grads):
    params = [Parameter(value.copy()) for value in initial]
    optimizer = cls(params, **kwargs)
    history = []
    for step_grads in grads:
        for param, grad in zip(params, step_grads):
            param.grad = None if grad is None else grad.copy()
        optimizer.step()
        history.append([p.data.copy() for p in params])
    return optimizer, history


def run_torch(torch, cls, kwargs, initial, grads):
    params = [torch.nn.Parameter(torch.from_numpy(value.copy())) for value in initial]
    optimizer = getattr(torch.optim, cls.__name__)(params, foreach=False, **kwargs)
    history = []
    for step_grads in grads:
        for param, grad in zip(params, step_grads):
            param.grad = None if grad is None else torch.from_numpy(grad.copy())
        optimizer.step()
        history.append([p.detach().numpy().copy() for p in params])
    return optimizer, history


@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-12, 1e-14), (np.float32, 2e-5, 2e-6)])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_torch(torch, case, dtype, rtol, atol):
    cls, kwargs = case
    initial, grads = make_data(dtype)
    ours, our_history = run_rnnlab(cls, kwargs, initial, grads)
    theirs, their_history = run_torch(torch, cls, kwargs, initial, grads)
    for step, (our_params, their_params) in enumerate(zip(our_history, their_history)):
        for i, (a, b) in enumerate(zip(our_params, their_params)):
            assert a.dtype == np.dtype(dtype), "updates must stay in the parameter's dtype"
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"step {step}, param {i}")
    # The state has PyTorch's names and values too.
    our_state, their_state = ours.state_dict()["state"], theirs.state_dict()["state"]
    assert sorted(our_state) == sorted(their_state)
    for index in their_state:
        assert set(our_state[index]) == set(their_state[index])
        for key, value in their_state[index].items():
            if key == "step":
                assert our_state[index][key] == int(value.item())
            else:
                np.testing.assert_allclose(our_state[index][key], value.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_state_dict_round_trip_continues_identically(case):
    cls, kwargs = case
    initial, grads = make_data(np.float64, seed=1)
    first, _ = run_rnnlab(cls, kwargs, initial, grads[:3])
    params = [group_param for group in first.param_groups for group in [group] for group_param in group["params"]]

    # Through flat arrays + JSON metadata, as a checkpoint stores it.
    arrays, meta = flatten_state(first.state_dict())
    meta = json.loads(json.dumps(meta))
    copies = [Parameter(p.data.copy()) for p in params]
    second = cls(copies, **{k: v for k, v in kwargs.items() if k != "lr"}, lr=123.0)  # lr comes from the state
    second.load_state_dict(unflatten_state({k: v.copy() for k, v in arrays.items()}, meta))
    assert second.param_groups[0]["lr"] == first.param_groups[0]["lr"]

    for step_grads in grads[3:]:
        for a, b, grad in zip(params, copies, step_grads):
            a.grad = None if grad is None else grad.copy()
            b.grad = None if grad is None else grad.copy()
        first.step()
        second.step()
    for a, b in zip(params, copies):
        np.testing.assert_array_equal(a.data, b.data)


def test_loads_a_torch_optimizer_state_and_continues_like_torch(torch):
    initial, grads = make_data(np.float64, seed=2)
    theirs, _ = run_torch(torch, Adam, dict(lr=0.01, amsgrad=True), initial, grads[:3])
    params = [Parameter(p.detach().numpy().copy()) for p in theirs.param_groups[0]["params"]]
    ours = Adam(params, lr=0.5)
    ours.load_state_dict(theirs.state_dict())
    assert ours.param_groups[0]["lr"] == 0.01 and ours.param_groups[0]["betas"] == (0.9, 0.999)
    for step_grads in grads[3:]:
        for p, tp, grad in zip(params, theirs.param_groups[0]["params"], step_grads):
            p.grad = None if grad is None else grad.copy()
            tp.grad = None if grad is None else torch.from_numpy(grad.copy())
        ours.step()
        theirs.step()
    for p, tp in zip(params, theirs.param_groups[0]["params"]):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_param_groups_with_their_own_lr_match_torch(torch):
    initial, grads = make_data(np.float64, seed=3)
    params = [Parameter(v.copy()) for v in initial]
    ours = SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], lr=0.1, momentum=0.9)
    tparams = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in initial]
    theirs = torch.optim.SGD([{"params": tparams[:1]}, {"params": tparams[1:], "lr": 0.5}], lr=0.1,
                             momentum=0.9, foreach=False)
    for step_grads in grads:
        for p, tp, grad in zip(params, tparams, step_grads):
            p.grad = None if grad is None else grad.copy()
            tp.grad = None if grad is None else torch.from_numpy(grad.copy())
        ours.step()
        theirs.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12)
    assert [g["lr"] for g in ours.param_groups] == [0.1, 0.5]
    assert ours.state_dict()["param_groups"][1]["params"] == [1, 2]


def test_zero_grad_and_skipping_parameters_without_grad():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    optimizer = Adam([a, b], lr=0.1)
    a.grad = np.array([1.0, -1.0])
    optimizer.step()
    assert not np.array_equal(a.data, np.ones(2))
    np.testing.assert_array_equal(b.data, np.ones(2))
    assert b not in optimizer.state and optimizer.state[a]["step"] == 1
    optimizer.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad, np.zeros(2))
    assert b.grad is None
    optimizer.zero_grad()
    assert a.grad is None


@pytest.mark.parametrize("build, message", [
    (lambda p: SGD(p, lr=-1), "Invalid learning rate: -1"),
    (lambda p: SGD(p, momentum=-0.5), "Invalid momentum value: -0.5"),
    (lambda p: SGD(p, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (lambda p: SGD(p, weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda p: Adagrad(p, lr_decay=-1), "Invalid lr_decay value: -1"),
    (lambda p: Adagrad(p, initial_accumulator_value=-1), "Invalid initial_accumulator_value value: -1"),
    (lambda p: RMSprop(p, alpha=-1), "Invalid alpha value: -1"),
    (lambda p: RMSprop(p, eps=-1), "Invalid epsilon value: -1"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: AdamW(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (lambda p: Adam([], lr=0.1), "optimizer got an empty parameter list"),
    (lambda p: SGD([{"params": p}, {"params": p}]), "more than one parameter group"),
])
def test_invalid_arguments_are_rejected_like_torch(build, message):
    with pytest.raises(ValueError, match=message):
        build([Parameter(np.zeros(2))])


def test_rejects_non_parameters():
    with pytest.raises(TypeError, match="optimizer can only optimize Parameters"):
        SGD([np.zeros(2)])


def test_load_state_dict_checks_group_sizes():
    optimizer = Adam([Parameter(np.zeros(2))])
    other = Adam([Parameter(np.zeros(2)), Parameter(np.zeros(3))])
    with pytest.raises(ValueError, match="doesn't match the size"):
        optimizer.load_state_dict(other.state_dict())
