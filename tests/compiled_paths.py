"""Run a block on the compiled path (rnnlab.fast) or on the NumPy reference, and assert which one ran.

A fast-vs-reference test that only compared numbers could pass with the compiled path silently off
(the reference compared with itself), so every such test runs its compiled half inside
``compiled_path(...)``, which fails unless each named compiled entry point ran in the block.
numba is required: a missing one skips locally and fails under CI (``CI=true``).
"""
from __future__ import annotations

from contextlib import contextmanager

from helpers import require_optional

from rnnlab import fast


@contextmanager
def compiled_path(*entry_points: str):
    """The compiled path on inside the block; afterwards each of ``entry_points`` (names in
    :data:`rnnlab.fast.calls`, e.g. ``"lstm_forward"``) must have run at least once in it."""
    require_optional("numba")
    before = fast.calls.copy()
    with fast.use(True):
        yield
    for name in entry_points:
        assert fast.calls[name] > before[name], f"the compiled {name} did not run"


@contextmanager
def reference_path():
    """The NumPy reference inside the block; no compiled entry point may run in it."""
    before = sum(fast.calls.values())
    with fast.use(False):
        yield
    assert sum(fast.calls.values()) == before, "a compiled entry point ran with the switch off"


def on_path(path: str, *entry_points: str):
    """``compiled_path(*entry_points)`` for ``path == "compiled"``, ``reference_path()`` for "reference"."""
    return compiled_path(*entry_points) if path == "compiled" else reference_path()
