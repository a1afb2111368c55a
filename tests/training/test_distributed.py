"""Data-parallel training over MPI (rnnlab.training.distributed), run with 2 local ranks under mpiexec.

P ranks x B/P streams compute what 1 rank x B streams computes: float64 losses and final weights agree to
1e-10 relative (LSTM, GRU, the classifier); a checkpoint from 2 ranks resumes on 1 (and one from 1 on 2)
to the uninterrupted run; rank 0 alone writes; a rank that dies or raises ends the job at once, naming
the rank; SIGTERM to the launcher saves once on every rank. Without mpi4py these skip, except under
CI=true, where `pip install -e '.[test]'` installs mpi4py and the mpich wheel and a skip would hide a
failure.
"""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import require_optional, write_spike_idx
from rnnlab.training import distributed
from rnnlab.training.rundir import RunDirectory, load_run

WORKER = Path(__file__).with_name("mpi_worker.py")
TOLERANCE = 1e-10
TEXT_WORDS = "the quick brown fox jumps over a lazy dog while seven wizards quietly hex ten jovial boxers".split()


# --- without MPI -------------------------------------------------------------------------------------

LAUNCH_VARIABLES = [v for pair in distributed.LAUNCH_VARIABLES for v in pair] + ["SLURM_STEP_ID"]


@pytest.mark.parametrize("environment, expected", [
    ({}, (1, 0, None)),
    ({"PMI_SIZE": "4", "PMI_RANK": "3"}, (4, 3, "PMI_SIZE")),
    ({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"}, (2, 1, "OMPI_COMM_WORLD_SIZE")),
    ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5", "SLURM_STEP_ID": "0"}, (8, 5, "SLURM_STEP_NUM_TASKS")),
    ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "0", "SLURM_STEP_ID": "batch"}, (1, 0, None)),  # sbatch script
])
def test_launch_size_reads_each_launchers_environment(monkeypatch, environment, expected):
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert distributed.launch_size() == expected


def test_the_single_process_path_never_imports_mpi4py(tmp_path):
    text = write_text(tmp_path)
    code = ("import sys, io\n"
            "from rnnlab.cli.main import main\n"
            f"status = main(['train', {str(text)!r}, '--out', {str(tmp_path / 'run')!r}, '--steps', '2', "
            "'--hidden-size', '8', '--num-layers', '1', '--batch-size', '2', '--seq-len', '8', "
            "'--sample-length', '0'])\n"
            "assert status == 0, status\n"
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'\n")
    done = subprocess.run([sys.executable, "-c", code], env=clean_environment(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("rank", [0, 1])
def test_a_launch_without_mpi4py_says_so_in_one_line(tmp_path, rank):
    text = write_text(tmp_path)
    code = ("import sys\n"
            "sys.modules['mpi4py'] = None  # as if it were not installed\n"
            "from rnnlab.cli.main import main\n"
            f"sys.exit(main(['train', {str(text)!r}, '--out', {str(tmp_path / 'run')!r}, '--steps', '2']))\n")
    environment = {**clean_environment(), "PMI_SIZE": "2", "PMI_RANK": str(rank)}
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    if rank == 0:
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rnnlab: error: ") and "mpi4py is not installed" in lines[0] \
            and "rnnlab[mpi]" in lines[0], done.stderr
    else:
        assert done.stderr == ""  # the other ranks say nothing: one line per job
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("banner, flags", [
    ("HYDRA build details:\n    Version: 5.0.2", []),                                     # MPICH: none needed
    ("mpirun (Open MPI) 5.0.3\n\nReport bugs to https://www.open-mpi.org/", ["--oversubscribe"]),
    ("mpiexec (OpenRTE) 4.0.3\n\nReport bugs to http://www.open-mpi.org/community/help/", ["--oversubscribe"]),
])
def test_the_launch_command_adds_what_open_mpi_needs(tmp_path, monkeypatch, banner, flags):
    fake = tmp_path / "mpiexec"
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{banner}\nEOF\n")
    fake.chmod(0o755)
    root = ["--allow-run-as-root"] if flags and os.geteuid() == 0 else []
    assert distributed.mpiexec_command(3, str(fake)) == [str(fake), "-n", "3", *flags, *root]


# --- with MPI: helpers -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mpiexec():
    """The launch command for 2 local ranks (Open MPI's root and oversubscription flags when needed)."""
    require_optional("mpi4py")
    if distributed.find_mpiexec() is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("no mpiexec beside the Python or on PATH (pip install -e '.[test]' installs the mpich wheel)")
        pytest.skip("no mpiexec")
    return distributed.mpiexec_command(2)


def clean_environment() -> dict:
    """This environment without any launcher's variables (pytest itself may run under one), one BLAS
    thread per process (2 ranks on a 2-core machine)."""
    environment = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES and not k.startswith("PMI")}
    environment.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return environment


def write_text(directory: Path, characters: int = 30_000) -> Path:
    rng = np.random.default_rng(0)
    words, total = [], 0
    while total < characters:
        word = TEXT_WORDS[rng.integers(len(TEXT_WORDS))]
        words.append(word)
        total += len(word) + 1
    path = directory / "text.txt"
    path.write_text(" ".join(words) + "\n", encoding="utf-8")
    return path


def charlm_settings(text, model, **overrides) -> dict:
    values = dict(text_file=str(text), model=model, hidden_size=12, num_layers=2, seq_len=8, batch_size=4, steps=20,
                  eval_every=10, eval_chars=2000, sample_length=0, dtype="float64", lr=1e-2)
    values.update(overrides)
    return values


def launch(mpiexec, tmp_path, kind, settings, out, resume=False, timeout=120, **extra):
    """Run the worker on 2 ranks; ``(completed process, rank 0's summary or None)``."""
    spec = tmp_path / f"spec-{out.name}-{int(resume)}.json"
    result = tmp_path / f"result-{out.name}-{int(resume)}.json"
    spec.write_text(json.dumps({"kind": kind, "config": settings, "out": str(out), "resume": resume,
                                "result": str(result), **extra}))
    done = subprocess.run([*mpiexec, sys.executable, str(WORKER), str(spec)], env=clean_environment(),
                          capture_output=True, text=True, timeout=timeout)
    return done, (json.loads(result.read_text()) if result.is_file() else None)


def train_one_rank(kind, settings, out, resume=False):
    """The same run in this process, alone."""
    if kind == "charlm":
        from rnnlab.training.charlm import train
        from rnnlab.training.config import TrainConfig

        return train(TrainConfig(**settings), out, resume=resume, stream=io.StringIO())
    if kind == "classify":
        from rnnlab.training.classify import train
        from rnnlab.training.config import ClassifyConfig

        return train(ClassifyConfig(**settings), out, resume=resume, stream=io.StringIO(), progress_bar=False)
    from rnnlab.training import seq2seq, tagging

    module, config = (seq2seq, seq2seq.Seq2SeqConfig) if kind == "seq2seq" else (tagging, tagging.TagConfig)
    return module.train(config(**settings), out, resume=resume, stream=io.StringIO(), progress_bar=False)


def relative_error(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-300))


def assert_same_run(result_alone, summary, run_alone, run_ranks, steps):
    """Loss by loss and weight by weight, to 1e-10 relative; the 2-rank run's numbers came from 2 ranks."""
    assert summary["ranks"] == 2 and summary["allreduce_calls"] == len(summary["losses"])
    assert sorted(int(k) for k in summary["losses"]) == list(steps)
    for step, loss in summary["losses"].items():
        assert relative_error(loss, result_alone.losses[int(step)]) <= TOLERANCE, step
    alone, ranks = RunDirectory(run_alone).load_weights("latest"), RunDirectory(run_ranks).load_weights("latest")
    assert set(alone) == set(ranks)
    worst = max(relative_error(ranks[name], alone[name]) for name in alone)
    assert worst <= TOLERANCE, worst
    worst_loss = max(relative_error(loss, result_alone.losses[int(step)]) for step, loss in summary["losses"].items())
    print(f"largest relative difference: losses {worst_loss:.1e}, weights {worst:.1e}")  # pytest -s shows it
    return worst


def files_in(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*"))


# --- equivalence ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_two_ranks_with_half_the_batch_each_train_as_one_rank_with_all(mpiexec, tmp_path, model):
    text = write_text(tmp_path)
    settings = charlm_settings(text, model)
    alone = train_one_rank("charlm", settings, tmp_path / "alone")
    done, summary = launch(mpiexec, tmp_path, "charlm", settings, tmp_path / "ranks")
    assert done.returncode == 0, done.stderr
    assert_same_run(alone, summary, tmp_path / "alone", tmp_path / "ranks", range(1, 21))
    # evaluation split over the ranks and reduced: the same validation and test losses
    assert relative_error(summary["val_loss"], alone.val_loss) <= TOLERANCE
    assert relative_error(summary["test_loss"], alone.test_loss) <= TOLERANCE
    # rank 0 alone writes: the run directories hold the same files, the metrics the same rows
    assert files_in(tmp_path / "ranks") == files_in(tmp_path / "alone")
    rows = [json.loads(line) for line in (tmp_path / "ranks" / "metrics.jsonl").read_text().splitlines()]
    rows_alone = [json.loads(line) for line in (tmp_path / "alone" / "metrics.jsonl").read_text().splitlines()]
    assert [sorted(row) for row in rows] == [sorted(row) for row in rows_alone]
    # one progress display and one set of messages, from rank 0, naming each rank's process
    assert done.stderr.count("done at step 20") == 1
    assert re.search(r"data-parallel over 2 MPI ranks .*rank 0 = pid \d+ on .*rank 1 = pid \d+ on ", done.stderr)


def test_the_classifier_on_two_ranks_trains_as_on_one(mpiexec, tmp_path):
    # 280 training images in batches of 32: the epoch's last batch of 24 is split 12 + 12
    paths = write_spike_idx(tmp_path, train_count=300, test_count=50)
    settings = dict(idx=paths, dataset=None, model="gru", hidden_size=12, epochs=None, steps=20, batch_size=32,
                    lr=1e-2, dtype="float64", val_size=20)
    alone = train_one_rank("classify", settings, tmp_path / "alone")
    done, summary = launch(mpiexec, tmp_path, "classify", settings, tmp_path / "ranks")
    assert done.returncode == 0, done.stderr
    assert_same_run(alone, summary, tmp_path / "alone", tmp_path / "ranks", range(1, 21))
    for ours, theirs in zip(summary["history"], alone.history):
        for key in ("train_loss", "val_loss", "test_loss"):
            assert relative_error(ours[key], theirs[key]) <= TOLERANCE, key
        for key in ("train_accuracy", "val_accuracy", "test_accuracy", "step", "epoch"):
            assert ours[key] == theirs[key], key
    assert relative_error(summary["test_loss"], alone.test.loss) <= TOLERANCE
    assert summary["test_accuracy"] == alone.test.accuracy
    assert files_in(tmp_path / "ranks") == files_in(tmp_path / "alone")
    assert metrics_keys(tmp_path / "ranks") == metrics_keys(tmp_path / "alone")  # rank 0 alone wrote, once


def metrics_keys(run_dir) -> list:
    """``(step, sorted keys)`` of each metrics.jsonl row, in file order."""
    return [(row["step"], sorted(row)) for row in
            map(json.loads, (Path(run_dir) / "metrics.jsonl").read_text(encoding="utf-8").splitlines())]


def reverse_pairs(count, letters="abcd", longest=5):
    rng = np.random.default_rng(0)
    texts = sorted({"".join(rng.choice(list(letters), size=int(rng.integers(1, longest + 1)))) for _ in range(4 * count)})
    return [(text, text[::-1]) for text in texts[:count]]


@pytest.mark.parametrize("kind", ["seq2seq", "tagger"])
def test_seq2seq_and_the_tagger_on_two_ranks_train_as_on_one(mpiexec, tmp_path, kind):
    # batches of 16 pairs or lines of different lengths, each rank padding its 8 to its own longest
    if kind == "seq2seq":
        pairs = tmp_path / "pairs.tsv"
        pairs.write_text("".join(f"{source}\t{target}\n" for source, target in reverse_pairs(300)), encoding="utf-8")
        settings = dict(pairs_file=str(pairs), hidden_size=12, batch_size=16, lr=0.01, eval_every=10, eval_pairs=16,
                        steps=20, dtype="float64")
    else:
        rng = np.random.default_rng(0)
        text = tmp_path / "lines.txt"
        text.write_text("".join(" ".join(rng.choice(TEXT_WORDS, size=int(rng.integers(2, 8)))) + "\n"
                                for _ in range(300)), encoding="utf-8")
        settings = dict(text_file=str(text), hidden_size=12, num_layers=1, batch_size=16, lr=0.01, eval_every=10,
                        steps=20, dtype="float64")
    alone = train_one_rank(kind, settings, tmp_path / "alone")
    done, summary = launch(mpiexec, tmp_path, kind, settings, tmp_path / "ranks")
    assert done.returncode == 0, done.stderr
    assert_same_run(alone, summary, tmp_path / "alone", tmp_path / "ranks", range(1, 21))
    assert files_in(tmp_path / "ranks") == files_in(tmp_path / "alone")
    assert metrics_keys(tmp_path / "ranks") == metrics_keys(tmp_path / "alone")  # rank 0 alone wrote, once
    assert [step for step, keys in metrics_keys(tmp_path / "ranks") if "loss" in keys] == list(range(1, 21))
    assert [record["step"] for record in summary["history"]] == [10, 20]
    # rank 0 alone writes the training state: its validations and best, not another rank's empty ones
    saved_ranks = RunDirectory(tmp_path / "ranks").load_training_state()[2]
    saved_alone = RunDirectory(tmp_path / "alone").load_training_state()[2]
    assert [record["step"] for record in saved_ranks["history"]] == [10, 20]
    assert saved_ranks["history"] == summary["history"] and saved_ranks["best"] is not None
    assert len(saved_alone["history"]) == 2


def test_a_batch_the_ranks_do_not_divide_is_one_line(mpiexec, tmp_path):
    text = write_text(tmp_path)
    done = subprocess.run([*mpiexec, sys.executable, "-m", "rnnlab", "train", str(text), "--out", str(tmp_path / "run"),
                           "--batch-size", "3", "--steps", "2"], env=clean_environment(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("rnnlab: error: ")]
    assert len(errors) == 1 and "--batch-size 3" in errors[0] and "2 MPI ranks" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "training_state.safetensors").exists()


# --- resume across rank counts ---------------------------------------------------------------------------

def test_a_checkpoint_resumes_on_another_number_of_ranks(mpiexec, tmp_path):
    text = write_text(tmp_path)
    straight = train_one_rank("charlm", charlm_settings(text, "lstm"), tmp_path / "straight")

    # 2 ranks for 10 steps, then 1 rank to 20
    done, _ = launch(mpiexec, tmp_path, "charlm", charlm_settings(text, "lstm", steps=10), tmp_path / "two-then-one")
    assert done.returncode == 0, done.stderr
    resumed = train_one_rank("charlm", charlm_settings(text, "lstm"), tmp_path / "two-then-one", resume=True)
    assert sorted(resumed.losses) == list(range(11, 21))
    for step in range(11, 21):
        assert relative_error(resumed.losses[step], straight.losses[step]) <= TOLERANCE
    ours = RunDirectory(tmp_path / "two-then-one").load_weights("latest")
    theirs = RunDirectory(tmp_path / "straight").load_weights("latest")
    assert max(relative_error(ours[k], theirs[k]) for k in theirs) <= TOLERANCE

    # 1 rank for 10 steps, then 2 ranks to 20: the saved state of all 4 streams is split between them
    train_one_rank("charlm", charlm_settings(text, "lstm", steps=10), tmp_path / "one-then-two")
    done, summary = launch(mpiexec, tmp_path, "charlm", charlm_settings(text, "lstm"), tmp_path / "one-then-two",
                           resume=True)
    assert done.returncode == 0, done.stderr
    assert_same_run(straight, summary, tmp_path / "straight", tmp_path / "one-then-two", range(11, 21))


# --- faults --------------------------------------------------------------------------------------------

def start(mpiexec, tmp_path, settings, out, **extra):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"kind": "charlm", "config": settings, "out": str(out), "resume": False,
                                "result": str(tmp_path / "result.json"), **extra}))
    return subprocess.Popen([*mpiexec, sys.executable, str(WORKER), str(spec)], env=clean_environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def read_until(process, pattern: str, seconds: float = 60) -> tuple[str, re.Match]:
    """Lines of the job's output up to the first that matches ``pattern``."""
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return "".join(seen), found
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


def test_a_rank_killed_mid_run_ends_the_job_naming_it(mpiexec, tmp_path):
    text = write_text(tmp_path)
    settings = charlm_settings(text, "lstm", steps=100_000, checkpoint_every=5, eval_every=0, dtype="float32")
    job = start(mpiexec, tmp_path, settings, tmp_path / "run")
    try:
        before, placement = read_until(job, r"rank 1 = pid (\d+) on ")
        pid = int(placement.group(1))
        wait_for(lambda: (tmp_path / "run" / "training_state.safetensors").is_file(), 60, "the first checkpoint")
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        after, _ = job.communicate(timeout=30)
        assert time.monotonic() - killed < 30
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode != 0
    # the launcher names the dead process: Open MPI by its rank, MPICH by its pid, which rank 0's first
    # lines map to rank 1
    assert "rank 1" in after or str(pid) in after, after
    # the last checkpoint is intact
    loaded = load_run(tmp_path / "run", "charlm", "latest")
    assert loaded.model is not None
    assert RunDirectory(tmp_path / "run").load_weights("latest")


@pytest.mark.parametrize("fault", ["bug", "rnnlab"])
def test_a_rank_that_raises_ends_the_job_with_one_line_naming_it(mpiexec, tmp_path, fault):
    text = write_text(tmp_path)
    settings = charlm_settings(text, "lstm", steps=50, eval_every=5, checkpoint_every=2)
    started = time.monotonic()
    done, summary = launch(mpiexec, tmp_path, "charlm", settings, tmp_path / "run", raise_on_rank=1, fault=fault,
                           timeout=60)
    assert time.monotonic() - started < 30
    assert done.returncode != 0 and summary is None
    lines = [line for line in done.stderr.splitlines() if line.startswith("rnnlab: error: ")]
    assert len(lines) == 1, done.stderr
    assert "rank 1 of 2" in lines[0] and "injected fault" in lines[0]
    assert RunDirectory(tmp_path / "run").load_weights("latest")  # step 4's checkpoint, intact


def test_sigterm_to_the_launcher_saves_once_and_stops_every_rank(mpiexec, tmp_path):
    text = write_text(tmp_path)
    settings = charlm_settings(text, "lstm", steps=100_000, checkpoint_every=1000, eval_every=0)
    job = start(mpiexec, tmp_path, settings, tmp_path / "run")
    try:
        read_until(job, r"rank 1 = pid \d+ on ")
        wait_for(lambda: (tmp_path / "run" / "metrics.jsonl").is_file()
                 and (tmp_path / "run" / "metrics.jsonl").stat().st_size > 300, 60, "a few steps")
        job.send_signal(signal.SIGTERM)
        output, _ = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 0, output
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["stop_reason"] == "interrupted"
    assert output.count("interrupted: saved the training state") == 1, output
    stopped = summary["step"]
    # the saved state is the state at that step: resumed alone to a few steps more, it is the run alone
    settings.update(steps=stopped + 3)
    resumed = train_one_rank("charlm", settings, tmp_path / "run", resume=True)
    straight = train_one_rank("charlm", settings, tmp_path / "straight")
    for step in range(stopped + 1, stopped + 4):
        assert relative_error(resumed.losses[step], straight.losses[step]) <= TOLERANCE


def test_an_error_every_rank_meets_is_printed_once(mpiexec, tmp_path):
    text = write_text(tmp_path)
    started = time.monotonic()
    done = subprocess.run([*mpiexec, sys.executable, "-m", "rnnlab", "train", str(text), "--out", str(tmp_path / "run"),
                           "--lr", "-1"], env=clean_environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [line for line in done.stderr.strip().splitlines()
                                                if line.startswith("rnnlab: error: --lr")], done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 30
