"""Source/target pairs for sequence-to-sequence models: vocabularies with special ids, padded batches.

A :class:`SymbolVocabulary` maps the symbols of one side (characters, or whitespace-separated tokens)
to ids after four reserved ones::

    0 <pad>   fills the steps after a sequence's end (embeddings' padding_idx, the loss's ignore_index)
    1 <bos>   the decoder's first input
    2 <eos>   the decoder's last target: it stops decoding
    3 <unk>   any symbol not seen when the vocabulary was built

:func:`make_pair_batch` pads a list of pairs into time-major arrays (``(S, N)`` source ids with their
lengths; ``(T, N)`` decoder inputs ``<bos> y_1 .. y_k`` and targets ``y_1 .. y_k <eos>``), and
:class:`PairBatches` cuts a data set into such batches in a seeded order.

>>> vocab = SymbolVocabulary.build(["12+3", "4+56"])
>>> vocab.symbols
('+', '1', '2', '3', '4', '5', '6')
>>> ids = vocab.encode("3+9")           # '9' was never seen
>>> ids.tolist(), vocab.decode(ids), vocab.unknown("3+9")
([7, 4, 3], '3+<unk>', ['9'])
>>> batch = make_pair_batch([vocab.encode("12"), vocab.encode("3")], [vocab.encode("4"), vocab.encode("56")])
>>> batch.source.tolist(), batch.source_lengths.tolist()
([[5, 7], [6, 0]], [2, 1])
>>> batch.target_input.tolist(), batch.target_output.tolist()
([[1, 1], [8, 9], [0, 10]], [[8, 9], [2, 10], [0, 2]])
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..errors import RnnlabError

__all__ = ["SymbolVocabulary", "PairBatch", "PairBatches", "make_pair_batch", "pad_sequences",
           "PAD_ID", "BOS_ID", "EOS_ID", "UNK_ID", "SPECIALS", "LEVELS"]

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
LEVELS = ("char", "token")


class SymbolVocabulary:
    """Symbols of one side of a pair data set, after the reserved ``<pad> <bos> <eos> <unk>`` (ids 0-3).

    Args:
        symbols: the ordinary symbols, in id order (ids 4, 5, ...), without repeats; a special's name
            among them is an error.
        level: ``'char'`` (a text is its characters, joined with ``''``) or ``'token'`` (a text is its
            whitespace-separated tokens, joined with ``' '``).

    Attributes: ``symbols`` (tuple), ``level``, ``pad_id``, ``bos_id``, ``eos_id``, ``unk_id``.
    ``len(vocab)`` counts the specials too (it is the embedding's and the output layer's size).
    """

    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID

    def __init__(self, symbols: Iterable[str], level: str = "char"):
        if level not in LEVELS:
            raise ValueError(f"level must be 'char' or 'token', got {level!r}")
        symbols = tuple(symbols)
        if len(set(symbols)) != len(symbols):
            raise ValueError("symbols must not repeat")
        for symbol in symbols:
            if not isinstance(symbol, str) or not symbol:
                raise ValueError(f"every symbol must be a non-empty str, got {symbol!r}")
            if symbol in SPECIALS:
                raise ValueError(f"{symbol!r} is reserved (the specials are {', '.join(SPECIALS)})")
            if level == "char" and len(symbol) != 1:
                raise ValueError(f"a character vocabulary holds one-character symbols, got {symbol!r}")
        self.level = level
        self.symbols = symbols
        self._itos = list(SPECIALS) + list(symbols)
        self._stoi = {symbol: index for index, symbol in enumerate(self._itos)}

    @classmethod
    def build(cls, texts: Iterable[str], level: str = "char", min_count: int = 1) -> "SymbolVocabulary":
        """The vocabulary of ``texts``: every symbol seen at least ``min_count`` times, sorted."""
        if level not in LEVELS:
            raise ValueError(f"level must be 'char' or 'token', got {level!r}")
        counts = Counter()
        for text in texts:
            counts.update(text if level == "char" else text.split())
        return cls(sorted(s for s, n in counts.items() if n >= min_count and s not in SPECIALS), level=level)

    def __len__(self) -> int:
        return len(self._itos)

    def __eq__(self, other) -> bool:
        return isinstance(other, SymbolVocabulary) and (self.level, self.symbols) == (other.level, other.symbols)

    def __repr__(self) -> str:
        return f"SymbolVocabulary({len(self.symbols)} symbols + 4 specials, level={self.level!r})"

    def split(self, text: str) -> list[str]:
        """``text`` as this vocabulary's symbols: its characters, or its whitespace-separated tokens."""
        return list(text) if self.level == "char" else text.split()

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> np.ndarray:
        """The ids of ``text`` (int64), unseen symbols as ``unk_id``; optionally framed by ``<bos>``/``<eos>``."""
        unk = self.unk_id
        ids = [self._stoi.get(symbol, unk) for symbol in self.split(text)]
        if bos:
            ids.insert(0, self.bos_id)
        if eos:
            ids.append(self.eos_id)
        return np.asarray(ids, dtype=np.int64)

    def unknown(self, text: str) -> list[str]:
        """The symbols of ``text`` that the vocabulary lacks, in order of first appearance, each once."""
        return list(dict.fromkeys(s for s in self.split(text) if s not in self._stoi or self._stoi[s] < 4))

    def decode(self, ids, strip: bool = True) -> str:
        """The text of ``ids``. With ``strip`` (default) decoding stops at the first ``<eos>`` and skips
        ``<pad>`` and ``<bos>``; ``<unk>`` is written as ``'<unk>'``."""
        pieces = []
        for token in np.asarray(ids).reshape(-1).tolist():
            if strip:
                if token == self.eos_id:
                    break
                if token in (self.pad_id, self.bos_id):
                    continue
            pieces.append(self._itos[token])
        return ("" if self.level == "char" else " ").join(pieces)

    def symbol(self, token_id: int) -> str:
        return self._itos[int(token_id)]

    def to_config(self) -> dict:
        """A JSON-able description (kept in a run's ``config.json``)."""
        return {"level": self.level, "size": len(self), "symbols": list(self.symbols)}

    @classmethod
    def from_config(cls, config: dict) -> "SymbolVocabulary":
        """The vocabulary :meth:`to_config` described; :class:`RnnlabError` if the description is damaged."""
        try:
            vocab = cls(config["symbols"], level=config.get("level", "char"))
        except (KeyError, TypeError, ValueError) as error:
            raise RnnlabError(f"the saved vocabulary is damaged ({error}); re-train or restore config.json") from None
        if len(vocab) != config.get("size", len(vocab)):
            raise RnnlabError(f"the saved vocabulary is damaged (expected {config['size']} ids, found {len(vocab)}); "
                              f"re-train or restore config.json")
        return vocab


def pad_sequences(sequences: Sequence[np.ndarray], pad_id: int = PAD_ID) -> tuple[np.ndarray, np.ndarray]:
    """Time-major padding: ``N`` id sequences -> ``ids (L, N)`` (int64, ``pad_id`` after each end) and
    ``lengths (N,)``, with ``L`` the longest length."""
    lengths = np.asarray([len(s) for s in sequences], dtype=np.int64)
    ids = np.full((int(lengths.max(initial=0)), len(sequences)), pad_id, dtype=np.int64)
    for column, sequence in enumerate(sequences):
        ids[:len(sequence), column] = sequence
    return ids, lengths


@dataclass
class PairBatch:
    """A padded, time-major batch of ``N`` pairs.

    Attributes:
        source: ``(S, N)`` source ids, ``<pad>`` after each sequence's end.
        source_lengths: ``(N,)`` source lengths (each >= 1): the encoder's ``lengths=``.
        target_input: ``(T, N)`` decoder inputs ``<bos> y_1 .. y_k`` (then ``<pad>``), or ``None``.
        target_output: ``(T, N)`` what each step must predict, ``y_1 .. y_k <eos>`` (then ``<pad>``:
            the loss's ``ignore_index``), or ``None``.
        target_lengths: ``(N,)`` ``k + 1`` (the ``<eos>`` counts), or ``None``.
        indices: ``(N,)`` the pairs' positions in the data set the batch came from.
    """

    source: np.ndarray
    source_lengths: np.ndarray
    target_input: np.ndarray | None
    target_output: np.ndarray | None
    target_lengths: np.ndarray | None
    indices: np.ndarray

    @property
    def size(self) -> int:
        return int(self.source.shape[1])

    @property
    def num_target_tokens(self) -> int:
        """Predicted steps in the batch (``<eos>`` included): the mean loss's denominator."""
        return 0 if self.target_lengths is None else int(self.target_lengths.sum())


def make_pair_batch(sources: Sequence[np.ndarray], targets: Sequence[np.ndarray] | None = None,
                    indices=None) -> PairBatch:
    """Pad ``N`` source id sequences (and ``N`` target id sequences, without ``<bos>``/``<eos>``) into a
    :class:`PairBatch`. An empty source is a ``ValueError`` (the encoder needs one step at least)."""
    if not len(sources):
        raise ValueError("a batch needs at least one pair")
    empty = [k for k, s in enumerate(sources) if len(s) == 0]
    if empty:
        raise ValueError(f"source sequence {empty[0]} is empty: every source needs at least one symbol")
    source, source_lengths = pad_sequences(sources, PAD_ID)
    indices = np.arange(len(sources)) if indices is None else np.asarray(indices)
    if targets is None:
        return PairBatch(source, source_lengths, None, None, None, indices)
    if len(targets) != len(sources):
        raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
    framed = [np.concatenate(([BOS_ID], np.asarray(t, dtype=np.int64), [EOS_ID])) for t in targets]
    padded, framed_lengths = pad_sequences(framed, PAD_ID)  # (T + 1, N)
    target_input = padded[:-1].copy()
    target_input[target_input == EOS_ID] = PAD_ID  # a shorter target's <eos> is never an input
    target_output = padded[1:].copy()
    return PairBatch(source, source_lengths, target_input, target_output, framed_lengths - 1, indices)


class PairBatches:
    """A data set of encoded pairs cut into batches.

    Args:
        sources: id sequences (each non-empty).
        targets: id sequences without ``<bos>``/``<eos>`` (or ``None`` for sources only).
        batch_size: pairs per batch (the last batch of an order may be smaller).
        bucket: sort pairs of similar source length into the same batch (within windows of 50 batches
            of a shuffled order), so batches carry little padding; the batches are then shuffled.

    ``order(rng)`` draws one epoch's batches as index arrays (from ``rng``, e.g. rnnlab's generator,
    so a seed fixes it and a checkpoint can store it); ``batch(indices)`` builds one; iterating
    ``epoch(rng)`` does both. Without ``rng`` the order is the data set's own (evaluation).
    """

    def __init__(self, sources: Sequence[np.ndarray], targets: Sequence[np.ndarray] | None = None,
                 batch_size: int = 64, bucket: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if targets is not None and len(targets) != len(sources):
            raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
        self.sources = list(sources)
        self.targets = None if targets is None else list(targets)
        self.batch_size = int(batch_size)
        self.bucket = bool(bucket)
        self._source_lengths = np.asarray([len(s) for s in self.sources], dtype=np.int64)

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-len(self.sources) // self.batch_size)

    def order(self, rng: np.random.Generator | None = None) -> list[np.ndarray]:
        size, count = self.batch_size, len(self.sources)
        if rng is None:
            return [np.arange(start, min(start + size, count)) for start in range(0, count, size)]
        permutation = rng.permutation(count)
        if self.bucket:
            window = 50 * size
            for start in range(0, count, window):
                chunk = permutation[start:start + window]
                permutation[start:start + window] = chunk[np.argsort(self._source_lengths[chunk], kind="stable")]
        batches = [permutation[start:start + size] for start in range(0, count, size)]
        if self.bucket:
            batches = [batches[k] for k in rng.permutation(len(batches))]
        return batches

    def batch(self, indices) -> PairBatch:
        indices = np.asarray(indices)
        sources = [self.sources[k] for k in indices.tolist()]
        targets = None if self.targets is None else [self.targets[k] for k in indices.tolist()]
        return make_pair_batch(sources, targets, indices)

    def epoch(self, rng: np.random.Generator | None = None) -> Iterator[PairBatch]:
        for indices in self.order(rng):
            yield self.batch(indices)
