"""loop.RunHistory: metrics.jsonl rows of the classify/seq2seq/tagging loops, written by rank 0 alone."""
import json

from rnnlab.training.loop import RunHistory, RunPosition, counted
from rnnlab.training.rundir import RunDirectory


class Rank:
    def __init__(self, is_root):
        self.is_root = is_root


def test_rows_and_the_clock_summed_over_resumes(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    at = RunPosition(step=1)
    history = RunHistory(run, False, None, Rank(True), "pairs_per_s", time_before=0.0)
    history.train_step(at, 2.5, 0.01, 32, train_seconds=0.5)
    assert 0.0 < at.time < 60.0
    history.scores(at, {"step": 1, "epoch": 0, "val_loss": 2.0, "val_f1": 0.5, "train_loss": 9.0}, "val_")
    history.scores(at, {"train_loss": 9.0}, "test_")  # no test scores: no row
    history.close()
    resumed = RunHistory(run, True, None, Rank(True), "pairs_per_s", time_before=100.0)
    at = RunPosition(step=2)
    resumed.train_step(at, 2.4, 0.01, 32, train_seconds=2.0)
    assert at.time >= 100.0  # the checkpoint's time plus this invocation's
    resumed.close()
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    step_keys = {"step", "time", "loss", "lr", "pairs_per_s"}
    assert [set(r) for r in rows] == [step_keys, {"step", "time", "val_loss", "val_f1"}, step_keys]
    assert rows[0]["pairs_per_s"] == 64.0 and rows[2]["pairs_per_s"] == 16.0  # this invocation's items / seconds
    assert rows[1] == {"step": 1, "time": rows[0]["time"], "val_loss": 2.0, "val_f1": 0.5}
    assert rows[2]["time"] >= 100.0


def test_other_ranks_write_nothing(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    history = RunHistory(run, False, None, Rank(False), "images_per_s")
    at = RunPosition(step=1)
    history.train_step(at, 1.0, 0.1, 8, 0.1)
    history.scores(at, {"val_loss": 1.0}, "val_")
    history.sync()
    history.close()
    assert at.time > 0 and not (run.path / "metrics.jsonl").exists()


def test_counted_is_singular_for_one():
    assert [counted(n, "pair") for n in (0, 1, 2, 1200)] == ["0 pairs", "1 pair", "2 pairs", "1,200 pairs"]
    assert counted(1200, "line", grouped=False) == "1200 lines" and counted(1, "test line") == "1 test line"
