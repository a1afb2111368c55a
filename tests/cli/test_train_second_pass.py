"""`rnnlab train`'s second pass through the command line: schedules (and exact resume with each), fine-tuning,
several files and folders, --split/--val-file, checkpoint history (--keep, --checkpoint STEP/PATH), --plot,
--json, the first line; and every bad value as one line."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from helpers import fails, require_optional, run_cli
from rnnlab.training import loop
from rnnlab.training.rundir import RunDirectory

TEXT = ("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 12)
TINY = ["--hidden-size", "16", "--num-layers", "1", "--seq-len", "8", "--batch-size", "4", "--eval-chars", "400",
        "--sample-length", "0"]


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "verse.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def losses(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {row["step"]: row["loss"] for row in rows if "loss" in row}


def saved_lr(run) -> float:
    """The rate the optimizer holds after the last step: the schedule's rate for the next one."""
    _, _, meta = RunDirectory(run).load_training_state()
    return meta["optimizer"]["param_groups"][0]["lr"]


# --- schedules -------------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule", [
    ["--warmup", "3"],
    ["--lr-schedule", "step", "--lr-decay", "0.5", "--lr-decay-every", "4", "--min-lr", "0.0001"],
    ["--lr-schedule", "cosine", "--warmup", "2", "--min-lr", "0.0002"],
])
def test_resume_with_every_schedule_equals_a_run_never_stopped(tmp_path, text, capsys, monkeypatch, schedule):
    common = [text, *TINY, "--steps", "16", "--eval-every", "5", "--lr", "0.01", *schedule]
    assert run_cli(["train", *common, "--out", tmp_path / "straight"]) == 0
    original = loop.stop_reason

    def interrupted_at_step_7(step, *args, **kwargs):  # as a Ctrl-C after step 7
        return "interrupted" if step == 7 else original(step, *args, **kwargs)

    monkeypatch.setattr(loop, "stop_reason", interrupted_at_step_7)
    assert run_cli(["train", *common, "--out", tmp_path / "stopped"]) == 0
    monkeypatch.setattr(loop, "stop_reason", original)
    assert RunDirectory(tmp_path / "stopped").load_training_state()[2]["step"] == 7
    assert run_cli(["train", "--out", tmp_path / "stopped", "--resume"]) == 0
    capsys.readouterr()
    straight, resumed = losses(tmp_path / "straight"), losses(tmp_path / "stopped")
    assert sorted(straight) == list(range(1, 17)) and resumed == straight  # loss by loss, bit for bit
    a = RunDirectory(tmp_path / "straight").load_weights("latest")
    b = RunDirectory(tmp_path / "stopped").load_weights("latest")
    assert all(np.array_equal(a[name], b[name]) for name in a)


def test_schedules_set_the_rate_of_each_step(tmp_path, text, capsys):
    def after(steps, *flags):
        out = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        assert run_cli(["train", text, *TINY, "--steps", steps, "--lr", "0.01", "--out", out, *flags]) == 0
        return saved_lr(out)

    assert after("6", "--lr-decay", "0.5", "--lr-decay-every", "2") == pytest.approx(0.01 * 0.5 ** 3)  # implied step
    assert after("6", "--lr-schedule", "step", "--lr-decay", "0.1", "--lr-decay-every", "1",
                 "--min-lr", "0.0005") == pytest.approx(0.0005)
    assert after("6", "--lr-schedule", "cosine", "--min-lr", "0.001") == pytest.approx(0.001)
    assert after("3", "--warmup", "6") == pytest.approx(0.01 * 4 / 7)  # the rate of step 4: (t + 1) / (W + 1)
    assert after("3") == 0.01
    err = capsys.readouterr().err
    assert "lr 0.01 cosine to 0.001" in err and "x0.5 every 2 steps" in err and "warmup 6" in err


@pytest.mark.parametrize("flags, message", [
    (["--lr-schedule", "cosine"], "--lr-schedule cosine needs --steps or --epochs"),
    (["--lr-schedule", "cosine", "--steps", "5", "--warmup", "5"], "--warmup 5: must be below the run's 5 steps"),
    (["--lr-schedule", "linear"], "invalid choice: 'linear'"),
    (["--warmup", "-1", "--steps", "2"], "--warmup -1"),
    (["--warmup", "x"], "argument --warmup: invalid int value"),
    (["--min-lr", "-1", "--lr-schedule", "step"], "--min-lr -1.0: must be >= 0 and below --lr"),
    (["--min-lr", "0.1", "--lr-schedule", "step"], "below --lr"),
    (["--min-lr", "0.0001", "--steps", "2"], "--min-lr applies to --lr-schedule cosine or step"),
    (["--lr-decay", "0"], "--lr-decay 0.0: must be in (0, 1]"),
    (["--lr-decay", "nan"], "--lr-decay nan"),
    (["--lr-decay-every", "0"], "--lr-decay-every 0"),
    (["--lr-schedule", "cosine", "--steps", "9", "--lr-decay", "0.5"], "--lr-decay applies to --lr-schedule step"),
])
def test_bad_schedule_flags_are_one_line(tmp_path, text, capsys, flags, message):
    fails(capsys, ["train", text, *TINY, "--out", tmp_path / "r", *flags], message)
    assert not (tmp_path / "r").exists()


# --- the first line and --json -----------------------------------------------------------------------

def test_first_line_says_size_batch_data_stop_rule_and_compiled_path(tmp_path, text, capsys):
    assert run_cli(["train", text, *TINY, "--steps", "3", "--out", tmp_path / "r"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    vocabulary = len(set(TEXT))
    for part in ("training lstm 1x16 (", " parameters), batch 4x8", f"on {text} (", "training characters",
                 f"vocabulary {vocabulary})", "until step 3", "compiled path o"):
        assert part in first, (part, first)
    assert f"{int(len(TEXT) * 0.9):,} training characters" in first
    import rnnlab.fast

    assert first.endswith("compiled path " + ("on" if rnnlab.fast.enabled() else "off"))
    with rnnlab.fast.use(False):
        assert run_cli(["train", text, *TINY, "--steps", "1", "--out", tmp_path / "s"]) == 0
    assert capsys.readouterr().err.splitlines()[0].endswith("compiled path off")


def test_json_prints_one_summary_on_stdout_and_progress_on_stderr(tmp_path, text, capsys):
    assert run_cli(["train", text, *TINY, "--steps", "4", "--eval-every", "2", "--out", tmp_path / "r",
                    "--json"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1, captured.out
    summary = json.loads(lines[0])
    assert {"steps", "time", "val_bpc", "test_bpc", "run_dir"} <= set(summary)
    assert summary["steps"] == 4 and summary["run_dir"] == str(tmp_path / "r") and summary["time"] > 0
    assert 0 < summary["val_bpc"] < 10 and 0 < summary["test_bpc"] < 10 and "NaN" not in lines[0]
    assert "step 4" in captured.err and "val loss" in captured.err


# --- text layout --------------------------------------------------------------------------------------

def test_a_folder_with_glob_and_several_files(tmp_path, capsys):
    books = tmp_path / "books"
    (books / "act2").mkdir(parents=True)
    (books / "act1.txt").write_text(TEXT[:500], encoding="utf-8")
    (books / "act2" / "scene.txt").write_text(TEXT[500:], encoding="utf-8")   # no final newline: one is added
    (books / "notes.md").write_text("# not part of the play\n" * 20, encoding="utf-8")
    assert run_cli(["train", books, "--glob", "*.txt", *TINY, "--steps", "2", "--out", tmp_path / "r"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert f"on {books} (2 files) ({int((len(TEXT) + 1) * 0.9):,} training characters" in first
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["train"]["text_file"] == str(books.resolve()) and config["train"]["glob"] == "*.txt"
    assert "#" not in config["vocabulary"]["symbols"]
    # several TEXT arguments, read in the order given; resuming with the same ones is fine
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text(TEXT, encoding="utf-8")
    two.write_text("XYZ\n" * 50, encoding="utf-8")
    assert run_cli(["train", one, two, *TINY, "--steps", "2", "--out", tmp_path / "s"]) == 0
    assert "(2 files)" in capsys.readouterr().err
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert config["train"]["text_file"] == [str(one.resolve()), str(two.resolve())]
    assert run_cli(["train", one, two, "--out", tmp_path / "s", "--resume", "--steps", "3"]) == 0
    capsys.readouterr()
    fails(capsys, ["train", two, one, "--out", tmp_path / "s", "--resume", "--steps", "4"], "differs from the saved")


def test_split_and_val_file(tmp_path, text, capsys):
    assert run_cli(["train", text, *TINY, "--steps", "2", "--split", "0.8,0.15,0.05", "--out", tmp_path / "a"]) == 0
    assert f"{int(len(TEXT) * 0.8):,} training characters" in capsys.readouterr().err
    val = tmp_path / "val.txt"
    val.write_text("Whether 'tis nobler!\n" * 5, encoding="utf-8")
    assert run_cli(["train", text, *TINY, "--steps", "2", "--val-file", val, "--out", tmp_path / "b", "--json"]) == 0
    captured = capsys.readouterr()
    assert f"{len(TEXT):,} training characters" in captured.err and f"validating on {val.resolve()}" in captured.err
    assert "test: loss" not in captured.err and json.loads(captured.out)["test_bpc"] is None
    assert "!" in json.loads((tmp_path / "b" / "config.json").read_text())["vocabulary"]["symbols"]


def test_hostile_text_layouts_and_splits_are_one_line(tmp_path, text, capsys):
    (tmp_path / "empty").mkdir()
    fails(capsys, ["train", tmp_path / "empty", *TINY, "--out", tmp_path / "r"], "empty", "no non-empty file")
    fails(capsys, ["train", text.parent, "--glob", "*.rst", *TINY, "--out", tmp_path / "r"], "--glob '*.rst'")
    os.symlink(tmp_path / "loop-a", tmp_path / "loop-b")
    os.symlink(tmp_path / "loop-b", tmp_path / "loop-a")
    fails(capsys, ["train", tmp_path / "loop-a", *TINY, "--out", tmp_path / "r"], "loop-a", "symbolic link loop")
    fails(capsys, ["train", text, "--split", "0.9,0.2,0.1", *TINY, "--out", tmp_path / "r"], "sum to 1.2, not 1")
    fails(capsys, ["train", text, "--split", "1,0,0", *TINY, "--out", tmp_path / "r"], "validation part empty")
    fails(capsys, ["train", text, "--split", "0.9,0.1", *TINY, "--out", tmp_path / "r"], "three fractions")
    fails(capsys, ["train", text, "--split", "0.998,0.001,0.001", *TINY, "--out", tmp_path / "r"],
          "leaves the validation part")
    fails(capsys, ["train", text, "--split", "0.8,0.1,0.1", "--val-file", text, *TINY, "--out", tmp_path / "r"],
          "--split and --val-file exclude each other")
    fails(capsys, ["train", text, "--val-file", tmp_path / "nope.txt", *TINY, "--out", tmp_path / "r"],
          "--val-file", "nope.txt")
    assert not (tmp_path / "r").exists()


# --- fine-tuning ----------------------------------------------------------------------------------

def test_init_from_starts_from_the_best_weights_and_appends_new_characters(tmp_path, text, capsys):
    assert run_cli(["train", text, *TINY, "--steps", "4", "--eval-every", "2", "--out", tmp_path / "base"]) == 0
    capsys.readouterr()
    new_text = tmp_path / "new.txt"
    new_text.write_text("Wherefore art thou, Romeo? Zounds! 42\n" * 20, encoding="utf-8")
    assert run_cli(["train", new_text, "--init-from", tmp_path / "base", "--out", tmp_path / "tuned", "--steps", "2",
                    "--seq-len", "8", "--batch-size", "4", "--eval-chars", "400", "--sample-length", "0"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    base = json.loads((tmp_path / "base" / "config.json").read_text())
    tuned = json.loads((tmp_path / "tuned" / "config.json").read_text())
    old, new = base["vocabulary"]["symbols"], tuned["vocabulary"]["symbols"]
    added = sorted(set("Wherefore art thou, Romeo? Zounds! 42\n") - set(old))
    assert new == old + "".join(added)                        # old ids unchanged, new ones appended
    assert f"vocabulary {len(new)}, {len(added)} new" in first and "lstm 1x16" in first
    assert f"starting from the best weights of {tmp_path / 'base'}" in first
    assert tuned["model"]["hidden_size"] == 16 and tuned["model"]["vocab_size"] == len(new)
    assert tuned["train"]["init_from"] == str(tmp_path / "base")
    # the tuned run samples with its own vocabulary, new characters included
    assert run_cli(["sample", tmp_path / "tuned", "--prime", "Zounds", "--length", "5", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("Zounds")


def test_init_from_mistakes_are_one_line(tmp_path, text, capsys):
    assert run_cli(["train", text, *TINY, "--steps", "2", "--out", tmp_path / "base"]) == 0
    capsys.readouterr()
    fails(capsys, ["train", text, "--init-from", tmp_path / "base", "--hidden-size", "32", "--out", tmp_path / "t"],
          "--hidden-size 32 differs from", "base")
    fails(capsys, ["train", text, "--init-from", tmp_path / "base", "--bytes", "--out", tmp_path / "t"], "--bytes")
    fails(capsys, ["train", text, "--init-from", tmp_path / "nowhere", "--out", tmp_path / "t"], "nowhere")
    fails(capsys, ["train", text, "--init-from", tmp_path / "base", "--resume", "--out", tmp_path / "base"],
          "--init-from starts a new run")


def test_transplant_copies_old_rows_and_keeps_new_rows_fresh():
    import rnnlab
    from rnnlab.data import Vocabulary
    from rnnlab.models import CharRNN
    from rnnlab.training.finetune import transplant

    old_vocab = Vocabulary.from_text("abc")
    rnnlab.manual_seed(0)
    old = CharRNN(old_vocab, hidden_size=6, num_layers=2)
    new_vocab = old_vocab.extended("xy")
    rnnlab.manual_seed(1)
    new = CharRNN(new_vocab, hidden_size=6, num_layers=2)
    fresh = {name: np.array(value, copy=True) for name, value in new.state_dict().items()}
    transplant(new, old)
    before, after = old.state_dict(), new.state_dict()
    for name in after:
        if name in ("embedding.weight", "decoder.weight", "decoder.bias"):
            assert np.array_equal(after[name][:3], before[name]) and np.array_equal(after[name][3:], fresh[name][3:])
        else:
            assert np.array_equal(after[name], before[name]), name


# --- checkpoint history ------------------------------------------------------------------------------

def test_keep_writes_history_and_sample_eval_load_take_a_step_or_a_path(tmp_path, text, capsys):
    run = tmp_path / "r"
    assert run_cli(["train", text, *TINY, "--steps", "8", "--checkpoint-every", "2", "--keep", "2",
                    "--out", run]) == 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000006.safetensors",
                                                                       "step-000008.safetensors"]
    capsys.readouterr()
    assert run_cli(["sample", run, "--checkpoint", "6", "--length", "10", "--seed", "3"]) == 0
    assert len(capsys.readouterr().out) > 10
    assert run_cli(["eval", run, text, "--checkpoint", "6", "--json"]) == 0
    at_6 = json.loads(capsys.readouterr().out)
    assert at_6["checkpoint"] == "step 6"
    path = run / "checkpoints" / "step-000008.safetensors"
    assert run_cli(["eval", run, text, "--checkpoint", path, "--json"]) == 0
    at_path = json.loads(capsys.readouterr().out)
    assert run_cli(["eval", run, text, "--checkpoint", "latest", "--json"]) == 0
    latest = json.loads(capsys.readouterr().out)
    assert at_path["loss"] == latest["loss"] != at_6["loss"]   # step 8 is the latest
    import rnnlab

    model = rnnlab.load(run, checkpoint=6)
    assert model.vocabulary is not None and not model.training
    fails(capsys, ["sample", run, "--checkpoint", "4"], "--checkpoint 4", "the history holds steps 6, 8")
    fails(capsys, ["eval", run, text, "--checkpoint", tmp_path / "nope.safetensors"], "no such weights file")
    fails(capsys, ["sample", run, "--checkpoint", "newest"], "must be best, latest, a step number")
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(path.read_bytes()[:100])
    fails(capsys, ["sample", run, "--checkpoint", damaged], "damaged.safetensors", "not a valid safetensors file")


def test_keep_must_not_be_negative(tmp_path, text, capsys):
    fails(capsys, ["train", text, *TINY, "--keep", "-1", "--out", tmp_path / "r"], "--keep -1")


# --- curves -----------------------------------------------------------------------------------------

def test_plot_redraws_curves_at_each_evaluation(tmp_path, text, capsys):
    require_optional("matplotlib")
    run = tmp_path / "r"
    assert run_cli(["train", text, *TINY, "--steps", "6", "--eval-every", "3", "--plot", "--out", run]) == 0
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert run_cli(["plot", run, "--out", tmp_path / "c.png"]) == 0 and (tmp_path / "c.png").is_file()


def test_plot_without_matplotlib_is_one_line_before_training(tmp_path, text, capsys, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    fails(capsys, ["train", text, *TINY, "--steps", "2", "--plot", "--out", tmp_path / "r"],
          "--plot needs matplotlib", "pip install 'rnnlab[plot]'")
    assert not (tmp_path / "r").exists()
