"""rnnlab.gradcheck: passes correct backward passes, catches wrong ones, follows its documented rules."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import rnnlab
from rnnlab import backend
from rnnlab.gradcheck import GradcheckReport, gradcheck
from rnnlab.nn.module import Module, Parameter


class Affine(Module):
    """y = x W^T + b, and a second output z = tanh(h0) * c0 from a nested (h0, c0) input."""

    def __init__(self, wrong: str | None = None):
        super().__init__()
        rng = np.random.default_rng(1)
        self.weight = Parameter(rng.standard_normal((4, 3)))
        self.bias = Parameter(rng.standard_normal(4))
        self.wrong = wrong

    def forward(self, x, state=None):
        h0, c0 = state
        self.cache = (x, h0, c0)
        y = x @ self.weight.data.T + self.bias.data
        return y, (np.tanh(h0) * c0, None)

    def backward(self, grad_y, grad_state):
        x, h0, c0 = self.cache
        grad_z, grad_none = grad_state
        assert grad_none is None
        grad_weight = grad_y.T @ x
        if self.wrong == "weight":
            grad_weight = grad_weight * 1.01  # a 1% error must be caught
        self.weight.accumulate_grad(grad_weight)
        self.bias.accumulate_grad(grad_y.sum(axis=0))
        grad_x = grad_y @ self.weight.data
        grad_h0 = grad_z * c0 * (1 - np.tanh(h0) ** 2)
        if self.wrong == "input":
            grad_h0 = grad_z * c0 * (1 - np.tanh(h0))  # forgot the square
        return grad_x, (grad_h0, grad_z * np.tanh(h0)), "extra entries are ignored"


class SquaredSum(Module):
    """A scalar output (like a loss): backward receives a Python float."""

    def forward(self, x, ids):
        self.x, self.ids = x, ids
        return np.array((x[ids] ** 2).sum())

    def backward(self, grad_loss):
        assert isinstance(grad_loss, float)
        grad_x = np.zeros_like(self.x)
        np.add.at(grad_x, self.ids, 2 * self.x[self.ids] * grad_loss)
        return grad_x


class RandomMask(Module):
    """Draws from the global generator in forward, like dropout: gradcheck must reseed before each forward."""

    def forward(self, x):
        self.mask = backend.generator().random(x.shape) < 0.5
        return x * self.mask * 2.0

    def backward(self, grad_y):
        return grad_y * self.mask * 2.0


def _inputs():
    rng = np.random.default_rng(2)
    return rng.standard_normal((5, 3)), (rng.standard_normal((2, 3)), rng.standard_normal((2, 3)))


def test_correct_module_passes_with_nested_inputs_and_outputs():
    x, state = _inputs()
    report = gradcheck(Affine(), x, state)
    assert isinstance(report, GradcheckReport)
    assert set(report.errors) == {"input[0]", "input[1][0]", "input[1][1]", "weight", "bias"}
    assert report.max_error < 1e-7, str(report)
    assert report.passed() and report.passed(tol=1e-7)
    report.assert_passed(1e-6)


@pytest.mark.parametrize("wrong, name", [("weight", "weight"), ("input", "input[1][0]")])
def test_wrong_backward_is_caught(wrong, name):
    x, state = _inputs()
    report = gradcheck(Affine(wrong=wrong), x, state)
    assert not report.passed()
    assert report.errors[name] > 1e-3
    worst = max(report.errors, key=report.errors.get)
    assert worst == name
    with pytest.raises(AssertionError, match="gradcheck failed") as info:
        report.assert_passed(1e-6)
    assert name in str(info.value)  # the table names the culprit


def test_report_table_lists_name_shape_and_errors():
    x, state = _inputs()
    table = str(gradcheck(Affine(), x, state))
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["tensor", "shape"]
    weight_line = next(line for line in lines if line.startswith("weight"))
    assert "(4, 3)" in weight_line and "12" in weight_line
    assert "input[1][0]" in table and "(2, 3)" in table


def test_scalar_output_integer_inputs_skipped():
    x = np.arange(6.0).reshape(3, 2) / 7
    ids = np.array([0, 2, 2])
    report = gradcheck(SquaredSum(), x, ids)
    assert set(report.errors) == {"input[0]"}
    report.assert_passed(1e-7)


def test_dropout_like_module_is_reseeded_before_every_forward():
    x = np.random.default_rng(3).standard_normal((4, 5))
    gradcheck(RandomMask(), x).assert_passed(1e-7)


def test_global_generator_state_is_restored():
    rnnlab.manual_seed(123)
    expected = np.random.default_rng(123).random(3)
    gradcheck(RandomMask(), np.ones((2, 2)))
    assert np.array_equal(backend.generator().random(3), expected)


def test_float32_module_raises_type_error_asking_for_double():
    module = Affine()
    module.to(np.float32)
    x, state = _inputs()
    with pytest.raises(TypeError, match=r"double\(\)"):
        gradcheck(module, x, state)


def test_float32_inputs_are_cast_to_float64_and_not_modified():
    x, state = _inputs()
    x32 = x.astype(np.float32)
    before = x32.copy()
    report = gradcheck(Affine(), x32, state)
    report.assert_passed(1e-7)  # float32 finite differences could not reach this
    assert np.array_equal(x32, before)


def test_max_checks_limits_elements_and_check_inputs_false_skips_inputs():
    x, state = _inputs()
    report = gradcheck(Affine(), x, state, max_checks=5, check_inputs=False)
    assert set(report.errors) == {"weight", "bias"}
    assert {entry.name: entry.checked for entry in report.entries} == {"weight": 5, "bias": 4}
    report.assert_passed()
    wrong = gradcheck(Affine(wrong="weight"), x, state, max_checks=3, check_inputs=False)
    assert not wrong.passed()


def test_forward_kwargs_are_passed():
    x, state = _inputs()
    gradcheck(Affine(), x, forward_kwargs={"state": state}).assert_passed()


def test_rnnlab_gradcheck_is_the_callable_function():
    x, state = _inputs()
    assert callable(rnnlab.gradcheck)
    assert rnnlab.gradcheck(Affine(), x, state).passed()
    # after `import rnnlab.gradcheck` the attribute may be the module; it must still be callable
    assert sys.modules["rnnlab.gradcheck"](Affine(), x, state).passed()
