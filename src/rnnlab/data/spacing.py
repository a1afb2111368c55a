"""Word-boundary restoration as per-character tagging: text without its spaces, and where they were.

A line's words (split on any run of whitespace) are joined without spaces; each character gets the
label 1 when a space followed it, else 0 (a line's last character: 0)::

    "to be or"  ->  characters "tobeor",  labels [0, 1, 0, 1, 0, 0]

:func:`restore_spaces` is the inverse: a space after every character labelled 1. Lines longer than
``max_length`` characters (spaces removed) are cut at word boundaries into pieces, so a batch of
lines stays a bounded number of steps.

>>> strip_spaces("to be  or")
('tobeor', [0, 1, 0, 1, 0, 0])
>>> restore_spaces("tobeor", [0, 1, 0, 1, 0, 0])
'to be or'
>>> [p for p, _ in tagged_lines("a bc d\\n\\nef", max_length=3)]
['abc', 'd', 'ef']
"""
from __future__ import annotations

__all__ = ["strip_spaces", "restore_spaces", "tagged_lines", "space_positions"]


def strip_spaces(line: str) -> tuple[str, list[int]]:
    """``line`` without whitespace, and for each remaining character whether a space followed it."""
    characters, labels = [], []
    for word in line.split():
        characters.append(word)
        labels.extend([0] * (len(word) - 1) + [1])
    if labels:
        labels[-1] = 0
    return "".join(characters), labels


def restore_spaces(characters: str, labels) -> str:
    """``characters`` with a space after each one whose label is 1 (never after the last)."""
    pieces = []
    last = len(characters) - 1
    for k, (character, label) in enumerate(zip(characters, labels)):
        pieces.append(character + (" " if label and k < last else ""))
    return "".join(pieces)


def space_positions(line: str) -> set[int]:
    """The positions (in the line without whitespace) after which ``line`` has a space."""
    _, labels = strip_spaces(line)
    return {k for k, label in enumerate(labels) if label}


def tagged_lines(text: str, max_length: int = 256) -> list[tuple[str, list[int]]]:
    """Every non-blank line of ``text`` as ``(characters, labels)``, cut at word boundaries into pieces of
    at most ``max_length`` characters (a longer word is cut where it must)."""
    pieces = []
    for line in text.splitlines():
        words = line.split()
        current: list[str] = []
        size = 0
        for word in words:
            while len(word) > max_length:
                if current:
                    pieces.append(strip_spaces(" ".join(current)))
                    current, size = [], 0
                pieces.append((word[:max_length], [0] * max_length))
                word = word[max_length:]
            if current and size + len(word) > max_length:
                pieces.append(strip_spaces(" ".join(current)))
                current, size = [], 0
            current.append(word)
            size += len(word)
        if current:
            pieces.append(strip_spaces(" ".join(current)))
    return pieces
