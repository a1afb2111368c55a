"""Atomic file writes: a file is the old one or the whole new one, never a part.

A new file is written under a temporary name in the same directory (``.NAME.XXXX.tmp``), flushed and
fsynced, then moved over the old one with ``os.replace`` (atomic on POSIX and Windows), and the
directory is fsynced so the rename survives a crash. An interrupted write (an exception, Ctrl-C, a full
disk) leaves the previous file intact and removes the temporary file; a killed process cannot remove it,
so :func:`remove_stale_temporaries` clears what such a process left behind.

A path that names a device, a pipe or a socket (``--out /dev/stdout``, a FIFO) is written straight
through: renaming over it would replace the device itself (``/dev/full`` or ``/dev/null`` turned into a
file, as root), and a stream has no "old version" to keep. A directory is refused.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from .. import strict_json
from ..errors import RnnlabError


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable; some systems (Windows) cannot open a directory, which is fine there."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path, mode: str = "wb") -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left as it was.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> with atomic_writer(target, "w") as file:
    ...     _ = file.write("hello")
    >>> target.read_text()
    'hello'
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        kind = os.stat(path).st_mode
    except OSError:
        kind = None  # not there yet (or unreadable: mkstemp below says why)
    if kind is not None and stat.S_ISDIR(kind):
        raise RnnlabError(f"{path} is a directory; give the path of a file to write")
    if kind is not None and not stat.S_ISREG(kind):
        with _streamed(path, mode) as file:
            yield file
        return
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise RnnlabError(f"{path}: cannot write ({error.strerror or error}); check that {directory} exists "
                          f"and is writable") from None
    try:
        # mkstemp makes the file private (0600); give it the permissions an ordinary new file gets
        os.chmod(temporary, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):  # a full disk, a folder made read-only or removed: one line, not a traceback
            raise RnnlabError(f"{path}: cannot write ({error.strerror or error}); the previous file is intact; "
                              f"free some space or check {directory}") from None
        raise
    _fsync_directory(directory)


@contextlib.contextmanager
def _streamed(path: Path, mode: str) -> Iterator[BinaryIO]:
    """Write to a device, pipe or socket in place (no temporary file, no rename)."""
    try:
        with open(path, mode.replace("w", "a"), **({} if "b" in mode else {"encoding": "utf-8"})) as file:
            yield file
    except OSError as error:  # /dev/full, a closed pipe
        raise RnnlabError(f"{path}: cannot write ({error.strerror or error}); give the path of a file "
                          f"or a writable stream") from None


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (the old file or the whole new one, never a part)."""
    with atomic_writer(path, "wb") as file:
        file.write(data)


def atomic_write_json(path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    # serialise first (a TypeError writes nothing); a NaN or an infinity is written as null, which JSON allows
    text = strict_json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temporaries(directory) -> list[Path]:
    """Remove the temporary files (``.NAME.XXXX.tmp``) an :func:`atomic_writer` killed mid-write left in
    ``directory``; returns what was removed. Call it only while no other process writes there (the run
    directory's lock is held)."""
    removed = []
    for path in sorted(Path(directory).glob(".*.tmp")):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                path.unlink()
                removed.append(path)
    return removed
