"""Text features and the units that follow them: hand-made models whose one unit is built to track a feature
must rank that unit first."""
from __future__ import annotations

import numpy as np

import rnnlab
from rnnlab.data import Vocabulary
from rnnlab.inspect import correlations, rank_units, text_features, trace
from rnnlab.inspect.features import interpretable_fraction
from rnnlab.models import CharRNN


def prose(seed=0, lines=40):
    """Words on lines of varying length, some phrases in double quotes (no apostrophes)."""
    rng = np.random.default_rng(seed)
    words = ["the", "king", "said", "and", "then", "went", "home", "to", "sleep", "all", "night", "Now"]
    out = []
    for _ in range(lines):
        line = []
        for _ in range(rng.integers(3, 12)):
            word = str(rng.choice(words))
            if rng.random() < 0.15:
                word = '"' + word + " " + str(rng.choice(words)) + '"'
            line.append(word)
        out.append(" ".join(line))
    return "\n".join(out) + "\n"


def test_feature_values():
    text = '    f(a[1], {2})  # x "y"\nHe said "it\'s" and \'no\'.\n\tx'
    values = text_features(text)
    for name, array in values.items():
        assert array.shape == (len(text),), name
    at = {i: c for i, c in enumerate(text)}
    quote = "".join(c for i, c in at.items() if values["quote"][i])
    assert quote == '"it\'s' + "'no"                # the comment's quotes do not count; the apostrophe stays inside
    assert values["bracket_depth"][text.index("1")] == 2 and values["bracket_depth"][text.index("2")] == 2
    assert values["bracket_depth"][text.index("#")] == 0
    comment = "".join(c for i, c in at.items() if values["comment"][i])
    assert comment == '# x "y"'
    assert values["line_position"][text.index("H")] == 0 and values["line_position"][text.index("f")] == 4
    assert values["indent"][text.index("f")] == 4 and values["indent"][len(text) - 1] == 4   # a tab counts 4
    assert values["indent"][text.index("H")] == 0
    starts = "".join(c for i, c in at.items() if values["word_start"][i])
    assert starts.startswith("fa12xy")
    assert "".join(c for i, c in at.items() if values["uppercase"][i]) == "H"
    code = 'def f():\n    """Say "hi" (x)."""\n    return "a\\"b" + \'\'\'c\'\'\'\n'
    values = text_features(code)
    assert "".join(c for i, c in enumerate(code) if values["quote"][i]) == '"a\\"b'       # an escaped quote stays inside
    assert "".join(c for i, c in enumerate(code) if values["docstring"][i]) == '"""Say "hi" (x).' + "\'\'\'c"
    code = 'x = "a\\\\" # c\ny = "b\\\nc"\n'         # an escaped backslash, then a comment; an escaped line break
    values = text_features(code)
    assert "".join(c for i, c in enumerate(code) if values["quote"][i]) == '"a\\\\"b\\\nc'
    assert "".join(c for i, c in enumerate(code) if values["comment"][i]) == "# c"
    typographic = text_features("a “b ‘c’ d” e")["quote"]
    assert typographic.astype(int).tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]


def quote_lstm(text, unit=2, hidden=8, seed=0):
    """A one-layer LSTM whose unit ``unit`` flips its cell at every '"': at a quote the forget gate closes
    (f ~ 0), the input gate opens (i ~ 1) and g = tanh(1 - 10 h) has the sign opposite to the unit's output,
    so c goes 0 -> +0.76 -> -1 -> +1 -> ...; elsewhere f ~ 1, i ~ 0 keep it. The other units are random and
    never read this one."""
    rnnlab.manual_seed(seed)
    vocab = Vocabulary.from_text(text)
    model = CharRNN(vocab, hidden_size=hidden, num_layers=1, cell="lstm", embedding_size=4)
    rng = np.random.default_rng(seed)
    embedding = rng.normal(0, 1, (len(vocab), 4)).astype(np.float32)
    embedding[:, 0] = 0
    embedding[vocab.encode('"')[0]] = [1, 0, 0, 0]
    model.embedding.weight.data[...] = embedding
    rnn = model.rnn
    w_ih = rng.normal(0, 0.5, (4 * hidden, 4)).astype(np.float32)
    w_ih[:, 0] = 0
    w_hh = rng.normal(0, 0.3, (4 * hidden, hidden)).astype(np.float32)
    w_hh[:, unit] = 0
    b = np.zeros(4 * hidden, dtype=np.float32)
    i, f, g, o = (k * hidden + unit for k in range(4))
    w_ih[[i, f, g, o]] = 0
    w_hh[[i, f, g, o]] = 0
    w_ih[i, 0], b[i] = 20, -10
    w_ih[f, 0], b[f] = -20, 10
    w_hh[g, unit], b[g] = -10, 1
    b[o] = 10
    rnn.weight_ih_l0.data[...] = w_ih
    rnn.weight_hh_l0.data[...] = w_hh
    rnn.bias_ih_l0.data[...] = b
    rnn.bias_hh_l0.data[...] = 0
    return model


def test_a_unit_built_to_flip_at_each_quote_ranks_first():
    text = prose()
    model = quote_lstm(text, unit=2)
    tr = trace(model, text)
    c = tr.states[0]["c"][:, 2]
    assert c.max() > 0.9 and c.min() < -0.9                   # the construction works as described
    ranked = rank_units(correlations(tr), top=3)
    best = ranked["quote"][0]
    assert (best.layer, best.unit) == (0, 2) and best.r > 0.9, ranked["quote"]
    assert abs(ranked["quote"][1].r) < best.r - 0.3           # and it is not a close call
    found, total = interpretable_fraction(correlations(tr), threshold=0.9)
    assert total == 8 and found >= 1


def test_a_unit_built_to_count_columns_ranks_first_for_line_position():
    """rnn_relu, unit 5: h = relu(h + 0.1 - 1000 [newline]) counts characters since the line break."""
    text = prose(seed=1)
    rnnlab.manual_seed(1)
    vocab = Vocabulary.from_text(text)
    hidden, unit = 8, 5
    model = CharRNN(vocab, hidden_size=hidden, num_layers=2, cell="rnn_relu", embedding_size=3)
    rng = np.random.default_rng(1)
    embedding = rng.normal(0, 1, (len(vocab), 3)).astype(np.float32)
    embedding[:, 0] = 0
    embedding[vocab.encode("\n")[0], 0] = 1
    model.embedding.weight.data[...] = embedding
    rnn = model.rnn
    rnn.weight_ih_l0.data[...] = rng.normal(0, 0.3, (hidden, 3))
    rnn.weight_ih_l0.data[:, 0] = 0
    rnn.weight_hh_l0.data[...] = rng.normal(0, 0.1, (hidden, hidden))
    rnn.weight_hh_l0.data[:, unit] = 0
    rnn.weight_ih_l0.data[unit] = [-1000, 0, 0]
    rnn.weight_hh_l0.data[unit] = 0
    rnn.weight_hh_l0.data[unit, unit] = 1
    rnn.bias_ih_l0.data[unit], rnn.bias_hh_l0.data[unit] = 0.1, 0
    rnn.weight_ih_l1.data[:, unit] = 0                        # layer 1 does not read the counter
    tr = trace(model, text)
    ranked = rank_units(correlations(tr), top=5)["line_position"]
    best = ranked[0]
    # not 1: at a line break the counter is 0 while the column is the line's length
    assert (best.layer, best.state, best.unit) == (0, "h", unit) and best.r > 0.85, ranked
    assert abs(ranked[1].r) < best.r - 0.2


def test_constant_features_and_units_have_no_correlation():
    text = "abc abc abc\n" * 5                                   # no quotes, brackets, comments, capitals
    rnnlab.manual_seed(0)
    model = CharRNN(Vocabulary.from_text(text), hidden_size=4, num_layers=1, cell="gru")
    model.rnn.weight_ih_l0.data[:4] = 0                         # unit 0..3 reset gates: r = sigmoid(bias)
    model.rnn.weight_hh_l0.data[:4] = 0
    table = correlations(trace(model, text))
    assert all(np.isnan(r).all() for r in table["quote"].values())
    assert np.isnan(table["line_position"][(0, "r")]).all()     # a constant gate
    ranked = rank_units(table)
    assert ranked["quote"] == [] and ranked["uppercase"] == []
    assert all(row.state != "r" for row in ranked["line_position"])



def test_best_unit_prefers_a_remembering_state_over_a_gate():
    from rnnlab.inspect.features import UnitScore, best_unit

    ranked = {"uppercase": [UnitScore(1, "f", 3, -0.9)], "quote": [UnitScore(0, "c", 7, 0.6)],
              "line_position": [UnitScore(0, "i", 2, 0.8)]}
    assert best_unit(ranked) == ("quote", UnitScore(0, "c", 7, 0.6))
    assert best_unit({"uppercase": [UnitScore(1, "f", 3, -0.9)], "quote": []}) == ("uppercase", UnitScore(1, "f", 3, -0.9))
    assert best_unit({"quote": []}) is None
