"""Where a character model's text comes from: one file, several files or folders, and how it is split.

``rnnlab train TEXT [TEXT ...]`` takes files and folders. A folder is read recursively; its files are
those whose name matches ``--glob`` (every file when not given), hidden files and folders (``.git``)
and empty files left out. Files are read in the order given, a folder's files sorted by their path
relative to it, and each ends with a newline (one is added where a file lacks it), so a document never
runs into the next. Several files are joined once into one file in the cache folder, named by the digest
of their contents (:func:`join_text_files`): the same texts give the same file, an edit gives a new one,
and the corpus cache (:func:`rnnlab.data.encode_corpus`) works on it as on any file.

A corpus is then split into contiguous train / validation / test parts by ``--split TRAIN,VAL,TEST``
(default ``0.9,0.05,0.05``), or, with ``--val-file FILE``, the whole text trains and FILE validates
(there is no test part then). The vocabulary covers the validation file too, so every character in it
can be scored.

Every mistake is one :class:`~rnnlab.errors.RnnlabError` line naming the path: a missing path, an empty
folder, a ``--glob`` that matches nothing, a symbolic-link loop, an unreadable file or folder, a file that
is not text in the encoding, a split that does not sum to 1 or leaves a part empty.
"""
from __future__ import annotations

import errno
import fnmatch
import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import RnnlabError
from .corpus import (CHUNK_BYTES, _atomic_write, _make_cache_dir, default_corpus_path, encode_corpus,
                     file_digest, scan_vocabulary, split_ids)
from .text import Vocabulary, canonical_encoding, check_text_path, decoded_chunks

DEFAULT_SPLIT = (0.9, 0.05, 0.05)
SPLIT_PARTS = ("training", "validation", "test")


# ---------------------------------------------------------------------------------------------------
# finding the files
# ---------------------------------------------------------------------------------------------------

def _stat_or_explain(path: Path, what: str = "TEXT") -> os.stat_result:
    try:
        return path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RnnlabError(f"{path}: a symbolic link loop (it never reaches a file); point the link at a "
                              f"file or folder, or give another {what}") from None
        if error.errno == errno.ENOENT:
            broken = " (a broken symbolic link)" if path.is_symlink() else ""
            raise RnnlabError(f"{path}: no such file or folder{broken}; check the path (or run without "
                              f"{what} to use the default corpus)") from None
        raise RnnlabError(f"{path}: cannot open ({error.strerror or error}); check the path") from None


def _folder_files(root: Path, pattern: str | None) -> list[Path]:
    """The non-empty, non-hidden regular files under ``root`` whose name matches ``pattern``, sorted by
    their path relative to ``root``. Symbolic links are followed, each folder visited once (so a link
    back up the tree is no loop)."""
    found, visited, pending = [], set(), [root]
    while pending:
        folder = pending.pop()
        status = folder.stat()
        identity = (status.st_dev, status.st_ino)
        if identity in visited:
            continue
        visited.add(identity)
        try:
            entries = list(os.scandir(folder))
        except OSError as error:
            raise RnnlabError(f"cannot read the folder {folder}: {error.strerror or error}; fix its permissions "
                              f"or leave it out") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_dir():
                    pending.append(path)
                    continue
                if pattern is not None and not fnmatch.fnmatch(entry.name, pattern):
                    continue
                if not entry.is_file():
                    if entry.is_symlink():
                        _stat_or_explain(path)  # a broken link or a loop: say so
                    continue  # a socket, a device
                if entry.stat().st_size == 0:
                    continue  # an empty __init__.py holds no text to learn
            except OSError:
                _stat_or_explain(path)
                raise
            found.append(path)
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def find_text_files(paths, pattern: str | None = None) -> list[Path]:
    """The files ``paths`` (files and folders) name, in reading order, each once.

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.txt", "a/z.txt", "a/y.md", ".hidden.txt"):
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
    ...     _ = (root / name).write_text("text")
    >>> [p.relative_to(root).as_posix() for p in find_text_files([root], "*.txt")]
    ['a/z.txt', 'b.txt']
    """
    paths = [Path(p).expanduser() for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    if not paths:
        raise RnnlabError("no TEXT given; name a text file or a folder (or none at all for the default corpus)")
    if pattern is not None and not pattern.strip():
        raise RnnlabError("--glob '': must be a file-name pattern like '*.txt'")
    files, seen = [], set()
    for path in paths:
        _stat_or_explain(path)
        if path.is_dir():
            chosen = _folder_files(path, pattern)
            if not chosen:
                matching = f"whose name matches --glob {pattern!r}" if pattern is not None else \
                    "(hidden and empty files are left out)"
                raise RnnlabError(f"{path}: no non-empty file {matching} in this folder; "
                                  f"give another folder{' or --glob' if pattern else ''}")
        else:
            chosen = [check_text_path(path)]  # a file named on its own: every check of read_text
        for file in chosen:
            key = os.path.realpath(file)
            if key not in seen:
                seen.add(key)
                files.append(file)
    if pattern is not None and not any(os.path.isdir(path) for path in paths):
        raise RnnlabError(f"--glob {pattern!r} picks files inside folders, and no TEXT is a folder; drop it "
                          f"or give a folder")
    return files


# ---------------------------------------------------------------------------------------------------
# joining several files into one
# ---------------------------------------------------------------------------------------------------

def _check_decodes(path: Path, encoding: str, byte_mode: bool) -> bool:
    """RnnlabError naming ``path`` unless it decodes as ``encoding`` and looks like text; whether it ends
    with a newline."""
    try:
        with open(path, "rb") as file:
            if byte_mode:
                file.seek(-1, os.SEEK_END)
                return file.read(1) == b"\n"
            last = ""
            for text in decoded_chunks(file, path, encoding, CHUNK_BYTES):
                last = text[-1:] or last
            return last == "\n"
    except OSError as error:
        raise RnnlabError(f"cannot read {path}: {error.strerror or error}; fix its permissions or leave it "
                          f"out") from None


def join_text_files(files, encoding: str = "utf-8", byte_mode: bool = False, cache_dir=None) -> Path:
    """One file holding ``files`` one after the other, each ending with a newline, in the cache folder
    under the digest of their contents (made once, atomically; reused while the contents are the same)."""
    if not byte_mode:
        encoding = canonical_encoding(encoding)
        if "\n".encode(encoding) != b"\n":
            raise RnnlabError(f"several files in {encoding}: rnnlab joins texts in encodings where a newline is "
                              f"the byte 0x0a (utf-8, latin-1, cp1252 ...); join them into one file first, or "
                              f"use --bytes")
    digest = hashlib.blake2b(digest_size=12)
    for file in files:
        try:
            digest.update(file_digest(file).encode("ascii"))
        except OSError as error:
            raise RnnlabError(f"cannot read {file}: {error.strerror or error}; fix its permissions or leave it "
                              f"out") from None
    digest.update(("bytes" if byte_mode else encoding).encode("ascii"))
    target = _make_cache_dir(cache_dir) / f"joined-{len(files)}-files-{digest.hexdigest()}.txt"
    if target.is_file():
        return target
    ends_with_newline = [_check_decodes(file, encoding, byte_mode) for file in files]

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as out:
            for file, newline in zip(files, ends_with_newline):
                with open(file, "rb") as source:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
                if not newline:
                    out.write(b"\n")

    _atomic_write(target, write)
    return target


@dataclass
class TextSource:
    """The text a run reads: its files, the one file that holds them all, and a name for messages."""
    files: list            # the text files, in reading order
    path: Path             # the file to encode: the only file, or the joined copy in the cache folder
    name: str              # ``story.txt``, or ``books/ (12 files)``


def text_source(paths, pattern: str | None = None, encoding: str = "utf-8", byte_mode: bool = False,
                cache_dir=None) -> TextSource:
    """The :class:`TextSource` of ``paths`` (``None``: the default corpus, Python's standard library)."""
    if paths is None:
        if pattern is not None:
            raise RnnlabError(f"--glob {pattern!r} picks files inside folders, and no TEXT is given (the default "
                              f"corpus); drop it or give a folder")
        path = Path(default_corpus_path(cache_dir))
        return TextSource([path], path, f"{path} (the Python standard library)")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = find_text_files(paths, pattern)
    if len(files) == 1 and not any(os.path.isdir(p) for p in paths):
        return TextSource(files, files[0], str(files[0]))
    shown = ", ".join(str(p) for p in paths[:3]) + (", ..." if len(paths) > 3 else "")
    count = f"{len(files)} file" + ("s" if len(files) != 1 else "")
    return TextSource(files, join_text_files(files, encoding, byte_mode, cache_dir), f"{shown} ({count})")


# ---------------------------------------------------------------------------------------------------
# the split
# ---------------------------------------------------------------------------------------------------

def parse_split(text) -> tuple[float, float, float]:
    """``"0.9,0.05,0.05"`` (or three numbers) -> ``(0.9, 0.05, 0.05)``; one line unless three fractions
    >= 0 that sum to 1 with a training and a validation part.

    >>> parse_split("0.8, 0.1, 0.1")
    (0.8, 0.1, 0.1)
    """
    shown = text if isinstance(text, str) else ",".join(f"{v:g}" for v in text)
    try:
        values = tuple(float(v) for v in (text.split(",") if isinstance(text, str) else text))
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) and v >= 0 for v in values):
        raise RnnlabError(f"--split {shown}: must be three fractions TRAIN,VAL,TEST >= 0, like 0.9,0.05,0.05")
    if abs(sum(values) - 1) > 1e-6:
        raise RnnlabError(f"--split {shown}: the fractions sum to {sum(values):g}, not 1")
    for value, part in zip(values[:2], SPLIT_PARTS):
        if value == 0:
            raise RnnlabError(f"--split {shown}: leaves the {part} part empty; give it a fraction > 0"
                              + (" (or validate on another text with --val-file FILE)" if part == "validation"
                                 else ""))
    return values


def split_corpus(ids, fractions, name: str, min_train: int = 2):
    """``(train, val, test)`` views of ``ids`` by ``fractions``; one line when a part that should hold text
    gets fewer than two characters (nothing to predict). A training part shorter than ``min_train`` (one
    batch) is left for the caller to report, with the flags that decide a batch."""
    parts = split_ids(ids, fractions)
    if len(parts[0]) < min_train:
        return parts
    for part, fraction, values in zip(SPLIT_PARTS, fractions, parts):
        if fraction > 0 and len(values) < 2:
            raise RnnlabError(f"--split {','.join(f'{f:g}' for f in fractions)}: leaves the {part} part of {name} "
                              f"with {len(values)} characters of {len(ids):,}; give it a larger fraction or "
                              f"use a longer text")
    return parts


# ---------------------------------------------------------------------------------------------------
# the corpus a run trains on
# ---------------------------------------------------------------------------------------------------

@dataclass
class Corpus:
    """A text encoded to ids, in contiguous train / validation / test parts (views of one array)."""
    source: TextSource
    vocab: Vocabulary
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    val_source: TextSource | None = None   # --val-file: the validation text (then ``test`` is empty)
    new_symbols: tuple = field(default=())  # symbols appended to a given vocabulary (fine-tuning)

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def name(self) -> str:
        return self.source.name


def load_corpus(text=None, pattern: str | None = None, encoding: str = "utf-8", byte_mode: bool = False,
                split=DEFAULT_SPLIT, val_file=None, vocab: Vocabulary | None = None, extend: bool = False,
                cache_dir=None, min_train: int = 2) -> Corpus:
    """Find, join, encode and split a run's text.

    Args:
        text: a file or folder, a list of them, or ``None`` for the default corpus.
        pattern: ``--glob``, for folders.
        split: the ``(train, val, test)`` fractions (ignored with ``val_file``).
        val_file: a text that validates (the whole of ``text`` then trains).
        vocab: encode with this vocabulary (a resumed run's); with ``extend``, the symbols of the text
            (and of ``val_file``) it lacks are appended to it (:meth:`Vocabulary.extended`).
        min_train: the characters of one training batch (see :func:`split_corpus`).
    """
    source = text_source(text, pattern, encoding, byte_mode, cache_dir)
    val_source = None
    if val_file is not None:
        try:
            val_source = text_source(val_file, None, encoding, byte_mode, cache_dir)
        except RnnlabError as error:
            raise RnnlabError(f"--val-file: {error}") from None
    new_symbols = ()
    if vocab is None and val_source is not None:
        found = [scan_vocabulary(s.path, encoding, byte_mode)[0] for s in (source, val_source)]
        vocab = Vocabulary([*found[0].symbols, *found[1].symbols], byte_mode=byte_mode)
    elif vocab is not None and extend:
        if vocab.byte_mode != bool(byte_mode):
            mode = "byte mode (--bytes)" if vocab.byte_mode else "text mode (no --bytes)"
            raise RnnlabError(f"the model was trained in {mode}; read {source.name} the same way")
        base = vocab
        for s in (source, val_source) if val_source is not None else (source,):
            vocab = vocab.extended(scan_vocabulary(s.path, encoding, byte_mode)[0].symbols)
        new_symbols = vocab.symbols[len(base):]
    ids, vocab = encode_corpus(source.path, encoding=encoding, byte_mode=byte_mode, vocab=vocab, cache_dir=cache_dir)
    if val_source is not None:
        val_ids, _ = encode_corpus(val_source.path, encoding=encoding, byte_mode=byte_mode, vocab=vocab,
                                   cache_dir=cache_dir)
        if len(val_ids) < 2:
            raise RnnlabError(f"--val-file {val_file}: holds {len(val_ids)} character; validation needs at least two")
        return Corpus(source, vocab, ids, val_ids, ids[:0], val_source, new_symbols)
    train, val, test = split_corpus(ids, tuple(split), source.name, min_train)
    return Corpus(source, vocab, train, val, test, None, new_symbols)
