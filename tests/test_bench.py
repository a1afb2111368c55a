"""rnnlab.bench, the harness behind `rnnlab bench` and benchmarks/speed.py: batches, steps, medians, the suite."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rnnlab.bench import (SEQ2SEQ, SUITE, BenchConfig, char_batches, interleaved_medians, measure_suite,
                          rnnlab_sampler, rnnlab_seq2seq_trainer, rnnlab_trainer, seq2seq_setup)

TINY = BenchConfig("tiny", "rnn", 8, 1, batch_size=4, seq_len=5, vocab_size=7)
TINY_SEQ2SEQ = dict(SEQ2SEQ, hidden=16, batch=8)
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_torch_seq2seq(torch):
    """benchmarks/torch_seq2seq.py (the Seq2Seq's PyTorch twin, speed.py's and patterns.py's peer) as a module."""
    spec = importlib.util.spec_from_file_location("torch_seq2seq", BENCHMARKS / "torch_seq2seq.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_char_batches_are_shifted_windows_of_the_text():
    text = np.arange(100) % 7
    pairs = char_batches(TINY, 3, text_ids=text)
    assert len(pairs) == 3
    for x, y in pairs:
        assert x.shape == y.shape == (5, 4)
        # y is x one character later: consecutive positions of the same window
        np.testing.assert_array_equal(y[:-1], x[1:])
        np.testing.assert_array_equal(y, (x + 1) % 7)


def test_char_batches_without_text_stay_in_the_vocabulary():
    x, y = char_batches(TINY, 1)[0]
    assert x.min() >= 0 and max(x.max(), y.max()) < TINY.vocab_size


def test_rnnlab_trainer_lowers_the_loss_on_a_repeated_batch():
    step = rnnlab_trainer(TINY, lr=1e-2)
    x, y = char_batches(TINY, 1, text_ids=np.arange(200) % 7)[0]
    losses = [step(x, y) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]


def test_rnnlab_sampler_draws_ids_in_the_vocabulary():
    ids = rnnlab_sampler(TINY, streams=3)(10)
    assert np.asarray(ids).shape == (3,)
    assert all(0 <= int(i) < TINY.vocab_size for i in ids)


def test_interleaved_medians_reports_units_per_second_per_workload():
    calls = []
    rates = interleaved_medians({"a": (lambda: calls.append("a"), 10), "b": (lambda: calls.append("b"), 20)},
                                rounds=3, warmup=1, pause=0.0)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed rounds, alternated
    assert set(rates) == {"a", "b"} and rates["a"] > 0 and rates["b"] > 0


def test_measure_suite_rows_name_their_configuration():
    results = measure_suite([SUITE[3]], threads=1, rounds=1, with_torch=False)
    assert results["torch"] is False and results["matmul_gflops"] > 0
    (row,) = results["rows"]
    assert row["config"]["name"] == "RNN tanh 1x100" and row["config"]["hidden_size"] == 100
    assert set(row["train_chars_per_s"]) == {"rnnlab"} and row["train_chars_per_s"]["rnnlab"] > 0


def test_seq2seq_setup_gives_full_bucketed_batches_of_the_task():
    model, batches = seq2seq_setup(3, TINY_SEQ2SEQ)
    assert len(batches) == 3 and model.bidirectional and model.attention_score == "general"
    for batch in batches:
        assert batch.source.shape[1] == batch.target_input.shape[1] == 8
        assert batch.source_lengths.max() == batch.source.shape[0]      # padded to the longest source only
        symbols = ~np.isin(batch.target_output[:-1], [model.pad_id, model.eos_id])   # teacher forcing: shifted
        np.testing.assert_array_equal(batch.target_input[1:][symbols], batch.target_output[:-1][symbols])
        assert (batch.target_input[0] == model.bos_id).all()


def test_rnnlab_seq2seq_trainer_lowers_the_loss_on_a_repeated_batch():
    model, (batch,) = seq2seq_setup(1, TINY_SEQ2SEQ)
    step = rnnlab_seq2seq_trainer(model, lr=1e-2)
    losses = [step(batch) for _ in range(40)]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("settings", [TINY_SEQ2SEQ, dict(TINY_SEQ2SEQ, attention="additive", cell="gru"),
                                      dict(TINY_SEQ2SEQ, attention=None, bidirectional=False)],
                         ids=["bilstm-general", "bigru-additive", "lstm-no-attention"])
def test_seq2seq_training_steps_of_rnnlab_and_torch_give_the_same_losses(torch, settings):
    """speed.py's seq2seq row compares the same work: from the same weights, on the same batches, the
    losses of three steps (forward; then backward, clip and Adam too) agree to float32 precision."""
    torch_seq2seq = load_torch_seq2seq(torch)
    losses = torch_seq2seq.first_losses(settings, steps=3)
    assert len(losses["rnnlab"]) == len(losses["torch"]) == 3
    assert losses["max_abs_difference"] < 1e-4, losses
    assert len(set(losses["rnnlab"])) == 3          # three different steps, not one loss repeated


def test_the_torch_twin_of_another_model_gives_other_losses(torch):
    """The agreement above is not vacuous: a twin from different initial weights disagrees."""
    torch_seq2seq = load_torch_seq2seq(torch)
    model, batches = seq2seq_setup(3, TINY_SEQ2SEQ)
    other, _ = seq2seq_setup(1, dict(TINY_SEQ2SEQ, seed=7))
    theirs = torch_seq2seq.TorchSeq2SeqTrainer(model, twin=torch_seq2seq.twin_of(other))
    ours = rnnlab_seq2seq_trainer(model)
    assert max(abs(ours(batch) - theirs(batch)) for batch in batches) > 1e-2
