"""``backward(..., input_grad=False)`` on the compiled path (rnnlab.fast.recurrent, asserted to have run):
None for the input's gradient, every parameter gradient and the initial state's bit-identical to
``input_grad=True`` on the same path, and equal to the reference's to float32 rounding."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import require_optional

require_optional("numba")

from compiled_paths import compiled_path, reference_path  # noqa: E402
from input_grad_cases import CASES, assert_same_except_input, case_id, run_case  # noqa: E402

TOLERANCE = dict(rtol=1e-4, atol=2e-6)  # float32, as in tests/fast/test_recurrent.py


def entry_point(case) -> str:
    return case[0].split("_")[0].lower() + "_backward"  # RNN_TANH -> rnn_backward


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_compiled_no_input_gradient_leaves_every_other_gradient_unchanged(case):
    with compiled_path(entry_point(case)):
        with_input = run_case(case, np.float32, True)
    with compiled_path(entry_point(case)):
        without_input = run_case(case, np.float32, False)
    assert_same_except_input(with_input, without_input)
    with reference_path():
        _, reference_initial, reference_grads = run_case(case, np.float32, False)
    for ours, reference in zip(without_input[1], reference_initial):
        np.testing.assert_allclose(ours, reference, **TOLERANCE)
    for name, grad in without_input[2].items():
        np.testing.assert_allclose(grad, reference_grads[name], err_msg=name, **TOLERANCE)
