"""From a text file to an array of ids: encoding, the memory-mapped cache, splits, and the default corpus.

:func:`encode_corpus` turns a file into ``(ids, vocab)``. The whole decoded text never exists as one
``str``: the file is read twice in chunks through an incremental decoder (a multi-byte character cut
by a chunk border is decoded whole, and a bad byte is reported with its offset in the file), once to
collect the set of symbols and count them, once to write the ids. Files up to ``stream_threshold``
(32 MB by default) get their ids in an ordinary array; bigger ones get them in a ``.npy`` file in a
cache folder, opened memory-mapped, so only the pages that batches touch are resident.

Memory: ids never take more bytes than the file (one byte per ASCII character; ``uint16`` ids only for
a text with more than 256 symbols, which in UTF-8 means characters of 2-3 bytes; ``uint32`` only for
4-byte characters), and encoding adds a few MB of per-chunk temporaries whatever the file size. So a
corpus of ``F`` bytes needs at most ``F`` plus a few MB of RAM beyond the model (well inside ``2·F`` for
any corpus worth caching), where the usual char-rnn port holds the text, a Python list of ints and a
float copy (~20·F).

The cache is keyed by the file's contents (a BLAKE2 digest, read in chunks), the encoding and the mode
(and the vocabulary when one is given), so an edited file is re-encoded however its size and time
stamps look; it is written to a temporary name and renamed, so an interrupted run never leaves a
half-written cache behind. The cache folder is ``$XDG_CACHE_HOME/rnnlab/text`` when that variable is set,
else the platform's cache folder (``platformdirs.user_cache_dir("rnnlab")``: ``~/.cache/rnnlab`` on
Linux, ``~/Library/Caches/rnnlab`` on macOS, ``%LOCALAPPDATA%\\rnnlab\\Cache`` on Windows) + ``/text``.

:func:`split_ids` cuts ids into train / validation / test contiguous slices (views, 90/5/5 by default).

:func:`default_corpus_path` builds the corpus used when no text file is given: the ``.py`` source of
Python's own standard library, which every machine with Python has.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np

from ..errors import RnnlabError
from .text import Vocabulary, canonical_encoding, check_text_path, code_points, decoded_chunks

STREAM_THRESHOLD = 32 * 2**20     # files bigger than this are encoded in chunks into a memory-mapped cache
CHUNK_BYTES = 2**18               # bytes read per step (temporaries: ~20 bytes per byte read, ~5 MB)
DEFAULT_CORPUS_MAX_BYTES = 8 * 2**20  # the default corpus stops before this size: quick to train and evaluate
_CODE_POINT_LIMIT = 0x110000


def text_cache_dir() -> Path:
    """Where rnnlab keeps encoded corpora, joined text folders and the default corpus:
    ``$XDG_CACHE_HOME/rnnlab/text`` when that is set, else ``platformdirs.user_cache_dir("rnnlab")/text``."""
    override = os.environ.get("XDG_CACHE_HOME")
    if override:
        return Path(override).expanduser() / "rnnlab" / "text"
    import platformdirs

    return Path(platformdirs.user_cache_dir("rnnlab", appauthor=False)) / "text"


def file_digest(path, chunk_bytes: int = 1 << 20) -> str:
    """A BLAKE2 digest of the file's bytes (hex, 32 characters), read in chunks."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        while chunk := file.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _make_cache_dir(cache_dir) -> Path:
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else text_cache_dir()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RnnlabError(f"cannot create the cache folder {cache_dir}: {error.strerror}; set XDG_CACHE_HOME "
                          f"(or pass a cache folder) to somewhere writable") from None
    return cache_dir


def _atomic_write(path: Path, write) -> None:
    """Call ``write(temporary_path)``, then rename the temporary file to ``path`` (all or nothing)."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------------
# encode_corpus
# ---------------------------------------------------------------------------------------------------

def encode_corpus(path, encoding: str = "utf-8", byte_mode: bool = False, cache_dir=None,
                  vocab: Vocabulary | None = None, stream_threshold: int = STREAM_THRESHOLD,
                  chunk_bytes: int = CHUNK_BYTES) -> tuple[np.ndarray, Vocabulary]:
    """Encode a text file into ids: ``(ids, vocab)``.

    Args:
        path: the text file (every check of :func:`~rnnlab.data.text.read_text` applies, same messages).
        encoding: its encoding (ignored in byte mode).
        byte_mode: model raw bytes instead of decoded characters.
        cache_dir: where big corpora are cached (default :func:`text_cache_dir`); unused for small ones.
        vocab: encode with this vocabulary (a trained model's) instead of building one from the file;
            characters it lacks raise :class:`RnnlabError` naming them.
        stream_threshold: files larger than this many bytes get their ids in a memory-mapped cache file.
        chunk_bytes: bytes read per step.

    Returns:
        ``ids``: a 1-D array of ``vocab.dtype`` (a read-only ``np.memmap`` for a file over
        ``stream_threshold``) and the vocabulary.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "tiny.txt").write_text("abcab", encoding="utf-8")
    >>> ids, vocab = encode_corpus(folder / "tiny.txt")
    >>> ids.tolist(), vocab.symbols
    ([0, 1, 2, 0, 1], ('a', 'b', 'c'))
    """
    path = check_text_path(path)
    byte_mode = bool(byte_mode)
    if vocab is not None and vocab.byte_mode != byte_mode:
        mode = "byte mode (--bytes)" if vocab.byte_mode else "text mode (no --bytes)"
        raise RnnlabError(f"the model was trained in {mode}; read {path} the same way")
    if not byte_mode:
        encoding = canonical_encoding(encoding)
    chunk_bytes = int(chunk_bytes)
    if path.stat().st_size <= stream_threshold:
        vocab, count = _scan(path, encoding, byte_mode, vocab, chunk_bytes)
        ids = np.empty(count, dtype=vocab.dtype)
        _fill_ids(ids, path, encoding, byte_mode, vocab, chunk_bytes)
        return ids, vocab
    return _encode_to_cache(path, encoding, byte_mode, _make_cache_dir(cache_dir), vocab, chunk_bytes)


def _cache_key(digest: str, encoding: str, byte_mode: bool, vocab: Vocabulary | None) -> str:
    parts = [digest, "bytes" if byte_mode else encoding]
    if vocab is not None:
        parts.append(json.dumps(vocab.to_config(), ensure_ascii=True))
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:20]


def _read_symbols(path: Path, encoding: str, byte_mode: bool, chunk_bytes: int):
    """Yield the file's symbols chunk by chunk, as integer arrays (code points, or byte values), a
    character never split across chunks (:func:`~rnnlab.data.text.decoded_chunks`)."""
    with open(path, "rb") as file:
        if byte_mode:
            while chunk := file.read(chunk_bytes):
                yield np.frombuffer(chunk, dtype=np.uint8)
            return
        for text in decoded_chunks(file, path, encoding, chunk_bytes):
            if text:
                yield code_points(text)


def scan_vocabulary(path, encoding: str = "utf-8", byte_mode: bool = False,
                    chunk_bytes: int = CHUNK_BYTES) -> tuple[Vocabulary, int]:
    """``(vocab, count)``: the sorted vocabulary of a text file and its number of symbols, in one pass
    (the checks and messages of :func:`encode_corpus`), without keeping any ids."""
    path = check_text_path(path)
    return _scan(path, "bytes" if byte_mode else canonical_encoding(encoding), bool(byte_mode), None,
                 int(chunk_bytes))


def _scan(path: Path, encoding: str, byte_mode: bool, vocab: Vocabulary | None,
          chunk_bytes: int) -> tuple[Vocabulary, int]:
    """Pass 1: which symbols occur and how many there are -> ``(vocab, count)``; checks a given vocab."""
    present = np.zeros(256 if byte_mode else _CODE_POINT_LIMIT, dtype=bool)
    count = 0
    for values in _read_symbols(path, encoding, byte_mode, chunk_bytes):
        present[values] = True
        count += len(values)
    if count == 0:
        raise RnnlabError(f"{path} holds no text once decoded as {encoding}; a language model needs some text")
    if vocab is None:
        return Vocabulary.from_presence(present, byte_mode=byte_mode), count
    missing = [symbol for symbol in Vocabulary.from_presence(present, byte_mode=byte_mode) if symbol not in vocab]
    if missing:
        raise RnnlabError(vocab.unknown_message(missing, where=str(path)))
    return vocab, count


def _fill_ids(ids: np.ndarray, path: Path, encoding: str, byte_mode: bool, vocab: Vocabulary,
              chunk_bytes: int) -> None:
    """Pass 2: write the ids of the file into ``ids`` (an array or a memory map of the count pass 1 found)."""
    position = 0
    for values in _read_symbols(path, encoding, byte_mode, chunk_bytes):
        piece_ids, known = vocab._lookup(values)
        if position + len(values) > len(ids) or not known.all():
            break
        ids[position:position + len(values)] = piece_ids
        position += len(values)
    if position != len(ids):
        raise RnnlabError(f"{path} changed while it was being read; run again once it is no longer being written")


def _encode_to_cache(path: Path, encoding: str, byte_mode: bool, cache_dir: Path, vocab: Vocabulary | None,
                     chunk_bytes: int) -> tuple[np.ndarray, Vocabulary]:
    digest = file_digest(path)
    key = _cache_key(digest, encoding, byte_mode, vocab)
    ids_path = cache_dir / f"{path.stem}-{key}.npy"
    vocab_path = cache_dir / f"{path.stem}-{key}.vocab.json"
    if ids_path.exists() and vocab_path.exists():
        try:
            cached_vocab = Vocabulary.from_config(json.loads(vocab_path.read_text(encoding="utf-8"))["vocabulary"])
            return np.load(ids_path, mmap_mode="r"), cached_vocab
        except (OSError, ValueError, KeyError, RnnlabError):
            pass  # a damaged cache entry is rebuilt below

    vocab, count = _scan(path, encoding, byte_mode, vocab, chunk_bytes)

    def write_ids(temporary: Path) -> None:
        ids = np.lib.format.open_memmap(temporary, mode="w+", dtype=vocab.dtype, shape=(count,))
        _fill_ids(ids, path, encoding, byte_mode, vocab, chunk_bytes)
        ids.flush()
        del ids

    _remove_stale_entries(cache_dir, path, digest)
    _atomic_write(ids_path, write_ids)
    record = {"source": str(path.resolve()), "digest": digest,
              "encoding": "bytes" if byte_mode else encoding, "count": count, "vocabulary": vocab.to_config()}
    _atomic_write(vocab_path, lambda temporary: temporary.write_text(json.dumps(record), encoding="utf-8"))
    return np.load(ids_path, mmap_mode="r"), vocab


def _remove_stale_entries(cache_dir: Path, path: Path, digest: str) -> None:
    """Delete cached encodings of an earlier version of ``path`` (its contents changed since)."""
    source = str(path.resolve())
    for record_path in cache_dir.glob(f"{glob.escape(path.stem)}-*.vocab.json"):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if record.get("source") != source or record.get("digest") == digest:
            continue  # another file, or the current version of this one (other encoding, mode or vocabulary)
        record_path.with_name(record_path.name[:-len(".vocab.json")] + ".npy").unlink(missing_ok=True)
        record_path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------------

def split_ids(ids, fractions=(0.9, 0.05, 0.05)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``ids`` into ``(train, validation, test)``: contiguous slices in that order, views of ``ids``.

    ``fractions`` are three non-negative numbers summing to 1; slice sizes are ``floor(n * f)`` with the
    remainder going to the test slice. Contiguous slices (not random characters) keep every slice a
    readable text, so validation loss measures prediction on text the model never saw.

    >>> train, val, test = split_ids(np.arange(100))
    >>> len(train), len(val), len(test), int(val[0])
    (90, 5, 5, 90)
    """
    try:
        fractions = tuple(float(fraction) for fraction in fractions)
    except (TypeError, ValueError):
        raise RnnlabError(f"split fractions must be three numbers like 0.9,0.05,0.05, got {fractions!r}") from None
    if len(fractions) != 3 or any(not np.isfinite(f) or f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise RnnlabError(f"split fractions must be three non-negative numbers (train, validation, test) summing "
                          f"to 1, like 0.9,0.05,0.05; got {','.join(f'{f:g}' for f in fractions)}")
    count = len(ids)
    train_end = int(count * fractions[0])
    validation_end = min(count, train_end + int(count * fractions[1]))
    return ids[:train_end], ids[train_end:validation_end], ids[validation_end:]


# ---------------------------------------------------------------------------------------------------
# The default corpus: Python's standard library
# ---------------------------------------------------------------------------------------------------

_SKIPPED_FOLDERS = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"}


def stdlib_source_files(stdlib=None) -> list[Path]:
    """The ``.py`` files of the standard library, sorted by path relative to it (POSIX form).

    Installed packages (``site-packages``) and the test suites (``test``, ``tests``, ``idle_test``
    folders) are left out: packages differ between machines, and Linux distributions often ship the test
    suite separately, so leaving it out keeps the corpus the same on every install of one Python version.
    """
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in _SKIPPED_FOLDERS]
        found.extend(Path(folder) / name for name in files if name.endswith(".py"))
    return sorted(found, key=lambda file: file.relative_to(root).as_posix())


def default_corpus_path(cache_dir=None, max_bytes: int = DEFAULT_CORPUS_MAX_BYTES, stdlib=None) -> Path:
    """The corpus used when no text file is given: Python's standard library source, as one text file.

    It is the ``.py`` files of this Python's standard library (see :func:`stdlib_source_files` for what
    is left out), sorted by relative path, each preceded by a line ``# ==== <relative path> ====`` and
    concatenated in UTF-8, stopping before the file that would take the total past ``max_bytes``
    (8 MB by default: big enough to learn Python's look, small enough that an epoch is quick). Files that
    are not valid UTF-8 are skipped. The result is the same file on every run with the same Python; it is
    written once into ``cache_dir`` (atomically) and reused.
    """
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    files = stdlib_source_files(root)
    if not files:
        raise RnnlabError(f"no Python source files found in the standard library folder {root}; pass a TEXT_FILE")
    listing = "\n".join(f"{file.relative_to(root).as_posix()}:{file.stat().st_size}" for file in files)
    key = hashlib.sha256(f"{root}\0{max_bytes}\0{listing}".encode("utf-8")).hexdigest()[:16]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    target = _make_cache_dir(cache_dir) / f"python{version}-stdlib-{key}.txt"
    if target.exists():
        return target

    def write_corpus(temporary: Path) -> None:
        total = 0
        with open(temporary, "wb") as out:
            for file in files:
                try:
                    source = file.read_bytes()
                    source.decode("utf-8")
                except (OSError, UnicodeDecodeError):
                    continue  # an odd file is skipped rather than breaking the default corpus
                if b"\0" in source:
                    continue
                piece = f"# ==== {file.relative_to(root).as_posix()} ====\n".encode("utf-8") + source
                if not piece.endswith(b"\n"):
                    piece += b"\n"
                if total + len(piece) > max_bytes:
                    break
                out.write(piece)
                total += len(piece)
        if total == 0:
            raise RnnlabError(f"the standard library in {root} gave an empty corpus (max_bytes={max_bytes}); "
                              f"pass a TEXT_FILE")

    _atomic_write(target, write_corpus)
    return target
