"""Tracing a character model over a text: every layer's states and gates at every step.

:func:`trace` reads the text once, as one stream, in chunks, carrying the state between chunks, with the
model's own weights, and keeps what the layers compute on the way. Each layer runs through the reference
cell of :mod:`rnnlab.nn.recurrent_math` (the one place each cell's equations are written), with its cache
kept for the chunk, and the series are read from that named cache:

    ==========  ============================================================================
    every cell  ``h``: the layer's output (its states after each step)
    lstm        ``c``: ``LSTMCache.cells``; ``i``, ``f``, ``g``, ``o``: ``LSTMCache.gates``
    gru         ``r``, ``z``, ``n``: ``GRUCache.gates``
    decoder     ``logits_t = h_t (last layer) W_dec^T + b_dec``
    ==========  ============================================================================

The gates are the activated ones (after their sigmoid/tanh), as in PyTorch's equations. Tests hold them to
``torch.nn.LSTM``/``GRU`` and the last layer's ``h`` to the model's own logits.

>>> import rnnlab
>>> from rnnlab.data import Vocabulary
>>> from rnnlab.models import CharRNN
>>> _ = rnnlab.manual_seed(0)
>>> model = CharRNN(Vocabulary.from_text("ab\\n"), hidden_size=4, num_layers=2, cell="gru")
>>> tr = trace(model, "abba\\nab")
>>> tr.text, tr.states[1]["h"].shape, sorted(tr.states[0]), tr.bits.shape
('abba\\nab', (7, 4), ['h', 'n', 'r', 'z'], (6,))
>>> len(tr.topk(0, k=2))
2
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..blas_threads import one_blas_thread
from ..errors import RnnlabError
from ..nn import recurrent_math

# The states each cell keeps per layer, in the order the report lists them.
STATE_NAMES = {"rnn": ("h",), "rnn_relu": ("h",), "lstm": ("h", "c", "i", "f", "g", "o"), "gru": ("h", "r", "z", "n")}
# Gates squashed by a sigmoid, in (0, 1): the ones whose saturation the 2015 paper plots.
SIGMOID_GATES = {"rnn": (), "rnn_relu": (), "lstm": ("i", "f", "o"), "gru": ("r", "z")}
DEFAULT_CHUNK = 512   # steps per call of the reference cell: bounds its cache, one input projection each


@dataclass
class Trace:
    """What :func:`trace` saw. ``L`` characters read, ``H`` hidden units, ``V`` vocabulary symbols.

    Attributes:
        text: the characters read (``str`` of length ``L``; characters the vocabulary lacks are left out,
            see ``unknown``). In byte mode, one character per byte (Latin-1), as ``Vocabulary.decode``.
        ids: ``(L,)`` their ids.
        states: one dict per layer: ``"h"`` ``(L, H)`` float32, the state after reading ``text[t]``; an LSTM
            adds ``"c"`` and its gates ``"i"``, ``"f"``, ``"g"``, ``"o"``, a GRU its ``"r"``, ``"z"``, ``"n"``
            (after their nonlinearity).
        logits: ``(L, V)`` float32, the prediction for the character after ``text[t]``.
        bits: ``(L - 1,)`` float64, ``-log2 p(text[t + 1] | text[:t + 1])``.
        unknown: the characters of the given text that the vocabulary lacks, sorted, each once.
        skipped: how many characters were left out for that reason.
        cell: ``"rnn"``, ``"rnn_relu"``, ``"lstm"`` or ``"gru"``.
    """
    text: str
    ids: np.ndarray
    states: list
    logits: np.ndarray
    bits: np.ndarray
    cell: str
    vocabulary: object = field(repr=False, default=None)
    unknown: list = field(default_factory=list)
    skipped: int = 0

    @property
    def num_layers(self) -> int:
        return len(self.states)

    @property
    def state_names(self) -> tuple:
        return STATE_NAMES[self.cell]

    @property
    def bits_per_char(self) -> float:
        """Mean of :attr:`bits` (``nan`` for a one-character text)."""
        return float(self.bits.mean()) if len(self.bits) else math.nan

    def probabilities(self, t: int) -> np.ndarray:
        """``(V,)`` float64: the softmax of ``logits[t]``, the distribution of the character after ``text[t]``."""
        row = self.logits[t].astype(np.float64)
        row = np.exp(row - row.max())
        return row / row.sum()

    def topk(self, t: int, k: int = 5) -> list:
        """The ``k`` likeliest characters after position ``t``: ``[(char, probability), ...]``, likeliest first."""
        if not -len(self.text) <= t < len(self.text):
            raise IndexError(f"position {t} is outside the traced text (length {len(self.text)})")
        probabilities = self.probabilities(t)
        k = max(0, min(int(k), len(probabilities)))
        order = np.argsort(-probabilities, kind="stable")[:k]
        return [(self.vocabulary.decode_one(int(i)), float(probabilities[i])) for i in order]


def _layer_weights(rnn, layer: int):
    """``(weight_ih, bias_ih, weight_hh, bias_hh)`` of ``layer`` (a bias is ``None`` without biases)."""
    weights = []
    for name in ("weight_ih", "bias_ih", "weight_hh", "bias_hh"):
        parameter = getattr(rnn, f"{name}_l{layer}", None)
        weights.append(None if parameter is None else parameter.data)
    return weights


def _run_layer(cell, x, state, weights):
    """One layer over one chunk through the reference cell, its cache kept for the chunk.

    ``x`` ``(T, 1, E)`` the layer's input; ``state`` ``(h,)`` or ``(h, c)``, each ``(1, H)``; ``weights``
    from :func:`_layer_weights`. Returns ``({name: (T, H) array}, state after the chunk)``; the arrays are
    views of the cache (the chunk's ``(T, 1, G)`` gates and ``(T + 1, 1, H)`` states: bounded by ``T``)."""
    weight_ih, bias_ih, weight_hh, bias_hh = weights
    hidden = state[0].shape[-1]
    with backend.enable_grad():   # the named cache is what holds the gates and cells of every step
        if cell == "lstm":
            _, h_n, c_n, cache = recurrent_math.lstm_forward(x, state[0], state[1], weight_ih, bias_ih,
                                                             weight_hh, bias_hh)
            series = {"h": cache.states[1:, 0], "c": cache.cells[1:, 0]}
            series.update((name, cache.gates[:, 0, k * hidden:(k + 1) * hidden]) for k, name in enumerate("ifgo"))
            return series, (h_n, c_n)
        if cell == "gru":
            _, h_n, cache = recurrent_math.gru_forward(x, state[0], weight_ih, bias_ih, weight_hh, bias_hh)
            series = {"h": cache.states[1:, 0]}
            series.update((name, cache.gates[:, 0, k * hidden:(k + 1) * hidden]) for k, name in enumerate("rzn"))
            return series, (h_n,)
        nonlinearity = "relu" if cell == "rnn_relu" else "tanh"
        _, h_n, cache = recurrent_math.rnn_forward(x, state[0], weight_ih, bias_ih, weight_hh, bias_hh,
                                                   nonlinearity)
        return {"h": cache.states[1:, 0]}, (h_n,)


def encode_text(vocabulary, text):
    """``(kept_text, ids, unknown, skipped)``: the ids of the characters ``vocabulary`` knows."""
    if vocabulary is None:
        raise TypeError("trace needs the model's vocabulary: load the model with rnnlab.load, or build "
                        "CharRNN(vocabulary, ...)")
    unknown = vocabulary.unknown(text)
    ids = vocabulary.encode(text, unknown="skip")
    symbols = len(text.encode("utf-8")) if vocabulary.byte_mode and isinstance(text, str) else len(text)
    kept = vocabulary.decode(ids)
    return kept, np.asarray(ids, dtype=np.intp), unknown, symbols - len(ids)


def trace(model, text, chunk_size: int = DEFAULT_CHUNK) -> Trace:
    """Run ``model`` (a :class:`~rnnlab.models.CharRNN`) over ``text`` as one stream from the zero state.

    ``text`` is a ``str`` (``bytes`` for a byte-mode model). Characters the model's vocabulary lacks are
    left out and listed in :attr:`Trace.unknown`. The model is not changed (none of its caches, no mode
    change; dropout does not apply: this is inference). Memory: ``L * H * 4`` bytes per state and layer (an
    LSTM 2x512 over 20,000 characters keeps 12 arrays of 41 MB), and one chunk's reference cache at a time
    (``chunk_size`` steps of a layer's projection, gates and states: about 10 MB a layer for that LSTM).
    """
    kept, ids, unknown, skipped = encode_text(getattr(model, "vocabulary", None), text)
    if len(ids) == 0:
        raise RnnlabError(f"the text has no character the model knows ({skipped} characters, none in its "
                          f"vocabulary of {model.vocab_size}); give a text like the training text")
    cell = model.cell
    names = STATE_NAMES[cell]
    length, hidden = len(ids), model.hidden_size
    dtype = np.dtype(model.dtype)
    states = [{name: np.empty((length, hidden), dtype=np.float32) for name in names}
              for _ in range(model.num_layers)]
    logits = np.empty((length, model.vocab_size), dtype=np.float32)
    layers = [_layer_weights(model.rnn, k) for k in range(model.num_layers)]
    embedding = model.embedding.weight.data
    decoder_weight, decoder_bias = model.decoder.weight.data, model.decoder.bias
    zeros = np.zeros((1, hidden), dtype=dtype)
    carried = [(zeros, zeros) if cell == "lstm" else (zeros,) for _ in layers]
    chunk_size = max(1, int(chunk_size))
    with one_blas_thread():
        for start in range(0, length, chunk_size):
            stop = min(length, start + chunk_size)
            layer_input = embedding[ids[start:stop]][:, None, :]                  # (T, 1, E)
            for k, weights in enumerate(layers):
                series, carried[k] = _run_layer(cell, layer_input, carried[k], weights)
                for name in names:
                    states[k][name][start:stop] = series[name]
                layer_input = series["h"][:, None, :]                            # (T, 1, H)
            chunk_logits = layer_input[:, 0] @ decoder_weight.T                  # (T, V)
            if decoder_bias is not None:
                chunk_logits += decoder_bias.data
            logits[start:stop] = chunk_logits
    bits = next_char_bits(logits, ids)
    return Trace(text=kept, ids=ids, states=states, logits=logits, bits=bits, cell=cell,
                 vocabulary=model.vocabulary, unknown=unknown, skipped=skipped)


def next_char_bits(logits, ids) -> np.ndarray:
    """``(L - 1,)``: ``-log2 softmax(logits[t])[ids[t + 1]]``, in float64, a chunk of rows at a time."""
    length = len(ids)
    bits = np.empty(max(length - 1, 0), dtype=np.float64)
    for start in range(0, length - 1, 4096):
        stop = min(length - 1, start + 4096)
        rows = logits[start:stop].astype(np.float64)
        rows -= rows.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(rows).sum(axis=1))
        picked = rows[np.arange(stop - start), ids[start + 1:stop + 1]]
        bits[start:stop] = (log_norm - picked) / math.log(2.0)
    return bits
