"""examples/mnist_rows.py runs end to end on the shared Fashion-MNIST (tiny settings) and writes its PNG."""
import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mnist_rows.py"
TINY = ["--train-size", "300", "--test-size", "100", "--epochs", "2", "--hidden-size", "16"]


def load_example():
    spec = importlib.util.spec_from_file_location("mnist_rows_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_trains_tanh_and_relu_and_writes_the_curves(shared_data, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("RNNLAB_SHARED_DATA", str(shared_data))
    png = tmp_path / "curves.png"
    assert load_example().main([*TINY, "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "300 training and 100 test images, each 28 rows of 28 pixels" in out
    assert out.count("epoch  2:") == 2 and "final test accuracy: tanh" in out and "relu" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_it_says_so_and_still_prints_the_numbers(shared_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RNNLAB_SHARED_DATA", str(shared_data))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    png = tmp_path / "curves.png"
    assert load_example().main([*TINY[:-1], "8", "--epochs", "1", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "final test accuracy" in out
    assert out.strip().splitlines()[-1].startswith("matplotlib is not installed")
    assert not png.exists()
