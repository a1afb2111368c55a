"""`rnnlab bench`: runs, reports rnnlab's throughput (alone when asked), rejects bad flags in one line."""
from __future__ import annotations

import json

from rnnlab.cli.main import main


def test_bench_rnnlab_alone_as_json(capsys):
    assert main(["bench", "--only", "RNN tanh 1x100", "--rounds", "1", "--no-torch", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["torch"] is False
    assert results["kernels"] in {"fast", "reference"}
    assert results["matmul_gflops"] > 0
    (row,) = results["rows"]
    assert row["config"]["name"] == "RNN tanh 1x100"
    assert set(row["train_chars_per_s"]) == {"rnnlab"} and row["train_chars_per_s"]["rnnlab"] > 0
    assert row["sample_chars_per_s"]["rnnlab"] > 0


def test_bench_table(capsys):
    assert main(["bench", "--only", "RNN tanh 1x100", "--rounds", "1", "--no-torch", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "BLAS:" in out and "RNN tanh 1x100" in out and "PyTorch" not in out


def test_bench_bad_rounds_is_one_line(capsys):
    assert main(["bench", "--rounds", "0"]) == 1
    assert capsys.readouterr().err.strip() == "rnnlab: error: --rounds must be at least 1, got 0"
