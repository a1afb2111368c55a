"""Atomic file writes and the run directory: where a training run keeps its config, weights and resume state.

Writes are atomic: a new file is written under a temporary name in the same directory, flushed and
fsynced, then moved over the old one with ``os.replace`` (atomic on POSIX and Windows), and the
directory is fsynced so the rename survives a crash. An interrupted write (an exception, Ctrl-C, a
full disk, a killed process) leaves the previous file intact; the temporary file is removed on an
exception.

A run directory holds::

    RUN_DIR/config.json                 model + data settings, vocabulary, rnnlab version, format_version
    RUN_DIR/model.safetensors           the latest weights under PyTorch's parameter names (torch loads it as is)
    RUN_DIR/training_state.safetensors  everything needed to resume, in ONE file, so it is never half old,
                                        half new: the weights ("model/<name>"), the caller's other arrays
                                        under their own names (e.g. "optimizer/state.0.exp_avg",
                                        "hidden/0"), and in the metadata the caller's JSON (step, epoch,
                                        data position, rng state, optimizer hyper-parameters, scheduler
                                        state, best validation loss, history) plus format_version
    RUN_DIR/best.safetensors            the weights with the best validation loss (layout of model.safetensors)

Use::

    run = RunDirectory("runs/hamlet")
    run.create(config)                           # RnnlabError if a run is already there (unless overwrite)
    run.save_latest(model.state_dict(), {"step": 100, ...}, {"optimizer/state.0.exp_avg": ...})
    run.save_best(model.state_dict(), {"step": 100, "val_loss": 1.52})
    model_state, arrays, meta = run.load_training_state()     # to resume
    weights = run.load_weights("best")                         # "best", "latest" or "auto"

Files from a newer format (``format_version`` above :data:`FORMAT_VERSION`) and missing or damaged files
raise a one-line :class:`~rnnlab.errors.RnnlabError` that names the file and says what to do.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np

from .. import __version__
from ..errors import RnnlabError
from .safetensors_io import load_safetensors, save_safetensors

FORMAT_VERSION = 1

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
TRAINING_STATE_FILE = "training_state.safetensors"
BEST_FILE = "best.safetensors"
MODEL_PREFIX = "model/"


# ---------------------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------------------

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


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (the old file or the whole new one, never a part)."""
    with atomic_writer(path, "wb") as file:
        file.write(data)


def atomic_write_json(path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"  # serialise first: a TypeError writes nothing
    atomic_write_bytes(path, text.encode("utf-8"))


def _check_format_version(version, source: Path) -> None:
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise RnnlabError(f"{source}: format_version {version!r} is not a number; the file is damaged, "
                          f"restore it or train again") from None
    if version > FORMAT_VERSION:
        raise RnnlabError(f"{source}: written by a newer rnnlab (format {version}; this rnnlab {__version__} "
                          f"reads format {FORMAT_VERSION} and older); upgrade rnnlab (pip install -U rnnlab)")


# ---------------------------------------------------------------------------------------------------
# the run directory
# ---------------------------------------------------------------------------------------------------

class RunDirectory:
    """A training run's directory: ``config.json``, ``model.safetensors``, ``training_state.safetensors``,
    ``best.safetensors`` (see the module docstring)."""

    def __init__(self, path):
        self.path = Path(path)
        self._config = None  # config.json as created or read, to write it again if the directory is removed

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def training_state_path(self) -> Path:
        return self.path / TRAINING_STATE_FILE

    @property
    def best_path(self) -> Path:
        return self.path / BEST_FILE

    def exists(self) -> bool:
        """Whether a run is here (its ``config.json`` exists)."""
        return self.config_path.is_file()

    def has_training_state(self) -> bool:
        return self.training_state_path.is_file()

    def has_best(self) -> bool:
        return self.best_path.is_file()

    # --- config -------------------------------------------------------------------------------
    def create(self, config: dict, overwrite: bool = False) -> None:
        """Make the directory and write ``config.json`` (with ``format_version`` and ``rnnlab_version``).

        Refuses to clobber an existing run unless ``overwrite``; then the old run's files are removed.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RnnlabError(f"{self.path}: exists and is not a directory; choose another --out")
        if self.exists() and not overwrite:
            raise RnnlabError(f"{self.path}: already holds a run; add --resume to continue it, "
                              f"or choose another --out")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RnnlabError(f"{self.path}: cannot create the run directory ({error.strerror or error}); "
                              f"choose another --out") from None
        if overwrite:
            for name in (MODEL_FILE, TRAINING_STATE_FILE, BEST_FILE):
                with contextlib.suppress(FileNotFoundError):
                    (self.path / name).unlink()
        contents = dict(config)
        contents.setdefault("rnnlab_version", __version__)
        contents["format_version"] = FORMAT_VERSION
        atomic_write_json(self.config_path, contents)
        self._config = contents

    def _ensure_exists(self) -> None:
        """Before a save: a run directory removed while training is made again with its config.json, so the
        checkpoint still lands somewhere loadable (and is not a traceback)."""
        if self._config is None or self.config_path.is_file():
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RnnlabError(f"{self.path}: the run directory is gone and cannot be made again "
                              f"({error.strerror or error}); the training since the last checkpoint is lost") from None
        print(f"rnnlab: warning: {self.path} was removed while training; made it again with its config.json",
              file=sys.stderr)
        atomic_write_json(self.config_path, self._config)

    def read_config(self) -> dict:
        """The run's ``config.json``; RnnlabError when missing, damaged or from a newer format."""
        source = self.config_path
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RnnlabError(f"{source}: no such file; {self.path} is not a run directory "
                              f"(train one with `rnnlab train --out {self.path}`)") from None
        except (OSError, UnicodeDecodeError) as error:
            raise RnnlabError(f"{source}: cannot read ({error}); restore the file or train again") from None
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise RnnlabError(f"{source}: not valid JSON ({error.msg} at line {error.lineno}); "
                              f"restore the file or train again") from None
        if not isinstance(config, dict):
            raise RnnlabError(f"{source}: not a run configuration (expected a JSON object); "
                              f"restore the file or train again")
        _check_format_version(config.get("format_version", 1), source)
        self._config = config
        return config

    # --- saving -------------------------------------------------------------------------------
    def save_latest(self, model_state: dict, training_meta: dict, arrays: dict | None = None) -> None:
        """Save everything needed to resume, then the latest weights.

        ``training_meta`` must be JSON-able; ``arrays`` (optimizer buffers, carried hidden state...) are
        stored under their own names, which must not start with ``model/``.
        """
        tensors = {MODEL_PREFIX + name: _as_array(value) for name, value in model_state.items()}
        for name, value in (arrays or {}).items():
            if name.startswith(MODEL_PREFIX):
                raise ValueError(f"array name {name!r} clashes with the model weights' prefix {MODEL_PREFIX!r}")
            tensors[name] = _as_array(value)
        meta_text = json.dumps(training_meta)  # a TypeError here, before anything is written
        self._ensure_exists()
        metadata = {"format_version": str(FORMAT_VERSION), "rnnlab_version": __version__,
                    "training_meta": meta_text}
        save_safetensors(self.training_state_path, tensors, metadata)
        save_safetensors(self.model_path, _weights(model_state), self._weights_metadata())

    def save_best(self, model_state: dict, meta: dict | None = None) -> None:
        """Save the weights with the best validation loss; ``meta`` (JSON-able: step, val_loss) goes along."""
        self._ensure_exists()
        metadata = self._weights_metadata()
        if meta:
            metadata["rnnlab_meta"] = json.dumps(meta)
        save_safetensors(self.best_path, _weights(model_state), metadata)

    def save_weights(self, model_state: dict, meta: dict | None = None) -> None:
        """Save only ``model.safetensors`` (for runs without resume state)."""
        self._ensure_exists()
        metadata = self._weights_metadata()
        if meta:
            metadata["rnnlab_meta"] = json.dumps(meta)
        save_safetensors(self.model_path, _weights(model_state), metadata)

    @staticmethod
    def _weights_metadata() -> dict[str, str]:
        # "format": "pt" is what PyTorch-side tools (transformers, safetensors.torch) expect to find.
        return {"format": "pt", "format_version": str(FORMAT_VERSION), "rnnlab_version": __version__}

    # --- loading ------------------------------------------------------------------------------
    def _load(self, path: Path, what: str) -> tuple[dict, dict]:
        if not path.is_file():
            if path.name == TRAINING_STATE_FILE:
                advice = "train without --resume, or give the run directory with --out"
            elif path.name == BEST_FILE and self.model_path.is_file():
                advice = "no validation has run yet; use --checkpoint latest, or train on with --resume"
            else:
                advice = f"train first with `rnnlab train --out {self.path}`"
            raise RnnlabError(f"{path}: no such file ({what}); {advice}")
        tensors, metadata = load_safetensors(path)
        _check_format_version(metadata.get("format_version", 1), path)
        return tensors, metadata

    def load_training_state(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict]:
        """``(model_state, arrays, training_meta)`` as :meth:`save_latest` stored them."""
        tensors, metadata = self._load(self.training_state_path, "the state to resume from")
        try:
            meta = json.loads(metadata["training_meta"])
        except (KeyError, json.JSONDecodeError):
            raise RnnlabError(f"{self.training_state_path}: the training metadata is missing or damaged; "
                              f"restore the file or train again without --resume") from None
        model_state = {name[len(MODEL_PREFIX):]: value for name, value in tensors.items()
                       if name.startswith(MODEL_PREFIX)}
        arrays = {name: value for name, value in tensors.items() if not name.startswith(MODEL_PREFIX)}
        return model_state, arrays, meta

    def load_weights(self, which: str = "auto") -> dict[str, np.ndarray]:
        """The weights by PyTorch name: ``"best"``, ``"latest"``, or ``"auto"`` (best if saved, else latest)."""
        if which == "auto":
            which = "best" if self.has_best() else "latest"
        if which not in ("best", "latest"):
            raise ValueError(f"which must be 'best', 'latest' or 'auto', got {which!r}")
        path = self.best_path if which == "best" else self.model_path
        tensors, _ = self._load(path, f"the {which} weights")
        return tensors

    def load_weights_meta(self, which: str = "best") -> dict:
        """The JSON metadata saved beside the ``best`` (or ``latest``) weights, ``{}`` if none."""
        path = self.best_path if which == "best" else self.model_path
        _, metadata = self._load(path, f"the {which} weights")
        try:
            return json.loads(metadata.get("rnnlab_meta", "{}"))
        except json.JSONDecodeError:
            return {}


def _as_array(value) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, order="C")


def _weights(model_state: dict) -> dict[str, np.ndarray]:
    return {name: _as_array(value) for name, value in model_state.items()}


# ---------------------------------------------------------------------------------------------------
# opening a trained run (``rnnlab sample``/``eval`` and ``rnnlab classify eval``)
# ---------------------------------------------------------------------------------------------------

def open_run(run_dir, kind: str, what: str, command: str, required=("model",)) -> tuple[RunDirectory, dict]:
    """``(RunDirectory, config)`` of the run in ``run_dir``, which ``command`` (e.g. ``rnnlab train``) wrote.

    RnnlabError (one line) when the path is missing or not a directory, holds no ``config.json``, or holds
    another ``kind`` of run (``what`` names this kind in the message: "a classifier") or lacks a
    ``required`` key of config.json. Runs written before ``kind`` was recorded are char-LM runs.
    """
    path = Path(run_dir)
    if not path.exists():
        raise RnnlabError(f"{path}: no such run directory; train one with `{command} --out {path}`")
    if not path.is_dir():
        raise RnnlabError(f"{path}: not a directory; give the run directory that `{command} --out` wrote")
    if not (path / CONFIG_FILE).is_file():
        raise RnnlabError(f"{path}: not a run directory (no config.json); give the directory "
                          f"that `{command} --out` wrote")
    run = RunDirectory(path)
    config = run.read_config()
    if config.get("kind", "charlm") != kind or any(key not in config for key in required):
        raise RnnlabError(f"{path}: holds a {config.get('kind', 'charlm')!r} run, not {what}; "
                          f"use the command that trained it")
    return run, config


def load_model(run: RunDirectory, build_model, which: str | None = None):
    """``(model, which)``: ``build_model()`` (from config.json) with the ``which`` weights (``"best"``,
    ``"latest"``, ``None`` = best if saved, else latest) loaded, in evaluation mode.

    RnnlabError (one line) when the model settings are damaged or the weights do not fit them.
    """
    try:
        model = build_model()
    except (KeyError, TypeError, ValueError) as error:
        raise RnnlabError(f"{run.config_path}: the model settings are damaged ({error}); "
                          f"re-train or restore the file") from None
    if which is None:
        which = "best" if run.has_best() else "latest"
    weights = run.load_weights(which)
    try:
        model.load_state_dict(weights)
    except (KeyError, ValueError) as error:
        raise RnnlabError(f"{run.path}: the {which} weights do not fit config.json ({error}); "
                          f"re-train or restore the run") from None
    model.eval()
    return model, which
