"""Scoring and applying a space-restoring tagger.

Over all lines, with a predicted space after position ``k`` counted when the tagger labels ``k`` with 1
(never after a line's last character)::

    precision = TP / (TP + FP),  recall = TP / (TP + FN),  F1 = 2 P R / (P + R)
    exact_line = the share of lines whose every space is right (no missing one, no extra one)

>>> from rnnlab.data.spacing import strip_spaces
>>> score = score_labels([strip_spaces("to be or")[1]], [[0, 1, 0, 0, 1, 0]])
>>> score.precision, score.recall, score.exact_line
(0.5, 0.5, 0.0)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["SpacingScore", "score_labels", "predict_labels", "score_spacing", "restore_lines", "label_batch",
           "tagging_loss"]


@dataclass
class SpacingScore:
    precision: float
    recall: float
    f1: float
    exact_line: float
    lines: int
    characters: int
    spaces: int                      # spaces in the reference
    unknown_characters: int = 0      # characters the tagger's vocabulary lacks (read as <unk>)

    def to_dict(self) -> dict:
        return asdict(self)


def label_batch(labels, steps: int, ignore: int = -100) -> np.ndarray:
    """Per-line label lists -> ``(steps, N)`` int64, ``ignore`` after each line's end."""
    out = np.full((steps, len(labels)), ignore, dtype=np.int64)
    for column, line in enumerate(labels):
        out[:len(line), column] = line
    return out


def score_labels(truth, predicted, unknown_characters: int = 0) -> SpacingScore:
    """Precision, recall, F1 and exact lines of ``predicted`` label lists against ``truth``."""
    tp = fp = fn = exact = characters = spaces = 0
    for true_line, predicted_line in zip(truth, predicted):
        true_line = np.asarray(true_line, dtype=bool)
        predicted_line = np.asarray(predicted_line, dtype=bool)[:len(true_line)].copy()
        if len(predicted_line):
            predicted_line[-1] = False          # nothing follows a line's last character
        tp += int((true_line & predicted_line).sum())
        fp += int((~true_line & predicted_line).sum())
        fn += int((true_line & ~predicted_line).sum())
        exact += bool((true_line == predicted_line).all())
        characters += len(true_line)
        spaces += int(true_line.sum())
    precision = tp / (tp + fp) if tp + fp else (1.0 if not fn else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SpacingScore(precision, recall, f1, exact / len(truth) if truth else float("nan"), len(truth),
                        characters, spaces, unknown_characters)


def predict_labels(model, characters_list, vocabulary, batch_size: int = 256) -> list[np.ndarray]:
    """The tagger's labels for each string (empty strings get none), batched by length."""
    from ..data.pairs import pad_sequences

    labels: list = [np.zeros(0, dtype=np.int64)] * len(characters_list)
    order = sorted((k for k, text in enumerate(characters_list) if text), key=lambda k: len(characters_list[k]))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        ids, lengths = pad_sequences([vocabulary.encode(characters_list[k]) for k in chunk], vocabulary.pad_id)
        predicted = model.predict(ids, lengths)                                   # (L, N)
        for column, k in enumerate(chunk):
            labels[k] = predicted[:lengths[column], column]
    return labels


def count_unknown(texts, vocabulary) -> int:
    total = 0
    for text in texts:
        unseen = set(vocabulary.unknown(text))
        total += sum(symbol in unseen for symbol in text)
    return total


def score_spacing(model, lines, vocabulary) -> SpacingScore:
    """Score the tagger on ``(characters, labels)`` lines."""
    texts = [characters for characters, _ in lines]
    predicted = predict_labels(model, texts, vocabulary)
    return score_labels([labels for _, labels in lines], predicted, count_unknown(texts, vocabulary))


def restore_lines(model, raw_lines, vocabulary) -> tuple[list[str], int]:
    """Each line with its whitespace removed and spaces put back where the tagger says; and the number
    of characters the vocabulary lacks (they are tagged as ``<unk>``)."""
    from ..data.spacing import restore_spaces

    texts = ["".join(line.split()) for line in raw_lines]
    predicted = predict_labels(model, texts, vocabulary)
    return [restore_spaces(text, labels) for text, labels in zip(texts, predicted)], count_unknown(texts, vocabulary)


def tagging_loss(model, lines, vocabulary, criterion, batch_size: int = 256) -> float:
    """Mean cross-entropy per character over ``lines`` (evaluation mode, no gradients)."""
    from .. import backend
    from ..data.pairs import pad_sequences

    was_training = model.training
    model.eval()
    total = count = 0
    try:
        with backend.no_grad():
            for start in range(0, len(lines), batch_size):
                chunk = lines[start:start + batch_size]
                ids, lengths = pad_sequences([vocabulary.encode(c) for c, _ in chunk], vocabulary.pad_id)
                labels = label_batch([labels for _, labels in chunk], ids.shape[0], criterion.ignore_index)
                logits = model(ids, lengths)
                total += float(criterion(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))) * int(lengths.sum())
                count += int(lengths.sum())
    finally:
        model.train(was_training)
    return total / max(count, 1)
