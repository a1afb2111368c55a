"""Simple features of a text, and the units whose activation follows them.

Each feature is one number per character, the value *after reading* ``text[t]`` (what a model that has
read ``text[:t + 1]`` could know)::

    quote          1 inside quotes: "...", '...', “...”, ‘...’, «...», „...“ (the opening quote is inside,
                   the closing one outside). A ' after a letter or digit is an apostrophe (don't, James'),
                   not an opening quote; one between two letters never closes; a backslash escapes the
                   next character. Single quotes end at a line break, double quotes do not (dialogue runs over
                   lines). Quote marks in a comment or a triple-quoted string do not count.
    docstring      1 inside a triple-quoted string (\"\"\"...\"\"\" or '''...''', Python's docstrings; the opening
                   mark is inside, the closing one outside): kept apart from ``quote``, since in Python source
                   they are most of the quoted text and a model tracks them with other units
    bracket_depth  open minus closed brackets so far, ()[]{} alike, never below 0
    line_position  the character's column in its line (0 for the first; a line break ends its line)
    comment        1 from a # outside quotes to the end of the line (the line break is outside)
    indent         the indentation of the current line in columns read so far (a tab counts 4)
    word_start     1 on the first letter or digit of a word (letters, digits and _ make words)
    uppercase      1 on an uppercase letter

:func:`correlations` gives Pearson's ``r`` of every unit of every state with each feature over the
traced text; :func:`rank_units` the best units per feature by ``|r|``.

>>> values = text_features('x = "a(b)" # it\\'s')
>>> values["quote"].astype(int).tolist()
[0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
>>> values["bracket_depth"].astype(int).tolist()[4:9], values["comment"].astype(int).tolist()[10:13]
([0, 0, 1, 1, 0], [0, 1, 1])
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

FEATURES = {
    "quote": "inside quotes",
    "docstring": "inside a triple-quoted string",
    "bracket_depth": "bracket depth",
    "line_position": "position in line",
    "comment": "inside a comment",
    "indent": "indentation depth",
    "word_start": "start of a word",
    "uppercase": "uppercase",
}
OPEN_BRACKETS, CLOSE_BRACKETS = "([{", ")]}"
# typographic opening quote -> the marks that close it
TYPOGRAPHIC_QUOTES = {"“": "”", "‘": "’", "«": "»", "„": "“”", "‹": "›"}
TRIPLE_QUOTES = ('"""', "'''")
TAB_COLUMNS = 4


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def text_features(text: str) -> dict:
    """``{feature: (L,) float64}`` for the features of :data:`FEATURES` (see the module docstring)."""
    length = len(text)
    values = {name: np.zeros(length, dtype=np.float64) for name in FEATURES}
    quote, depth, column, comment, indent = values["quote"], values["bracket_depth"], values["line_position"], \
        values["comment"], values["indent"]
    word_start, uppercase, docstring = values["word_start"], values["uppercase"], values["docstring"]
    open_quote = None          # the closing marks of the quote we are in ('"', "'", '"""', a typographic closer)
    mark_left = 0              # characters left of a triple quote mark being read
    escaped = False            # inside quotes, the previous character was an unescaped backslash
    bracket_depth = 0
    line_column = 0
    in_comment = False
    indentation, at_line_start = 0, True
    previous = ""
    for t, char in enumerate(text):
        following = text[t + 1] if t + 1 < length else ""
        if char == "\n":
            column[t], indent[t] = line_column, indentation
            line_column, in_comment, indentation, at_line_start = 0, False, 0, True
            escaped = False                  # a backslash before a line break escapes the break
            if open_quote == "'":
                open_quote = None            # a single quote does not run over a line break
            quote[t] = open_quote is not None and open_quote not in TRIPLE_QUOTES
            docstring[t] = open_quote in TRIPLE_QUOTES
            previous = char
            continue
        column[t] = line_column
        line_column += 1
        if at_line_start and char in " \t":
            indentation += TAB_COLUMNS if char == "\t" else 1
        else:
            at_line_start = False
        indent[t] = indentation
        if mark_left:
            mark_left -= 1
        elif not in_comment:
            if open_quote is None:
                if char == "#":
                    in_comment = True
                elif char in "\"'" and text.startswith(char * 3, t):
                    open_quote, mark_left = char * 3, 2
                elif char == '"':
                    open_quote = '"'
                elif char == "'" and not _is_word_char(previous):
                    open_quote = "'"
                elif char in TYPOGRAPHIC_QUOTES:
                    open_quote = TYPOGRAPHIC_QUOTES[char]
            elif escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif open_quote in TRIPLE_QUOTES:
                if text.startswith(open_quote, t):
                    open_quote, mark_left = None, 2
            elif char in open_quote:
                apostrophe = char in "'’" and _is_word_char(previous) and _is_word_char(following)
                if not apostrophe:
                    open_quote = None
        if char in OPEN_BRACKETS:
            bracket_depth += 1
        elif char in CLOSE_BRACKETS:
            bracket_depth = max(0, bracket_depth - 1)
        quote[t] = open_quote is not None and open_quote not in TRIPLE_QUOTES
        docstring[t] = open_quote in TRIPLE_QUOTES
        depth[t] = bracket_depth
        comment[t] = in_comment
        word_start[t] = _is_word_char(char) and not _is_word_char(previous)
        uppercase[t] = char.isupper()
        previous = char
    return values


class UnitScore(NamedTuple):
    """One unit of one state: ``layer``, ``state`` (``"h"``, ``"c"``, a gate), ``unit``, Pearson's ``r``."""
    layer: int
    state: str
    unit: int
    r: float


def correlations(tr, features: dict | None = None) -> dict:
    """``{feature: {(layer, state): (H,) r}}``: Pearson's r of each unit's activation with each feature.

    ``r = sum_t (a_t - mean a)(f_t - mean f) / sqrt(sum (a - mean a)^2 * sum (f - mean f)^2)`` over the
    ``L`` characters of ``tr`` (a :class:`~rnnlab.inspect.trace.Trace`); a unit or feature that does not
    vary gets ``r = nan``. ``features`` defaults to :func:`text_features` of ``tr.text``.
    """
    if features is None:
        features = text_features(tr.text)
    names = list(features)
    matrix = np.stack([features[name] for name in names]) if names else np.zeros((0, len(tr.text)))
    matrix = matrix - matrix.mean(axis=1, keepdims=True)                      # (F, L)
    feature_norm = np.sqrt((matrix * matrix).sum(axis=1))                     # (F,)
    result = {name: {} for name in names}
    for layer, states in enumerate(tr.states):
        for state, activations in states.items():
            centred = activations.astype(np.float64)
            centred -= centred.mean(axis=0)                                   # (L, H)
            unit_norm = np.sqrt((centred * centred).sum(axis=0))              # (H,)
            products = matrix @ centred                                       # (F, H)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = products / (feature_norm[:, None] * unit_norm[None, :])
            # a unit or feature that is (numerically) constant has no correlation
            r[:, unit_norm <= 1e-12 * max(1.0, float(np.sqrt(len(centred))))] = np.nan
            r[feature_norm <= 0] = np.nan
            for index, name in enumerate(names):
                result[name][(layer, state)] = np.clip(r[index], -1.0, 1.0)
    return result


def rank_units(table: dict, top: int = 5) -> dict:
    """``{feature: [UnitScore, ...]}``: the ``top`` units by ``|r|``, best first, one row per (layer, unit)
    (the state of that unit that follows the feature best). Empty where the feature does not vary."""
    ranked = {}
    for name, by_state in table.items():
        best = {}
        for (layer, state), r in by_state.items():
            magnitude = np.nan_to_num(np.abs(r), nan=-1.0)
            for unit in np.argsort(-magnitude, kind="stable")[: max(top, 1) * 4]:
                if magnitude[unit] < 0:
                    break
                key = (layer, int(unit))
                if key not in best or magnitude[unit] > abs(best[key].r):
                    best[key] = UnitScore(layer, state, int(unit), float(r[unit]))
        rows = sorted(best.values(), key=lambda score: (-abs(score.r), score.layer, score.unit))
        ranked[name] = rows[:top]
    return ranked


MEMORY_FEATURES = ("quote", "docstring", "bracket_depth", "line_position", "comment", "indent")


def interpretable_fraction(table: dict, threshold: float = 0.5, features=MEMORY_FEATURES,
                           states=("h", "c")) -> tuple[int, int]:
    """``(units, total)``: how many (layer, unit) pairs follow one of ``features`` with ``|r| >= threshold``
    in their ``h`` or ``c``, out of all of them. The default features are the ones a unit must *remember*
    (quotes, docstrings, brackets, the column, comments, indentation): the gates' reactions to the current character
    (uppercase, start of a word) would count almost every unit."""
    found, everything = set(), set()
    for name, by_state in table.items():
        for (layer, state), r in by_state.items():
            everything.update((layer, unit) for unit in range(len(r)))
            if name not in features or state not in states:
                continue
            hits = np.flatnonzero(np.nan_to_num(np.abs(r), nan=0.0) >= threshold)
            found.update((layer, int(unit)) for unit in hits)
    return len(found), len(everything)


def best_unit(ranked: dict):
    """``(feature, UnitScore)`` of the strongest row of :func:`rank_units`'s tables, preferring an ``h`` or ``c``
    that follows a feature to remember (:data:`MEMORY_FEATURES`) over a gate reacting to the current
    character; ``None`` when no feature varies."""
    rows = [(name, row) for name, table in ranked.items() for row in table]
    memory = [(name, row) for name, row in rows if name in MEMORY_FEATURES and row.state in ("h", "c")]
    pool = memory or rows
    return max(pool, key=lambda pair: abs(pair[1].r)) if pool else None

