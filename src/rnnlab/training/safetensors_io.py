"""Checkpoint files in the safetensors format, through the ``safetensors`` package's NumPy API.

A file is::

    8 bytes      N, the header length, unsigned little-endian
    N bytes      a JSON object: {"<name>": {"dtype": "F32", "shape": [3, 4], "data_offsets": [begin, end]}, ...,
                                 "__metadata__": {"<key>": "<string value>", ...}}
    the rest     the tensors' raw bytes, little-endian, C order

The package's parser (written in Rust and fuzzed for untrusted files) validates every header, offset and
size, and loads by memory map (:func:`safetensors.safe_open`); PyTorch (``safetensors.torch.load_file``)
and Hugging Face tools read the same files. Around it rnnlab adds what a training run needs: writes are
atomic (:func:`rnnlab.training.atomic.atomic_write_bytes`: temporary file, fsync, rename), torch tensors
are accepted as input, loaded arrays are writable, and a missing or damaged file is one
:class:`~rnnlab.errors.RnnlabError` line naming the file.

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

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from ..errors import RnnlabError

# the NumPy dtypes safetensors stores (little-endian); BF16 and FP8 have no NumPy dtype
STORABLE_KINDS = {("b", 1), ("u", 1), ("i", 1), ("u", 2), ("i", 2), ("f", 2), ("u", 4), ("i", 4), ("f", 4),
                  ("u", 8), ("i", 8), ("f", 8)}


def _to_array(name, value) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if (array.dtype.kind, array.dtype.itemsize) not in STORABLE_KINDS:
        raise TypeError(f"tensor {name!r} has dtype {array.dtype}, which safetensors cannot store")
    # C order and native little-endian, as the format stores it (shape () is kept)
    return np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")


def _checked_metadata(metadata) -> dict[str, str] | None:
    if not metadata:
        return None
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"safetensors metadata must map str to str, got {key!r}: {type(value).__name__}")
    return dict(metadata)


def to_bytes(tensors: dict, metadata: dict[str, str] | None = None) -> bytes:
    """The bytes of a safetensors file holding ``tensors`` (NumPy arrays or torch tensors) and ``metadata``."""
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"invalid tensor name {name!r}")
        arrays[name] = _to_array(name, value)
    return safetensors.numpy.save(arrays, metadata=_checked_metadata(metadata))


def save_safetensors(path_or_file, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Save named arrays and string metadata as a safetensors file.

    A path is written atomically: the file is either the previous one or the complete new one, never half
    written. An open binary file is written as is.
    """
    data = to_bytes(tensors, metadata)
    if hasattr(path_or_file, "write"):
        path_or_file.write(data)
        return
    from .atomic import atomic_write_bytes

    atomic_write_bytes(path_or_file, data)


def _damaged(source, error) -> RnnlabError:
    return RnnlabError(f"{source}: not a valid safetensors file ({error}); it may be truncated or damaged, "
                       f"restore it or save it again")


def load_safetensors(path_or_file) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file: ``(tensors, metadata)``, tensors as writable NumPy arrays.

    A path is opened memory-mapped (only the tensors are copied out); an open file is read whole. A
    missing, unreadable, truncated or damaged file raises :class:`~rnnlab.errors.RnnlabError` naming it.
    """
    if hasattr(path_or_file, "read"):
        return parse_safetensors(path_or_file.read(), getattr(path_or_file, "name", "<file>"))
    source = Path(path_or_file)
    try:
        if not source.exists():
            raise RnnlabError(f"{source}: no such file")
        if source.is_dir():
            raise RnnlabError(f"{source}: is a directory, not a safetensors file")
        with open(source, "rb"):
            pass  # permission problems as a plain OSError, before the package's own message
        with safe_open(str(source), framework="np") as file:
            metadata = file.metadata() or {}
            tensors = {name: _writable(file.get_tensor(name)) for name in file.keys()}
    except OSError as error:
        raise RnnlabError(f"{source}: cannot read ({error.strerror or error})") from None
    except (SafetensorError, ValueError, TypeError, KeyError) as error:
        raise _damaged(source, error) from None
    return tensors, dict(metadata)


def parse_safetensors(data: bytes, source="<bytes>") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Validate and decode the bytes of a safetensors file (see :func:`load_safetensors`)."""
    try:
        tensors = safetensors.numpy.load(bytes(data))
    except (SafetensorError, ValueError, TypeError) as error:
        raise _damaged(source, error) from None
    # the package has validated the header; its metadata is read from the JSON it checked
    (header_length,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(bytes(data[8:8 + header_length]).decode("utf-8")).get("__metadata__") or {}
    return {name: _writable(array) for name, array in tensors.items()}, dict(metadata)


def _writable(array: np.ndarray) -> np.ndarray:
    return array if array.flags.writeable else array.copy()
