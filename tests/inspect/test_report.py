"""The report's data: what it includes within its size budget, how activations and guesses are encoded."""
import base64
import json
import re

import numpy as np
import pytest

import rnnlab
from rnnlab.data import Vocabulary
from rnnlab.inspect import trace
from rnnlab.inspect.report import build_report, choose_series, display_range, encode_series, top_guesses
from rnnlab.models import CharRNN

TEXT = 'x = f("a", [1, 2])  # note\nif x:\n    print(\'</script><!-- "q"\')\n' * 6


def model_for(cell="lstm", hidden=6, layers=2, seed=0):
    rnnlab.manual_seed(seed)
    return CharRNN(Vocabulary.from_text(TEXT), hidden_size=hidden, num_layers=layers, cell=cell)


def data_of(page):
    return json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))


def test_encode_series_round_trip_within_one_step():
    values = np.random.default_rng(0).normal(0, 2, 500)
    lo, hi, q = encode_series(values)
    decoded = lo + np.frombuffer(base64.b64decode(q), dtype=np.uint8) / 255 * (hi - lo)
    assert np.abs(decoded - values).max() <= (hi - lo) / 255 / 2 + 1e-12
    lo, hi, q = encode_series(np.full(10, 0.3))                 # constant: still decodes to the value
    assert lo == 0.3 and hi > lo and set(base64.b64decode(q)) == {0}


def test_the_data_decodes_to_the_trace():
    model = model_for()
    tr = trace(model, TEXT)
    page = build_report(tr).html
    data = data_of(page)
    assert data["text"] == TEXT and data["vocab"] == list(model.vocabulary.symbols)
    for entry in data["series"][:20]:
        q = np.frombuffer(base64.b64decode(entry["q"]), dtype=np.uint8)
        decoded = entry["lo"] + q / 255 * (entry["hi"] - entry["lo"])
        expected = tr.states[entry["layer"]][entry["state"]][:, entry["unit"]]
        assert np.abs(decoded - expected).max() <= (entry["hi"] - entry["lo"]) / 255 + 1e-5
    k = data["topk"]["k"]
    ids = np.frombuffer(base64.b64decode(data["topk"]["ids"]), dtype=np.uint8).reshape(-1, k)
    probs = np.frombuffer(base64.b64decode(data["topk"]["probs"]), dtype=np.uint16).reshape(-1, k) / 65535
    for t in (0, 40, len(TEXT) - 1):
        assert [data["vocab"][i] for i in ids[t]] == [ch for ch, _ in tr.topk(t, k)]
        np.testing.assert_allclose(probs[t], [p for _, p in tr.topk(t, k)], atol=1 / 65535)
    cost = np.frombuffer(base64.b64decode(data["cost"]), dtype=np.uint16)
    assert cost[0] == 65535 and np.abs(cost[1:] / 256 - tr.bits).max() <= 1 / 512
    # the text's "</script>" and "<!--" cannot end or comment out the data block
    assert page.count("</script>") == 2 and "<!--" not in page


def test_top_guesses_match_trace_topk():
    tr = trace(model_for("gru"), TEXT)
    ids, probabilities = top_guesses(tr.logits, 5, chunk=7)
    for t in (0, 13, len(TEXT) - 1):
        expected = tr.topk(t, k=5)
        assert [tr.vocabulary.decode_one(int(i)) for i in ids[t]] == [ch for ch, _ in expected]
        np.testing.assert_allclose(probabilities[t], [p for _, p in expected], rtol=1e-9)


def test_a_small_budget_keeps_the_feature_units_and_the_chosen_one_first():
    model = model_for(hidden=32)
    tr = trace(model, TEXT)
    report = build_report(tr, selected=(0, "o", 31), max_values=len(TEXT) * 2)
    listed = {(row.layer, row.state, row.unit) for rows in report.ranked.values() for row in rows}
    assert report.included[0] == (0, "o", 31) and report.total_series == 2 * 6 * 32
    assert listed <= set(report.included)                        # the feature tables' units, whatever the budget
    assert len(report.included) == len(listed | {(0, "o", 31)})  # and nothing more: the budget is spent
    report = build_report(tr, selected=(0, "o", 31), max_values=len(TEXT) * 120)
    assert len(report.included) == 120 and listed <= set(report.included)
    data = data_of(report.html)
    assert len(data["series"]) == 120 and data["selected"] == 0
    assert "120 of 384 unit-states" in report.html
    # with room for everything, everything is in
    assert len(build_report(tr).included) == 384


def test_choose_series_fills_h_then_c_with_layers_alternating():
    tr = trace(model_for(hidden=4), TEXT)
    chosen = choose_series(tr, {}, None, max_values=len(TEXT) * 10)
    assert chosen[:8] == [(0, "h", 0), (1, "h", 0), (0, "h", 1), (1, "h", 1), (0, "h", 2), (1, "h", 2),
                          (0, "h", 3), (1, "h", 3)]
    assert chosen[8:] == [(0, "c", 0), (1, "c", 0)]


@pytest.mark.parametrize("cell, state, expected", [("lstm", "f", (0.0, 1.0)), ("gru", "z", (0.0, 1.0)),
                                                   ("lstm", "h", (-1.0, 1.0)), ("gru", "n", (-1.0, 1.0)),
                                                   ("rnn", "h", (-1.0, 1.0))])
def test_display_ranges(cell, state, expected):
    assert display_range(cell, state, np.linspace(-0.5, 0.5, 11)) == expected


def test_display_range_of_c_and_relu_follow_the_values():
    values = np.concatenate([np.linspace(-3, 3, 99), [50.0]])
    low, high = display_range("lstm", "c", values)
    assert low == -high and 2.9 < high < 4                       # the 99th percentile, not the outlier
    assert display_range("lstm", "c", np.linspace(-0.2, 0.2, 9)) == (-1.0, 1.0)
    low, high = display_range("rnn_relu", "h", np.linspace(0, 5, 101))
    assert low == 0 and 4.9 < high <= 5


def test_a_vocabulary_over_256_symbols_stores_wide_ids():
    text = "".join(chr(0xAC00 + (i * 7) % 300) for i in range(900)) + "\n"
    rnnlab.manual_seed(0)
    model = CharRNN(Vocabulary.from_text(text), hidden_size=4, num_layers=1, cell="gru")
    tr = trace(model, text)
    data = data_of(build_report(tr).html)
    assert data["topk"]["wide"] and len(data["vocab"]) == 301
    ids = np.frombuffer(base64.b64decode(data["topk"]["ids"]), dtype=np.uint16).reshape(-1, 5)
    assert [data["vocab"][i] for i in ids[17]] == [ch for ch, _ in tr.topk(17)]
