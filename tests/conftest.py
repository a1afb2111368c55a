"""Shared test settings: where the shared data lives, and the PyTorch oracle.

The data folder comes from one setting, ``RNNLAB_SHARED_DATA``, defaulting to ``../shared/data``
beside the repository. Under CI (``CI=true``) a missing oracle or data folder is a failure, not a skip,
so a green run always means the parity tests ran.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RNNLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_torch():
    """Import torch (the test oracle); skip locally when absent, fail under CI."""
    if IN_CI:
        import torch  # noqa: F401  (a missing oracle must fail CI)

        return torch
    return pytest.importorskip("torch")


@pytest.fixture(scope="session")
def torch():
    torch = require_torch()
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (``text/hamlet.txt``, ``fashion-mnist/*.gz``, ...)."""
    if not SHARED_DATA.is_dir():
        message = f"shared data folder not found: {SHARED_DATA} (set RNNLAB_SHARED_DATA)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DATA


# tests/helpers.py (CLI and data helpers several test modules share) is imported as `helpers`
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
