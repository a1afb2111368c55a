"""Reading metrics.jsonl back and drawing it (rnnlab plot, training/curves.py)."""
from __future__ import annotations

import json
import math
import sys

import pytest

from helpers import fails, require_optional, run_cli
from rnnlab.errors import RnnlabError
from rnnlab.training.curves import plot_runs, read_curves

LN2 = math.log(2.0)


def write_metrics(run_dir, rows, tail=""):
    run_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row) + "\n" for row in rows) + tail
    (run_dir / "metrics.jsonl").write_text(text, encoding="utf-8")
    return run_dir


def rows(steps, time_per_step=0.5, offset=0.0):
    out = []
    for step in range(1, steps + 1):
        out.append({"step": step, "time": step * time_per_step, "loss": 3.0 - step / steps + offset,
                    "lr": 0.002, "chars_per_s": 1000.0})
        if step % 10 == 0:
            out.append({"step": step, "time": step * time_per_step, "val_loss": 2.5 - step / steps + offset,
                        "val_bpc": (2.5 - step / steps + offset) / LN2})
    return out


def test_read_curves_keeps_the_last_row_of_a_step_and_skips_a_cut_line(tmp_path):
    data = rows(20) + [{"step": 15, "time": 99.0, "loss": LN2}]  # a resumed run wrote step 15 again
    run = write_metrics(tmp_path / "run", data, tail='{"step": 21, "lo')
    curves = read_curves(run)
    assert curves.name == "run" and curves.train_steps == list(range(1, 21))
    assert curves.train_bits[14] == pytest.approx(1.0) and curves.train_time[14] == 99.0
    assert curves.val_steps == [10, 20] and curves.val_bits[0] == pytest.approx((2.5 - 0.5) / LN2)
    assert curves.val_time == [5.0, 10.0]


def test_rows_without_time_or_with_nan_are_tolerated(tmp_path):
    run = write_metrics(tmp_path / "old", [{"step": 1, "loss": 2.0}, {"step": 2, "loss": float("nan")},
                                           {"step": 2, "val_loss": 1.0}])
    curves = read_curves(run)
    assert curves.train_steps == [1] and curves.train_time == [None]
    assert curves.val_bits == [pytest.approx(1 / LN2)]


def test_missing_or_empty_metrics_are_one_line(tmp_path):
    with pytest.raises(RnnlabError, match="no such file"):
        read_curves(tmp_path / "nothing")
    with pytest.raises(RnnlabError, match="no training steps yet"):
        read_curves(write_metrics(tmp_path / "empty", []))


def test_plot_command_draws_several_runs_into_one_png(tmp_path, capsys):
    require_optional("matplotlib")
    small = write_metrics(tmp_path / "small", rows(900, 0.5))
    large = write_metrics(tmp_path / "large", rows(300, 2.0, offset=-0.2))
    out = tmp_path / "curves.png"
    assert run_cli(["plot", small, large, "--out", out]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert f"wrote {out}" in capsys.readouterr().err
    from matplotlib.image import imread

    height, width = imread(str(out)).shape[:2]
    assert (width, height) == (1100, 420)


def test_plot_command_errors_are_one_line(tmp_path, capsys, monkeypatch):
    fails(capsys, ["plot", tmp_path / "missing"], "metrics.jsonl: no such file")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    fails(capsys, ["plot", write_metrics(tmp_path / "run", rows(10))], "pip install 'rnnlab[plot]'")


def test_plot_runs_with_the_same_folder_name_are_told_apart(tmp_path):
    require_optional("matplotlib")
    one = write_metrics(tmp_path / "a" / "run", rows(20))
    two = write_metrics(tmp_path / "b" / "run", rows(20))
    assert plot_runs([one, two], tmp_path / "x.png").is_file()
