"""Reading a text file, and the :class:`Vocabulary` that maps its symbols to integer ids.

A character-level language model sees a text as a sequence of *symbols*:

- **text mode** (the default): Unicode code points, decoded with ``encoding`` (UTF-8 unless told
  otherwise). Korean syllables, emoji and accented letters are one symbol each; ``"\\r\\n"`` stays two
  symbols, exactly as in the file.
- **byte mode** (``byte_mode=True``, the ``--bytes`` flag): the raw bytes 0..255, for text in an
  unknown or mixed encoding. Nothing is decoded, so nothing can fail to decode.

The vocabulary is the *sorted* set of symbols (by code point, or by byte value), so the same text
gives the same ids on every run and every machine; it is saved with a model (:meth:`Vocabulary.to_config`
goes into ``config.json``) so sampling and evaluation use exactly the ids the model was trained with.

Ids are stored in the smallest unsigned integer type that holds every id (``uint8`` for up to 256
symbols, ``uint16`` up to 65,536, else ``uint32``): a 5 MB English text costs 5 MB of ids, not 40.

>>> vocab = Vocabulary.from_text("hello, 세계")
>>> len(vocab), vocab.dtype
(8, dtype('uint8'))
>>> vocab.symbols
(' ', ',', 'e', 'h', 'l', 'o', '계', '세')
"""
from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import RnnlabError

# Control characters that ordinary text contains; any other C0 control (or NUL) hints at a binary file.
_TEXT_CONTROLS = frozenset("\t\n\r\f\v\x1b")
_BINARY_SAMPLE_CHARS = 65536   # how much of the start of a file the binary check looks at
_MAX_CONTROL_FRACTION = 0.10   # more control characters than this in the sample: not text
_ENCODE_CHUNK = 1 << 18        # symbols encoded per step: temporaries stay ~4 MB whatever the text size
_MAX_CODE_POINT = 0x10FFFF


def smallest_id_dtype(num_symbols: int) -> np.dtype:
    """The smallest unsigned integer dtype that holds every id ``0 .. num_symbols - 1``.

    >>> smallest_id_dtype(256), smallest_id_dtype(257), smallest_id_dtype(70000)
    (dtype('uint8'), dtype('uint16'), dtype('uint32'))
    """
    largest_id = max(int(num_symbols) - 1, 0)
    for dtype in (np.uint8, np.uint16, np.uint32):
        if largest_id <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"a vocabulary of {num_symbols} symbols does not fit uint32")


def canonical_encoding(encoding: str) -> str:
    """Python's own name for ``encoding`` (``"UTF8"`` -> ``"utf-8"``), or :class:`RnnlabError` if unknown."""
    try:
        codec = codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise RnnlabError(f"unknown text encoding {encoding!r}; pass a Python codec name to --encoding "
                          f"(e.g. utf-8, latin-1, cp949, utf-16)") from None
    if not getattr(codec, "_is_text_encoding", True):  # rot13, base64, zlib: bytes<->bytes or str<->str
        raise RnnlabError(f"--encoding {encoding}: {codec.name} is not a text encoding (it does not turn bytes "
                          f"into text); pass one that does, e.g. utf-8, latin-1, cp1252 or utf-16")
    return codec.name


def code_points(text: str) -> np.ndarray:
    """The code points of ``text`` as a ``uint32`` array, without a per-character Python loop.

    >>> code_points("a세😀").tolist()
    [97, 49464, 128512]
    """
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


# ---------------------------------------------------------------------------------------------------
# Checks shared by read_text and the streaming encoder (corpus.py)
# ---------------------------------------------------------------------------------------------------

def check_text_path(path) -> Path:
    """``path`` as a :class:`Path` if it names a readable, non-empty regular file; else :class:`RnnlabError`."""
    path = Path(path).expanduser()
    try:
        path.stat()
    except FileNotFoundError:
        pass  # said just below
    except OSError as error:  # a symlink loop, a name too long, a folder on the way that cannot be searched
        raise RnnlabError(f"cannot open {path}: {error.strerror or error}; check the path") from None
    if not path.exists():
        raise RnnlabError(f"text file not found: {path}; check the path (or run without TEXT_FILE to use the "
                          f"default corpus)")
    if path.is_dir():
        raise RnnlabError(f"{path} is a directory, not a text file; pass the path of one text file")
    if not os.access(path, os.R_OK):
        raise RnnlabError(f"cannot read {path}: permission denied; fix its permissions or copy it somewhere readable")
    status = path.stat()
    if not stat.S_ISREG(status.st_mode):  # /dev/zero, a pipe, a socket: no size, maybe no end
        raise RnnlabError(f"{path} is not a regular file (a device, pipe or socket); save the text to a file "
                          f"and pass that")
    if status.st_size == 0:
        raise RnnlabError(f"{path} is empty; give a file that holds some text")
    return path


def _raw_bytes(bytes_hint: bool, phrase: str = ", or --bytes to model raw bytes") -> str:
    """The ``--bytes`` way out of a message, for the commands that have that flag (``rnnlab train``)."""
    return phrase if bytes_hint else ""


def check_looks_like_text(sample: str, path, bytes_hint: bool = True) -> None:
    """Raise :class:`RnnlabError` if decoded ``sample`` (the start of a file) looks binary.

    A NUL character, or more than 10% control characters other than tab/newline/CR/FF/VT/ESC, means the
    file is not text (an image, an archive, a UTF-16 file read as Latin-1 ...). ``bytes_hint``: the
    message offers ``--bytes`` (only the character model has it).
    """
    sample = sample[:_BINARY_SAMPLE_CHARS]
    if not sample:
        return
    nul = sample.find("\x00")
    if nul >= 0:
        raise RnnlabError(f"{path} looks like a binary file (NUL character at position {nul}); pass a text file"
                          f"{_raw_bytes(bytes_hint, ',')} the right --encoding (e.g. utf-16){_raw_bytes(bytes_hint)}")
    points = code_points(sample)
    controls = ((points < 32) | ((points >= 127) & (points < 160))).sum()
    controls -= sum(sample.count(char) for char in _TEXT_CONTROLS)
    if controls > _MAX_CONTROL_FRACTION * len(sample):
        raise RnnlabError(f"{path} looks like a binary file ({controls} of its first {len(sample)} characters are "
                          f"control characters); pass a text file{_raw_bytes(bytes_hint, ',')} the right --encoding"
                          f"{_raw_bytes(bytes_hint)}")


def undecodable(error: UnicodeError, path, encoding: str, bytes_hint: bool = True) -> RnnlabError:
    """A one-line :class:`RnnlabError` for a decoder that refuses the file as a whole (``utf-16`` and
    ``utf-32`` without a byte-order mark)."""
    return RnnlabError(f"{path}: cannot be decoded as {encoding} ({error}); pass the file's encoding with "
                       f"--encoding (utf-16-le or utf-16-be for UTF-16 without a byte-order mark)"
                       f"{_raw_bytes(bytes_hint, ', or --bytes')}")


def decode_error(error: UnicodeDecodeError, path, encoding: str, byte_offset: int,
                 bytes_hint: bool = True) -> RnnlabError:
    """A one-line :class:`RnnlabError` for a byte that ``encoding`` cannot decode at ``byte_offset`` of the file.

    A NUL byte near the start of what was being decoded means a binary file (an executable, an image),
    for which another --encoding is no answer: the message says so instead.
    """
    chunk_start = byte_offset - error.start  # error.object may be one chunk of the file
    nul = error.object.find(b"\x00", 0, _BINARY_SAMPLE_CHARS)
    if nul >= 0 and not encoding.startswith(("utf-16", "utf-32")):
        return RnnlabError(f"{path} looks like a binary file (NUL byte at byte offset {chunk_start + nul}); "
                           f"pass a text file{_raw_bytes(bytes_hint, ',')} the right --encoding (e.g. utf-16)"
                           f"{_raw_bytes(bytes_hint)}")
    bad_byte = error.object[error.start:error.start + 1]
    shown = f"byte 0x{bad_byte[0]:02x}" if bad_byte else "an incomplete character"
    return RnnlabError(f"{path}: {shown} at byte offset {byte_offset} is not valid {encoding} ({error.reason}); "
                       f"pass the file's encoding with --encoding (e.g. --encoding cp1252 for Windows text, "
                       f"latin-1, cp949){_raw_bytes(bytes_hint, ' or use --bytes to model raw bytes')}")


def read_text(path, encoding: str = "utf-8", byte_mode: bool = False, bytes_hint: bool = True) -> str | bytes:
    """Read a whole text file: a ``str`` of code points, or ``bytes`` in byte mode.

    Every user mistake is one :class:`RnnlabError` line naming the file: a missing or unreadable path, a
    directory, an empty file, a binary file, an unknown encoding, or a byte the encoding cannot decode
    (with its byte offset and the ``--encoding`` / ``--bytes`` way out). Line endings are kept as they
    are (no universal-newline translation), so ``"\\r\\n"`` is two symbols, and a UTF-8 byte-order mark
    stays a symbol (``encoding="utf-8-sig"`` drops it). Byte mode skips the binary-file check: any bytes go.

    Args:
        path: the text file.
        encoding: any Python codec name (``"utf-8"``, ``"latin-1"``, ``"cp949"`` ...); ignored in byte mode.
        byte_mode: return the raw bytes instead of decoding them.
        bytes_hint: whether the messages offer ``--bytes`` (a command without that flag passes False).
    """
    path = check_text_path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RnnlabError(f"cannot read {path}: {error.strerror}; check the file") from None
    if byte_mode:
        return data
    encoding = canonical_encoding(encoding)
    try:
        text = codecs.decode(data, encoding, "strict")
    except UnicodeDecodeError as error:
        raise decode_error(error, path, encoding, error.start, bytes_hint) from None
    except UnicodeError as error:
        raise undecodable(error, path, encoding, bytes_hint) from None
    if not text:  # e.g. a file holding only a byte-order mark
        raise RnnlabError(f"{path} holds no text once decoded as {encoding}; give a file that holds some text")
    check_looks_like_text(text, path, bytes_hint)
    return text


def decoded_chunks(file, path, encoding: str, chunk_bytes: int):
    """Yield the text of the open binary ``file`` chunk by chunk (a chunk's text may be empty).

    The incremental decoder keeps the bytes of a character cut by a chunk border until the next chunk,
    so a character is never split; a bad byte is reported with its offset in the whole file, and the
    first chunk goes through :func:`check_looks_like_text`.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0  # bytes of the file handed to the decoder so far
    while True:
        chunk = file.read(chunk_bytes)
        pending = len(decoder.getstate()[0])  # bytes held back from earlier chunks
        try:
            text = decoder.decode(chunk, not chunk)
        except UnicodeDecodeError as error:
            raise decode_error(error, path, encoding, offset - pending + error.start) from None
        except UnicodeError as error:  # utf-16/utf-32 without a byte-order mark
            raise undecodable(error, path, encoding) from None
        if offset == 0:
            check_looks_like_text(text, path)
        offset += len(chunk)
        yield text
        if not chunk:
            return


# ---------------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------------

class Vocabulary:
    """The sorted set of symbols of a text, and the map between symbols and integer ids.

    A vocabulary built from a text is sorted; :meth:`extended` appends new symbols after the old ones
    (fine-tuning a model on a text with characters it has never seen keeps every old id), so in general
    id ``i`` is the ``i``-th symbol of :attr:`symbols`, which is sorted unless extended.

    Args:
        symbols: the symbols, in any order and with repeats: one-character strings (text mode), or
            integers 0..255 (byte mode). They are sorted (by code point / byte value) and deduplicated,
            so id ``i`` is the ``i``-th smallest symbol.
        byte_mode: whether the symbols are bytes.

    Attributes:
        symbols: the tuple of symbols, id order.
        dtype: the smallest unsigned NumPy dtype holding every id (see :func:`smallest_id_dtype`).
        byte_mode: whether symbols are bytes.

    Encoding and decoding are vectorised (NumPy ``searchsorted`` on the sorted code points), so a whole
    book encodes in a fraction of a second.

    >>> vocab = Vocabulary.from_text("안녕, hello 😀")
    >>> ids = vocab.encode("hello 안녕")
    >>> vocab.decode(ids)
    'hello 안녕'
    >>> vocab.unknown("hi!")
    ['!', 'i']
    >>> Vocabulary.from_config(vocab.to_config()) == vocab
    True
    >>> grown = Vocabulary.from_text("cab").extended("bad!")
    >>> grown.symbols, grown.encode("dab!").tolist()
    (('a', 'b', 'c', '!', 'd'), [4, 0, 1, 3])
    >>> raw = Vocabulary.from_text(b"caf\\xe9")
    >>> raw.symbols, raw.decode_bytes(raw.encode(b"\\xe9"))
    ((97, 99, 102, 233), b'\\xe9')
    """

    def __init__(self, symbols: Iterable, byte_mode: bool = False):
        self.byte_mode = bool(byte_mode)
        if self.byte_mode:
            values = np.asarray(sorted(set(_as_byte_value(symbol) for symbol in symbols)), dtype=np.uint32)
        else:
            values = np.asarray(sorted(set(_as_code_point(symbol) for symbol in symbols)), dtype=np.uint32)
        self._set_code_points(values)

    def _set_code_points(self, values: np.ndarray) -> None:
        # values: unique uint32 code points (or byte values) in id order; everything else derives from them.
        self._code_points = values
        self._code_points.flags.writeable = False
        # lookups search the sorted points; _sorted_ids maps a position there to the id (None: the same)
        if len(values) > 1 and not bool((values[1:] > values[:-1]).all()):
            self._sorted_ids = np.argsort(values, kind="stable")
            self._sorted_points = values[self._sorted_ids]
        else:
            self._sorted_ids, self._sorted_points = None, values
        if self.byte_mode:
            self.symbols = tuple(int(value) for value in values)
            self._chars = [chr(value) for value in self.symbols]  # Latin-1 view, one char per byte
        else:
            self.symbols = tuple(chr(value) for value in values.tolist())
            self._chars = list(self.symbols)
        self.dtype = smallest_id_dtype(len(values))

    @classmethod
    def _from_code_points(cls, values: np.ndarray, byte_mode: bool = False) -> "Vocabulary":
        vocab = cls.__new__(cls)
        vocab.byte_mode = bool(byte_mode)
        vocab._set_code_points(np.asarray(values, dtype=np.uint32).copy())
        return vocab

    @classmethod
    def _from_id_order(cls, symbols, byte_mode: bool = False) -> "Vocabulary":
        """The vocabulary whose id ``i`` is ``symbols[i]`` (no sorting); ValueError on a repeated symbol."""
        convert = _as_byte_value if byte_mode else _as_code_point
        values = np.asarray([convert(symbol) for symbol in symbols], dtype=np.uint32)
        if len(np.unique(values)) != len(values):
            raise ValueError("a symbol appears twice")
        return cls._from_code_points(values, byte_mode=byte_mode)

    def extended(self, symbols) -> "Vocabulary":
        """This vocabulary with the ``symbols`` it lacks appended (sorted among themselves): every old id
        stays as it is, the new symbols get ids ``len(self)``, ``len(self) + 1``, ... (for fine-tuning)."""
        values = [self._code_points]
        if isinstance(symbols, (str, bytes, bytearray)):
            symbols = self.unknown(symbols)
        new = sorted({_as_byte_value(s) if self.byte_mode else _as_code_point(s) for s in symbols} - set(
            self._code_points.tolist()))
        values.append(np.asarray(new, dtype=np.uint32))
        return Vocabulary._from_code_points(np.concatenate(values), byte_mode=self.byte_mode)

    @classmethod
    def from_text(cls, text: str | bytes) -> "Vocabulary":
        """The vocabulary of ``text``: code points for a ``str``, bytes (byte mode) for ``bytes``."""
        if isinstance(text, (bytes, bytearray, memoryview)):
            data = memoryview(text).cast("B")
            present = np.zeros(256, dtype=bool)
            for start in range(0, len(data), _ENCODE_CHUNK):
                present[np.frombuffer(data[start:start + _ENCODE_CHUNK], dtype=np.uint8)] = True
            return cls.from_presence(present, byte_mode=True)
        if not isinstance(text, str):
            raise TypeError(f"from_text expects str or bytes, got {type(text).__name__}")
        present = np.zeros(_MAX_CODE_POINT + 1, dtype=bool)  # 1.1 MB, instead of sorting every character
        for start in range(0, len(text), _ENCODE_CHUNK):
            present[code_points(text[start:start + _ENCODE_CHUNK])] = True
        return cls.from_presence(present)

    @classmethod
    def from_presence(cls, present: np.ndarray, byte_mode: bool = False) -> "Vocabulary":
        """The vocabulary of the code points (or bytes) where the boolean array ``present`` is true."""
        return cls._from_code_points(np.flatnonzero(present), byte_mode=byte_mode)

    # -- the map ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.symbols)

    def __iter__(self):
        return iter(self.symbols)

    def __contains__(self, symbol) -> bool:
        try:
            value = _as_byte_value(symbol) if self.byte_mode else _as_code_point(symbol)
        except (TypeError, ValueError):
            return False
        index = np.searchsorted(self._sorted_points, value)
        return bool(index < len(self._sorted_points) and self._sorted_points[index] == value)

    def __eq__(self, other) -> bool:
        return (isinstance(other, Vocabulary) and self.byte_mode == other.byte_mode
                and np.array_equal(self._code_points, other._code_points))

    def __hash__(self):
        return hash((self.byte_mode, self._code_points.tobytes()))

    def __repr__(self) -> str:
        shown = "".join(self._chars[:40]) if not self.byte_mode else str(list(self.symbols[:20]))
        more = "..." if len(self) > (20 if self.byte_mode else 40) else ""
        mode = ", byte_mode=True" if self.byte_mode else ""
        return f"Vocabulary({len(self)} symbols: {shown!r}{more}{mode})"

    def _checked_input(self, text):
        """``text`` as this vocabulary reads it: a ``str`` in text mode, bytes in byte mode."""
        if self.byte_mode:
            if isinstance(text, str):
                return text.encode("utf-8")  # a prime typed on a command line: its UTF-8 bytes
            if not isinstance(text, (bytes, bytearray, memoryview)):
                raise TypeError(f"encode expects bytes (or str) in byte mode, got {type(text).__name__}")
            return memoryview(text).cast("B")
        if not isinstance(text, str):
            raise TypeError(f"encode expects str, got {type(text).__name__} (byte-mode text needs a byte-mode "
                            f"vocabulary)")
        return text

    def _value_chunks(self, text):
        """Yield the code points (text mode) or byte values (byte mode) of checked ``text``, a bounded piece
        at a time, so encoding a large text never holds 8-bytes-per-symbol temporaries for all of it."""
        for start in range(0, len(text), _ENCODE_CHUNK):
            piece = text[start:start + _ENCODE_CHUNK]
            yield np.frombuffer(piece, dtype=np.uint8) if self.byte_mode else code_points(piece)

    def _lookup(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, known): the id of each value, and whether it is in the vocabulary at all."""
        if len(self) == 0:
            return np.zeros(len(values), dtype=np.intp), np.zeros(len(values), dtype=bool)
        ids = np.searchsorted(self._sorted_points, values)
        np.minimum(ids, len(self._sorted_points) - 1, out=ids)
        known = self._sorted_points[ids] == values
        return (ids if self._sorted_ids is None else self._sorted_ids[ids]), known

    def unknown(self, text) -> list:
        """The symbols of ``text`` that are not in the vocabulary: sorted, each once."""
        missing = set()
        for values in self._value_chunks(self._checked_input(text)):
            values = np.unique(values)
            missing.update(values[~self._lookup(values)[1]].tolist())
        if self.byte_mode:
            return sorted(missing)
        return [chr(value) for value in sorted(missing)]

    def encode(self, text, unknown: str = "error", where: str = "the text") -> np.ndarray:
        """The ids of ``text`` as an array of :attr:`dtype`.

        Args:
            text: a ``str`` (text mode); ``bytes`` in byte mode (a ``str`` is taken as its UTF-8 bytes).
            unknown: what to do with symbols not in the vocabulary: ``"error"`` raises :class:`RnnlabError`
                naming them, ``"skip"`` leaves them out.
            where: what ``text`` is, for the error message (``"the prime"``, a file name).
        """
        if unknown not in ("error", "skip"):
            raise ValueError(f"unknown must be 'error' or 'skip', got {unknown!r}")
        text = self._checked_input(text)
        ids = np.empty(len(text), dtype=self.dtype)  # str: one id per code point; bytes: one per byte
        filled = 0
        for values in self._value_chunks(text):
            piece_ids, known = self._lookup(values)
            if not known.all():
                if unknown == "error":
                    raise RnnlabError(self.unknown_message(self.unknown(text), where=where))
                piece_ids = piece_ids[known]
            ids[filled:filled + len(piece_ids)] = piece_ids
            filled += len(piece_ids)
        return ids[:filled] if filled < len(ids) else ids

    def unknown_message(self, missing: list, where: str = "the text") -> str:
        """One line naming the ``missing`` symbols (repr'd, at most 20) and what to do about them."""
        shown = ", ".join(repr(symbol) for symbol in missing[:20]) + (" ..." if len(missing) > 20 else "")
        kind = ("byte" if self.byte_mode else "character") + ("" if len(missing) == 1 else "s")
        return (f"{where} has {len(missing)} {kind} the model's vocabulary ({len(self)} symbols) does not contain: "
                f"{shown}; use only characters from the training text (or drop them)")

    def decode(self, ids) -> str:
        """The text of ``ids``. In byte mode each byte becomes the character with that value (Latin-1);
        use :meth:`decode_bytes` to get the bytes themselves."""
        values = self._code_points[np.asarray(ids, dtype=np.intp)]
        if self.byte_mode:
            return values.astype(np.uint8).tobytes().decode("latin-1")
        return values.astype("<u4").tobytes().decode("utf-32-le")

    def decode_bytes(self, ids) -> bytes:
        """Byte mode: the raw bytes of ``ids``. Text mode: the UTF-8 encoding of :meth:`decode`."""
        if self.byte_mode:
            return self._code_points[np.asarray(ids, dtype=np.intp)].astype(np.uint8).tobytes()
        return self.decode(ids).encode("utf-8")

    def decode_one(self, token_id: int) -> str:
        """The symbol of one id as a one-character string (fast: a list lookup, for streaming samples)."""
        return self._chars[int(token_id)]

    # -- saving with a model ------------------------------------------------------------------------

    def to_config(self) -> dict:
        """A JSON-able description (kept in a model's ``config.json``).

        >>> Vocabulary.from_text("ba\\n").to_config()
        {'byte_mode': False, 'size': 3, 'symbols': '\\nab'}
        """
        symbols = list(self.symbols) if self.byte_mode else "".join(self.symbols)
        return {"byte_mode": self.byte_mode, "size": len(self), "symbols": symbols}

    @classmethod
    def from_config(cls, config: dict) -> "Vocabulary":
        """The vocabulary :meth:`to_config` described (ids in the order saved); :class:`RnnlabError` if the
        description is damaged."""
        try:
            byte_mode = bool(config.get("byte_mode", False))
            symbols = config["symbols"]
            vocab = cls._from_id_order(symbols, byte_mode=byte_mode)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise RnnlabError(f"the saved vocabulary is damaged ({error}); re-train or restore config.json") from None
        expected = config.get("size", len(vocab))
        if expected != len(vocab) or len(vocab) != len(symbols):
            raise RnnlabError(f"the saved vocabulary is damaged (expected {expected} distinct symbols, found "
                              f"{len(vocab)}); re-train or restore config.json")
        return vocab


def _as_code_point(symbol) -> int:
    if not isinstance(symbol, str) or len(symbol) != 1:
        raise ValueError(f"a text-mode symbol must be a one-character str, got {symbol!r}")
    return ord(symbol)


def _as_byte_value(symbol) -> int:
    if isinstance(symbol, (bytes, bytearray)) and len(symbol) == 1:
        return symbol[0]
    if isinstance(symbol, (int, np.integer)) and not isinstance(symbol, bool) and 0 <= symbol <= 255:
        return int(symbol)
    raise ValueError(f"a byte-mode symbol must be an int 0..255, got {symbol!r}")
