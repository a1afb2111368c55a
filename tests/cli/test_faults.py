"""The faults and inputs of issue 9, each through the command line: one line instead of a traceback, nothing
lost (metrics appended, stale temporary files removed, a first checkpoint at step 0), nothing that hangs
(a signal stops evaluation, sampling and the test scoring), no lies (non-finite flags refused, NaN weights
never best nor loaded), one process per run directory (the lock)."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import fails, run_cli, write_spike_idx
from rnnlab.cli.main import main
from rnnlab.training.config import TrainConfig
from rnnlab.training.rundir import RunDirectory

TEXT = "a small text for a small model.\nit repeats, and repeats again.\n" * 10
TINY = ["--hidden-size", "8", "--num-layers", "1", "--seq-len", "8", "--batch-size", "4", "--eval-chars", "200",
        "--sample-length", "0"]
REPO_ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]))


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    path = folder / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    assert main(["train", str(path), "--out", str(folder / "run"), "--steps", "4", "--eval-every", "2", *TINY]) == 0
    return folder / "run", path


def metric_rows(run):
    """The rows of RUN/metrics.jsonl that parse (a test may have damaged some on purpose)."""
    rows = []
    for line in (Path(run) / "metrics.jsonl").read_bytes().splitlines():
        try:
            rows.append(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, ValueError):
            continue
    return [row for row in rows if isinstance(row, dict) and isinstance(row.get("step"), int)]


def training_steps(run):
    return [row["step"] for row in metric_rows(run) if "loss" in row]


# --- tracebacks that are now one line ------------------------------------------------------------------

@pytest.fixture
def symlink_loop(tmp_path):
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    return tmp_path / "loop_a"


def test_symlink_loop_as_text_file_is_one_line(symlink_loop, tmp_path, capsys):
    fails(capsys, ["train", symlink_loop, "--out", tmp_path / "r", *TINY], "loop_a", "link")
    assert not (tmp_path / "r").exists()


def test_symlink_loop_as_eval_text_or_run_dir_is_one_line(symlink_loop, trained_run, capsys):
    run, _ = trained_run
    fails(capsys, ["eval", run, symlink_loop], "loop_a", "symbolic links")
    fails(capsys, ["sample", symlink_loop], "loop_a", "symbolic links")


@pytest.mark.parametrize("command", ["train", "sample", "classify"])
def test_negative_seed_is_one_line(command, text_file, trained_run, tmp_path, capsys):
    argv = {"train": ["train", text_file, "--out", tmp_path / "r", *TINY, "--seed", "-1"],
            "sample": ["sample", trained_run[0], "--seed", "-1"],
            "classify": ["classify", "train", "--idx", *write_spike_idx(tmp_path, 40, 10), "--out", tmp_path / "c",
                         "--seed", "-1"]}[command]
    fails(capsys, argv, "--seed -1: must be an integer in [0, 2**63)")


@pytest.mark.parametrize("command", ["train", "eval"])
def test_an_encoding_that_is_not_a_text_encoding_is_one_line(command, text_file, trained_run, tmp_path, capsys):
    argv = (["train", text_file, "--out", tmp_path / "r", *TINY] if command == "train"
            else ["eval", trained_run[0], text_file])
    fails(capsys, argv + ["--encoding", "rot13"], "--encoding rot13", "not a text encoding")


def test_utf16_without_a_byte_order_mark_is_one_line(text_file, trained_run, tmp_path, capsys):
    fails(capsys, ["train", text_file, "--out", tmp_path / "r", *TINY, "--encoding", "utf-16"],
          "cannot be decoded as utf-16", "utf-16-le")
    # eval reads the whole file at once, where Python decodes it as little-endian garbage: say why nothing scored
    fails(capsys, ["eval", trained_run[0], text_file, "--encoding", "utf-16"], "is the encoding utf-16 right?")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["sample", "--length", "50"], ["eval", "TEXT", "--json"], ["eval", "TEXT"]])
def test_stdout_that_cannot_be_written_is_one_line(argv, trained_run):
    run, text = trained_run
    argv = [argv[0], str(run)] + [str(text) if a == "TEXT" else a for a in argv[1:]]
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "rnnlab", *argv], stdout=full, stderr=subprocess.PIPE,
                              text=True, env=ENV, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == ["rnnlab: error: cannot write to standard output (No space left on device); "
                                        "free some space where it goes, or send it elsewhere"]


def test_resume_with_undecodable_metrics_warns_and_goes_on(text_file, tmp_path, capsys):
    out = tmp_path / "r"
    assert main([str(a) for a in ["train", text_file, "--out", out, "--steps", "4", "--eval-every", "2", *TINY]]) == 0
    with open(out / "metrics.jsonl", "ab") as file:
        file.write(b"\xff\xfe not utf-8 \x00\n{\"step\": \"x\"}\n{\"step\": 9, \"lo")  # and a line cut short
    capsys.readouterr()
    assert main([str(a) for a in ["train", "--out", out, "--resume", "--steps", "6"]]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "metrics.jsonl: 3 damaged lines skipped (left in the file)" in err
    assert training_steps(out) == [1, 2, 3, 4, 5, 6]  # the rows after the damage start on a line of their own


def test_resume_with_metrics_that_is_a_directory_is_one_line(text_file, tmp_path, capsys):
    out = tmp_path / "r"
    assert main([str(a) for a in ["train", text_file, "--out", out, "--steps", "2", *TINY]]) == 0
    (out / "metrics.jsonl").unlink()
    (out / "metrics.jsonl").mkdir()
    capsys.readouterr()
    fails(capsys, ["train", "--out", out, "--resume", "--steps", "4"], "metrics.jsonl: is a directory")


def test_symlink_loop_as_out_is_one_line(symlink_loop, text_file, capsys):
    fails(capsys, ["train", text_file, "--out", symlink_loop, *TINY], "loop_a")


# --- nothing lost ------------------------------------------------------------------------------------------

def test_metrics_are_appended_on_resume_never_truncated(text_file, tmp_path, capsys):
    out = tmp_path / "r"
    assert main([str(a) for a in ["train", text_file, "--out", out, "--steps", "6", "--eval-every", "3", *TINY]]) == 0
    before = (out / "metrics.jsonl").read_bytes()
    assert main([str(a) for a in ["train", "--out", out, "--resume", "--steps", "9"]]) == 0
    after = (out / "metrics.jsonl").read_bytes()
    assert after.startswith(before)
    rows = metric_rows(out)
    assert training_steps(out) == list(range(1, 10))
    assert [row["step"] for row in rows if "val_loss" in row] == [3, 6, 9]
    assert [row["step"] for row in rows if "test_loss" in row] == [6, 9]
    for row in rows:
        if "loss" in row:
            assert set(row) == {"step", "time", "loss", "lr", "chars_per_s"} and row["lr"] == TrainConfig().lr
        elif "val_loss" in row:
            assert set(row) == {"step", "time", "val_loss", "val_bpc"}
    times = [row["time"] for row in rows]
    assert times == sorted(times) and times[-1] > 0  # summed over the resume: it never starts again from 0
    assert RunDirectory(out).load_training_state()[2]["time"] >= rows[5]["time"]


def test_each_metrics_row_is_on_disk_as_soon_as_it_is_written(text_file, tmp_path, monkeypatch):
    # what a kill -9 finds: the rows of every step done so far, not those of the last checkpoint
    from rnnlab.training import loop

    seen = []
    original = loop.GradientStep.__call__

    def look_then_step(self, loss, backward, step_number, *rest, **keywords):
        seen.append(training_steps(tmp_path / "r") if (tmp_path / "r" / "metrics.jsonl").exists() else [])
        return original(self, loss, backward, step_number, *rest, **keywords)

    monkeypatch.setattr(loop.GradientStep, "__call__", look_then_step)
    assert run_cli(["train", text_file, "--out", tmp_path / "r", "--steps", "5", "--eval-every", "0", *TINY]) == 0
    assert seen == [list(range(1, step)) for step in range(1, 6)]


def test_a_run_killed_before_its_first_evaluation_resumes_exactly(text_file, tmp_path, capsys):
    out, straight = tmp_path / "r", tmp_path / "straight"
    flags = ["--eval-every", "1000", *TINY]
    process = subprocess.Popen([sys.executable, "-m", "rnnlab", "train", str(text_file), "--out", str(out),
                                "--steps", "100000", *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=ENV)
    try:
        while not ((out / "metrics.jsonl").exists() and len(training_steps(out)) >= 3):
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.02)
    finally:
        process.kill()
        process.wait(timeout=30)
        process.stderr.close()
    assert RunDirectory(out).load_training_state()[2]["step"] == 0  # only the checkpoint written at the start
    assert main([str(a) for a in ["train", "--out", out, "--resume", "--steps", "12"]]) == 0
    assert main([str(a) for a in ["train", text_file, "--out", straight, "--steps", "12", *flags]]) == 0
    ours, theirs = RunDirectory(out).load_weights("latest"), RunDirectory(straight).load_weights("latest")
    assert all(np.array_equal(ours[k], theirs[k]) for k in theirs)
    steps = training_steps(out)  # the killed run's rows stay; none is written twice
    assert steps[:12] == list(range(1, 13)) and steps == sorted(set(steps))


def test_stale_temporary_files_are_removed_by_the_next_run(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run[0], run)
    stale = [run / ".training_state.safetensors.k9x2.tmp", run / ".model.safetensors.abcd.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    assert main(["train", "--out", str(run), "--resume", "--steps", "5"]) == 0
    assert not any(path.exists() for path in stale)
    assert not list(run.glob(".*.tmp"))


def test_checkpoints_by_time_and_eval_every_as_a_duration(text_file, tmp_path, monkeypatch):
    from rnnlab.training import charlm

    saved_at = []
    original = RunDirectory.save_latest
    monkeypatch.setattr(RunDirectory, "save_latest",
                        lambda self, state, meta, arrays=None: (saved_at.append(meta["step"]),
                                                                original(self, state, meta, arrays)))
    # --checkpoint-every 1h: the start and the end only
    assert run_cli(["train", text_file, "--out", tmp_path / "a", "--steps", "5", "--eval-every", "0",
                    "--checkpoint-every", "1h", *TINY]) == 0
    assert saved_at == [0, 5]
    # the automatic checkpoint by time (120 s; 0 here): after every step
    saved_at.clear()
    monkeypatch.setattr(charlm, "CHECKPOINT_SECONDS", 0.0)
    assert run_cli(["train", text_file, "--out", tmp_path / "b", "--steps", "4", "--eval-every", "1h", *TINY]) == 0
    assert saved_at == [0, 1, 2, 3, 4, 4]
    # --eval-every as a duration shorter than a step: an evaluation after every step
    assert run_cli(["train", text_file, "--out", tmp_path / "c", "--steps", "3", "--eval-every", "1e-9s", *TINY]) == 0
    assert [row["step"] for row in metric_rows(tmp_path / "c") if "val_loss" in row] == [1, 2, 3]


@pytest.mark.parametrize("value", ["5x", "-3", "0s", "infs", "nanm"])
def test_bad_intervals_are_one_line(value, text_file, tmp_path, capsys):
    fails(capsys, ["train", text_file, "--out", tmp_path / "r", *TINY, "--eval-every", value], "--eval-every",
          "a duration")


# --- hangs: a signal is noticed within a chunk or a character ---------------------------------------------

def send_sigterm_once(counter):
    counter.append(1)
    if len(counter) == 1:
        signal.raise_signal(signal.SIGTERM)


def test_a_signal_while_sampling_stops_the_sample(text_file, tmp_path, capsys, monkeypatch):
    from rnnlab.models import CharRNN

    drawn = []

    def endless(self, prime, length, **kwargs):  # a sample that would go on for a very long time
        for _ in range(10 ** 7):
            send_sigterm_once(drawn)
            yield "x"

    monkeypatch.setattr(CharRNN, "generate", endless)
    status = run_cli(["train", text_file, "--out", tmp_path / "r", "--steps", "50", "--eval-every", "2",
                      *TINY[:-2], "--sample-length", "10000"])
    err = capsys.readouterr().err
    assert status == 0 and len(drawn) == 1, err
    assert "evaluation stopped by the signal" in err and "interrupted: saved the training state at step 2" in err


@pytest.fixture
def long_text(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text(TEXT * 20, encoding="utf-8")  # validation and test parts of 640 characters each
    return path


def test_a_signal_while_evaluating_stops_the_evaluation(long_text, tmp_path, capsys, monkeypatch):
    from rnnlab.training import charlm

    chunks, original = [], charlm.cross_entropy_sum

    def score(logits, targets):
        send_sigterm_once(chunks)
        return original(logits, targets)

    monkeypatch.setattr(charlm, "EVAL_SEQ_LEN", 1)  # many chunks: each a place to stop
    monkeypatch.setattr(charlm, "cross_entropy_sum", score)
    status = run_cli(["train", long_text, "--out", tmp_path / "r", "--steps", "50", "--eval-every", "2", *TINY])
    err = capsys.readouterr().err
    assert status == 0 and len(chunks) == 1, err
    assert "interrupted: saved the training state at step 2" in err
    assert RunDirectory(tmp_path / "r").load_training_state()[2]["step"] == 2


def test_a_signal_while_scoring_the_test_split_stops_it(long_text, tmp_path, capsys, monkeypatch):
    from rnnlab.training import charlm

    chunks, original = [], charlm.evaluate

    def evaluate(model, ids, *args, **kwargs):
        if kwargs.get("max_chars") is None and len(args) < 3:  # the test split is scored whole
            monkeypatch.setattr(charlm, "cross_entropy_sum", lambda logits, targets: (send_sigterm_once(chunks), 0.0)[1])
        return original(model, ids, *args, **kwargs)

    monkeypatch.setattr(charlm, "EVAL_SEQ_LEN", 1)
    monkeypatch.setattr(charlm, "evaluate", evaluate)
    status = run_cli(["train", long_text, "--out", tmp_path / "r", "--steps", "3", "--eval-every", "0", *TINY])
    err = capsys.readouterr().err
    assert status == 0 and len(chunks) == 1, err
    assert "SIGTERM: stopping the test scoring (the training state is saved)" in err
    assert "interrupted while scoring the test split" in err and "done at step" not in err
    assert RunDirectory(tmp_path / "r").load_training_state()[2]["step"] == 3
    monkeypatch.undo()
    assert run_cli(["train", "--out", tmp_path / "r", "--resume"]) == 0  # the resumed run scores it
    assert "test: loss" in capsys.readouterr().err
    assert [row["step"] for row in metric_rows(tmp_path / "r") if "test_loss" in row] == [3]


def test_a_signal_while_the_classifier_is_evaluated_stops_it(tmp_path, capsys, monkeypatch):
    from rnnlab.training import classify_eval

    batches, original = [], classify_eval.scale_pixels

    def scale(images, dtype=np.float32):
        send_sigterm_once(batches)
        return original(images, dtype)

    monkeypatch.setattr(classify_eval, "scale_pixels", scale)
    paths = write_spike_idx(tmp_path, train_count=64, test_count=3000)  # three batches of 1,000 to score
    status = run_cli(["classify", "train", "--idx", *paths, "--out", tmp_path / "c", "--model", "gru",
                      "--hidden-size", "8", "--epochs", "3", "--batch-size", "32", "--val-size", "0"])
    err = capsys.readouterr().err
    assert status == 0 and len(batches) == 1, err  # one batch scored, then stopped
    assert "evaluation stopped by the signal" in err and "interrupted: saved the training state at epoch 1" in err


def test_sample_length_is_bounded(text_file, tmp_path, capsys):
    fails(capsys, ["train", text_file, "--out", tmp_path / "r", *TINY[:-2], "--sample-length", "10001"],
          "--sample-length 10001: must be in [0, 10,000]")


# --- lies: non-finite numbers ------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value", [("--lr", "inf"), ("--lr", "nan"), ("--grad-clip", "inf"),
                                         ("--epochs", "inf"), ("--time-budget", "inf")])
def test_non_finite_training_flags_are_refused(flag, value, text_file, tmp_path, capsys):
    fails(capsys, ["train", text_file, "--out", tmp_path / "r", *TINY, flag, value], f"{flag} {value}: must be")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flag, value", [("--lr", "inf"), ("--grad-clip", "inf"), ("--time-budget", "inf")])
def test_non_finite_classifier_flags_are_refused(flag, value, tmp_path, capsys):
    fails(capsys, ["classify", "train", "--idx", *write_spike_idx(tmp_path, 40, 10), "--out", tmp_path / "c",
                   flag, value], f"{flag} {value}: must be")


def test_nan_validation_never_saves_best_and_json_has_no_nan(text_file, tmp_path, capsys, monkeypatch):
    from rnnlab.training import charlm

    monkeypatch.setattr(charlm, "evaluate", lambda *args, **kwargs: (float("nan"), 100))
    assert run_cli(["train", text_file, "--out", tmp_path / "r", "--steps", "4", "--eval-every", "2", *TINY,
                    "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # strict JSON: NaN would not parse in most readers
    assert summary["val_bpc"] is None and summary["best_val_bpc"] is None
    assert "NaN" not in captured.out and "NaN" not in (tmp_path / "r" / "metrics.jsonl").read_text()
    assert not RunDirectory(tmp_path / "r").has_best()


def test_nan_weights_are_one_line_for_sample_and_eval(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run[0], run)
    weights = RunDirectory(run).load_weights("latest")
    weights["decoder.bias"][0] = np.nan
    RunDirectory(run).save_weights(weights)
    (run / "best.safetensors").unlink()
    fails(capsys, ["sample", run, "--checkpoint", "latest"], "NaN or infinite", "decoder.bias", "lower --lr")
    fails(capsys, ["eval", run, trained_run[1], "--json"], "NaN or infinite")


# --- one process per run directory --------------------------------------------------------------------------

def test_a_second_process_in_the_same_run_directory_gets_one_line_naming_the_pid(text_file, tmp_path, capsys):
    out = tmp_path / "r"
    with RunDirectory(out).lock():  # as another process training there would hold it
        fails(capsys, ["train", text_file, "--out", out, *TINY], f"another rnnlab process (PID {os.getpid()})",
              "is training in this run directory")
    assert main([str(a) for a in ["train", text_file, "--out", out, "--steps", "2", *TINY]]) == 0


def test_the_lock_of_a_killed_process_is_gone(text_file, tmp_path, capsys):
    out = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from rnnlab.training.rundir import RunDirectory
        with RunDirectory({str(out)!r}).lock():
            print("locked", flush=True)
            time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "locked"
        fails(capsys, ["train", text_file, "--out", out, *TINY], f"(PID {holder.pid})")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        holder.stdout.close()
    assert main([str(a) for a in ["train", text_file, "--out", out, "--steps", "2", *TINY]]) == 0


# --- the same class of input, elsewhere ----------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--idx", "--data-dir"])
def test_symlink_loop_in_a_classifier_path_is_one_line(flag, symlink_loop, tmp_path, capsys):
    paths = [symlink_loop] * 4 if flag == "--idx" else [symlink_loop]
    fails(capsys, ["classify", "train", flag, *paths, "--out", tmp_path / "c"], f"{flag} {symlink_loop}: cannot open")


def test_symlink_loop_as_val_file_is_one_line(symlink_loop, text_file, tmp_path, capsys):
    fails(capsys, ["train", text_file, "--val-file", symlink_loop, "--out", tmp_path / "r", *TINY],
          f"--val-file {symlink_loop}: cannot open")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_metrics_that_is_a_device_is_one_line_not_an_endless_read(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run[0], run)
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to("/dev/zero")  # reading it would never end
    fails(capsys, ["train", "--out", run, "--resume", "--steps", "6"], "metrics.jsonl: not a regular file")


def test_a_training_state_that_is_a_directory_is_one_line_and_nothing_is_removed(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run[0], run)
    (run / "training_state.safetensors").unlink()
    (run / "training_state.safetensors").mkdir()
    fails(capsys, ["train", "--out", run, "--resume", "--steps", "6"], "training_state.safetensors: not a regular file")
    assert (run / "model.safetensors").is_file() and (run / "best.safetensors").is_file()
