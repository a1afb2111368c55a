"""data.pairs: SymbolVocabulary (specials, char and token levels, unknown symbols, config round trip) and
padded, time-major pair batches (shapes, framing with <bos>/<eos>, seeded bucketed orders)."""
from __future__ import annotations

import numpy as np
import pytest

from rnnlab.data.pairs import (BOS_ID, EOS_ID, PAD_ID, UNK_ID, PairBatches, SymbolVocabulary, make_pair_batch,
                               pad_sequences)
from rnnlab.errors import RnnlabError


def test_char_vocabulary_encodes_decodes_and_counts_unknowns():
    vocab = SymbolVocabulary.build(["2009-06-25", "1999-12-31"])
    assert len(vocab) == 4 + len(set("2009-06-251999-12-31"))
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (PAD_ID, BOS_ID, EOS_ID, UNK_ID)
    ids = vocab.encode("2009-07", bos=True, eos=True)
    assert ids.dtype == np.int64 and ids[0] == BOS_ID and ids[-1] == EOS_ID and UNK_ID in ids
    assert vocab.decode(ids) == "2009-0<unk>"
    assert vocab.unknown("7 77x") == ["7", " ", "x"]
    assert vocab.decode(np.array([vocab.encode("12")[0], EOS_ID, vocab.encode("9")[0]])) == "1"
    assert vocab.decode(np.array([BOS_ID, EOS_ID]), strip=False) == "<bos><eos>"


def test_token_vocabulary_and_min_count():
    vocab = SymbolVocabulary.build(["the cat sat", "the dog"], level="token", min_count=2)
    assert vocab.symbols == ("the",)
    assert vocab.decode(vocab.encode("the cat")) == "the <unk>"
    full = SymbolVocabulary.build(["the cat sat", "the dog"], level="token")
    assert full.decode(full.encode("  the   dog sat ")) == "the dog sat"


def test_config_round_trip_and_damage():
    vocab = SymbolVocabulary.build(["héllo wörld"])
    assert SymbolVocabulary.from_config(vocab.to_config()) == vocab
    with pytest.raises(RnnlabError, match="damaged"):
        SymbolVocabulary.from_config({"level": "char", "symbols": ["a", "a"]})
    with pytest.raises(RnnlabError, match="damaged"):
        SymbolVocabulary.from_config({"level": "char", "size": 9, "symbols": ["a"]})
    with pytest.raises(ValueError, match="reserved"):
        SymbolVocabulary(["<eos>"])
    with pytest.raises(ValueError, match="one-character"):
        SymbolVocabulary(["ab"])


def test_pair_batch_frames_targets_and_pads_time_major():
    sources = [np.array([5, 6, 7]), np.array([8])]
    targets = [np.array([9]), np.array([10, 11, 12])]
    batch = make_pair_batch(sources, targets)
    assert batch.source.tolist() == [[5, 8], [6, 0], [7, 0]] and batch.source_lengths.tolist() == [3, 1]
    assert batch.target_input.tolist() == [[1, 1], [9, 10], [0, 11], [0, 12]]
    assert batch.target_output.tolist() == [[9, 10], [2, 11], [0, 12], [0, 2]]
    assert batch.target_lengths.tolist() == [2, 4] and batch.num_target_tokens == 6 and batch.size == 2
    no_targets = make_pair_batch(sources)
    assert no_targets.target_input is None and no_targets.num_target_tokens == 0
    with pytest.raises(ValueError, match="source sequence 1 is empty"):
        make_pair_batch([np.array([4]), np.array([], dtype=np.int64)])
    ids, lengths = pad_sequences([np.array([4, 4]), np.array([5])], pad_id=0)
    assert ids.shape == (2, 2) and lengths.tolist() == [2, 1]


def test_batches_cover_the_data_once_in_a_seeded_order():
    rng = np.random.default_rng(0)
    sources = [rng.integers(4, 9, rng.integers(1, 12)) for _ in range(250)]
    targets = [s[::-1] for s in sources]
    data = PairBatches(sources, targets, batch_size=16)
    assert len(data) == 16
    order = data.order(np.random.default_rng(5))
    assert sorted(np.concatenate(order).tolist()) == list(range(250))
    again = data.order(np.random.default_rng(5))
    assert all(np.array_equal(a, b) for a, b in zip(order, again))
    plain = [b.tolist() for b in data.order()]
    assert plain[0] == list(range(16)) and plain[-1] == list(range(240, 250))
    # bucketing: batches of similar source lengths carry less padding than a plain shuffle's
    unbucketed = PairBatches(sources, targets, batch_size=16, bucket=False)

    def padding(batches):
        return sum(b.source.size - b.source_lengths.sum() for b in batches)

    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    assert padding(data.epoch(rng_a)) < padding(unbucketed.epoch(rng_b))
    batch = data.batch(order[0])
    np.testing.assert_array_equal(batch.indices, order[0])
    for column, index in enumerate(batch.indices):
        np.testing.assert_array_equal(batch.source[:len(sources[index]), column], sources[index])
