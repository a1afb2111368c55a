"""The pattern examples run end to end with tiny settings (addition, dates, spacing, fashion_generator)."""
import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


@pytest.mark.parametrize("name, example", [("addition", "123+45 ->"), ("dates", "Thursday, June 25, 2009 ->")])
def test_seq2seq_examples(name, example, capsys):
    assert load(name).main(["--budget", "1", "--count", "300", "--test", "50", "--hidden-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "held out, greedy: exact match" in out and "held out, beam 5: exact match" in out
    assert example in out


def test_spacing_example(shared_data, tmp_path, capsys):
    text = tmp_path / "small.txt"
    text.write_text("\n".join((shared_data / "text" / "shakespeare.txt").read_text().splitlines()[:400]))
    assert load("spacing").main(["--budget", "1", "--text", str(text), "--hidden-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "held-out lines: precision" in out and "tobeornottobethatisthequestion ->" in out


def test_fashion_generator_writes_a_grid(shared_data, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "grid.png"
    assert load("fashion_generator").main(["--data-dir", str(shared_data / "fashion-mnist"), "--budget", "1",
                                           "--train-size", "256", "--hidden-size", "16", "--samples", "2",
                                           "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "epoch 1" in out and f"wrote {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
