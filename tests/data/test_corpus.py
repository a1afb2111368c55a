"""encode_corpus (in memory and streamed into a memory-mapped cache), split_ids, and the default corpus."""
from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest

from rnnlab.data import Vocabulary, default_corpus_path, encode_corpus, read_text, split_ids, stdlib_source_files
from rnnlab.data import corpus as corpus_module
from rnnlab.errors import RnnlabError

MIXED = "옛날 옛적에 호랑이가 🐯 살았어요.\r\nOnce upon a time — naïve café.\n" * 7


def _stream(path, tmp_path, **options):
    """encode_corpus forced onto the streaming path, with tiny chunks so characters straddle chunk borders."""
    options.setdefault("chunk_bytes", 7)
    return encode_corpus(path, cache_dir=tmp_path / "cache", stream_threshold=0, **options)


def test_small_corpus_in_memory(tmp_path):
    path = tmp_path / "story.txt"
    path.write_bytes(MIXED.encode("utf-8"))
    ids, vocab = encode_corpus(path, cache_dir=tmp_path / "cache")
    assert not isinstance(ids, np.memmap) and ids.dtype == vocab.dtype == np.uint8
    assert vocab.decode(ids) == MIXED
    assert not (tmp_path / "cache").exists()  # small corpora are not cached


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 7, 4096])
def test_streaming_equals_in_memory(tmp_path, chunk_bytes):
    path = tmp_path / "story.txt"
    path.write_bytes(MIXED.encode("utf-8"))
    in_memory, vocab = encode_corpus(path)
    streamed, streamed_vocab = _stream(path, tmp_path, chunk_bytes=chunk_bytes)
    assert isinstance(streamed, np.memmap) and not streamed.flags.writeable
    assert streamed_vocab == vocab and streamed.dtype == in_memory.dtype
    np.testing.assert_array_equal(streamed, in_memory)


def test_streaming_other_encodings_and_byte_mode(tmp_path):
    path = tmp_path / "latin.txt"
    text = "Ça va, señor? Olé!\r\n" * 5
    path.write_bytes(text.encode("latin-1"))
    for options in ({"encoding": "latin-1"}, {"byte_mode": True}):
        in_memory, vocab = encode_corpus(path, **options)
        streamed, streamed_vocab = _stream(path, tmp_path, **options)
        assert streamed_vocab == vocab
        np.testing.assert_array_equal(streamed, in_memory)
    ids, vocab = _stream(path, tmp_path, byte_mode=True)
    assert vocab.byte_mode and vocab.decode_bytes(ids) == text.encode("latin-1")
    path16 = tmp_path / "wide.txt"
    path16.write_bytes(MIXED.encode("utf-16"))  # a BOM and surrogate pairs cut by 7-byte chunks
    ids, vocab = _stream(path16, tmp_path, encoding="utf-16")
    assert vocab.decode(ids) == MIXED


def test_bad_byte_offset_across_chunk_borders(tmp_path):
    path = tmp_path / "broken.txt"
    prefix = "가나다라마바사".encode("utf-8") + b"abc"  # 24 bytes of 3-byte characters, then ASCII
    path.write_bytes(prefix + b"\xff" + b"more text")
    for chunk_bytes in (1, 2, 4, 5, 7, 1000):
        with pytest.raises(RnnlabError) as error:
            _stream(path, tmp_path, chunk_bytes=chunk_bytes)
        message = str(error.value)
        assert f"byte offset {len(prefix)}" in message and "0xff" in message and "broken.txt" in message
        assert "--encoding" in message and "--bytes" in message
    with pytest.raises(RnnlabError, match=f"byte offset {len(prefix)}"):
        encode_corpus(path)  # the in-memory path gives the same offset


def test_character_cut_at_end_of_file(tmp_path):
    path = tmp_path / "cut.txt"
    path.write_bytes(b"abc" + "가".encode("utf-8")[:2])
    for stream_threshold in (0, 10**9):
        with pytest.raises(RnnlabError, match="byte offset 3"):
            encode_corpus(path, cache_dir=tmp_path / "cache", stream_threshold=stream_threshold, chunk_bytes=2)


def test_binary_file_rejected_on_streaming_path(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(RnnlabError, match="binary"):
        _stream(path, tmp_path, encoding="latin-1", chunk_bytes=4096)


def test_cache_is_reused(tmp_path, monkeypatch):
    path = tmp_path / "story.txt"
    path.write_bytes(MIXED.encode("utf-8"))
    first, vocab = _stream(path, tmp_path)
    cached = sorted((tmp_path / "cache").iterdir())
    assert sorted(p.suffix for p in cached) == [".json", ".npy"] and not any(p.name.endswith(".tmp") for p in cached)

    def must_not_read(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(corpus_module, "_read_symbols", must_not_read)
    second, second_vocab = _stream(path, tmp_path)
    assert second_vocab == vocab and second.filename == first.filename
    np.testing.assert_array_equal(second, first)


def test_cache_invalidated_when_file_changes(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("abcabc", encoding="utf-8")
    old_ids, _ = _stream(path, tmp_path)
    old_file = old_ids.filename
    del old_ids
    path.write_text("xyz xyz xyz", encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    new_ids, vocab = _stream(path, tmp_path)
    assert vocab.decode(new_ids) == "xyz xyz xyz"
    assert not os.path.exists(old_file)  # the stale entry was removed
    # a different encoding or mode is a different cache entry, not a stale hit
    latin_ids, latin_vocab = _stream(path, tmp_path, encoding="latin-1")
    assert latin_vocab.decode(latin_ids) == "xyz xyz xyz"
    byte_ids, byte_vocab = _stream(path, tmp_path, byte_mode=True)
    assert byte_vocab.byte_mode and byte_vocab.decode_bytes(byte_ids) == b"xyz xyz xyz"
    # entries for the current version in other modes are not stale: all three stay
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3
    assert os.path.exists(new_ids.filename) and os.path.exists(latin_ids.filename)


def test_encode_with_a_given_vocabulary(tmp_path):
    vocab = Vocabulary.from_text("abc 호랑이\n")
    path = tmp_path / "eval.txt"
    path.write_text("cab 호랑이\n", encoding="utf-8")
    for stream_threshold in (0, 10**9):
        ids, used = encode_corpus(path, vocab=vocab, cache_dir=tmp_path / "cache", stream_threshold=stream_threshold)
        assert used is vocab and vocab.decode(ids) == "cab 호랑이\n"
    path.write_text("cab 떡 d\n", encoding="utf-8")
    for stream_threshold in (0, 10**9):
        with pytest.raises(RnnlabError) as error:
            encode_corpus(path, vocab=vocab, cache_dir=tmp_path / "cache", stream_threshold=stream_threshold)
        assert "eval.txt" in str(error.value) and "'떡'" in str(error.value) and "'d'" in str(error.value)
    with pytest.raises(RnnlabError, match="byte mode"):
        encode_corpus(path, vocab=Vocabulary.from_text(b"abc"))


LINE = "The quick brown fox jumps over the lazy dog. 다람쥐 헌 쳇바퀴에 타고파. " * 4 + "\n"


@pytest.fixture(scope="module")
def twenty_megabytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.txt"
    line = LINE.encode("utf-8")
    with open(path, "wb") as file:
        file.write(line * (20 * 2**20 // len(line)))
    return path


@pytest.mark.parametrize("memory_mapped", [False, True])
def test_memory_stays_under_twice_the_file(twenty_megabytes, tmp_path, memory_mapped):
    """The RAM claim, measured: encoding a ~20 MB file peaks at the ids plus a few MB, under 2·F."""
    size = twenty_megabytes.stat().st_size
    tracemalloc.start()
    try:
        ids, vocab = encode_corpus(twenty_megabytes, cache_dir=tmp_path / "cache",
                                   stream_threshold=2**20 if memory_mapped else 2**40)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(ids, np.memmap) == memory_mapped and ids.dtype == np.uint8
    resident_ids = 0 if memory_mapped else ids.nbytes  # a memory map's pages are the OS's file cache
    assert peak < 2 * size, f"peak {peak / 2**20:.1f} MB for a {size / 2**20:.1f} MB file"
    assert peak < resident_ids + 16 * 2**20  # a bounded amount of temporaries, whatever the file size
    assert vocab.decode(ids[:len(LINE)]) == LINE and vocab.decode(ids[-len(LINE):]) == LINE


def test_real_text_file(shared_data):
    ids, vocab = encode_corpus(shared_data / "text" / "hamlet.txt")
    assert ids.dtype == np.uint8 and len(vocab) < 256
    assert vocab.decode(ids[:2000]) == read_text(shared_data / "text" / "hamlet.txt")[:2000]


# --- split_ids ---------------------------------------------------------------------------------------

def test_split_is_contiguous_views_with_default_90_5_5():
    ids = np.arange(1001, dtype=np.uint16)
    train, validation, test = split_ids(ids)
    assert (len(train), len(validation), len(test)) == (900, 50, 51)
    np.testing.assert_array_equal(np.concatenate([train, validation, test]), ids)
    assert all(np.shares_memory(part, ids) for part in (train, validation, test))


def test_split_custom_fractions_and_memmap(tmp_path):
    path = tmp_path / "ids.npy"
    np.save(path, np.arange(100, dtype=np.uint8))
    ids = np.load(path, mmap_mode="r")
    train, validation, test = split_ids(ids, (0.5, 0.5, 0.0))
    assert (len(train), len(validation), len(test)) == (50, 50, 0)
    assert isinstance(train, np.memmap) and int(validation[0]) == 50


@pytest.mark.parametrize("fractions", [(0.9, 0.1), (0.9, 0.2, 0.05), (1.1, -0.05, -0.05), ("a", 0, 0),
                                       (float("nan"), 0.5, 0.5)])
def test_split_rejects_bad_fractions(fractions):
    with pytest.raises(RnnlabError, match="fractions"):
        split_ids(np.arange(10), fractions)


# --- the default corpus: Python's standard library -------------------------------------------------------

def test_default_corpus_is_deterministic_and_non_empty(tmp_path):
    first = default_corpus_path(cache_dir=tmp_path / "one", max_bytes=300_000)
    second = default_corpus_path(cache_dir=tmp_path / "two", max_bytes=300_000)
    data = first.read_bytes()
    assert data == second.read_bytes()
    assert 50_000 < len(data) <= 300_000
    assert data.startswith(b"# ==== ") and b"def " in data
    assert default_corpus_path(cache_dir=tmp_path / "one", max_bytes=300_000) == first  # reused, not rebuilt
    text = read_text(first)  # valid UTF-8 text by the same checks as any TEXT_FILE
    assert "site-packages" not in text.split("\n", 1)[0]


def test_stdlib_files_sorted_and_filtered(tmp_path):
    root = tmp_path / "lib"
    for relative, content in [("zeta.py", b"z = 1\n"), ("alpha.py", b"a = 1"), ("pkg/mod.py", b"m = 1\n"),
                              ("site-packages/numpy.py", b"no\n"), ("test/test_x.py", b"no\n"),
                              ("pkg/tests/t.py", b"no\n"), ("bad.py", b"x = '\xff'\n"), ("notes.txt", b"no\n")]:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(content)
    names = [p.relative_to(root).as_posix() for p in stdlib_source_files(root)]
    assert names == ["alpha.py", "bad.py", "pkg/mod.py", "zeta.py"]
    corpus = default_corpus_path(cache_dir=tmp_path / "cache", stdlib=root).read_text(encoding="utf-8")
    assert corpus == "# ==== alpha.py ====\na = 1\n# ==== pkg/mod.py ====\nm = 1\n# ==== zeta.py ====\nz = 1\n"
    capped = default_corpus_path(cache_dir=tmp_path / "cache", stdlib=root, max_bytes=60)
    assert capped.read_text(encoding="utf-8") == "# ==== alpha.py ====\na = 1\n# ==== pkg/mod.py ====\nm = 1\n"
    with pytest.raises(RnnlabError, match="TEXT_FILE"):
        default_corpus_path(cache_dir=tmp_path / "cache", stdlib=tmp_path / "nothing-here")


def test_file_growing_between_the_two_passes_is_reported(tmp_path, monkeypatch):
    path = tmp_path / "log.txt"
    path.write_text("abc", encoding="utf-8")
    real_read_symbols = corpus_module._read_symbols
    calls = []

    def read_then_append(*args):
        calls.append(1)
        if len(calls) == 2:  # someone appends to the file after the first pass
            with open(path, "a", encoding="utf-8") as file:
                file.write("abcabc")
        return real_read_symbols(*args)

    monkeypatch.setattr(corpus_module, "_read_symbols", read_then_append)
    with pytest.raises(RnnlabError, match="log.txt changed while"):
        encode_corpus(path)


def test_default_cache_folder_follows_xdg_cache_home(tmp_path, monkeypatch):
    from rnnlab.data import text_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert text_cache_dir() == tmp_path / "xdg" / "rnnlab" / "text"
    path = tmp_path / "story.txt"
    path.write_text("abc" * 10, encoding="utf-8")
    ids, _ = encode_corpus(path, stream_threshold=0)
    assert os.path.dirname(ids.filename) == str(tmp_path / "xdg" / "rnnlab" / "text")


def test_without_xdg_cache_home_the_cache_is_platformdirs_user_cache_dir(tmp_path, monkeypatch):
    import platformdirs

    from rnnlab.data import text_cache_dir

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda name, appauthor=None: str(tmp_path / f"pd-{name}"))
    assert text_cache_dir() == tmp_path / "pd-rnnlab" / "text"


def test_cache_is_keyed_on_contents_not_size_or_time(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("abcabc", encoding="utf-8")
    stamp = path.stat().st_mtime_ns
    first, _ = _stream(path, tmp_path)
    del first
    path.write_text("cbacba", encoding="utf-8")           # same size ...
    os.utime(path, ns=(stamp, stamp))                      # ... and the same time stamp
    second, vocab = _stream(path, tmp_path)
    assert vocab.decode(second) == "cbacba"
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1  # the old version's entry was removed


def test_binary_file_not_utf8_rejected_as_binary_on_streaming_path(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"text" * 3000 + b"\x00\xd0\xff" * 100)
    with pytest.raises(RnnlabError, match=r"binary file \(NUL byte at byte offset 12000\)"):
        _stream(path, tmp_path, encoding="utf-8", chunk_bytes=4096)
