"""BatchStreams: the layout of contiguous streams, continuity between batches, resuming, too-short data."""
from __future__ import annotations

import numpy as np
import pytest

from rnnlab.data import BatchStreams, Vocabulary
from rnnlab.errors import RnnlabError


def test_layout_is_time_major_streams():
    ids = np.arange(103, dtype=np.uint16)
    streams = BatchStreams(ids, batch_size=4, seq_len=5)
    assert streams.stream_length == 25 and len(streams) == 4  # (25 - 1) // 5
    for k in range(len(streams)):
        x, y = streams.batch(k)
        assert x.shape == y.shape == (5, 4) and x.dtype == y.dtype == np.intp
        for b in range(4):
            start = b * 25 + k * 5
            np.testing.assert_array_equal(x[:, b], ids[start:start + 5])
            np.testing.assert_array_equal(y[:, b], ids[start + 1:start + 6])  # y is x shifted by one


def test_streams_continue_from_batch_to_batch():
    ids = np.random.default_rng(0).integers(0, 50, size=997).astype(np.uint8)
    streams = BatchStreams(ids, batch_size=3, seq_len=7)
    batches = [streams.batch(k) for k in range(len(streams))]
    for (x, y), (next_x, _) in zip(batches, batches[1:]):
        # the last target of batch k in stream b is the first input of batch k+1 in stream b
        np.testing.assert_array_equal(y[-1], next_x[0])
    # gluing the x's of one stream over an epoch gives that stream's text, in order
    for b in range(3):
        glued = np.concatenate([x[:, b] for x, _ in batches])
        np.testing.assert_array_equal(glued, ids[b * streams.stream_length:][:len(glued)])


def test_exactly_one_batch_and_one_short():
    assert len(BatchStreams(np.arange(2 * 6), batch_size=2, seq_len=5)) == 1
    with pytest.raises(RnnlabError) as error:
        BatchStreams(np.arange(2 * 6 - 1), batch_size=2, seq_len=5, name="the validation split")
    message = str(error.value)
    assert "the validation split has 11 characters" in message and "12" in message
    assert "--batch-size" in message and "--seq-len" in message and "\n" not in message


def test_bad_arguments():
    with pytest.raises(RnnlabError, match="batch_size"):
        BatchStreams(np.arange(100), batch_size=0, seq_len=5)
    with pytest.raises(RnnlabError, match="seq_len"):
        BatchStreams(np.arange(100), batch_size=2, seq_len=2.5)
    with pytest.raises(ValueError, match="1-D"):
        BatchStreams(np.zeros((10, 10)), batch_size=2, seq_len=2)
    with pytest.raises(IndexError):
        BatchStreams(np.arange(100), batch_size=2, seq_len=5).batch(9)


def test_iteration_covers_an_epoch_and_wraps():
    streams = BatchStreams(np.arange(64), batch_size=2, seq_len=4)  # S = 32, 7 batches
    seen = [(k, streams.position, streams.epoch) for k, _, _ in streams.epoch_batches()]
    # position already points at the next batch inside the loop body; after the last batch it wraps
    assert seen == [(0, 1, 0), (1, 2, 0), (2, 3, 0), (3, 4, 0), (4, 5, 0), (5, 6, 0), (6, 0, 1)]
    assert len(list(streams)) == 7 and streams.epoch == 2 and streams.position == 0
    assert BatchStreams.starts_epoch(0) and not BatchStreams.starts_epoch(3)


def test_resume_continues_exactly():
    ids = np.random.default_rng(1).integers(0, 30, size=500).astype(np.uint8)
    uninterrupted = BatchStreams(ids, batch_size=4, seq_len=6)
    expected = [x for epoch in range(2) for x, _ in uninterrupted]

    first_run = BatchStreams(ids, batch_size=4, seq_len=6)
    got = []
    for k, x, _ in first_run.epoch_batches():
        got.append(x)
        if k == 8:
            state = first_run.state_dict()  # saved after batch 8, as a checkpoint would be
            break
    resumed = BatchStreams(ids, batch_size=4, seq_len=6)
    resumed.load_state_dict(state)
    assert (resumed.position, resumed.epoch) == (9, 0)
    got += [x for x, _ in resumed] + [x for x, _ in resumed]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert resumed.epoch == 2


def test_resume_with_other_sizes_is_refused():
    state = BatchStreams(np.arange(500), batch_size=4, seq_len=6).state_dict()
    with pytest.raises(RnnlabError, match="--batch-size"):
        BatchStreams(np.arange(500), batch_size=5, seq_len=6).load_state_dict(state)
    with pytest.raises(RnnlabError, match="--seq-len"):
        BatchStreams(np.arange(500), batch_size=4, seq_len=5).load_state_dict(state)
    with pytest.raises(ValueError, match="position"):
        BatchStreams(np.arange(500), batch_size=4, seq_len=6).load_state_dict({"position": 10**6})


def test_works_on_a_memmap_without_copying_the_text(tmp_path):
    np.save(tmp_path / "ids.npy", np.arange(10_000, dtype=np.uint16) % 300)
    ids = np.load(tmp_path / "ids.npy", mmap_mode="r")
    streams = BatchStreams(ids, batch_size=8, seq_len=10)
    assert np.shares_memory(streams.streams, ids)  # the layout is a view
    x, y = streams.batch(3)
    np.testing.assert_array_equal(x[:, 2], np.asarray(ids[2 * 1250 + 30:2 * 1250 + 40], dtype=np.intp))


def test_korean_text_batches_decode_back():
    text = "다람쥐 헌 쳇바퀴에 타고파. 🐿️ " * 10
    vocab = Vocabulary.from_text(text)
    streams = BatchStreams(vocab.encode(text), batch_size=2, seq_len=8)
    x, y = streams.batch(0)
    assert vocab.decode(x[:, 0]) == text[:8] and vocab.decode(y[:, 0]) == text[1:9]
    half = len(text) // 2
    assert vocab.decode(x[:, 1]) == text[half:half + 8]
