"""The tagging loop: it learns where spaces go, resumes loss by loss, restores lines, loads back."""
import io

import numpy as np
import pytest

from rnnlab.errors import RnnlabError
from rnnlab.training.tagging import TagConfig, load_tagger, train
from rnnlab.training.tagging_eval import restore_lines

WORDS = "the cat sat on a mat and dog ran to old red barn by sea".split()


def write_text(path, lines=400, seed=0):
    rng = np.random.default_rng(seed)
    path.write_text("".join(" ".join(rng.choice(WORDS, size=int(rng.integers(2, 8)))) + "\n" for _ in range(lines)),
                    encoding="utf-8")
    return path


def config(text, **overrides):
    values = dict(text_file=str(text), hidden_size=24, num_layers=1, batch_size=16, lr=0.01, eval_every=0)
    values.update(overrides)
    return TagConfig(**values)


def test_learns_where_the_spaces_go(tmp_path):
    text = write_text(tmp_path / "t.txt")
    result = train(config(text, steps=250), tmp_path / "run", stream=io.StringIO())
    assert result.test.f1 >= 0.95 and result.test.lines == 20
    model, vocabulary, saved, name = load_tagger(tmp_path / "run")
    assert saved["kind"] == "tagger" and name == "best"
    restored, unknown = restore_lines(model, ["thecatsatonamat", "", "theDOG"], vocabulary)
    assert restored[0] == "the cat sat on a mat" and restored[1] == "" and unknown == 3
    assert restored[2].replace(" ", "") == "theDOG"


@pytest.mark.parametrize("overrides", [{}, {"dropout": 0.3, "num_layers": 2, "model": "gru"},
                                       {"bidirectional": False, "lr_decay": 0.5}])
def test_resume_gives_the_same_losses_and_weights(tmp_path, overrides):
    text = write_text(tmp_path / "t.txt", lines=200)          # 180 training lines: 12 batches an epoch
    whole = train(config(text, steps=30, **overrides), tmp_path / "whole", stream=io.StringIO())
    first = train(config(text, steps=17, **overrides), tmp_path / "parts", stream=io.StringIO())
    second = train(config(text, steps=30, **overrides), tmp_path / "parts", resume=True, stream=io.StringIO())
    assert {**first.losses, **second.losses} == whole.losses
    a, _, _, _ = load_tagger(tmp_path / "whole", "latest")
    b, _, _, _ = load_tagger(tmp_path / "parts", "latest")
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(p, q, err_msg=name)


def test_val_file_and_long_lines(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(" ".join(["word"] * 200) + "\n" + "a b\n", encoding="utf-8")
    val = write_text(tmp_path / "v.txt", lines=5)
    result = train(config(text, steps=2, val_file=str(val), max_length=50), tmp_path / "run", stream=io.StringIO())
    import json

    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["data"] == {"train": 17 + 1, "val": 5, "test": 0} and result.test is None


def test_bad_settings(tmp_path):
    text = write_text(tmp_path / "t.txt", lines=10)
    with pytest.raises(RnnlabError, match="--task pos"):
        train(config(text, task="pos"), tmp_path / "run", stream=io.StringIO())
    with pytest.raises(RnnlabError, match="--max-length 0"):
        train(config(text, max_length=0), tmp_path / "run", stream=io.StringIO())
