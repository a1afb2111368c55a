"""Scoring a sequence-to-sequence model's outputs against the references.

For predictions :math:`p_i` and references :math:`t_i` (strings, ``n`` pairs):

- ``exact_match`` = :math:`\\frac1n \\sum_i [p_i = t_i]`
- ``char_accuracy`` = :math:`\\sum_i \\#\\{k : p_i[k] = t_i[k]\\} / \\sum_i \\max(|p_i|, |t_i|)` (position by
  position, a length mismatch counting as errors: Keras' per-character accuracy without its padding)
- ``cer`` = :math:`\\sum_i \\mathrm{edit}(p_i, t_i) / \\sum_i |t_i|`, the character error rate by Levenshtein
  distance (insertions, deletions, substitutions, each 1)

>>> edit_distance("kitten", "sitting")
3
>>> score = score_translations(["168", "9"], ["168", "10"])
>>> score.exact_match, score.char_accuracy, score.cer
(0.5, 0.6, 0.4)
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

__all__ = ["edit_distance", "Translations", "score_translations", "translate_pairs", "validation_loss"]


def edit_distance(a: str, b: str) -> int:
    """The Levenshtein distance between ``a`` and ``b`` (one row of the table at a time)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


@dataclass
class Translations:
    """Scores of ``pairs`` predictions (see the module docstring); ``unknown_characters`` counts source
    characters the model's vocabulary lacks, ``pairs_with_unknown`` the pairs holding any."""
    exact_match: float
    char_accuracy: float
    cer: float
    pairs: int
    unknown_characters: int = 0
    pairs_with_unknown: int = 0
    beam: int = 1
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def score_translations(predictions, references, unknown_counts=None) -> Translations:
    """Exact match, character accuracy and CER of ``predictions`` against ``references``."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    exact = matched = longest = edits = reference_chars = 0
    for predicted, reference in zip(predictions, references):
        exact += predicted == reference
        matched += sum(p == r for p, r in zip(predicted, reference))
        longest += max(len(predicted), len(reference))
        edits += edit_distance(predicted, reference)
        reference_chars += len(reference)
    count = len(references)
    unknown_counts = list(unknown_counts or [])
    return Translations(exact_match=exact / count if count else math.nan,
                        char_accuracy=matched / longest if longest else math.nan,
                        cer=edits / reference_chars if reference_chars else math.nan, pairs=count,
                        unknown_characters=int(sum(unknown_counts)),
                        pairs_with_unknown=int(sum(1 for n in unknown_counts if n)))


def translate_pairs(model, pairs, beam: int = 1, length_penalty: float = 0.6, batch_size: int = 256):
    """``(predictions, Translations)`` of ``model`` (a :class:`~rnnlab.models.Seq2Seq` with its
    vocabularies) on ``pairs``; unseen source characters are read as ``<unk>`` and counted."""
    started = time.perf_counter()
    sources = [source for source, _ in pairs]
    predictions = model.translate(sources, beam_size=beam, length_penalty=length_penalty, batch_size=batch_size)
    vocabulary = model.source_vocabulary
    unknown = []
    for source in sources:
        unseen = set(vocabulary.unknown(source))
        unknown.append(sum(symbol in unseen for symbol in vocabulary.split(source)))
    score = score_translations(predictions, [target for _, target in pairs], unknown)
    score.beam, score.seconds = int(beam), round(time.perf_counter() - started, 3)
    return predictions, score


def validation_loss(model, batches, criterion) -> float:
    """Mean teacher-forced cross-entropy (nats per target symbol, ``<eos>`` included) over ``batches``
    (a :class:`~rnnlab.data.pairs.PairBatches`), in evaluation mode, without gradients."""
    from .. import backend

    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    try:
        with backend.no_grad():
            for batch in batches.epoch():
                logits = model(batch.source, batch.target_input, batch.source_lengths)
                loss = float(criterion(logits.reshape(-1, logits.shape[-1]), batch.target_output.reshape(-1)))
                total += loss * batch.num_target_tokens
                tokens += batch.num_target_tokens
    finally:
        model.train(was_training)
    return total / max(tokens, 1)
