"""The char-LM training loop: learning, exact resume, evaluation, limits, non-finite losses, checkpoints."""
import io
import json
import math
import re

import numpy as np
import pytest

import rnnlab
from rnnlab.errors import RnnlabError
from rnnlab.models import CharRNN
from rnnlab.nn.loss import CrossEntropyLoss as RealCrossEntropyLoss
from rnnlab.training.charlm import LN2, cross_entropy_sum, evaluate, train
from rnnlab.training.config import TrainConfig

# ~450 characters: 12 batches per epoch at batch 4 x seq 8, so 40 steps cross several epoch borders
SMALL_TEXT = ("the cat sat on the mat. the dog sat on the log. a cat and a dog. " * 7)[:450]
TINY = dict(hidden_size=16, num_layers=2, seq_len=8, batch_size=4, eval_every=7, sample_length=12, eval_chars=500)


def corpus(tmp_path, text=SMALL_TEXT, name="small.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run_training(tmp_path, out="run", resume=False, **settings):
    values = {**TINY, **settings}
    values.setdefault("text_file", corpus(tmp_path))
    log = io.StringIO()
    result = train(TrainConfig(**values), tmp_path / out, resume=resume, stream=log)
    return result, log.getvalue()


def test_training_learns_a_repetitive_text(tmp_path):
    result, log = run_training(tmp_path, steps=60, lr=1e-2, eval_every=30)
    losses = [result.losses[step] for step in sorted(result.losses)]
    assert len(losses) == 60 and result.step == 60 and result.stop_reason == "steps"
    assert np.mean(losses[-10:]) < np.mean(losses[:5]) - 1.0  # starts near ln(vocab) ~ 2.9
    assert "val loss" in log and "bits/char" in log and "sample:" in log and "test: loss" in log
    assert result.test_loss is not None and result.best_val_loss == min(result.best_val_loss, result.val_loss)


@pytest.mark.parametrize("cell, dropout, dtype", [("lstm", 0.3, "float32"), ("gru", 0.0, "float32"),
                                                  ("rnn_relu", 0.2, "float64")])
def test_resume_continues_exactly(tmp_path, cell, dropout, dtype):
    settings = dict(model=cell, dropout=dropout, dtype=dtype)
    first, _ = run_training(tmp_path, out="a", steps=20, **settings)
    resumed, log = run_training(tmp_path, out="a", resume=True, steps=40, **settings)
    straight, _ = run_training(tmp_path, out="b", steps=40, **settings)
    assert "resuming" in log and min(resumed.losses) == 21
    assert {**first.losses, **resumed.losses} == straight.losses  # bit for bit, loss by loss
    from rnnlab.training.rundir import RunDirectory

    a, b = RunDirectory(tmp_path / "a").load_weights("latest"), RunDirectory(tmp_path / "b").load_weights("latest")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_different_model(tmp_path):
    run_training(tmp_path, out="a", steps=3)
    with pytest.raises(RnnlabError, match="--hidden-size 32 differs"):
        run_training(tmp_path, out="a", resume=True, steps=6, hidden_size=32)


def test_stop_limits(tmp_path):
    text_file = corpus(tmp_path)
    result, _ = run_training(tmp_path, out="epochs", epochs=1.0, text_file=text_file)
    assert result.stop_reason == "epochs" and result.step == 12
    result, _ = run_training(tmp_path, out="time", time_budget=0.05, eval_every=0, text_file=text_file)
    assert result.stop_reason == "time" and result.step >= 1


def test_evaluate_scores_every_character_after_the_first():
    rnnlab.manual_seed(0)
    model = CharRNN(6, hidden_size=5, num_layers=1, cell="lstm", dtype=np.float64)
    ids = rnnlab.backend.generator().integers(0, 6, size=41)
    loss, scored = evaluate(model, ids, batch_size=1, seq_len=7)  # one stream, read 7 steps at a time
    logits, _ = model(ids[:-1].reshape(-1, 1))
    expected = cross_entropy_sum(logits[:, 0], ids[1:]) / 40
    assert scored == 40 and loss == pytest.approx(expected, rel=1e-12)
    # a log-softmax check of cross_entropy_sum itself
    z = logits[:, 0]
    manual = -np.sum(z[np.arange(40), ids[1:]] - np.log(np.exp(z).sum(-1)))
    assert cross_entropy_sum(z, ids[1:]) == pytest.approx(manual, rel=1e-12)
    # several streams score all but the tail; a uniform model scores ln(V) nats, log2(V) bits
    model.decoder.weight.data[...] = 0
    model.decoder.bias.data[...] = 0
    loss, scored = evaluate(model, ids, batch_size=3, seq_len=4)
    assert scored == 39 and loss == pytest.approx(math.log(6)) and loss / LN2 == pytest.approx(math.log2(6))


class ScriptedLoss:
    """The real CrossEntropyLoss, except that calls listed in ``bad`` (1-based) return NaN or inf."""

    def __init__(self, bad: dict):
        self.calls, self.bad, self.criterion = 0, bad, RealCrossEntropyLoss()

    def __call__(self, logits, targets):
        self.calls += 1
        loss = self.criterion(logits, targets)
        return np.float32(self.bad[self.calls]) if self.calls in self.bad else loss

    def backward(self):
        return self.criterion.backward()


def test_a_loss_that_turns_nan_stops_training_with_the_last_checkpoint_intact(tmp_path, monkeypatch):
    from rnnlab.training.rundir import RunDirectory

    run_training(tmp_path, out="a", steps=5, checkpoint_every=1)
    saved, _, _ = RunDirectory(tmp_path / "a").load_training_state()
    monkeypatch.setattr("rnnlab.nn.CrossEntropyLoss", lambda: ScriptedLoss({n: "nan" for n in range(3, 100)}))
    with pytest.raises(RnnlabError, match=r"not finite for 4 steps in a row.*last checkpoint.*intact.*--lr"):
        run_training(tmp_path, out="a", resume=True, steps=100, checkpoint_every=1, max_bad_steps=4)
    weights, _, meta = RunDirectory(tmp_path / "a").load_training_state()
    # steps 6 and 7 trained and were saved; 8..11 were skipped and nothing after step 7 was saved
    assert meta["step"] == 7 and all(np.isfinite(value).all() for value in weights.values())
    assert any(not np.array_equal(weights[k], saved[k]) for k in saved)


def test_a_loss_that_is_nan_from_the_start_leaves_the_step_0_checkpoint(tmp_path, monkeypatch):
    from rnnlab.training.rundir import RunDirectory

    monkeypatch.setattr("rnnlab.nn.CrossEntropyLoss", lambda: ScriptedLoss({n: "nan" for n in range(1, 100)}))
    with pytest.raises(RnnlabError, match=r"not finite for 3 steps in a row .* the last checkpoint in .* is intact; "
                                          r"try a lower --lr"):
        run_training(tmp_path, steps=10, max_bad_steps=3)
    # the checkpoint written at the start: the untrained weights, and no best (no evaluation ran)
    assert RunDirectory(tmp_path / "run").load_training_state()[2]["step"] == 0
    assert not RunDirectory(tmp_path / "run").has_best()


def test_a_single_bad_step_is_skipped_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setattr("rnnlab.nn.CrossEntropyLoss", lambda: ScriptedLoss({3: "inf"}))
    result, log = run_training(tmp_path, steps=6, eval_every=0)
    assert result.step == 6 and math.isinf(result.losses[3]) and math.isfinite(result.losses[6])
    assert "warning: step 3: loss inf" in log and "step skipped" in log


def test_run_directory_contents(tmp_path, torch):
    result, _ = run_training(tmp_path, out="run", steps=8, eval_every=4)
    run = tmp_path / "run"
    assert {"config.json", "model.safetensors", "training_state.safetensors", "best.safetensors"} <= \
        {p.name for p in run.iterdir()}
    config = json.loads((run / "config.json").read_text())
    assert config["rnnlab_version"] == rnnlab.__version__ and config["format_version"] >= 1
    assert config["model"]["cell"] == "lstm" and config["model"]["hidden_size"] == 16
    assert "".join(config["vocabulary"]["symbols"]) == "".join(sorted(set(SMALL_TEXT)))
    safetensors_torch = pytest.importorskip("safetensors.torch")
    tensors = safetensors_torch.load_file(str(run / "model.safetensors"))
    lstm = torch.nn.LSTM(16, 16, 2)
    lstm.load_state_dict({k[len("rnn."):]: v for k, v in tensors.items() if k.startswith("rnn.")})
    assert set(tensors) == {"embedding.weight", "decoder.weight", "decoder.bias"} | \
        {"rnn." + name for name in lstm.state_dict()}
    from rnnlab.training.rundir import RunDirectory

    _, arrays, meta = RunDirectory(run).load_training_state()
    assert [entry["step"] for entry in meta["history"]] == [4, 8] and meta["step"] == result.step == 8
    assert {"hidden/0", "hidden/1"} <= set(arrays) and any(k.startswith("optimizer/") for k in arrays)


def test_without_evaluations_a_run_still_checkpoints_now_and_then(tmp_path, monkeypatch):
    # --eval-every 0 used to mean "checkpoint only at the end": a run killed mid-way lost everything
    from rnnlab.training.rundir import RunDirectory

    saved_at = []
    original = RunDirectory.save_latest
    monkeypatch.setattr(RunDirectory, "save_latest",
                        lambda self, state, meta, arrays=None: (saved_at.append(meta["step"]),
                                                                original(self, state, meta, arrays)))
    monkeypatch.setattr("rnnlab.training.charlm.CHECKPOINT_STEPS", 4)  # the fallback interval (200 by default)
    run_training(tmp_path, steps=10, eval_every=0)
    assert saved_at == [0, 4, 8, 10]  # the start, the fallback interval, the end


def test_a_test_split_larger_than_an_evaluation_is_announced(tmp_path):
    # the final score covers the whole test split, which can take a while after --time-budget ends: say so
    result, log = run_training(tmp_path, steps=2, eval_chars=10)
    assert re.search(r"scoring the test split \(\d+ characters\) \.\.\.\n", log)
    assert result.test_loss is not None
    _, quiet = run_training(tmp_path, out="quiet", steps=2)   # eval_chars 500 > the test split: no line
    assert "scoring the test split" not in quiet
