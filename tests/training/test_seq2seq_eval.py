"""Scores of translations and of restored spaces, against hand counts and a brute-force edit distance."""
import itertools
import math

import numpy as np
import pytest

from rnnlab.training.seq2seq_eval import edit_distance, score_translations
from rnnlab.training.tagging_eval import label_batch, score_labels


def brute_edit_distance(a, b):
    """The full Wagner-Fischer table, written independently."""
    table = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
    table[:, 0] = range(len(a) + 1)
    table[0, :] = range(len(b) + 1)
    for i, j in itertools.product(range(1, len(a) + 1), range(1, len(b) + 1)):
        table[i, j] = min(table[i - 1, j] + 1, table[i, j - 1] + 1, table[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return int(table[-1, -1])


def test_edit_distance_known_values_and_against_the_full_table():
    assert edit_distance("", "") == 0 and edit_distance("abc", "") == 3 and edit_distance("", "ab") == 2
    assert edit_distance("kitten", "sitting") == 3 and edit_distance("flaw", "lawn") == 2
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = "".join(rng.choice(list("abc"), size=rng.integers(0, 7)))
        b = "".join(rng.choice(list("abc"), size=rng.integers(0, 7)))
        assert edit_distance(a, b) == edit_distance(b, a) == brute_edit_distance(a, b), (a, b)


def test_translation_scores_by_hand():
    score = score_translations(["2009-06-25", "168", "12", ""], ["2009-06-25", "186", "123", "7"], [0, 2, 0, 1])
    assert score.exact_match == 0.25 and score.pairs == 4
    # position by position: 10 + 1 + 2 + 0 matches over 10 + 3 + 3 + 1 characters
    assert score.char_accuracy == pytest.approx(13 / 17)
    # edits: 0 + 2 (swap = 2 substitutions) + 1 + 1 over 17 reference characters
    assert score.cer == pytest.approx(4 / 17)
    assert score.unknown_characters == 3 and score.pairs_with_unknown == 2
    assert math.isnan(score_translations([], []).exact_match)
    with pytest.raises(ValueError):
        score_translations(["a"], [])


def test_spacing_scores_by_hand():
    truth = [[0, 1, 0, 1, 0], [0, 0, 1, 0], [0, 0]]
    predicted = [[0, 1, 0, 0, 1], [0, 0, 1, 0], [1, 0]]      # a miss + a last-char label (ignored); exact; a false space
    score = score_labels(truth, predicted)
    assert (score.precision, score.recall) == (2 / 3, 2 / 3)
    assert score.f1 == pytest.approx(2 / 3) and score.exact_line == pytest.approx(1 / 3)
    assert (score.lines, score.characters, score.spaces) == (3, 11, 3)
    perfect = score_labels(truth, truth)
    assert (perfect.precision, perfect.recall, perfect.f1, perfect.exact_line) == (1.0, 1.0, 1.0, 1.0)


def test_label_batch_pads_with_the_ignore_index():
    batch = label_batch([[1, 0, 1], [0]], 3)
    assert batch.tolist() == [[1, 0], [0, -100], [1, -100]]
