"""The run directory: where a training run keeps its config, weights and resume state, and how it is opened.

A run directory holds::

    RUN_DIR/config.json                 "kind" (charlm, classify), model + data settings, vocabulary or class
                                        names, rnnlab version, format_version
    RUN_DIR/model.safetensors           the latest weights under PyTorch's parameter names (torch loads it as is)
    RUN_DIR/training_state.safetensors  everything needed to resume, in ONE file, so it is never half old,
                                        half new: the weights ("model/<name>"), the caller's other arrays
                                        under their own names (e.g. "optimizer/state.0.exp_avg",
                                        "hidden/0"), and in the metadata the caller's JSON (step, epoch,
                                        data position, rng state, optimizer hyper-parameters, scheduler
                                        state, best validation loss, history) plus format_version
    RUN_DIR/best.safetensors            the weights with the best validation loss (layout of model.safetensors)
    RUN_DIR/.lock                       the advisory lock a training process holds (its PID inside)

Every file is written atomically (:mod:`rnnlab.training.atomic`). Use::

    run = RunDirectory("runs/hamlet")
    run.create(config)                           # RnnlabError if a run is already there (unless overwrite)
    run.save_latest(model.state_dict(), {"step": 100, ...}, {"optimizer/state.0.exp_avg": ...})
    run.save_best(model.state_dict(), {"step": 100, "val_loss": 1.52})
    model_state, arrays, meta = run.load_training_state()     # to resume
    weights = run.load_weights("best")                         # a checkpoint name: see resolve_checkpoint

    loaded = load_run("runs/hamlet", "charlm", "best")         # config, model (eval mode), vocabulary
    model = load("runs/hamlet")                                # what rnnlab.load returns

A process trains in a run directory only under its lock (:meth:`RunDirectory.lock`: ``fcntl.flock``, which
the kernel releases when the process dies, even by ``kill -9``); a second process gets one line naming
the PID that holds it. Non-finite weights never load (:func:`load_model`) and are never saved as best.

Which kind of run a directory holds is decided in one place, :func:`check_kind` (runs written before
"kind" was recorded are char-LM runs). Files from a newer format (``format_version`` above
:data:`FORMAT_VERSION`) and missing or damaged files raise a one-line :class:`~rnnlab.errors.RnnlabError`
that names the file and says what to do.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__, strict_json
from ..errors import RnnlabError
from .atomic import atomic_write_json, remove_stale_temporaries
from .safetensors_io import load_safetensors, save_safetensors

FORMAT_VERSION = 1

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
TRAINING_STATE_FILE = "training_state.safetensors"
BEST_FILE = "best.safetensors"
LOCK_FILE = ".lock"
MODEL_PREFIX = "model/"

# kind -> (what the messages call it, the command that writes it, the config.json keys it must hold)
KINDS = {
    "charlm": ("a character language model", "rnnlab train", ("model", "vocabulary")),
    "classify": ("a classifier", "rnnlab classify train", ("model",)),
    "seq2seq": ("a sequence-to-sequence model", "rnnlab seq2seq train",
                ("model", "source_vocabulary", "target_vocabulary")),
    "tagger": ("a sequence tagger", "rnnlab tag train", ("model", "vocabulary")),
}
# the names --checkpoint (and rnnlab.load's checkpoint=) takes; None means best if saved, else latest
CHECKPOINT_NAMES = ("best", "latest")


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

    # --- the lock -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self):
        """Hold the run directory's lock while the block runs (a training process, start to end).

        An exclusive ``fcntl.flock`` on ``RUN_DIR/.lock`` (which then holds this process's PID): the kernel
        releases it when the file is closed or the process dies, so a killed run never leaves it behind.
        Another process holding it is one RnnlabError line naming its PID. On acquiring it, temporary files
        that a killed writer left (:func:`rnnlab.training.atomic.remove_stale_temporaries`) are removed. A
        directory this lock had to make, and that holds nothing else when the block ends, is removed again.
        Where ``fcntl`` does not exist (Windows), nothing is locked.
        """
        try:
            import fcntl
        except ImportError:
            yield
            return
        made = not self.path.exists()
        self._make_directory()
        lock_path = self.path / LOCK_FILE
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as error:
            raise RnnlabError(f"{lock_path}: cannot open the run's lock file ({error.strerror or error}); "
                              f"check the permissions of {self.path}, or choose another --out") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                raise RnnlabError(f"{self.path}: another rnnlab process (PID {holder}) is training in this run "
                                  f"directory; wait for it to finish or stop it, or choose another --out") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            for directory in (self.path, self.path / "checkpoints"):
                remove_stale_temporaries(directory)
            yield
        finally:
            if made:
                # nothing written (the run stopped before its config.json): leave no half-made directory
                with contextlib.suppress(OSError):
                    if {entry.name for entry in self.path.iterdir()} <= {LOCK_FILE}:
                        lock_path.unlink()
                        self.path.rmdir()
            os.close(fd)  # releases the lock

    def _make_directory(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise RnnlabError(f"{self.path}: exists and is not a directory; choose another --out")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RnnlabError(f"{self.path}: cannot create the run directory ({error.strerror or error}); "
                              f"choose another --out") from None

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
        self._make_directory()
        if overwrite:
            for name in (MODEL_FILE, TRAINING_STATE_FILE, BEST_FILE):
                try:
                    (self.path / name).unlink()
                except FileNotFoundError:
                    pass
                except OSError as error:
                    raise RnnlabError(f"{self.path / name}: cannot remove it to start afresh "
                                      f"({error.strerror or error}); move it out of the way, or choose another --out"
                                      ) from None
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
        meta_text = strict_json.dumps(training_meta)  # a TypeError here, before anything is written
        self._ensure_exists()
        metadata = {"format_version": str(FORMAT_VERSION), "rnnlab_version": __version__,
                    "training_meta": meta_text}
        save_safetensors(self.training_state_path, tensors, metadata)
        save_safetensors(self.model_path, _weights(model_state), self._weights_metadata())

    def save_best(self, model_state: dict, meta: dict | None = None) -> bool:
        """Save the weights with the best validation loss; ``meta`` (JSON-able: step, val_loss) goes along.

        Weights holding a NaN or an infinity are never the best: they are not saved (returns False)."""
        weights = _weights(model_state)
        if non_finite_names(weights):
            return False
        self._ensure_exists()
        metadata = self._weights_metadata()
        if meta:
            metadata["rnnlab_meta"] = strict_json.dumps(meta)
        save_safetensors(self.best_path, weights, metadata)
        return True

    def save_weights(self, model_state: dict, meta: dict | None = None) -> None:
        """Save only ``model.safetensors`` (for runs without resume state)."""
        self._ensure_exists()
        metadata = self._weights_metadata()
        if meta:
            metadata["rnnlab_meta"] = strict_json.dumps(meta)
        save_safetensors(self.model_path, _weights(model_state), metadata)

    @staticmethod
    def _weights_metadata() -> dict[str, str]:
        # "format": "pt" is what PyTorch-side tools (transformers, safetensors.torch) expect to find.
        return {"format": "pt", "format_version": str(FORMAT_VERSION), "rnnlab_version": __version__}

    # --- loading ------------------------------------------------------------------------------
    def load_file(self, path: Path, what: str) -> tuple[dict, dict]:
        """``(tensors, metadata)`` of one of the run's safetensors files (``what`` names it in messages)."""
        if path.exists() and not path.is_file():
            raise RnnlabError(f"{path}: not a regular file ({what}); move it out of the way and restore the file, "
                              f"or train again into a new --out")
        if not path.is_file():
            if path.name == TRAINING_STATE_FILE:
                advice = "train without --resume, or give the run directory with --out"
            elif path.name == BEST_FILE and self.model_path.is_file():
                advice = ("no validation has run yet; use --checkpoint latest (checkpoint='latest' in Python), "
                          "or train on with --resume")
            else:
                advice = f"train first with `rnnlab train --out {self.path}`"
            raise RnnlabError(f"{path}: no such file ({what}); {advice}")
        tensors, metadata = load_safetensors(path)
        _check_format_version(metadata.get("format_version", 1), path)
        return tensors, metadata

    def load_training_state(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict]:
        """``(model_state, arrays, training_meta)`` as :meth:`save_latest` stored them."""
        tensors, metadata = self.load_file(self.training_state_path, "the state to resume from")
        try:
            meta = json.loads(metadata["training_meta"])
        except (KeyError, json.JSONDecodeError):
            raise RnnlabError(f"{self.training_state_path}: the training metadata is missing or damaged; "
                              f"restore the file or train again without --resume") from None
        model_state = {name[len(MODEL_PREFIX):]: value for name, value in tensors.items()
                       if name.startswith(MODEL_PREFIX)}
        arrays = {name: value for name, value in tensors.items() if not name.startswith(MODEL_PREFIX)}
        return model_state, arrays, meta

    def load_weights(self, checkpoint="auto") -> dict[str, np.ndarray]:
        """The weights by PyTorch name; ``checkpoint`` as :func:`resolve_checkpoint` takes it ("auto" or
        None: best if saved, else latest)."""
        path, name = resolve_checkpoint(self, checkpoint)
        tensors, _ = self.load_file(path, f"the {name} weights")
        return tensors

    def load_weights_meta(self, checkpoint="best") -> dict:
        """The JSON metadata saved beside the ``checkpoint`` weights, ``{}`` if none."""
        path, name = resolve_checkpoint(self, checkpoint)
        _, metadata = self.load_file(path, f"the {name} weights")
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
# which checkpoint, which kind of run
# ---------------------------------------------------------------------------------------------------

def resolve_checkpoint(run: RunDirectory, checkpoint=None) -> tuple[Path, str]:
    """``(file, name)`` of the weights ``checkpoint`` names: ``"best"``, ``"latest"``, ``None`` (best if
    saved, else latest), a step of the run's history (``400`` or ``"400"``: ``checkpoints/step-000400``,
    kept by ``--keep``) or the path of a weights file (:func:`rnnlab.training.history.resolve_history`).
    ``name`` is what messages and ``--json`` call it. The one place a checkpoint name becomes a file
    (``rnnlab sample/eval --checkpoint``, ``rnnlab.load(checkpoint=)``)."""
    if checkpoint is None or checkpoint == "auto":
        checkpoint = "best" if run.has_best() else "latest"
    if checkpoint == "best":
        return run.best_path, "best"
    if checkpoint == "latest":
        return run.model_path, "latest"
    from .history import resolve_history

    return resolve_history(run.path, checkpoint)


def run_kind(config: dict) -> str:
    """The kind of run a ``config.json`` describes (runs written before "kind" was recorded are char-LM runs)."""
    return config.get("kind", "charlm")


def check_kind(path, config: dict, kind: str) -> None:
    """RnnlabError unless ``config`` (``path``'s config.json) is a ``kind`` run holding the keys it needs."""
    what, command, required = KINDS[kind]
    found = run_kind(config)
    if found != kind or any(key not in config for key in required):
        raise RnnlabError(f"{path}: holds a {found!r} run, not {what}; give a run directory written by `{command}`")


def open_run(run_dir, kind: str) -> tuple[RunDirectory, dict]:
    """``(RunDirectory, config)`` of the ``kind`` run (see :data:`KINDS`) in ``run_dir``.

    RnnlabError (one line) when the path is missing or not a directory, holds no ``config.json``, or holds
    another kind of run or one that lacks a key of config.json its kind needs.
    """
    what, command, _ = KINDS[kind]
    path = Path(run_dir)
    try:
        os.stat(path)
        exists = True
    except FileNotFoundError:
        exists = False
    except OSError as error:  # a symlink loop, a name too long
        raise RnnlabError(f"{path}: cannot open ({error.strerror or error}); give the run directory that "
                          f"`{command} --out` wrote") from None
    is_dir = exists and path.is_dir()
    if not exists:
        raise RnnlabError(f"{path}: no such run directory; train one with `{command} --out {path}`")
    if not is_dir:
        raise RnnlabError(f"{path}: not a directory; give the run directory that `{command} --out` wrote")
    if not (path / CONFIG_FILE).is_file():
        raise RnnlabError(f"{path}: not a run directory (no config.json); give the directory "
                          f"that `{command} --out` wrote")
    run = RunDirectory(path)
    config = run.read_config()
    check_kind(path, config, kind)
    return run, config


def open_for_resume(out, kind: str) -> tuple[RunDirectory, dict]:
    """``(RunDirectory, config)`` of the ``kind`` run to continue in ``out`` (``--resume``); one line if
    there is none or it is another kind, or its ``train`` settings are missing."""
    _, command, _ = KINDS[kind]
    run = RunDirectory(out)
    if not run.exists():
        raise RnnlabError(f"{run.path}: no run to resume (no config.json); train without --resume first, "
                          f"or give the run directory with --out")
    config = run.read_config()
    check_kind(run.path, config, kind)
    if not isinstance(config.get("train"), dict):
        raise RnnlabError(f"{run.path}: config.json holds no training settings; give a run directory written "
                          f"by `{command}`")
    return run, config


# ---------------------------------------------------------------------------------------------------
# loading a trained run (rnnlab.load, ``rnnlab sample``/``eval``, ``rnnlab classify eval``)
# ---------------------------------------------------------------------------------------------------

def non_finite_names(weights: dict) -> list[str]:
    """The names of the floating-point arrays in ``weights`` that hold a NaN or an infinity."""
    return [name for name, value in weights.items()
            if np.asarray(value).dtype.kind == "f" and not np.isfinite(value).all()]


def load_model(run: RunDirectory, build_model, checkpoint=None):
    """``(model, name)``: ``build_model()`` (from config.json) with the weights ``checkpoint`` names
    (:func:`resolve_checkpoint`) loaded, in evaluation mode.

    RnnlabError (one line) when the model settings are damaged or the weights do not fit them.
    """
    try:
        model = build_model()
    except (KeyError, TypeError, ValueError) as error:
        raise RnnlabError(f"{run.config_path}: the model settings are damaged ({error}); "
                          f"re-train or restore the file") from None
    path, name = resolve_checkpoint(run, checkpoint)
    weights, _ = run.load_file(path, f"the {name} weights")
    broken = non_finite_names(weights)
    if broken:
        raise RnnlabError(f"{path}: the {name} weights hold NaN or infinite values ({broken[0]}"
                          f"{f' and {len(broken) - 1} more' if len(broken) > 1 else ''}); the training diverged: "
                          f"use other weights (--checkpoint best), or train again with a lower --lr")
    try:
        model.load_state_dict(weights)
    except (KeyError, ValueError) as error:
        raise RnnlabError(f"{run.path}: the {name} weights do not fit config.json ({error}); "
                          f"re-train or restore the run") from None
    model.eval()
    return model, name


@dataclass
class LoadedRun:
    path: Path
    config: dict          # config.json as saved
    model: object         # a CharRNN (vocabulary attached) or SequenceClassifier (classes attached), eval mode
    vocab: object         # the CharRNN's Vocabulary; None for a classifier
    classes: tuple        # the classifier's class names; () for a CharRNN
    checkpoint: str       # the weights' name ("best", "latest", ...)


def load_run(run_dir, kind: str | None = None, checkpoint=None) -> LoadedRun:
    """Open a trained run: config, model with the chosen weights in evaluation mode, vocabulary or classes.

    ``kind`` ("charlm", "classify") is what the caller expects (None: whatever the directory holds).
    RnnlabError (one line) when the path is missing, not a run, another kind of run, or damaged.
    """
    if kind is None:
        kind = kind_on_disk(run_dir)
        kind = kind if kind in KINDS else "charlm"  # open_run then says what is wrong
    run, config = open_run(run_dir, kind)
    if kind == "charlm":
        from ..data import Vocabulary
        from ..models import CharRNN

        try:
            vocab = Vocabulary.from_config(config["vocabulary"])
        except (KeyError, TypeError, ValueError) as error:
            raise RnnlabError(f"{run.config_path}: the vocabulary is damaged ({error}); "
                              f"re-train or restore the file") from None
        model, name = load_model(run, lambda: CharRNN.from_config(config["model"], vocabulary=vocab), checkpoint)
        return LoadedRun(run.path, config, model, vocab, (), name)
    if kind == "seq2seq":
        from .seq2seq import load_seq2seq

        model, _, name = load_seq2seq(run_dir, checkpoint)      # the vocabularies attached to the model
        return LoadedRun(run.path, config, model, model.target_vocabulary, (), name)
    if kind == "tagger":
        from .tagging import load_tagger

        model, vocab, _, name = load_tagger(run_dir, checkpoint)
        object.__setattr__(model, "vocabulary", vocab)  # plain attribute: not a parameter or module
        return LoadedRun(run.path, config, model, vocab, (), name)
    from ..models import SequenceClassifier

    model, name = load_model(run, lambda: SequenceClassifier.from_config(config["model"]), checkpoint)
    classes = tuple(str(c) for c in (config.get("classes") or range(model.num_classes)))
    object.__setattr__(model, "classes", classes)  # plain attribute: not a parameter or module
    return LoadedRun(run.path, config, model, None, classes, name)


def kind_on_disk(run_dir) -> str | None:
    """The kind of run in ``run_dir`` by its config.json (:func:`run_kind`: a config.json without a kind
    is a char-LM run's); None when there is no readable config.json."""
    try:
        config = json.loads((Path(run_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return run_kind(config) if isinstance(config, dict) else None


def save_model(run_dir, config: dict, model_state: dict, overwrite: bool = False) -> RunDirectory:
    """A run directory holding only a model (``config`` with its "kind"; the weights as latest and best),
    as :meth:`rnnlab.models.CharRNN.save` writes it."""
    run = RunDirectory(run_dir)
    if run.exists() and not overwrite:
        raise RnnlabError(f"{run.path}: already holds a run; pass overwrite=True to replace it, "
                          f"or save into another directory")
    run.create(config, overwrite=overwrite)
    run.save_weights(model_state)
    run.save_best(model_state)
    return run


def load(run_dir, checkpoint="best"):
    """The trained model in ``run_dir`` (a ``CharRNN`` with its ``vocabulary``, or a ``SequenceClassifier``
    with its ``classes``), in evaluation mode, with the ``checkpoint`` weights ("best", "latest")::

        model = rnnlab.load("runs/hamlet")
        print(model.sample("HAMLET.", 200, temperature=0.8, seed=1))
    """
    return load_run(run_dir, None, checkpoint).model
