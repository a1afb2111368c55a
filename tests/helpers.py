"""Helpers several test modules share (tests/conftest.py puts this folder on sys.path: `from helpers import ...`)."""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from rnnlab.cli.main import main
from rnnlab.data.idx import write_idx


def require_optional(module_name: str):
    """Import an optional dependency the tests need (numba for the fast path): skip locally when absent,
    fail under CI (`CI=true`), where `pip install -e '.[test]'` installs it."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        return importlib.import_module(module_name)
    return pytest.importorskip(module_name)


def run_cli(argv) -> int:
    """Run the CLI in-process; argparse's own errors exit through SystemExit, whose code becomes the status."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exit_:
        return exit_.code


def fails(capsys, argv, *must_contain) -> str:
    """Run the CLI; assert: non-zero status, no traceback, exactly one stderr line ``rnnlab: error: ...``
    containing each string. Returns that line."""
    status = run_cli(argv)
    err = capsys.readouterr().err
    assert status not in (0, None), err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnlab: error: "), err
    for text in must_contain:
        assert str(text) in lines[0], (text, lines[0])
    return lines[0]


def spike_images(count, seed, steps=6, features=4):
    """Class c: one bright row at row 2c or 2c + 1 of a noisy image; the model must remember where it was."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    images = rng.integers(0, 60, (count, steps, features)).astype(np.uint8)
    images[np.arange(count), 2 * labels + rng.integers(0, 2, count)] = 255
    return images, labels.astype(np.uint8)


def write_spike_idx(directory, train_count=400, test_count=200) -> list[str]:
    """The spike task as four IDX files in ``directory`` (images gzipped, training labels not, so both kinds
    are read): TRAIN_IMAGES TRAIN_LABELS TEST_IMAGES TEST_LABELS, as strings."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, count, seed in (("train", train_count, 0), ("test", test_count, 1)):
        images, labels = spike_images(count, seed)
        labels_name = f"{split}-labels-idx1-ubyte" + (".gz" if split == "test" else "")
        paths.append(str(write_idx(directory / f"{split}-images-idx3-ubyte.gz", images)))
        paths.append(str(write_idx(directory / labels_name, labels)))
    return paths


def logged_steps(out, key="loss") -> list:
    """The steps of ``out/metrics.jsonl``'s rows holding ``key`` (loss: training steps), in file order;
    a line cut short (a killed writer) is skipped."""
    steps = []
    path = Path(out) / "metrics.jsonl"
    if path.is_file():
        for line in path.read_bytes().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and key in row:
                steps.append(row["step"])
    return steps
