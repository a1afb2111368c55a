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


def test_the_y_axis_says_what_each_kind_of_loss_is_per(tmp_path):
    from rnnlab.training.curves import GENERIC_LABEL, LOSS_UNITS, loss_label

    assert loss_label(["charlm"]) == "bits per character"
    assert loss_label(["seq2seq", "seq2seq"]) == "bits per target symbol"
    assert loss_label(["tagger"]) == "bits per character tag"
    assert loss_label(["classify"]) == "bits per image"
    assert set(LOSS_UNITS) == {"charlm", "seq2seq", "tagger", "classify"}
    assert loss_label(["charlm", "classify"]) == GENERIC_LABEL == "cross-entropy (bits)"
    assert loss_label([None]) == GENERIC_LABEL  # no config.json to tell


@pytest.mark.parametrize("config, kind", [({"kind": "seq2seq"}, "seq2seq"), ({"model": {}}, "charlm"),
                                          (None, None), ("not json", None)])
def test_read_curves_takes_the_kind_from_config_json(tmp_path, config, kind):
    run = write_metrics(tmp_path / "run", rows(10))
    if isinstance(config, dict):
        (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    elif config is not None:
        (run / "config.json").write_text(config, encoding="utf-8")
    assert read_curves(run).kind == kind


def test_draw_figure_labels_the_axes_without_drawing_pixels(tmp_path):
    require_optional("matplotlib")
    from rnnlab.training.curves import draw_figure

    charlm = write_metrics(tmp_path / "charlm", rows(20))
    (charlm / "config.json").write_text('{"kind": "charlm"}', encoding="utf-8")
    classify = write_metrics(tmp_path / "classify", rows(20))
    (classify / "config.json").write_text('{"kind": "classify"}', encoding="utf-8")
    by_step, by_time = draw_figure([read_curves(charlm)], title="t").axes
    assert (by_step.get_ylabel(), by_step.get_xlabel(), by_time.get_xlabel()) == \
        ("bits per character", "step", "time (seconds)")
    assert draw_figure([read_curves(classify)]).axes[0].get_ylabel() == "bits per image"
    assert draw_figure([read_curves(charlm), read_curves(classify)]).axes[0].get_ylabel() == "cross-entropy (bits)"


def test_a_directory_without_metrics_names_the_commands_that_write_one(tmp_path):
    with pytest.raises(RnnlabError, match="not a training run") as raised:
        read_curves(tmp_path / "nothing")
    assert "rnnlab classify train" in str(raised.value) and "rnnlab tag train" in str(raised.value)
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text('{"kind": "classify"}', encoding="utf-8")
    with pytest.raises(RnnlabError, match="metrics.jsonl: no such file") as raised:
        read_curves(run)
    assert "a classifier trained before" in str(raised.value) and "\n" not in str(raised.value)

    (run / "config.json").write_text('{"kind": "charlm"}', encoding="utf-8")
    with pytest.raises(RnnlabError, match="has not taken a step yet, or its metrics.jsonl was moved away"):
        read_curves(run)
