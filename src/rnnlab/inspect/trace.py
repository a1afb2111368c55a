"""Tracing a character model over a text: every layer's states and gates at every step.

:func:`trace` reads the text once, as one stream, in chunks, carrying the state between chunks, under
:func:`rnnlab.no_grad`, with the model's own weights, and keeps what the layers compute on the way
(PyTorch's equations, the ones :mod:`rnnlab.nn.recurrent_math` implements; ``x_t`` is layer ``k``'s input,
the embedding for ``k = 0``, ``h`` of layer ``k - 1`` above; ``W_*``, ``b_*`` are layer ``k``'s
``weight_ih_l{k}`` ...)::

    rnn, rnn_relu   h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)           act = tanh or relu
    lstm            i, f, g, o = split(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)   sigmoid, sigmoid, tanh, sigmoid
                    c_t = f * c_{t-1} + i * g          h_t = o * tanh(c_t)
    gru             r, z = sigmoid(split(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)[:2])
                    n = tanh(x_n + b_in + r * (h_{t-1} W_hn^T + b_hn))      h_t = (1 - z) * n + z * h_{t-1}
    decoder         logits_t = h_t (last layer) W_dec^T + b_dec

The gates are computed here from the weights rather than read from a layer's cache: a cache is an
implementation detail of the training path (and the compiled path overwrites its inputs), while these are
the quantities the equations name. Tests hold them to ``torch.nn.LSTM``/``GRU`` and the last layer's ``h``
to the model's own logits.

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

import contextlib
import math
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..errors import RnnlabError

# The states each cell keeps per layer, in the order the report lists them.
STATE_NAMES = {"rnn": ("h",), "rnn_relu": ("h",), "lstm": ("h", "c", "i", "f", "g", "o"), "gru": ("h", "r", "z", "n")}
# Gates squashed by a sigmoid, in (0, 1): the ones whose saturation the 2015 paper plots.
SIGMOID_GATES = {"rnn": (), "rnn_relu": (), "lstm": ("i", "f", "o"), "gru": ("r", "z")}
DEFAULT_CHUNK = 512   # steps per input projection: bounds the temporaries, one matrix product per chunk


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
    names = ("weight_ih", "bias_ih", "weight_hh", "bias_hh")
    weights = []
    for name in names:
        parameter = getattr(rnn, f"{name}_l{layer}", None)
        weights.append(None if parameter is None else parameter.data)
    return weights


def _sigmoid(z):
    # 0.5 * (1 + tanh(z / 2)) is the logistic function without exp overflow for large -z.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _run_layer(cell, x_proj, state, weight_hh_t, bias_hh, out):
    """One layer over one chunk. ``x_proj`` ``(T, G)`` = ``x W_ih^T + b_ih``; ``state`` ``h`` or ``(h, c)``;
    ``out`` a dict of ``(T, H)`` arrays to fill. Returns the state after the chunk."""
    steps = x_proj.shape[0]
    if cell == "lstm":
        h, c = state
        hidden = h.shape[0]
        i_all, f_all, g_all, o_all, c_all, h_all = (out[name] for name in ("i", "f", "g", "o", "c", "h"))
        for t in range(steps):
            gates = x_proj[t] + h @ weight_hh_t
            if bias_hh is not None:
                gates += bias_hh
            i = _sigmoid(gates[:hidden])
            f = _sigmoid(gates[hidden:2 * hidden])
            g = np.tanh(gates[2 * hidden:3 * hidden])
            o = _sigmoid(gates[3 * hidden:])
            c = f * c + i * g
            h = o * np.tanh(c)
            i_all[t], f_all[t], g_all[t], o_all[t], c_all[t], h_all[t] = i, f, g, o, c, h
        return h, c
    h = state
    hidden = h.shape[0]
    if cell == "gru":
        r_all, z_all, n_all, h_all = (out[name] for name in ("r", "z", "n", "h"))
        for t in range(steps):
            hidden_gates = h @ weight_hh_t
            if bias_hh is not None:
                hidden_gates += bias_hh
            r_z = _sigmoid(x_proj[t, :2 * hidden] + hidden_gates[:2 * hidden])
            r, z = r_z[:hidden], r_z[hidden:]
            n = np.tanh(x_proj[t, 2 * hidden:] + r * hidden_gates[2 * hidden:])   # b_hn inside r * (...)
            h = (1.0 - z) * n + z * h
            r_all[t], z_all[t], n_all[t], h_all[t] = r, z, n, h
        return h
    h_all = out["h"]
    relu = cell == "rnn_relu"
    for t in range(steps):
        pre = x_proj[t] + h @ weight_hh_t
        if bias_hh is not None:
            pre += bias_hh
        h = np.maximum(pre, 0) if relu else np.tanh(pre)
        h_all[t] = h
    return h


def one_blas_thread():
    """The per-step products are matrix-vector work: one BLAS thread is faster than several (no wake-ups per
    product; far faster on a busy machine). Uses threadpoolctl when it is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


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
    left out and listed in :attr:`Trace.unknown`. The model is not changed (no caches, no mode change;
    dropout does not apply: this is inference). Memory: ``L * H * 4`` bytes per state and layer (an LSTM
    2x512 over 20,000 characters keeps 12 arrays of 41 MB).
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
    weight_hh_t = [np.ascontiguousarray(weights[2].T) for weights in layers]   # (H, G): one product per step
    embedding = model.embedding.weight.data
    decoder_weight, decoder_bias = model.decoder.weight.data, model.decoder.bias
    zeros = np.zeros(hidden, dtype=dtype)
    carried = [((zeros, zeros) if cell == "lstm" else zeros) for _ in layers]
    chunk_size = max(1, int(chunk_size))
    with backend.no_grad(), one_blas_thread():
        for start in range(0, length, chunk_size):
            stop = min(length, start + chunk_size)
            layer_input = embedding[ids[start:stop]]                              # (T, E)
            for k, (weight_ih, bias_ih, _, bias_hh) in enumerate(layers):
                x_proj = layer_input @ weight_ih.T                                 # (T, G)
                if bias_ih is not None:
                    x_proj += bias_ih
                out = {name: np.empty((stop - start, hidden), dtype=dtype) for name in names}
                carried[k] = _run_layer(cell, x_proj, carried[k], weight_hh_t[k], bias_hh, out)
                for name in names:
                    states[k][name][start:stop] = out[name]
                layer_input = out["h"]                                             # (T, H)
            chunk_logits = layer_input @ decoder_weight.T                          # (T, V)
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
