"""Pairs files (``source<TAB>target`` per line, UTF-8) and their train / validation / test split.

Every mistake in a file is one :class:`~rnnlab.errors.RnnlabError` line naming the file, the line and what
to do: a line without a tab, with more than one tab, or with an empty side; no pairs at all. Blank lines
are skipped; a trailing ``\\r`` (Windows line endings) is dropped.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "pairs.tsv")
>>> _ = open(path, "w", encoding="utf-8").write("1+1\\t2\\n\\n2+2\\t4\\n")
>>> read_pairs(path)
[('1+1', '2'), ('2+2', '4')]
>>> [len(part) for part in split_pairs([(str(k), str(k)) for k in range(100)], seed=0)]
[90, 5, 5]
"""
from __future__ import annotations

import numpy as np

from ..errors import RnnlabError
from .text import read_text

__all__ = ["read_pairs", "split_pairs", "format_pairs", "SPLIT"]

SPLIT = (0.90, 0.05, 0.05)   # train, validation, test: the shares of a pairs file without --val-file


def read_pairs(path, encoding: str = "utf-8") -> list[tuple[str, str]]:
    """The ``(source, target)`` pairs of a pairs file, in file order; RnnlabError naming the first bad line."""
    text = read_text(path, encoding=encoding, bytes_hint=False)
    pairs = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line[:-1] if line.endswith("\r") else line
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            shown = line if len(line) <= 40 else line[:37] + "..."
            what = "no tab" if len(fields) == 1 else f"{len(fields) - 1} tabs"
            raise RnnlabError(f"{path}:{number}: {what} in {shown!r}; each line must be source<TAB>target "
                              f"(one tab)")
        source, target = fields
        for side, value in (("source", source), ("target", target)):
            if not value.strip():
                raise RnnlabError(f"{path}:{number}: the {side} is empty; each line must be source<TAB>target "
                                  f"with text on both sides")
        pairs.append((source, target))
    if not pairs:
        raise RnnlabError(f"{path}: holds no pairs; write one source<TAB>target per line")
    return pairs


def split_pairs(pairs: list, seed: int, shares=SPLIT, source="the pairs file") -> tuple[list, list, list]:
    """``(train, validation, test)``: the pairs in a seeded random order, cut by ``shares``.

    Validation gets at least one pair (and training the rest when there are few); test may be empty.
    Fewer than two pairs is an error: a run needs a pair to train on and one to validate with.
    """
    count = len(pairs)
    if count < 2:
        raise RnnlabError(f"{source}: {count} pair, too few to split into training and validation; give at least 2 "
                          f"pairs (100s or more to learn anything), or a separate --val-file")
    order = np.random.default_rng(seed).permutation(count)
    num_val = max(1, int(round(count * shares[1])))
    num_test = int(round(count * shares[2])) if count - num_val > 2 else 0
    num_train = count - num_val - num_test
    shuffled = [pairs[k] for k in order.tolist()]
    return shuffled[:num_train], shuffled[num_train:num_train + num_val], shuffled[num_train + num_val:]


def format_pairs(pairs) -> str:
    """Pairs as a pairs file's text (one ``source<TAB>target`` line each)."""
    return "".join(f"{source}\t{target}\n" for source, target in pairs)
