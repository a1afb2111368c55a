r"""``SequenceGenerator``: one input (a class label) in, a whole sequence out (one-to-many).

The model draws a sequence of ``L`` vectors of ``F`` features step by step, each step predicting the
next vector from the ones before and the class, e.g. a Fashion-MNIST image as 28 rows of 28 pixels::

    x_in_t   = [x_{t-1}; class_embedding[y]]   (x_{-1} = 0; the class part with condition 'input'/'both')
    h_0      = tanh(class_state[y])            (per layer; with condition 'state'/'both', else 0)
    out, _   = rnn(x_in, h_0)                  # (L, N, H)
    logits_t = output(dropout(out_t))          # (L, N, F): the logits of x_t's features

Trained with teacher forcing (the true previous row as input) and
``BCEWithLogitsLoss(logits, x)`` on pixel intensities in ``[0, 1]``. :meth:`SequenceGenerator.generate`
feeds each drawn row back in. Batch first at the edges, like :class:`SequenceClassifier`: images
``(N, L, F)``, logits ``(N, L, F)``; time-major inside.

Parameter names: ``class_state.weight`` ``(C, num_layers * H)``, ``class_embedding.weight`` ``(C, E_c)``,
``rnn.*``, ``output.weight``/``bias``.

>>> import numpy as np, rnnlab
>>> from rnnlab.models import SequenceGenerator
>>> _ = rnnlab.manual_seed(0)
>>> model = SequenceGenerator(input_size=28, num_classes=10, hidden_size=16)
>>> logits = model(np.zeros((4, 28, 28)), np.array([0, 1, 2, 3]))
>>> logits.shape
(4, 28, 28)
>>> model.backward(np.ones_like(logits))
>>> model.generate(np.array([5, 9]), num_steps=28, seed=0).shape
(2, 28, 28)
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..nn import Dropout, Embedding, Linear, Module
from .stack import check_cell, recurrent_layer, state_from_parts

__all__ = ["SequenceGenerator", "CONDITIONS"]

CONDITIONS = ("state", "input", "both")


def _sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


class SequenceGenerator(Module):
    r"""A class-conditioned recurrent generator of ``L`` steps of ``F`` features.

    Args:
        input_size: ``F``, features per step (28 pixels per row).
        num_classes: ``C``, the number of classes to condition on.
        hidden_size: ``H``. Default: 128
        num_layers: recurrent layers stacked. Default: 1
        cell: ``'rnn'``, ``'rnn_relu'``, ``'lstm'`` or ``'gru'``. Default: ``'lstm'``
        condition: where the class enters: ``'state'`` (the initial hidden state of every layer,
            ``tanh(class_state[y])``; an LSTM's cell state starts at 0), ``'input'`` (a class embedding
            beside every step's input) or ``'both'``. Default: ``'both'``
        class_embedding_size: ``E_c`` for ``'input'``/``'both'``. Default: 16
        dropout: between recurrent layers and on the recurrent output (training mode only). Default: 0
        dtype: ``float32`` (default) or ``float64``.

    Shapes: x ``(N, L, F)`` (the sequences to learn; step ``t`` is predicted from steps before it),
    labels ``(N,)`` ints in ``[0, C)``, logits ``(N, L, F)``.
    """

    def __init__(self, input_size: int, num_classes: int, hidden_size: int = 128, num_layers: int = 1,
                 cell: str = "lstm", condition: str = "both", class_embedding_size: int = 16, dropout: float = 0.0,
                 dtype=None):
        super().__init__()
        check_cell(cell)
        if condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {', '.join(CONDITIONS)}; got {condition!r}")
        for name, value in (("input_size", input_size), ("num_classes", num_classes), ("hidden_size", hidden_size),
                            ("num_layers", num_layers), ("class_embedding_size", class_embedding_size)):
            if int(value) < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        dtype = backend.resolve_dtype(dtype)
        self.input_size, self.num_classes = int(input_size), int(num_classes)
        self.hidden_size, self.num_layers = int(hidden_size), int(num_layers)
        self.cell, self.condition = cell, condition
        self.class_embedding_size = int(class_embedding_size)
        self.dropout = float(dropout)
        self.dtype = dtype
        self._is_lstm = cell == "lstm"
        self._in_state = condition in ("state", "both")
        self._in_input = condition in ("input", "both")
        if self._in_state:
            self.class_state = Embedding(self.num_classes, self.num_layers * self.hidden_size, dtype=dtype)
        if self._in_input:
            self.class_embedding = Embedding(self.num_classes, self.class_embedding_size, dtype=dtype)
        rnn_input = self.input_size + (self.class_embedding_size if self._in_input else 0)
        self.rnn = recurrent_layer(cell, rnn_input, self.hidden_size, self.num_layers,
                                   dropout=self.dropout if self.num_layers > 1 else 0.0, dtype=dtype)
        self.output_dropout = Dropout(self.dropout)
        self.output = Linear(self.hidden_size, self.input_size, dtype=dtype)
        self._cache = None

    def config(self) -> dict:
        """The constructor's arguments as a JSON-able dict (kept in a run's ``config.json``)."""
        return {"input_size": self.input_size, "num_classes": self.num_classes, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "cell": self.cell, "condition": self.condition,
                "class_embedding_size": self.class_embedding_size, "dropout": self.dropout,
                "dtype": str(np.dtype(self.dtype))}

    @classmethod
    def from_config(cls, config: dict) -> "SequenceGenerator":
        """Rebuild a model from :meth:`config` (weights are loaded separately)."""
        return cls(config["input_size"], config["num_classes"], hidden_size=config["hidden_size"],
                   num_layers=config["num_layers"], cell=config["cell"], condition=config.get("condition", "both"),
                   class_embedding_size=config.get("class_embedding_size", 16), dropout=config.get("dropout", 0.0),
                   dtype=config.get("dtype"))

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, num_classes={self.num_classes}, cell={self.cell!r}, "
                f"hidden_size={self.hidden_size}, num_layers={self.num_layers}, condition={self.condition!r}")

    # --- the class's part ---------------------------------------------------------------------
    def _labels(self, labels, batch: int):
        labels = np.asarray(labels)
        if labels.shape != (batch,) or labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be {batch} integers (one per sequence), got {labels.dtype} of shape "
                             f"{labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes - 1}], got values from {labels.min()} to "
                             f"{labels.max()}")
        return labels

    def _initial_state(self, labels):
        """-> the rnn's initial state (or None = zeros), and tanh(h_0) for the backward."""
        if not self._in_state:
            return None, None
        batch = labels.shape[0]
        h0 = np.tanh(self.class_state(labels).reshape(batch, self.num_layers, self.hidden_size)
                     .transpose(1, 0, 2))                                          # (layers, N, H)
        c0 = np.zeros_like(h0) if self._is_lstm else None
        return state_from_parts([h0, c0], self._is_lstm), h0

    def _inputs(self, previous, labels):
        """previous rows (L, N, F) -> the rnn's inputs (L, N, F [+ E_c])."""
        if not self._in_input:
            return previous
        class_part = self.class_embedding(labels)                                  # (N, E_c)
        steps = previous.shape[0]
        return np.concatenate([previous, np.broadcast_to(class_part, (steps,) + class_part.shape)], axis=-1)

    # --- forward beside backward --------------------------------------------------------------
    def forward(self, x, labels):
        """x ``(N, L, F)``, labels ``(N,)`` -> logits ``(N, L, F)`` (step t from steps < t and the label)."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"SequenceGenerator: expected x of shape (N, L, {self.input_size}), got {tuple(x.shape)}")
        labels = self._labels(labels, x.shape[0])
        rows = x.transpose(1, 0, 2)                                                # (L, N, F)
        previous = np.concatenate([np.zeros_like(rows[:1]), rows[:-1]], axis=0)    # teacher forcing
        state, h0 = self._initial_state(labels)
        out, _ = self.rnn(self._inputs(previous, labels), state)                   # (L, N, H)
        logits = self.output(self.output_dropout(out))                             # (L, N, F)
        self._cache = h0 if backend.is_grad_enabled() else None
        return np.ascontiguousarray(logits.transpose(1, 0, 2))

    def backward(self, grad_logits) -> None:
        """grad_logits ``(N, L, F)`` -> gradients accumulated into every parameter's ``.grad``."""
        h0 = self._cache
        self._cache = None
        grad_logits = np.asarray(grad_logits, dtype=self.dtype).transpose(1, 0, 2)
        grad_out = self.output_dropout.backward(self.output.backward(grad_logits))
        grad_inputs, grad_state = self.rnn.backward(grad_out, None)
        if self._in_input:
            self.class_embedding.backward(grad_inputs[..., self.input_size:].sum(axis=0))
        if self._in_state:
            grad_h0 = grad_state[0] if self._is_lstm else grad_state                # (layers, N, H)
            grad_pre = (grad_h0 * (1.0 - h0 * h0)).transpose(1, 0, 2).reshape(h0.shape[1], -1)
            self.class_state.backward(grad_pre)

    # --- generation ---------------------------------------------------------------------------
    def generate(self, labels, num_steps: int = 28, sample: bool = False, seed: int | None = None) -> np.ndarray:
        """Draw one sequence per label, feeding each step back in: ``(N, num_steps, F)`` in ``[0, 1]``.

        Each step's features are ``sigmoid(logits)`` (the expected intensities), or with ``sample`` a
        Bernoulli draw from them (from ``numpy.random.default_rng(seed)``, or rnnlab's generator when
        ``seed`` is ``None``). Evaluation mode, no caches kept."""
        labels = self._labels(labels, np.asarray(labels).reshape(-1).shape[0])
        rng = backend.generator() if seed is None else np.random.default_rng(seed)
        batch = labels.shape[0]
        was_training = self.training
        self.eval()
        rows = []
        try:
            with backend.no_grad():
                state, _ = self._initial_state(labels)
                previous = np.zeros((1, batch, self.input_size), dtype=self.dtype)
                for _ in range(int(num_steps)):
                    out, state = self.rnn(self._inputs(previous, labels), state)
                    probs = _sigmoid(np.asarray(self.output(out[0]), dtype=np.float64))   # (N, F)
                    row = (rng.random(probs.shape) < probs).astype(np.float64) if sample else probs
                    rows.append(row)
                    previous = row[None].astype(self.dtype)
        finally:
            self.train(was_training)
        return np.stack(rows, axis=1) if rows else np.zeros((batch, 0, self.input_size))
