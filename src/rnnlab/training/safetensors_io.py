"""The safetensors format, read and written with NumPy alone (no dependency on the ``safetensors`` package).

A file is::

    8 bytes      N, the header length, unsigned little-endian
    N bytes      a JSON object, padded with spaces to a multiple of 8 bytes:
                   {"<name>": {"dtype": "F32", "shape": [3, 4], "data_offsets": [begin, end]}, ...,
                    "__metadata__": {"<key>": "<string value>", ...}}
    the rest     the tensors' raw bytes, little-endian, C order; offsets count from the end of the header

Tensors lie back to back, covering the data area exactly. PyTorch (``safetensors.torch.load_file``),
NumPy (``safetensors.numpy.load_file``) and Hugging Face tools read these files, and we read theirs.

>>> import io, numpy as np
>>> buffer = io.BytesIO()
>>> save_safetensors(buffer, {"weight": np.arange(6, dtype=np.float32).reshape(2, 3)}, {"step": "7"})
>>> tensors, metadata = load_safetensors(io.BytesIO(buffer.getvalue()))
>>> tensors["weight"].tolist(), metadata
([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], {'step': '7'})
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import RnnlabError

# safetensors dtype code <-> NumPy dtype (little-endian). BF16 and FP8 have no NumPy dtype.
DTYPES = {
    "BOOL": np.dtype("bool"),
    "U8": np.dtype("u1"), "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"), "I16": np.dtype("<i2"), "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"), "I64": np.dtype("<i8"), "F64": np.dtype("<f8"),
}
_CODE_OF = {(dtype.kind, dtype.itemsize): code for code, dtype in DTYPES.items()}
MAX_HEADER_BYTES = 100_000_000  # the safetensors package's own limit


def _dtype_code(name: str, array: np.ndarray) -> str:
    code = _CODE_OF.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise TypeError(f"tensor {name!r} has dtype {array.dtype}, which safetensors cannot store")
    return code


def _to_array(value) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def serialize_header(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None) -> tuple[bytes, list]:
    """The 8-byte length and padded JSON header, and the arrays in file order (little-endian, C order)."""
    header: dict = {}
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"safetensors metadata must map str to str, got {key!r}: {type(value).__name__}")
        header["__metadata__"] = dict(metadata)
    ordered, offset = [], 0
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"invalid tensor name {name!r}")
        array = _to_array(value)
        code = _dtype_code(name, array)
        array = np.asarray(array, dtype=DTYPES[code], order="C")  # keeps shape (), unlike ascontiguousarray
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        ordered.append(array)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # keeps every tensor 8-byte aligned when the file is mapped
    return struct.pack("<Q", len(encoded)) + encoded, ordered


def write_safetensors(file: BinaryIO, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write to an open binary file (streamed: no second copy of the tensors in memory)."""
    head, arrays = serialize_header(tensors, metadata)
    file.write(head)
    for array in arrays:
        file.write(memoryview(array.reshape(-1)).cast("B") if array.size else b"")


def save_safetensors(path_or_file, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Save named arrays (NumPy or torch tensors) and string metadata as a safetensors file.

    A path is written atomically (:func:`rnnlab.training.checkpoint.atomic_writer`): the file is either
    the previous one or the complete new one, never half written. An open binary file is written as is.
    """
    if hasattr(path_or_file, "write"):
        write_safetensors(path_or_file, tensors, metadata)
        return
    from .checkpoint import atomic_writer  # checkpoint imports this module

    with atomic_writer(path_or_file) as file:
        write_safetensors(file, tensors, metadata)


def _corrupt(source, what: str) -> RnnlabError:
    return RnnlabError(f"{source}: not a valid safetensors file ({what}); it may be truncated or damaged, "
                       f"restore it or save it again")


def load_safetensors(path_or_file) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file: ``(tensors, metadata)``, tensors as writable NumPy arrays in file order.

    A missing, truncated or damaged file raises :class:`~rnnlab.errors.RnnlabError` naming the file.
    """
    if hasattr(path_or_file, "read"):
        source = getattr(path_or_file, "name", "<file>")
        data = path_or_file.read()
    else:
        source = Path(path_or_file)
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            raise RnnlabError(f"{source}: no such file") from None
        except IsADirectoryError:
            raise RnnlabError(f"{source}: is a directory, not a safetensors file") from None
        except OSError as error:
            raise RnnlabError(f"{source}: cannot read ({error.strerror or error})") from None
    return parse_safetensors(data, source)


def parse_safetensors(data: bytes, source="<bytes>") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Validate and decode the bytes of a safetensors file (see :func:`load_safetensors`)."""
    if len(data) < 8:
        raise _corrupt(source, f"{len(data)} bytes, shorter than the 8-byte header length")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > MAX_HEADER_BYTES or 8 + header_length > len(data):
        raise _corrupt(source, f"header length {header_length} does not fit in the {len(data)}-byte file")
    try:
        header = json.loads(data[8:8 + header_length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _corrupt(source, "the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _corrupt(source, "the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _corrupt(source, "__metadata__ must map strings to strings")
    buffer = memoryview(data)[8 + header_length:]
    tensors: dict[str, np.ndarray] = {}
    entries = []
    for name, info in header.items():
        try:
            code, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            shape = tuple(int(n) for n in shape)
            begin, end = int(begin), int(end)
        except (KeyError, TypeError, ValueError):
            raise _corrupt(source, f"tensor {name!r} lacks dtype, shape or data_offsets") from None
        if code not in DTYPES:
            raise RnnlabError(f"{source}: tensor {name!r} has dtype {code!r}, which rnnlab cannot read "
                              f"(it reads {', '.join(DTYPES)}); convert the file to F32 or F64")
        if any(n < 0 for n in shape) or not 0 <= begin <= end <= len(buffer):
            raise _corrupt(source, f"tensor {name!r} has offsets [{begin}, {end}] outside the "
                                   f"{len(buffer)}-byte data area")
        dtype = DTYPES[code]
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if end - begin != expected:
            raise _corrupt(source, f"tensor {name!r} of shape {list(shape)} and dtype {code} needs {expected} "
                                   f"bytes, its offsets span {end - begin}")
        entries.append((begin, end, name))
        tensors[name] = np.frombuffer(buffer[begin:end], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    # As the safetensors package: tensors cover the data area back to back, nothing overlaps or is missing.
    position = 0
    for begin, end, name in sorted(entries):
        if begin != position:
            raise _corrupt(source, f"tensor {name!r} starts at byte {begin}, expected {position}")
        position = end
    if position != len(buffer):
        raise _corrupt(source, f"the data area has {len(buffer)} bytes, the tensors cover {position}")
    return tensors, dict(metadata)
