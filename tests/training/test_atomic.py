"""Atomic writes: whole files or the previous ones, no temporary files left, one-line errors, ordinary permissions."""
from __future__ import annotations

import json
import os
import stat
import threading

import numpy as np
import pytest

from rnnlab.errors import RnnlabError
from rnnlab.training import atomic
from rnnlab.training.atomic import atomic_write_bytes, atomic_write_json, atomic_writer, remove_stale_temporaries
from rnnlab.training.safetensors_io import load_safetensors, save_safetensors


def test_atomic_write_replaces_whole_files(tmp_path):
    path = tmp_path / "x.bin"
    atomic_write_bytes(path, b"first")
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    atomic_write_json(tmp_path / "c.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "c.json").read_text()) == {"a": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "x.bin"]


def test_interrupted_write_leaves_previous_file_and_no_temp_files(tmp_path):
    path = tmp_path / "model.safetensors"
    save_safetensors(path, {"w": np.arange(3.0)})
    before = path.read_bytes()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with atomic_writer(path) as file:
            file.write(b"half a new fi")
            raise Boom()
    # Also mid-way through a real tensor write: an array that fails to convert.
    class Exploding:
        def __array__(self, *args, **kwargs):
            raise Boom()

    with pytest.raises(Boom):
        save_safetensors(path, {"w": np.arange(3.0), "bad": Exploding()})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_interrupt_during_the_replace_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    atomic_write_json(path, {"v": 1})

    def failing_replace(src, dst):
        raise KeyboardInterrupt()

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_json_that_cannot_serialise_writes_nothing(tmp_path):
    path = tmp_path / "c.json"
    atomic_write_json(path, {"v": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"v": object()})
    assert json.loads(path.read_text()) == {"v": 1}


def test_a_failed_write_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    atomic_write_json(path, {"v": 1})

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(RnnlabError, match=r"config.json: cannot write \(No space left on device\)"):
        atomic_write_json(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
    with pytest.raises(RnnlabError, match="cannot write"):
        atomic_write_json(tmp_path / "missing-folder" / "x.json", {})


def test_written_files_get_ordinary_permissions_not_mkstemps_private_ones(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "x.bin", b"abc")
    finally:
        os.umask(old)
    assert (tmp_path / "x.bin").stat().st_mode & 0o777 == 0o644



def test_remove_stale_temporaries_clears_what_a_killed_writer_left(tmp_path):
    (tmp_path / ".model.safetensors.abc123.tmp").write_bytes(b"half")
    (tmp_path / "model.safetensors").write_bytes(b"whole")
    (tmp_path / "notes.tmp").write_bytes(b"not ours: no leading dot")
    removed = remove_stale_temporaries(tmp_path)
    assert [p.name for p in removed] == [".model.safetensors.abc123.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "notes.tmp"]


def test_a_fifo_is_written_through_and_stays_a_fifo(tmp_path):
    # `--out /dev/stdout` or a named pipe: a rename over it would replace the stream with a file
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    atomic_write_bytes(fifo, b"payload")
    reader.join(timeout=10)
    assert received == [b"payload"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_full_device_is_one_line_and_stays_a_device(tmp_path):
    # a copy of /dev/full (char 1, 7) in tmp_path, so that a regression can only replace the copy
    device = tmp_path / "full"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except (PermissionError, OSError):
        pytest.skip("making a device node needs root")
    with pytest.raises(RnnlabError, match=r"^.*full: cannot write \(No space left on device\)[^\n]*$"):
        atomic_write_bytes(device, b"x" * 100)
    assert stat.S_ISCHR(os.stat(device).st_mode)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_directory_as_the_target_is_refused_in_one_line(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(RnnlabError, match="is a directory; give the path of a file"):
        atomic_write_json(tmp_path / "folder", {"a": 1})
    assert (tmp_path / "folder").is_dir()
