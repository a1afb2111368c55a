"""The one switch of the compiled path: rnnlab.fast.enabled / use / RNNLAB_FAST, and where numba may be imported."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import rnnlab.fast as fast
from compiled_paths import compiled_path
from rnnlab import nn
from rnnlab.nn import recurrent, recurrent_math

SRC = Path(__file__).resolve().parents[2] / "src" / "rnnlab"


def test_use_switches_and_restores():
    with compiled_path("lstm_forward"):
        assert fast.enabled()
        assert recurrent.cell_math(np.dtype(np.float32)).__name__ == "rnnlab.fast.recurrent"
        with fast.use(False):
            assert not fast.enabled() and fast.load("recurrent") is None
            assert recurrent.cell_math(np.dtype(np.float32)) is recurrent_math
        assert fast.enabled()  # restored on leaving the block
        nn.LSTM(2, 3)(np.zeros((1, 2), dtype=np.float32))


def test_use_none_follows_the_environment(monkeypatch):
    with compiled_path():
        for value, expected in (("1", True), ("0", False), ("off", False)):
            monkeypatch.setenv("RNNLAB_FAST", value)
            with fast.use(None):
                assert fast.enabled() == expected


def test_environment_variable_forces_the_reference_and_nothing_imports_numba():
    code = ("import sys, numpy as np, rnnlab, rnnlab.fast, rnnlab.models, rnnlab.optim; from rnnlab import nn; "
            "lstm = nn.LSTM(2, 3); out, _ = lstm(np.zeros((4, 1, 2), dtype=np.float32)); lstm.backward(out); "
            "print(rnnlab.fast.enabled(), sum(rnnlab.fast.calls.values()), 'numba' in sys.modules)")
    env = dict(os.environ, RNNLAB_FAST="0")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "0", "False"]


def test_importing_rnnlab_does_not_import_numba():
    code = "import sys, rnnlab, rnnlab.nn, rnnlab.models, rnnlab.optim, rnnlab.training; print('numba' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_numba_is_imported_only_in_rnnlab_fast_jit():
    importers = sorted(str(path.relative_to(SRC)) for path in SRC.rglob("*.py")
                       if re.search(r"^\s*(import numba|from numba)", path.read_text(), re.MULTILINE))
    assert importers == ["fast/jit.py"]


def test_compiled_kernels_are_cached_on_disk_where_numba_cache_dir_says(tmp_path):
    """The one-off compile is paid once per machine: kernels go to numba's on-disk cache, here the folder
    NUMBA_CACHE_DIR names (as for a read-only site-packages), and a second process loads them from it."""
    from helpers import require_optional

    require_optional("numba")
    code = ("import numpy as np, rnnlab.fast as fast; out = np.zeros((3, 2)); "
            "fast.load('scatter').scatter_add_rows_into(np.array([0, 2, 0]), np.ones((3, 2)), out); "
            "print(out[:, 0].tolist())")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), RNNLAB_FAST="1")
    written = []
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[2.0, 0.0, 1.0]"
        compiled = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*scatter*.nbc")}
        assert compiled and list(tmp_path.rglob("*scatter*.nbi")), list(tmp_path.rglob("*"))
        written.append(compiled)
    assert written[1] == written[0]  # the second process loaded the kernel; it compiled nothing new
