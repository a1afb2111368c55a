"""rnnlab.bench, the harness behind `rnnlab bench` and benchmarks/speed.py: batches, steps, medians, the suite."""
from __future__ import annotations

import numpy as np

from rnnlab.bench import (SUITE, BenchConfig, char_batches, interleaved_medians, measure_suite, rnnlab_sampler,
                          rnnlab_trainer)

TINY = BenchConfig("tiny", "rnn", 8, 1, batch_size=4, seq_len=5, vocab_size=7)


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
