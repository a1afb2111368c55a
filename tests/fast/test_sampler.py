"""The compiled one-stream sampler (rnnlab.fast.sampler) against the layer path and the NumPy draw."""
import numpy as np
import pytest

from helpers import require_optional  # noqa: E402  (numba: skip locally, fail under CI)

require_optional("numba")

import rnnlab  # noqa: E402
from rnnlab.data import Vocabulary  # noqa: E402
from rnnlab.models import CharRNN, charrnn, sample_from_logits  # noqa: E402
from rnnlab import fast  # noqa: E402
from rnnlab.fast.sampler import CHUNK, CompiledSampler, draw_index  # noqa: E402
from compiled_paths import compiled_path  # noqa: E402

TEXT = "hello world, the quick brown fox jumps over the lazy dog. 안녕 세상"
CELLS = ["rnn", "rnn_relu", "lstm", "gru"]


def make_model(cell="lstm", num_layers=2, hidden_size=12, seed=4):
    rnnlab.manual_seed(seed)
    return CharRNN(Vocabulary.from_text(TEXT), hidden_size=hidden_size, num_layers=num_layers, cell=cell,
                   embedding_size=6, dropout=0.5 if num_layers > 1 else 0.0)


def assert_state_close(compiled_state, layer_state):
    pairs = zip(compiled_state, layer_state) if isinstance(layer_state, tuple) else [(compiled_state, layer_state)]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_compiled_step_equals_the_layer_path(cell, num_layers):
    model = make_model(cell, num_layers)
    model.eval()  # dropout off, as in generation
    # start from a non-zero state, as after a prime
    _, layer_state = model.step(model.vocabulary.encode("qu"[:1]), None)
    logits_layer, layer_state = model.step(model.vocabulary.encode("u"), layer_state)
    sampler = CompiledSampler(model, layer_state, logits_layer)
    assert_state_close(sampler.state(), layer_state)
    for token in model.vocabulary.encode("ick brown 세상"):
        logits = sampler.step(token)
        logits_layer, layer_state = model.step(np.array([token]), layer_state)
        np.testing.assert_allclose(logits, logits_layer[0], rtol=1e-5, atol=1e-6)
        assert_state_close(sampler.state(), layer_state)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_blas_products_equal_the_compiled_ones(cell):
    model = make_model(cell, num_layers=2, hidden_size=40)
    serial, threaded = CompiledSampler(model, blas=False), CompiledSampler(model, blas=True)
    for token in model.vocabulary.encode("the lazy dog"):
        np.testing.assert_allclose(threaded.step(token), serial.step(token), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(threaded.c if cell == "lstm" else threaded.h, serial.c if cell == "lstm" else serial.h,
                               rtol=1e-5, atol=1e-6)
    # both loops draw the same uniforms: the same seed gives the same text on either
    texts = [list(CompiledSampler(model, blas=blas).generate_ids(2 * CHUNK + 3, np.random.default_rng(9),
                                                                 temperature=0.8)) for blas in (False, True)]
    assert texts[0] == texts[1]


def numpy_path(monkeypatch):
    monkeypatch.setattr(charrnn, "use_compiled_sampling", lambda model, num_samples, length=None: False)


def test_generate_takes_the_compiled_path_for_one_float32_stream(monkeypatch):
    model = make_model()
    calls = []
    original = CompiledSampler.generate_ids

    def spy(self, *args, **kwargs):
        calls.append(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CompiledSampler, "generate_ids", spy)
    with compiled_path("sampler"):                                 # even under RNNLAB_FAST=0
        assert len(model.sample("he", 10, seed=0)) == 10 and calls == [10]
        list(model.generate_batch("he", 5, num_samples=3, seed=0))    # several streams: the NumPy path
        assert calls == [10]
        assert not charrnn.use_compiled_sampling(CharRNN(5, hidden_size=4, dtype=np.float64), 1)
    with fast.use(False):                                          # the reference: the NumPy path
        assert not charrnn.use_compiled_sampling(model, 1)
        model.sample("he", 10, seed=0)
    assert calls == [10]


@pytest.mark.parametrize("cell", CELLS)
def test_greedy_gives_the_numpy_paths_characters(cell, monkeypatch):
    model = make_model(cell, hidden_size=24, seed=11)
    with compiled_path("sampler"):
        compiled = model.sample("the qu", 2 * CHUNK + 7, greedy=True)
    numpy_path(monkeypatch)
    assert model.sample("the qu", 2 * CHUNK + 7, greedy=True) == compiled
    assert len(set(compiled)) > 1  # not a degenerate one-character loop


def test_same_seed_same_sample_across_chunks():
    model = make_model("lstm")
    first = model.sample("he", 3 * CHUNK + 5, seed=3, temperature=1.3)
    assert len(first) == 3 * CHUNK + 5
    assert model.sample("he", 3 * CHUNK + 5, seed=3, temperature=1.3) == first
    assert model.sample("he", 3 * CHUNK + 5, seed=4, temperature=1.3) != first
    # the global generator: manual_seed fixes the sample too
    rnnlab.manual_seed(21)
    global_first = model.sample("he", 100, temperature=1.3)
    rnnlab.manual_seed(21)
    assert model.sample("he", 100, temperature=1.3) == global_first
    # a shorter sample is the start of a longer one (one uniform per character, in order)
    assert model.sample("he", 70, seed=3, temperature=1.3) == first[:70]


class FixedUniform:
    """Stands in for a numpy Generator in sample_from_logits: every draw is u."""

    def __init__(self, u):
        self.u = u

    def random(self, shape):
        return np.full(shape, self.u)


@pytest.mark.parametrize("options", [dict(), dict(temperature=0.6), dict(temperature=1.7, top_k=5),
                                     dict(top_k=1), dict(top_p=0.8), dict(top_p=0.3, top_k=7, temperature=0.9),
                                     dict(top_p=1e-9), dict(greedy=True)])
def test_compiled_draw_is_the_numpy_inverse_cdf(options):
    rng = np.random.default_rng(5)
    for vocab in (2, 17, 65, 256):
        for _ in range(40):
            logits = (rng.normal(size=vocab) * rng.uniform(0.5, 4)).astype(np.float32)
            if vocab > 8:
                logits[3] = logits[5]  # a tie: kept together by top_k, ordered stably by top_p
            u = rng.random()
            expected = int(sample_from_logits(logits[None], rng=FixedUniform(u), **options)[0])
            assert draw_index(logits, uniform=u, **options) == expected


def test_compiled_draw_follows_temperature_top_k_and_top_p():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))
    grid = (np.arange(4000) + 0.5) / 4000   # evenly spread uniforms: frequencies are the probabilities

    def frequencies(**options):
        return np.bincount([draw_index(logits, uniform=u, **options) for u in grid], minlength=4) / len(grid)

    np.testing.assert_allclose(frequencies(), [0.5, 0.3, 0.15, 0.05], atol=1e-3)
    sharp = np.sqrt([0.5, 0.3, 0.15, 0.05])
    np.testing.assert_allclose(frequencies(temperature=2.0), sharp / sharp.sum(), atol=1e-3)
    np.testing.assert_allclose(frequencies(top_k=2), [0.625, 0.375, 0, 0], atol=1e-3)
    np.testing.assert_allclose(frequencies(top_p=0.7), [0.625, 0.375, 0, 0], atol=1e-3)
    np.testing.assert_allclose(frequencies(top_p=0.5), [1, 0, 0, 0], atol=1e-3)
    np.testing.assert_allclose(frequencies(greedy=True), [1, 0, 0, 0], atol=1e-3)


def test_sampling_options_in_generate():
    model = make_model("gru", hidden_size=24)
    greedy = model.sample("he", 80, greedy=True)
    assert model.sample("he", 80, top_k=1, seed=1) == greedy
    assert model.sample("he", 80, top_p=1e-9, seed=2) == greedy
    assert model.sample("he", 80, temperature=1e-4, seed=3) == greedy
    assert model.sample("he", 80, temperature=5.0, seed=3) != greedy


def test_sampled_characters_follow_the_models_distribution():
    """Chi-square-like check: the compiled stream's next-character frequencies, after a fixed prime,
    match the softmax of the layer path's logits."""
    model = make_model("lstm", hidden_size=16, seed=2)
    model.eval()
    logits, state = model._prime("th", 1)
    probs = np.exp(logits[0] - logits[0].max())
    probs /= probs.sum()
    rng = np.random.default_rng(0)
    counts = np.zeros(len(probs))
    for _ in range(4000):
        sampler = CompiledSampler(model, state, logits)
        counts[next(sampler.generate_ids(1, rng))] += 1
    four_sigma = 4 * np.sqrt(probs * (1 - probs) / 4000) + 1e-9
    assert np.all(np.abs(counts / 4000 - probs) <= four_sigma), (counts / 4000, probs)
    assert probs.max() < 0.5 and (counts > 0).sum() > 5   # a spread distribution: the check means something


def test_step_rejects_an_id_outside_the_vocabulary():
    sampler = CompiledSampler(make_model())
    with pytest.raises(ValueError, match="out of range"):
        sampler.step(10_000)


@pytest.mark.parametrize("cell", CELLS)
def test_seeded_text_is_the_numpy_paths_text(cell, monkeypatch):
    """The compiled path draws the same float64 uniforms in the same order (a block per chunk instead of
    one per character) and inverts the same CDF, so a seed gives the NumPy path's text; only a logit
    rounded differently right at a CDF boundary could change a character (not seen here)."""
    model = make_model(cell, hidden_size=24, seed=12)
    options = [dict(seed=3), dict(seed=4, temperature=0.7, top_k=9), dict(seed=5, top_p=0.9, temperature=1.3)]
    with compiled_path("sampler"):
        compiled = [model.sample("the qu", 2 * CHUNK + 9, **kwargs) for kwargs in options]
    numpy_path(monkeypatch)
    assert [model.sample("the qu", 2 * CHUNK + 9, **kwargs) for kwargs in options] == compiled
    rnnlab.manual_seed(8)
    from_global = model.sample("the qu", 50)
    rnnlab.manual_seed(8)
    monkeypatch.undo()
    with compiled_path("sampler"):
        assert model.sample("the qu", 50) == from_global


def test_a_short_stream_in_a_fresh_process_stays_on_numpy_and_a_long_one_is_compiled():
    """The compiled sampler's one-off cost (numba's import, its kernels loaded) is paid only when the
    work pays it back: a short sample imports no numba, prime included; a long one runs compiled."""
    code = ("import sys, rnnlab, rnnlab.fast as fast; from rnnlab.models import CharRNN, charrnn; "
            "from rnnlab.data import Vocabulary; rnnlab.manual_seed(0); "
            "m = CharRNN(Vocabulary.from_text('abcdefgh'), hidden_size=64, num_layers=2); "
            "short = m.sample('abc', 50, seed=1); print('numba' in sys.modules, fast.calls['sampler']); "
            "long_enough = int(charrnn.COMPILED_SAMPLING_MIN_WORK // 100_000); "
            "print(charrnn.use_compiled_sampling(m, 1, 50), charrnn.use_compiled_sampling(m, 1, long_enough)); "
            "text = m.sample('abc', long_enough, seed=1); print('numba' in sys.modules, fast.calls['sampler'], "
            "text[:50] == short)")
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RNNLAB_FAST"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "0", "False", "True", "True", "1", "True"]
