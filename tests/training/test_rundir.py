"""The run directory: round trips, future formats, damaged files, which kind of run, loading a trained run."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rnnlab import backend
from rnnlab.errors import RnnlabError
from rnnlab.training.rundir import FORMAT_VERSION, RunDirectory, load_model, open_run
from rnnlab.training.safetensors_io import load_safetensors, save_safetensors


def model_state(seed=0):
    rng = np.random.default_rng(seed)
    return {"rnn.weight_ih_l0": rng.standard_normal((8, 3)).astype(np.float32),
            "rnn.bias_ih_l0": rng.standard_normal(8).astype(np.float32),
            "decoder.weight": rng.standard_normal((5, 2)).astype(np.float32)}


def test_run_directory_round_trip(tmp_path):
    run = RunDirectory(tmp_path / "run")
    assert not run.exists()
    run.create({"model": {"cell": "lstm"}, "vocabulary": ["a", "b"]})
    assert run.exists()
    config = run.read_config()
    assert config["format_version"] == FORMAT_VERSION and config["vocabulary"] == ["a", "b"]
    assert "rnnlab_version" in config

    weights = model_state()
    backend.manual_seed(5)
    backend.generator().standard_normal(3)
    rng_state = backend.get_rng_state()
    meta = {"step": 120, "epoch": 1, "position": 7, "rng_state": rng_state, "best_val_loss": 1.5,
            "scheduler": {"last_epoch": 120, "base_lrs": [0.002]}, "history": [{"step": 100, "val_loss": 1.5}]}
    arrays = {"optimizer/state.0.exp_avg": np.ones((8, 3), np.float32), "hidden/0": np.zeros((2, 4, 8))}
    run.save_latest(weights, meta, arrays)
    run.save_best(weights, {"step": 100, "val_loss": 1.5})

    loaded_state, loaded_arrays, loaded_meta = run.load_training_state()
    assert loaded_meta == meta
    assert set(loaded_state) == set(weights) and set(loaded_arrays) == set(arrays)
    for name in weights:
        np.testing.assert_array_equal(loaded_state[name], weights[name])
    for name in arrays:
        np.testing.assert_array_equal(loaded_arrays[name], arrays[name])
    for which in ("latest", "best", "auto"):
        loaded = run.load_weights(which)
        assert set(loaded) == set(weights)  # the safetensors package orders tensors its own way
        np.testing.assert_array_equal(loaded["decoder.weight"], weights["decoder.weight"])
    assert run.load_weights_meta("best") == {"step": 100, "val_loss": 1.5}

    # The rng state survives the JSON round trip (PCG64's 128-bit integers included).
    expected = backend.generator().standard_normal(4)
    backend.set_rng_state(loaded_meta["rng_state"])
    np.testing.assert_array_equal(backend.generator().standard_normal(4), expected)

    # model.safetensors holds PyTorch's names only, no "model/" prefix and no optimizer arrays.
    plain, metadata = load_safetensors(run.model_path)
    assert set(plain) == set(weights) and metadata["format"] == "pt"


def test_model_file_loads_into_torch_as_is(tmp_path, torch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    reference = torch.nn.GRU(3, 4)
    run = RunDirectory(tmp_path)
    run.create({})
    state = {k: v.detach().numpy() + 1.0 for k, v in reference.state_dict().items()}
    run.save_latest(state, {"step": 1})
    model = torch.nn.GRU(3, 4)
    model.load_state_dict(safetensors_torch.load_file(str(run.model_path)))
    np.testing.assert_array_equal(model.weight_hh_l0.detach().numpy(), state["weight_hh_l0"])


def test_create_refuses_to_clobber_a_run(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create({"a": 1})
    run.save_latest(model_state(), {"step": 1})
    with pytest.raises(RnnlabError, match="already holds a run; add --resume .* or choose another --out"):
        run.create({"a": 2})
    run.create({"a": 2}, overwrite=True)
    assert run.read_config()["a"] == 2 and not run.has_training_state()


def test_auto_falls_back_to_latest_and_missing_files_are_one_line_errors(tmp_path):
    run = RunDirectory(tmp_path / "run")
    with pytest.raises(RnnlabError, match="config.json: no such file"):
        run.read_config()
    run.create({})
    with pytest.raises(RnnlabError, match="training_state.safetensors: no such file"):
        run.load_training_state()
    with pytest.raises(RnnlabError, match="best.safetensors: no such file"):
        run.load_weights("best")
    run.save_latest(model_state(), {"step": 3})
    assert set(run.load_weights("auto")) == set(model_state())


def test_future_format_version_is_refused(tmp_path):
    run = RunDirectory(tmp_path)
    run.create({})
    config = json.loads(run.config_path.read_text())
    config["format_version"] = FORMAT_VERSION + 1
    run.config_path.write_text(json.dumps(config))
    with pytest.raises(RnnlabError, match=r"newer rnnlab \(format 2.*upgrade rnnlab") as info:
        run.read_config()
    assert "config.json" in str(info.value) and "\n" not in str(info.value)

    save_safetensors(run.training_state_path, {"model/w": np.zeros(1)},
                     {"format_version": str(FORMAT_VERSION + 1), "training_meta": "{}"})
    with pytest.raises(RnnlabError, match="training_state.safetensors: written by a newer rnnlab"):
        run.load_training_state()


def test_damaged_files_are_one_line_errors(tmp_path):
    run = RunDirectory(tmp_path)
    run.create({})
    run.save_latest(model_state(), {"step": 3})
    data = run.training_state_path.read_bytes()
    run.training_state_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RnnlabError, match="training_state.safetensors: not a valid safetensors file"):
        run.load_training_state()
    run.config_path.write_text("{ not json")
    with pytest.raises(RnnlabError, match="config.json: not valid JSON"):
        run.read_config()
    save_safetensors(run.training_state_path, {"model/w": np.zeros(1)}, {"format_version": "1"})
    with pytest.raises(RnnlabError, match="training metadata is missing or damaged"):
        run.load_training_state()


def test_array_names_may_not_clash_with_the_model_prefix(tmp_path):
    run = RunDirectory(tmp_path)
    with pytest.raises(ValueError, match="clashes"):
        run.save_latest(model_state(), {}, {"model/x": np.zeros(1)})


def test_a_run_directory_removed_while_training_is_made_again_with_its_config(tmp_path, capsys):
    import shutil

    run = RunDirectory(tmp_path / "run")
    run.create({"model": {"cell": "gru"}})
    shutil.rmtree(run.path)  # the user deletes the run directory mid-way
    run.save_best(model_state(), {"step": 10})
    run.save_latest(model_state(), {"step": 10})
    assert RunDirectory(run.path).read_config()["model"] == {"cell": "gru"}
    assert RunDirectory(run.path).load_training_state()[2] == {"step": 10}
    assert "was removed while training" in capsys.readouterr().err


def test_open_run_says_what_is_wrong_with_the_path_in_one_line(tmp_path):
    def message(path, kind="charlm"):
        with pytest.raises(RnnlabError) as error:
            open_run(path, kind)
        return str(error.value)

    assert message(tmp_path / "none") == (f"{tmp_path / 'none'}: no such run directory; train one with "
                                          f"`rnnlab train --out {tmp_path / 'none'}`")
    (tmp_path / "file").write_text("x")
    assert "not a directory" in message(tmp_path / "file")
    assert "not a run directory (no config.json)" in message(tmp_path)
    RunDirectory(tmp_path / "c").create({"kind": "classify", "model": {}})
    assert message(tmp_path / "c").endswith("holds a 'classify' run, not a character language model; "
                                            "give a run directory written by `rnnlab train`")
    RunDirectory(tmp_path / "old").create({"model": {}, "vocabulary": []})  # before "kind" was recorded
    run, config = open_run(tmp_path / "old", "charlm")
    assert run.path == tmp_path / "old" and config["vocabulary"] == []


def test_load_model_damaged_settings_and_weights_that_do_not_fit(tmp_path):
    from rnnlab.nn import Linear

    run = RunDirectory(tmp_path / "run")
    run.create({"model": {}})
    run.save_weights({"weight": np.ones((2, 3), np.float32), "bias": np.zeros(2, np.float32)})
    model, which = load_model(run, lambda: Linear(3, 2))
    assert which == "latest" and not model.training and float(model.weight.data.sum()) == 6.0
    with pytest.raises(RnnlabError, match="config.json: the model settings are damaged"):
        load_model(run, lambda: {}["in_features"])
    with pytest.raises(RnnlabError, match="the latest weights do not fit config.json"):
        load_model(run, lambda: Linear(4, 2))


def test_best_weights_asked_for_before_any_validation_points_to_latest(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create({"model": {}})
    run.save_weights(model_state())
    with pytest.raises(RnnlabError, match=r"best.safetensors: no such file \(the best weights\); no validation has "
                                          r"run yet; use --checkpoint latest"):
        run.load_weights("best")


def test_the_lock_names_its_holder_and_goes_with_it(tmp_path):
    import os

    run = RunDirectory(tmp_path / "run")
    with run.lock():
        assert (run.path / ".lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(RnnlabError, match=rf"another rnnlab process \(PID {os.getpid()}\) is training"):
            with RunDirectory(tmp_path / "run").lock():
                pass
    with run.lock():  # released when the block ended
        pass


def test_a_lock_that_made_the_directory_removes_it_when_nothing_was_written(tmp_path):
    with RunDirectory(tmp_path / "new").lock():
        pass
    assert not (tmp_path / "new").exists()
    with RunDirectory(tmp_path / "kept").lock():
        RunDirectory(tmp_path / "kept").create({"model": {}})
    assert (tmp_path / "kept" / "config.json").is_file()


def test_non_finite_weights_are_never_the_best(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create({"model": {}})
    state = model_state()
    state["decoder.weight"][0, 0] = np.inf
    assert run.save_best(state) is False and not run.has_best()
    assert run.save_best(model_state()) is True and run.has_best()
