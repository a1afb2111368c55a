"""rnnlab.load / CharRNN.save / CharRNN.load: a trained run in one line; the README's Python snippet runs as written."""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import rnnlab
from rnnlab.cli.main import main
from rnnlab.data import Vocabulary
from rnnlab.errors import RnnlabError
from rnnlab.models import CharRNN, SequenceClassifier
from rnnlab.training.charlm import train
from rnnlab.training.config import TrainConfig
from rnnlab.training.rundir import RunDirectory

TEXT = "HAMLET. To be, or not to be, that is the question.\n" * 12
README = Path(__file__).resolve().parents[1] / "README.md"


def train_tiny(tmp_path, out, **settings) -> Path:
    text = tmp_path / "hamlet.txt"
    text.write_text(TEXT, encoding="utf-8")
    values = dict(text_file=str(text), hidden_size=16, num_layers=1, seq_len=8, batch_size=4, steps=12,
                  eval_every=6, sample_length=0, eval_chars=200, **settings)
    train(TrainConfig(**values), out, stream=io.StringIO())
    return Path(out)


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_load_returns_the_best_charrnn_in_eval_mode_with_its_vocabulary(tmp_path):
    run = train_tiny(tmp_path, tmp_path / "runs" / "hamlet")
    model = rnnlab.load(run)
    assert isinstance(model, CharRNN) and not model.training
    assert model.vocabulary is not None and set(model.vocabulary.encode("HAMLET.")) <= set(range(len(model.vocabulary)))
    best = RunDirectory(run).load_weights("best")
    assert all(np.array_equal(model.state_dict()[name], value) for name, value in best.items())
    latest = rnnlab.load(run, checkpoint="latest")
    assert all(np.array_equal(latest.state_dict()[name], value)
               for name, value in RunDirectory(run).load_weights("latest").items())
    text = model.sample("HAMLET.", 50, temperature=0.8, seed=1)
    assert len(text) == 50 and text == model.sample("HAMLET.", 50, temperature=0.8, seed=1)
    assert same_weights(CharRNN.load(run), model)


def test_load_a_classifier_run_gives_the_classifier_with_its_class_names(tmp_path):
    run = RunDirectory(tmp_path / "clf")
    classifier = SequenceClassifier(4, 3, hidden_size=5)
    run.create({"kind": "classify", "model": classifier.config(), "classes": ["cat", "dog", "eel"]})
    run.save_weights(classifier.state_dict())
    model = rnnlab.load(run.path, checkpoint="latest")
    assert isinstance(model, SequenceClassifier) and not model.training
    assert model.classes == ("cat", "dog", "eel") and same_weights(model, classifier)


def test_save_writes_a_run_that_the_cli_and_load_accept(tmp_path, capsys):
    vocab = Vocabulary.from_text(TEXT)
    rnnlab.manual_seed(3)
    model = CharRNN(vocab, hidden_size=12, num_layers=2, cell="gru")
    model.save(tmp_path / "saved")
    again = rnnlab.load(tmp_path / "saved")          # "best" is there: save writes the weights as best and latest
    assert same_weights(again, model) and again.cell == "gru" and len(again.vocabulary) == len(vocab)
    assert main(["sample", str(tmp_path / "saved"), "--prime", "To", "--length", "20", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("To")
    (tmp_path / "other.txt").write_text(TEXT[:200], encoding="utf-8")
    assert main(["eval", str(tmp_path / "saved"), str(tmp_path / "other.txt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoint"] == "best"
    with pytest.raises(RnnlabError, match="already holds a run; pass overwrite=True"):
        model.save(tmp_path / "saved")
    model.save(tmp_path / "saved", overwrite=True)
    with pytest.raises(TypeError, match="save needs a vocabulary"):
        CharRNN(5, hidden_size=4).save(tmp_path / "nowhere")


@pytest.mark.parametrize("make, expected", [
    (lambda d: None, "no such run directory"),
    (lambda d: d.write_text("x"), "not a directory"),
    (lambda d: d.mkdir(), "not a run directory (no config.json)"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text("{not json")), "config.json: not valid JSON"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text('{"kind": "charlm", "model": {}}')),
     "holds a 'charlm' run, not a character language model"),
    (lambda d: (d.mkdir(), (d / "config.json").write_text('{"kind": "speech", "model": {}}')),
     "holds a 'speech' run, not a character language model"),
])
def test_bad_run_directories_are_one_line_errors(tmp_path, make, expected):
    path = tmp_path / "run"
    make(path)
    with pytest.raises(RnnlabError) as error:
        rnnlab.load(path)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_bad_checkpoint_names_and_a_missing_best_are_one_line_errors(tmp_path):
    run = RunDirectory(tmp_path / "run")
    model = CharRNN(Vocabulary.from_text("ab"), hidden_size=4, num_layers=1)
    run.create({"kind": "charlm", "model": model.config(), "vocabulary": model.vocabulary.to_config()})
    run.save_weights(model.state_dict())
    with pytest.raises(RnnlabError, match=r"no validation has run yet; use --checkpoint latest \(checkpoint='latest'"):
        rnnlab.load(run.path)
    with pytest.raises(RnnlabError, match="--checkpoint newest: must be best, latest, a step number"):
        rnnlab.load(run.path, checkpoint="newest")
    assert not rnnlab.load(run.path, checkpoint="latest").training


def test_the_readme_python_snippet_runs_as_written(tmp_path, monkeypatch, capsys):
    block = re.search(r"```python\n(import rnnlab\nmodel = rnnlab\.load\(.*?)```", README.read_text(encoding="utf-8"),
                      re.DOTALL)
    assert block, "README.md: the rnnlab.load snippet is missing"
    monkeypatch.chdir(tmp_path)
    train_tiny(tmp_path, Path("runs") / "hamlet")
    exec(compile(block.group(1), str(README), "exec"), {})
    out = capsys.readouterr().out
    assert len(out) >= 400  # 200 sampled characters, a newline, 200 generated ones
    assert rnnlab.load("runs/hamlet-copy").sample("HAMLET.", 30, seed=2) == rnnlab.load("runs/hamlet").sample(
        "HAMLET.", 30, seed=2)
