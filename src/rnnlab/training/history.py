"""Checkpoint history: the weights at earlier checkpoints, ``RUN_DIR/checkpoints/step-000400.safetensors``.

``rnnlab train --keep N`` writes one such file at every checkpoint, beside ``model.safetensors`` (the
latest) and ``best.safetensors``, and keeps the last ``N`` of them (0, the default: no history). Each
file has the layout of ``model.safetensors`` (PyTorch's parameter names; its metadata says the step).

``--checkpoint`` (``rnnlab sample``/``eval``, ``rnnlab.load(checkpoint=)``) takes ``best``, ``latest``, a
step number of the history (``400``) or the path of any weights file of the same model::

    path, name = resolve_history(run, "400")      # RUN_DIR/checkpoints/step-000400.safetensors, "step 400"
"""
from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

from ..errors import RnnlabError
from .safetensors_io import save_safetensors

HISTORY_DIR = "checkpoints"
_STEP_FILE = re.compile(r"^step-(\d+)\.safetensors$")


def history_path(run_path, step: int) -> Path:
    """``RUN_DIR/checkpoints/step-000400.safetensors`` for step 400 (six digits or more)."""
    return Path(run_path) / HISTORY_DIR / f"step-{int(step):06d}.safetensors"


def history_steps(run_path) -> list[int]:
    """The steps of the history files in ``run_path``, ascending."""
    folder = Path(run_path) / HISTORY_DIR
    try:
        names = [entry.name for entry in folder.iterdir()]
    except OSError:
        return []
    return sorted(int(match.group(1)) for match in map(_STEP_FILE.match, names) if match)


def save_history(run_path, weights: dict, step: int, keep: int, metadata: dict[str, str] | None = None) -> None:
    """Write the weights of ``step`` into the history (atomically), then remove all but the last ``keep``
    files; ``keep`` 0 writes nothing. Files of later steps (left by a run killed after writing them and
    resumed from an earlier checkpoint) are replaced as the run reaches those steps again."""
    if keep <= 0:
        return
    path = history_path(run_path, step)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RnnlabError(f"{path.parent}: cannot create the checkpoint history folder "
                          f"({error.strerror or error}); free some space or drop --keep") from None
    save_safetensors(path, weights, {**(metadata or {}), "rnnlab_meta": json.dumps({"step": int(step)})})
    earlier = [s for s in history_steps(run_path) if s <= step]
    for old in earlier[:-keep]:
        with contextlib.suppress(OSError):
            history_path(run_path, old).unlink()


def resolve_history(run_path, checkpoint) -> tuple[Path, str]:
    """``(file, name)`` for a ``--checkpoint`` that is a step number or a path (``best``/``latest`` are the
    run directory's own); one :class:`RnnlabError` line when there is no such file."""
    text = str(checkpoint).strip()
    if text.isdigit():
        step = int(text)
        path = history_path(run_path, step)
        if path.is_file():
            return path, f"step {step}"
        steps = history_steps(run_path)
        kept = (f"the history holds steps {', '.join(map(str, steps[-10:]))}" if steps
                else "the run kept no history (train with --keep N to keep the last N checkpoints)")
        raise RnnlabError(f"--checkpoint {text}: {path} does not exist; {kept}; or use best or latest")
    path = Path(text).expanduser()
    try:
        is_file = path.is_file()
    except OSError:
        is_file = False
    if is_file:
        return path, str(path)
    if path.suffix == ".safetensors" or "/" in text or "\\" in text:
        raise RnnlabError(f"--checkpoint {text}: no such weights file; give best, latest, a step of the "
                          f"history (checkpoints/step-*.safetensors) or the path of a .safetensors file")
    raise RnnlabError(f"--checkpoint {text}: must be best, latest, a step number of the run's history or "
                      f"the path of a .safetensors file")
