r"""``SequenceTagger``: a label for every step of a sequence (many-to-many, aligned).

Embedding -> (bi)directional recurrent stack over each sequence's own length -> Linear at every step::

    out, _ = rnn(embedding[ids], lengths=lengths)     # (L, N, D*H); 0 after each sequence's end
    logits = classifier(dropout(out))                 # (L, N, C)

Train with ``CrossEntropyLoss(ignore_index=-100)`` on ``logits.reshape(-1, C)`` and labels ``(L, N)``
holding ``-100`` after each sequence's end. The reverse direction reads each sequence from its own
last step (the engine's ``lengths=``), so padding never leaks into a label. The classic use: restoring
word boundaries in text whose spaces were removed (tag each character with "a space follows").

Parameter names: ``embedding.weight``, ``rnn.weight_ih_l0`` ... (``_reverse`` for the second direction),
``classifier.weight``, ``classifier.bias``: PyTorch's, so the weights load into the same model in ``torch.nn``.

>>> import numpy as np, rnnlab
>>> from rnnlab.models import SequenceTagger
>>> _ = rnnlab.manual_seed(0)
>>> tagger = SequenceTagger(vocab_size=20, num_labels=2, hidden_size=8)
>>> logits = tagger(np.ones((7, 3), dtype=np.int64), lengths=[7, 4, 1])
>>> logits.shape
(7, 3, 2)
>>> tagger.backward(np.ones_like(logits))
>>> tagger.predict(np.ones((7, 3), dtype=np.int64), lengths=[7, 4, 1]).shape
(7, 3)
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..nn import Dropout, Embedding, Linear, Module
from .stack import check_cell, recurrent_layer

__all__ = ["SequenceTagger"]


class SequenceTagger(Module):
    r"""Embedding -> recurrent stack -> Linear at every step: ``C`` label scores per step.

    Args:
        vocab_size: ``V``, the number of input symbols (ids ``0 .. V-1``).
        num_labels: ``C``, the number of labels.
        hidden_size: ``H`` per direction. Default: 128
        num_layers: recurrent layers stacked. Default: 1
        cell: ``'rnn'``, ``'rnn_relu'``, ``'lstm'`` or ``'gru'``. Default: ``'lstm'``
        bidirectional: read each sequence both ways (``D = 2``). Default: ``True``
        embedding_size: ``E``. Default: ``min(H, 64)``
        dropout: between recurrent layers and on the recurrent output (training mode only). Default: 0
        padding_idx: an input id whose embedding stays zero (e.g. the padding symbol). Default: ``None``
        dtype: ``float32`` (default) or ``float64``.

    Shapes: ids ``(L, N)`` time-major; lengths ``None`` or ``N`` ints in ``[1, L]``; logits ``(L, N, C)``.
    """

    def __init__(self, vocab_size: int, num_labels: int, hidden_size: int = 128, num_layers: int = 1,
                 cell: str = "lstm", bidirectional: bool = True, embedding_size: int | None = None,
                 dropout: float = 0.0, padding_idx: int | None = None, dtype=None):
        super().__init__()
        check_cell(cell)
        for name, value in (("vocab_size", vocab_size), ("num_labels", num_labels), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if int(value) < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        dtype = backend.resolve_dtype(dtype)
        self.vocab_size, self.num_labels = int(vocab_size), int(num_labels)
        self.hidden_size, self.num_layers = int(hidden_size), int(num_layers)
        self.cell = cell
        self.bidirectional = bool(bidirectional)
        self.embedding_size = int(embedding_size) if embedding_size is not None else min(self.hidden_size, 64)
        self.dropout = float(dropout)
        self.padding_idx = None if padding_idx is None else int(padding_idx)
        self.dtype = dtype
        directions = 2 if self.bidirectional else 1
        self.embedding = Embedding(self.vocab_size, self.embedding_size, padding_idx=self.padding_idx, dtype=dtype)
        self.rnn = recurrent_layer(cell, self.embedding_size, self.hidden_size, self.num_layers,
                                   bidirectional=self.bidirectional,
                                   dropout=self.dropout if self.num_layers > 1 else 0.0, dtype=dtype)
        self.output_dropout = Dropout(self.dropout)
        self.classifier = Linear(directions * self.hidden_size, self.num_labels, dtype=dtype)

    def config(self) -> dict:
        """The constructor's arguments as a JSON-able dict (kept in a run's ``config.json``)."""
        return {"vocab_size": self.vocab_size, "num_labels": self.num_labels, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "cell": self.cell, "bidirectional": self.bidirectional,
                "embedding_size": self.embedding_size, "dropout": self.dropout, "padding_idx": self.padding_idx,
                "dtype": str(np.dtype(self.dtype))}

    @classmethod
    def from_config(cls, config: dict) -> "SequenceTagger":
        """Rebuild a model from :meth:`config` (weights are loaded separately)."""
        return cls(config["vocab_size"], config["num_labels"], hidden_size=config["hidden_size"],
                   num_layers=config["num_layers"], cell=config["cell"],
                   bidirectional=config.get("bidirectional", True), embedding_size=config["embedding_size"],
                   dropout=config.get("dropout", 0.0), padding_idx=config.get("padding_idx"),
                   dtype=config.get("dtype"))

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, num_labels={self.num_labels}, cell={self.cell!r}, "
                f"hidden_size={self.hidden_size}, num_layers={self.num_layers}, bidirectional={self.bidirectional}")

    def forward(self, ids, lengths=None):
        """ids ``(L, N)`` -> logits ``(L, N, C)``; steps at or after ``lengths[n]`` score a zero output."""
        ids = np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"SequenceTagger: expected ids of shape (L, N), got shape {tuple(ids.shape)}")
        if self.bidirectional:
            out, _ = self.rnn(self.embedding(ids), None, lengths=lengths)
        else:
            x_proj = self.embedding.forward_projected(ids, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0)
            out, _ = self.rnn.forward_projected(x_proj, None, lengths=lengths)     # (L, N, D*H)
        return self.classifier(self.output_dropout(out))                          # (L, N, C)

    def backward(self, grad_logits) -> None:
        """grad_logits ``(L, N, C)`` -> gradients accumulated into every parameter's ``.grad``."""
        grad_out = self.output_dropout.backward(self.classifier.backward(grad_logits))
        grad_x, _ = self.rnn.backward(grad_out, None)
        if self.bidirectional:
            self.embedding.backward(grad_x)
        else:
            self.embedding.backward_projected(grad_x)

    def predict(self, ids, lengths=None) -> np.ndarray:
        """The most likely label at every step, ``(L, N)`` ints (evaluation mode, no caches kept)."""
        was_training = self.training
        self.eval()
        try:
            with backend.no_grad():
                return np.asarray(self.forward(ids, lengths)).argmax(axis=-1)
        finally:
            self.train(was_training)
