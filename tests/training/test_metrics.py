"""metrics.jsonl: rows appended and flushed, a resumed run's repeated steps not written twice, damage survived."""
import io
import json

import pytest

from rnnlab.errors import RnnlabError
from rnnlab.training.metrics import MetricsLog, read_rows


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_rows_are_on_disk_as_they_are_written_and_nan_is_null(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    log.write({"step": 1, "time": 0.5, "loss": float("nan"), "lr": 1e-3, "chars_per_s": 10.0})
    assert lines(tmp_path / "m.jsonl") == [{"step": 1, "time": 0.5, "loss": None, "lr": 1e-3, "chars_per_s": 10.0}]
    log.close()


def test_a_resumed_log_skips_what_was_logged_and_time_never_goes_back(tmp_path):
    path = tmp_path / "m.jsonl"
    log = MetricsLog(path)
    for step in (1, 2, 3):
        log.write({"step": step, "time": float(step), "loss": 1.0})
    log.write({"step": 2, "time": 2.0, "val_loss": 1.5, "val_bpc": 2.1})
    log.close()
    before = path.read_bytes()
    # resumed from a checkpoint at step 1: steps 2 and 3 come again, with the times of this invocation
    log = MetricsLog(path, resume=True)
    for step in (2, 3, 4):
        log.write({"step": step, "time": 1.0 + step / 10, "loss": 1.0})
    log.write({"step": 2, "time": 1.2, "val_loss": 1.5, "val_bpc": 2.1})
    log.close()
    assert path.read_bytes().startswith(before)
    rows = lines(path)
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]
    assert [r["step"] for r in rows if "val_loss" in r] == [2]
    assert rows[-1]["time"] == 3.0  # 1.4 would go back behind step 3's 3.0


def test_damaged_lines_are_skipped_with_one_warning_and_kept(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"step": 1, "loss": 1.0}\n\xff\xfe\n[1, 2]\n{"step": true, "loss": 1}\n{"step": 2, "lo')
    assert read_rows(path) == ([{"step": 1, "loss": 1.0}], 4)
    warnings = io.StringIO()
    log = MetricsLog(path, resume=True, stream=warnings)
    log.write({"step": 2, "loss": 2.0})
    log.close()
    assert warnings.getvalue() == f"rnnlab: warning: {path}: 4 damaged lines skipped (left in the file)\n"
    assert path.read_bytes().endswith(b'{"step": 2, "lo\n{"step": 2, "loss": 2.0}\n')


def test_a_metrics_path_that_is_a_directory_is_one_line(tmp_path):
    (tmp_path / "m.jsonl").mkdir()
    with pytest.raises(RnnlabError, match="is a directory, not the run's metrics log"):
        MetricsLog(tmp_path / "m.jsonl", resume=True)
