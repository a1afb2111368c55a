"""Reading and writing the IDX format (MNIST, Fashion-MNIST and friends), gzip or raw.

An IDX file is a 4-byte magic number, one big-endian ``uint32`` per dimension, then the values,
big-endian, in C order::

    byte 0, 1   0x00 0x00
    byte 2      type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte 3      number of dimensions (1 for labels, 3 for images)
    4 * ndim    the size of each dimension, big-endian uint32
    ...         prod(sizes) values of the type, big-endian

Files are usually distributed gzipped; :func:`read_idx` recognises gzip by its first two bytes
(``1f 8b``), not by the file name, so a renamed or decompressed file reads the same. Every
mistake a file can hold (wrong magic, unknown type, too few or too many bytes, a broken gzip
stream) raises :class:`~rnnlab.errors.RnnlabError` naming the file, what was expected and what
was found.

>>> import tempfile, pathlib, numpy as np
>>> with tempfile.TemporaryDirectory() as folder:
...     images_path = write_idx(pathlib.Path(folder) / "tiny-images-idx3-ubyte.gz",
...                             np.arange(12, dtype=np.uint8).reshape(2, 2, 3))
...     labels_path = write_idx(pathlib.Path(folder) / "tiny-labels-idx1-ubyte", np.array([7, 1], dtype=np.uint8))
...     images, labels = load_idx_pair(images_path, labels_path)
>>> images.shape, images.dtype, labels
((2, 2, 3), dtype('uint8'), array([7, 1]))
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import RnnlabError

GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> NumPy dtype as stored (big-endian).
IDX_TYPE_CODES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_CODE_BY_KIND = {(dtype.kind, dtype.itemsize): code for code, dtype in IDX_TYPE_CODES.items()}

_CHUNK_BYTES = 1 << 20


# Deflate cannot expand data by more than about 1032:1, so a gzip file of n bytes holds at most
# this many times n; a header promising more is wrong, and we say so before allocating for it.
_MAX_DEFLATE_RATIO = 1032


def _open_maybe_gzip(path: Path):
    """Open ``path`` for binary reading, through gzip when it starts with the gzip magic bytes."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise RnnlabError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise RnnlabError(f"{path}: is a directory, expected an IDX file") from None
    except OSError as error:
        raise RnnlabError(f"{path}: cannot open ({error.strerror or error})") from None
    is_gzip = handle.read(2) == GZIP_MAGIC
    handle.seek(0)
    if is_gzip:
        return gzip.GzipFile(fileobj=handle, mode="rb"), handle, True
    return handle, handle, False


def _read_exactly(stream, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``stream``; return how many bytes arrived (fewer only at end of file)."""
    filled = 0
    while filled < len(buffer):
        count = stream.readinto(buffer[filled:])
        if not count:
            break
        filled += count
    return filled


def _count_remaining(stream) -> int:
    remaining = 0
    while chunk := stream.read(_CHUNK_BYTES):
        remaining += len(chunk)
    return remaining


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped or raw) into a NumPy array of its shape and type, native byte order.

    Args:
        path: the file. Gzip is detected from the first two bytes (``1f 8b``), not from the name.

    Returns:
        A writable array with the shape the header gives and the dtype of its type code
        (``uint8``, ``int8``, ``int16``, ``int32``, ``float32`` or ``float64``).

    Raises:
        RnnlabError: the file is missing, is not IDX (magic bytes), has an unknown type code, holds
            fewer or more data bytes than its dimensions need, or its gzip stream is broken. The
            message names the file and gives expected against actual values.
    """
    path = Path(path)
    stream, raw_handle, is_gzip = _open_maybe_gzip(path)
    largest_possible = os.fstat(raw_handle.fileno()).st_size * (_MAX_DEFLATE_RATIO if is_gzip else 1)
    try:
        return _read_idx_stream(stream, path, largest_possible)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise RnnlabError(f"{path}: truncated or corrupt gzip data ({error}); download the file again") from None
    finally:
        stream.close()
        raw_handle.close()


def _read_idx_stream(stream, path: Path, largest_possible: int) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4:
        raise RnnlabError(f"{path}: too short for an IDX file: expected a 4-byte header, got {len(magic)} bytes")
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPE_CODES or magic[3] == 0:
        raise RnnlabError(
            f"{path}: not an IDX file: magic number {magic.hex(' ')} should be 00 00 <type> <ndim> with type one "
            f"of {', '.join(f'{code:02x}' for code in IDX_TYPE_CODES)} and ndim >= 1")
    stored_dtype = IDX_TYPE_CODES[magic[2]]
    ndim = magic[3]
    header = stream.read(4 * ndim)
    if len(header) < 4 * ndim:
        raise RnnlabError(f"{path}: truncated IDX header: expected {4 * ndim} bytes of dimensions for ndim={ndim}, "
                          f"got {len(header)}")
    shape = tuple(int(size) for size in np.frombuffer(header, dtype=">u4"))
    expected_bytes = int(np.prod(shape, dtype=np.int64)) * stored_dtype.itemsize

    if expected_bytes > largest_possible:
        actual_bytes = _count_remaining(stream)
    else:
        values = np.empty(shape, dtype=stored_dtype)
        actual_bytes = _read_exactly(stream, memoryview(values.reshape(-1).view(np.uint8)))
    if actual_bytes < expected_bytes:
        raise RnnlabError(f"{path}: truncated IDX data: shape {shape} of {stored_dtype.newbyteorder('=')} needs "
                          f"{expected_bytes} bytes, got {actual_bytes}; download the file again")
    extra_bytes = _count_remaining(stream)
    if extra_bytes:
        raise RnnlabError(f"{path}: IDX data too long: shape {shape} of {stored_dtype.newbyteorder('=')} needs "
                          f"{expected_bytes} bytes, got {expected_bytes + extra_bytes}; "
                          f"the header or the file is wrong")
    if stored_dtype.itemsize > 1:
        return values.astype(stored_dtype.newbyteorder("="))
    return values.view(stored_dtype.newbyteorder("="))


def write_idx(path, array, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzip it when ``compress`` is true (default: when the name ends ``.gz``).

    The dtype must be one IDX can hold: ``uint8``, ``int8``, ``int16``, ``int32``, ``float32`` or
    ``float64`` (any byte order). Written through a temporary file and renamed into place, so a
    reader never sees half a file. Returns the path written.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _TYPE_CODE_BY_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        allowed = ", ".join(str(dtype.newbyteorder("=")) for dtype in IDX_TYPE_CODES.values())
        raise TypeError(f"write_idx: IDX cannot hold dtype {array.dtype}; convert to one of {allowed}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: IDX needs 1 to 255 dimensions, got {array.ndim}")
    if any(size >= 2**32 for size in array.shape):
        raise ValueError(f"write_idx: every dimension must be below 2**32, got shape {array.shape}")
    if compress is None:
        compress = path.name.endswith(".gz")

    payload = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
               + np.ascontiguousarray(array, dtype=IDX_TYPE_CODES[code]).tobytes())
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            if compress:
                # mtime=0 keeps the bytes reproducible (same array -> same file -> same checksum).
                with gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as gzipped:
                    gzipped.write(payload)
            else:
                handle.write(payload)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def load_idx_pair(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and its labels file (MNIST layout) and check that they belong together.

    Returns:
        ``(images, labels)``: images ``(N, rows, cols)`` in the file's dtype (``uint8`` for MNIST and
        Fashion-MNIST), labels ``(N,)`` as ``int64``.

    Raises:
        RnnlabError: either file is unreadable (see :func:`read_idx`), the images are not 3-D, the
            labels are not 1-D integers, or the two counts differ (the message names both files and
            both counts).
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise RnnlabError(f"{images_path}: expected images of shape (N, rows, cols), got shape {images.shape}"
                          + ("; is it a labels file? give the images file first, then its labels"
                             if images.ndim == 1 else ""))
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise RnnlabError(f"{labels_path}: expected 1-D integer labels, got shape {labels.shape} of {labels.dtype}")
    if images.shape[0] != labels.shape[0]:
        raise RnnlabError(f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} "
                          f"labels; the files do not belong together")
    return images, labels.astype(np.int64)
