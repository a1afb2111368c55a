"""Checkpoint files through the safetensors package: round trips, PyTorch reads them, damaged files are one line."""
from __future__ import annotations

import io
import json
import os
import struct

import numpy as np
import pytest

from rnnlab.errors import RnnlabError
from rnnlab.training.safetensors_io import load_safetensors, parse_safetensors, save_safetensors


def sample_tensors():
    rng = np.random.default_rng(0)
    return {
        "weight_ih_l0": rng.standard_normal((8, 3)).astype(np.float32),
        "bias": rng.standard_normal(5),                      # float64
        "ids": np.arange(7, dtype=np.int64),
        "small": np.array([1, 2, 3], dtype=np.uint8),        # odd size: later tensors unaligned in the data
        "half": np.array([0.5, -2.0], dtype=np.float16),
        "mask": np.array([True, False, True]),
        "scalar": np.array(3.25, dtype=np.float32),          # shape ()
        "empty": np.zeros((0, 4), dtype=np.float32),
        "strided": rng.standard_normal((4, 6))[:, ::2],      # not contiguous: saved in C order
    }


def test_round_trip_keeps_values_dtypes_shapes_and_metadata(tmp_path):
    tensors = sample_tensors()
    path = tmp_path / "a.safetensors"
    save_safetensors(path, tensors, {"step": "12", "note": "héllo"})
    loaded, metadata = load_safetensors(path)
    assert metadata == {"step": "12", "note": "héllo"}
    assert set(loaded) == set(tensors)
    for name, array in tensors.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].flags.writeable
    header_length = struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert header_length % 8 == 0


def test_files_we_write_load_with_the_safetensors_package(tmp_path, torch):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    tensors = sample_tensors()
    path = tmp_path / "ours.safetensors"
    save_safetensors(path, tensors, {"format": "pt"})
    by_numpy = safetensors_numpy.load_file(str(path))
    by_torch = safetensors_torch.load_file(str(path))
    for name, array in tensors.items():
        np.testing.assert_array_equal(by_numpy[name], array)
        np.testing.assert_array_equal(by_torch[name].numpy(), array)
        assert by_numpy[name].dtype == array.dtype


def test_files_the_package_writes_load_with_ours(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {k: np.ascontiguousarray(v) for k, v in sample_tensors().items()}
    path = tmp_path / "theirs.safetensors"
    safetensors_numpy.save_file(tensors, str(path), metadata={"epoch": "3"})
    loaded, metadata = load_safetensors(path)
    assert metadata == {"epoch": "3"}
    assert set(loaded) == set(tensors)
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype


def test_torch_lstm_loads_our_file_as_is(tmp_path, torch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    reference = torch.nn.LSTM(3, 4, num_layers=2)
    state = {name: tensor.detach().numpy() * 0 + np.arange(tensor.numel(), dtype=np.float32).reshape(tensor.shape)
             for name, tensor in reference.state_dict().items()}
    path = tmp_path / "lstm.safetensors"
    save_safetensors(path, state)
    model = torch.nn.LSTM(3, 4, num_layers=2)
    model.load_state_dict(safetensors_torch.load_file(str(path)))
    for name, tensor in model.state_dict().items():
        np.testing.assert_array_equal(tensor.numpy(), state[name])


def test_save_to_an_open_file_and_torch_tensors_as_input(torch):
    buffer = io.BytesIO()
    save_safetensors(buffer, {"w": torch.arange(4, dtype=torch.float64)})
    loaded, metadata = parse_safetensors(buffer.getvalue())
    np.testing.assert_array_equal(loaded["w"], np.arange(4.0))
    assert metadata == {}


def good_bytes():
    buffer = io.BytesIO()
    save_safetensors(buffer, {"a": np.arange(6, dtype=np.float32), "b": np.ones(2)}, {"k": "v"})
    return buffer.getvalue()


def with_header(header: dict, data: bytes) -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


@pytest.mark.parametrize("make_bad", [
    lambda good: good[:5],                                               # shorter than the length field
    lambda good: good[:-3],                                              # truncated data
    lambda good: good[:40],                                              # truncated header
    lambda good: struct.pack("<Q", 10**12) + good[8:],                   # absurd header length
    lambda good: good[:8] + b"[" + good[9:],                             # header not JSON
    lambda good: good + b"\0" * 8,                                       # trailing bytes
    lambda good: with_header({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
    lambda good: with_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
    lambda good: with_header({"a": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8),
    lambda good: with_header({"a": {"dtype": "F32"}}, b""),
    lambda good: with_header([1, 2], b""),
    lambda good: b"\0" * 64,
])
def test_damaged_files_raise_one_rnnlab_error_line_naming_the_file(tmp_path, make_bad):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(make_bad(good_bytes()))
    with pytest.raises(RnnlabError, match="not a valid safetensors file") as info:
        load_safetensors(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(RnnlabError, match="not a valid safetensors file"):
        parse_safetensors(path.read_bytes(), path)


def test_a_directory_and_an_unreadable_file_are_one_line(tmp_path):
    with pytest.raises(RnnlabError, match="is a directory"):
        load_safetensors(tmp_path)
    path = tmp_path / "locked.safetensors"
    path.write_bytes(good_bytes())
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who reads any file (root)")
        with pytest.raises(RnnlabError, match="cannot read"):
            load_safetensors(path)
    finally:
        path.chmod(0o644)


def test_a_path_is_written_atomically_and_an_open_file_as_is(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    save_safetensors(path, {"a": np.ones(3)})
    before = path.read_bytes()
    def interrupted(fd):
        raise KeyboardInterrupt  # Ctrl-C after the new bytes are written, before the rename

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_safetensors(path, {"a": np.zeros(3)})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
    monkeypatch.undo()
    buffer = io.BytesIO()
    save_safetensors(buffer, {"a": np.ones(3)})
    assert buffer.getvalue() == before


def test_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(RnnlabError, match="no such file"):
        load_safetensors(tmp_path / "nope.safetensors")


def test_unstorable_dtype_and_bad_metadata_are_rejected():
    with pytest.raises(TypeError, match="cannot store"):
        save_safetensors(io.BytesIO(), {"c": np.zeros(2, dtype=np.complex64)})
    with pytest.raises(TypeError, match="metadata must map str to str"):
        save_safetensors(io.BytesIO(), {"a": np.zeros(1)}, {"step": 3})
