"""Checkpoint history: step files written and pruned to --keep, and --checkpoint STEP / PATH resolved."""
from __future__ import annotations

import numpy as np
import pytest

from rnnlab.errors import RnnlabError
from rnnlab.training.history import history_path, history_steps, resolve_history, save_history
from rnnlab.training.safetensors_io import load_safetensors


def weights(value):
    return {"decoder.bias": np.full(3, value, dtype=np.float32)}


def test_keeps_the_last_n_checkpoints(tmp_path):
    for step in (200, 400, 600, 800):
        save_history(tmp_path, weights(step), step, keep=2, metadata={"format": "pt"})
    assert history_steps(tmp_path) == [600, 800]
    assert history_path(tmp_path, 600) == tmp_path / "checkpoints" / "step-000600.safetensors"
    tensors, metadata = load_safetensors(history_path(tmp_path, 800))
    assert tensors["decoder.bias"][0] == 800 and metadata["format"] == "pt" and '"step": 800' in metadata["rnnlab_meta"]


def test_keep_zero_writes_nothing_and_a_resumed_run_rewrites_later_steps(tmp_path):
    save_history(tmp_path, weights(1), 100, keep=0)
    assert not (tmp_path / "checkpoints").exists()
    for step in (100, 200, 300):
        save_history(tmp_path, weights(step), step, keep=3)
    save_history(tmp_path, weights(-200), 200, keep=3)   # resumed from step 100: step 200 again
    assert history_steps(tmp_path) == [100, 200, 300]
    assert load_safetensors(history_path(tmp_path, 200))[0]["decoder.bias"][0] == -200


def test_resolving_a_step_or_a_path(tmp_path):
    save_history(tmp_path, weights(4), 400, keep=5)
    assert resolve_history(tmp_path, "400") == (history_path(tmp_path, 400), "step 400")
    assert resolve_history(tmp_path, 400)[1] == "step 400"
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(history_path(tmp_path, 400).read_bytes())
    assert resolve_history(tmp_path, str(outside)) == (outside, str(outside))


@pytest.mark.parametrize("checkpoint, message", [
    ("300", "the history holds steps 400"),
    ("nope.safetensors", "no such weights file"),
    ("dir/x", "no such weights file"),
    ("bestest", "must be best, latest, a step number"),
])
def test_unknown_checkpoints_are_one_line(tmp_path, checkpoint, message):
    save_history(tmp_path, weights(4), 400, keep=5)
    with pytest.raises(RnnlabError) as info:
        resolve_history(tmp_path, checkpoint)
    assert message in str(info.value) and f"--checkpoint {checkpoint}" in str(info.value)


def test_a_run_without_history_says_how_to_keep_one(tmp_path):
    with pytest.raises(RnnlabError, match="--keep N"):
        resolve_history(tmp_path, "200")
