"""The seq2seq loop: it learns a small task, resumes loss by loss, keeps the best weights, loads back."""
import io
import json

import numpy as np
import pytest

from rnnlab.data.pair_files import format_pairs
from rnnlab.errors import RnnlabError
from rnnlab.training.seq2seq import Seq2SeqConfig, load_seq2seq, train
from rnnlab.training.seq2seq_eval import translate_pairs


def reverse_pairs(count, seed=0, letters="abcd", longest=4):
    rng = np.random.default_rng(seed)
    pairs = set()
    while len(pairs) < count:
        text = "".join(rng.choice(list(letters), size=int(rng.integers(1, longest + 1))))
        pairs.add(text)
    return [(text, text[::-1]) for text in sorted(pairs)]


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text(format_pairs(reverse_pairs(300)), encoding="utf-8")
    return path


def config(pairs_file, **overrides):
    values = dict(pairs_file=str(pairs_file), hidden_size=24, batch_size=16, lr=0.01, eval_every=0, eval_pairs=64)
    values.update(overrides)
    return Seq2SeqConfig(**values)


def test_learns_to_reverse_short_strings(pairs_file, tmp_path):
    result = train(config(pairs_file, steps=400, bidirectional=True), tmp_path / "run", stream=io.StringIO())
    assert result.test is not None and result.test.pairs == 15
    assert result.history[-1]["val_exact_match"] >= 0.9
    model, saved, name = load_seq2seq(tmp_path / "run")
    assert name == "best" and saved["kind"] == "seq2seq"
    _, score = translate_pairs(model, reverse_pairs(300)[:40], beam=3)
    assert score.exact_match >= 0.9


@pytest.mark.parametrize("overrides", [{}, {"teacher_forcing": 0.5, "dropout": 0.2, "attention": "additive"},
                                       {"model": "gru", "bidirectional": True, "lr_decay": 0.5}])
def test_resume_gives_the_same_losses_and_weights(pairs_file, tmp_path, overrides):
    # 300 pairs -> 270 training -> 17 batches an epoch: the runs cross epoch boundaries mid-way
    whole = train(config(pairs_file, steps=40, **overrides), tmp_path / "whole", stream=io.StringIO())
    first = train(config(pairs_file, steps=23, **overrides), tmp_path / "parts", stream=io.StringIO())
    second = train(config(pairs_file, steps=40, **overrides), tmp_path / "parts", resume=True, stream=io.StringIO())
    assert list(first.losses) == list(range(1, 24)) and list(second.losses) == list(range(24, 41))
    assert {**first.losses, **second.losses} == whole.losses        # loss by loss, bit for bit
    a, _, _ = load_seq2seq(tmp_path / "whole", "latest")
    b, _, _ = load_seq2seq(tmp_path / "parts", "latest")
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(p, q, err_msg=name)


def test_best_weights_follow_the_validation_exact_match(pairs_file, tmp_path):
    result = train(config(pairs_file, steps=60, eval_every=20), tmp_path / "run", stream=io.StringIO())
    history = result.history
    assert [r["step"] for r in history] == [20, 40, 60]
    best = max(history, key=lambda r: (r["val_exact_match"], -r["val_loss"]))
    model, _, _ = load_seq2seq(tmp_path / "run", "best")
    run_meta = json.loads((tmp_path / "run" / "results.json").read_text())
    assert run_meta["history"] == history
    from rnnlab.training.rundir import RunDirectory

    assert RunDirectory(tmp_path / "run").load_weights_meta("best")["step"] == best["step"]


def test_val_file_trains_on_every_pair_and_has_no_test_split(pairs_file, tmp_path):
    val = tmp_path / "val.tsv"
    val.write_text(format_pairs(reverse_pairs(20, seed=9)), encoding="utf-8")
    result = train(config(pairs_file, steps=3, val_file=str(val)), tmp_path / "run", stream=io.StringIO())
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["data"] == {"train": 300, "val": 20, "test": 0} and result.test is None


def test_the_time_budget_stops_the_run(pairs_file, tmp_path):
    result = train(config(pairs_file, time_budget=0.5), tmp_path / "run", stream=io.StringIO())
    assert result.stop_reason == "time" and result.step >= 1


def test_resume_refuses_other_model_settings(pairs_file, tmp_path):
    train(config(pairs_file, steps=2), tmp_path / "run", stream=io.StringIO())
    with pytest.raises(RnnlabError, match="--hidden-size 32 differs"):
        train(config(pairs_file, steps=4, hidden_size=32), tmp_path / "run", resume=True, stream=io.StringIO())
    with pytest.raises(RnnlabError, match="already holds a run"):
        train(config(pairs_file, steps=4), tmp_path / "run", stream=io.StringIO())


def test_rnnlab_load_opens_seq2seq_and_tagger_runs(pairs_file, tmp_path):
    import rnnlab
    from rnnlab.models import Seq2Seq, SequenceTagger
    from rnnlab.training.tagging import TagConfig
    from rnnlab.training.tagging import train as train_tagger

    train(config(pairs_file, steps=2), tmp_path / "s2s", stream=io.StringIO())
    model = rnnlab.load(tmp_path / "s2s")
    assert isinstance(model, Seq2Seq) and not model.training
    assert len(model.translate(["abc"])) == 1
    text = tmp_path / "t.txt"
    text.write_text("to be or not\nto be\nthat is\n" * 5)
    train_tagger(TagConfig(text_file=str(text), steps=2, hidden_size=8), tmp_path / "tag", stream=io.StringIO())
    tagger = rnnlab.load(tmp_path / "tag", checkpoint="latest")
    assert isinstance(tagger, SequenceTagger) and len(tagger.vocabulary.symbols) == len("abehinorst")
