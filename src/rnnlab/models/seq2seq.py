r"""``Seq2Seq``: an encoder reads a whole source sequence, a decoder writes the target, optionally
attending to every encoder output (Sutskever et al. 2014; Luong, Pham & Manning 2015).

Time-major throughout: source ids ``(S, N)``, decoder inputs/targets ``(T, N)``::

    enc_out, enc_state = encoder(source_embedding[src], lengths=src_lengths)    # (S, N, D*H)
    state_0  = enc_state                    (one direction: the states go across as they are)
             = tanh(bridge_h([h_fwd; h_bwd])), bridge_c([c_fwd; c_bwd])          (bidirectional, per layer)
    dec_out, _ = decoder(target_embedding[tgt_in], state_0)                     # (T, N, H)
    with attention:
        context, alpha = attention(dec_out, enc_out, key_padding_mask=padding)  # (T, N, D*H), (N, T, S)
        features = tanh(combine([context; dec_out]))                            # (T, N, H)
    else: features = dec_out
    logits = output_projection(dropout(features))                               # (T, N, V_tgt)

The attention is Luong's "global" attention on the decoder's output, without input feeding: the
recurrence depends only on the decoder's input symbols, so a teacher-forced batch runs the decoder as
one sequence (the engine's fast recurrent kernels) and the attention for all steps at once. With a
teacher-forcing ratio below 1 some inputs are the model's own previous predictions: they are chosen
step by step in a first pass without gradients, then the batch runs as above on the mixed inputs
(the same computation, since without input feeding a step's logits depend only on the inputs so far).

Decoding (:meth:`Seq2Seq.greedy_search`, :meth:`Seq2Seq.beam_search`) is batched: one step function
(embedding -> decoder layer -> attention -> output projection) for all sequences (and beams) at once.

Parameter names (PyTorch's, so the weights load into the same model written with ``torch.nn``):
``source_embedding.weight``, ``encoder.weight_ih_l0`` ..., ``bridge_h.weight``/``bias`` and (LSTM)
``bridge_c.*`` when bidirectional, ``target_embedding.weight``, ``decoder.*``, ``attention.*``,
``combine.weight``/``bias``, ``output_projection.weight``/``bias``.

>>> import numpy as np, rnnlab
>>> from rnnlab.models import Seq2Seq
>>> _ = rnnlab.manual_seed(0)
>>> model = Seq2Seq(10, 12, hidden_size=8, cell="gru", bidirectional=True)
>>> logits = model(np.full((5, 3), 4), np.full((6, 3), 5), source_lengths=[5, 2, 4])
>>> logits.shape
(6, 3, 12)
>>> model.backward(np.ones_like(logits))
>>> sequences, log_probs = model.beam_search(np.full((5, 3), 4), [5, 2, 4], beam_size=3, max_length=4)
>>> len(sequences), log_probs.shape
(3, (3,))
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..nn import Attention, Dropout, Embedding, Linear, Module
from ..nn.attention import SCORES
from .stack import check_cell, recurrent_layer, state_from_parts, state_parts

__all__ = ["Seq2Seq"]


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _top_k(scores, k: int):
    """Indices of the ``k`` largest of each row, best first; ties go to the lower index (as ``argmax``).
    A full sort for short rows; for long ones (token vocabularies) a partition first, then a sort of ``k``
    (there a tie across the ``k``-th place is settled by the partition, deterministically)."""
    if scores.shape[1] <= 4096:
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(scores, top, axis=1)
    return np.take_along_axis(top, np.lexsort((top, -values), axis=1), axis=1)


class Seq2Seq(Module):
    r"""Encoder (any cell, layers, optionally bidirectional) -> bridge -> decoder (attention optional).

    Args:
        source_vocab, target_vocab: a vocabulary size (int) or a vocabulary object (``len()``,
            ``encode``/``decode``, ``pad_id``/``bos_id``/``eos_id``: :class:`rnnlab.data.pairs.SymbolVocabulary`);
            :meth:`translate` needs the objects.
        hidden_size: ``H``, the decoder's state and each encoder direction's. Default: 128
        num_layers: layers of the encoder and of the decoder. Default: 1
        cell: ``'rnn'``, ``'rnn_relu'``, ``'lstm'`` or ``'gru'`` (encoder and decoder). Default: ``'lstm'``
        embedding_size: ``E``, both embeddings. Default: ``min(H, 64)``
        bidirectional: a bidirectional encoder (``D = 2``); its final states are bridged to the decoder
            per layer by a Linear map (``tanh`` for ``h``). Default: ``False``
        attention: ``'dot'``, ``'general'``, ``'additive'`` or ``None`` (no attention). ``'dot'`` needs
            ``D * H == H`` (a unidirectional encoder). Default: ``'general'``
        attention_size: the additive score's hidden size. Default: ``H``
        dropout: between recurrent layers and on the features before the output projection (training
            mode only). Default: 0
        pad_id, bos_id, eos_id: the special ids (taken from the vocabularies when they have them).
            Default: 0, 1, 2
        dtype: ``float32`` (default) or ``float64``.

    Shapes: source ``(S, N)`` ids, ``<pad>`` after each end; source_lengths ``(N,)`` in ``[1, S]`` or
    ``None``; target_input ``(T, N)`` (``<bos> y_1 ..``); logits ``(T, N, V_tgt)``. Train with
    ``CrossEntropyLoss(ignore_index=model.pad_id)`` on ``logits.reshape(-1, V)`` and the targets
    ``y_1 .. <eos>`` (``<pad>`` after). ``attention_weights`` holds the last forward's :math:`\alpha`
    ``(N, T, S)`` (``None`` without attention).
    """

    def __init__(self, source_vocab, target_vocab, hidden_size: int = 128, num_layers: int = 1, cell: str = "lstm",
                 embedding_size: int | None = None, bidirectional: bool = False, attention: str | None = "general",
                 attention_size: int | None = None, dropout: float = 0.0, pad_id: int = 0, bos_id: int = 1,
                 eos_id: int = 2, dtype=None):
        super().__init__()
        check_cell(cell)
        if attention is not None and attention not in SCORES:
            raise ValueError(f"attention must be one of {', '.join(SCORES)} or None; got {attention!r}")
        sizes = []
        for vocab in (source_vocab, target_vocab):
            sizes.append(int(vocab) if isinstance(vocab, (int, np.integer)) else len(vocab))
        for name, value in (("source vocabulary size", sizes[0]), ("target vocabulary size", sizes[1]),
                            ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if int(value) < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        if attention == "dot" and bidirectional:
            raise ValueError("attention='dot' needs the encoder's outputs (2 * hidden_size with a bidirectional "
                             "encoder) to match the decoder's state (hidden_size): use 'general' or 'additive'")
        target_vocabulary = None if isinstance(target_vocab, (int, np.integer)) else target_vocab
        pad_id = getattr(target_vocabulary, "pad_id", pad_id)
        bos_id = getattr(target_vocabulary, "bos_id", bos_id)
        eos_id = getattr(target_vocabulary, "eos_id", eos_id)
        dtype = backend.resolve_dtype(dtype)
        object.__setattr__(self, "source_vocabulary", None if isinstance(source_vocab, (int, np.integer))
                           else source_vocab)
        object.__setattr__(self, "target_vocabulary", target_vocabulary)
        object.__setattr__(self, "attention_weights", None)
        self.source_vocab_size, self.target_vocab_size = sizes
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.cell = cell
        self.embedding_size = int(embedding_size) if embedding_size is not None else min(self.hidden_size, 64)
        self.bidirectional = bool(bidirectional)
        self.attention_score = attention
        self.attention_size = None if attention != "additive" else int(attention_size or self.hidden_size)
        self.dropout = float(dropout)
        self.pad_id, self.bos_id, self.eos_id = int(pad_id), int(bos_id), int(eos_id)
        self.dtype = dtype
        directions = 2 if self.bidirectional else 1
        hidden, layers = self.hidden_size, self.num_layers
        self._is_lstm = cell == "lstm"

        self.source_embedding = Embedding(self.source_vocab_size, self.embedding_size, padding_idx=self.pad_id,
                                          dtype=dtype)
        self.encoder = recurrent_layer(cell, self.embedding_size, hidden, layers, bidirectional=self.bidirectional,
                                       dropout=self.dropout if layers > 1 else 0.0, dtype=dtype)
        if self.bidirectional:
            self.bridge_h = Linear(2 * hidden, hidden, dtype=dtype)
            if self._is_lstm:
                self.bridge_c = Linear(2 * hidden, hidden, dtype=dtype)
        self.target_embedding = Embedding(self.target_vocab_size, self.embedding_size, padding_idx=self.pad_id,
                                          dtype=dtype)
        self.decoder = recurrent_layer(cell, self.embedding_size, hidden, layers,
                                       dropout=self.dropout if layers > 1 else 0.0, dtype=dtype)
        if attention is not None:
            self.attention = Attention(hidden, directions * hidden, score=attention,
                                       attention_size=self.attention_size, dtype=dtype)
            self.combine = Linear(directions * hidden + hidden, hidden, dtype=dtype)
        self.feature_dropout = Dropout(self.dropout)
        self.output_projection = Linear(hidden, self.target_vocab_size, dtype=dtype)
        self._cache = None

    # --- configuration ------------------------------------------------------------------------
    def config(self) -> dict:
        """The constructor's arguments as a JSON-able dict (kept in a run's ``config.json``)."""
        return {"source_vocab_size": self.source_vocab_size, "target_vocab_size": self.target_vocab_size,
                "hidden_size": self.hidden_size, "num_layers": self.num_layers, "cell": self.cell,
                "embedding_size": self.embedding_size, "bidirectional": self.bidirectional,
                "attention": self.attention_score, "attention_size": self.attention_size, "dropout": self.dropout,
                "pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id,
                "dtype": str(np.dtype(self.dtype))}

    @classmethod
    def from_config(cls, config: dict, source_vocabulary=None, target_vocabulary=None) -> "Seq2Seq":
        """Rebuild a model from :meth:`config` (weights are loaded separately)."""
        vocabs = []
        for vocabulary, key in ((source_vocabulary, "source_vocab_size"), (target_vocabulary, "target_vocab_size")):
            if vocabulary is not None and len(vocabulary) != int(config[key]):
                raise ValueError(f"the vocabulary has {len(vocabulary)} symbols but the config says {config[key]}")
            vocabs.append(vocabulary if vocabulary is not None else int(config[key]))
        return cls(vocabs[0], vocabs[1], hidden_size=config["hidden_size"], num_layers=config["num_layers"],
                   cell=config["cell"], embedding_size=config["embedding_size"],
                   bidirectional=config.get("bidirectional", False), attention=config.get("attention", "general"),
                   attention_size=config.get("attention_size"), dropout=config.get("dropout", 0.0),
                   pad_id=config.get("pad_id", 0), bos_id=config.get("bos_id", 1), eos_id=config.get("eos_id", 2),
                   dtype=config.get("dtype"))

    def extra_repr(self) -> str:
        return (f"source_vocab_size={self.source_vocab_size}, target_vocab_size={self.target_vocab_size}, "
                f"cell={self.cell!r}, hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, attention={self.attention_score!r}")

    # --- checks -------------------------------------------------------------------------------
    @staticmethod
    def _ids(ids, what: str):
        ids = np.asarray(ids)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"Seq2Seq: {what} must be integer ids of shape (L, N), got {ids.dtype} of shape "
                             f"{tuple(ids.shape)}")
        return ids

    def _lengths(self, lengths, source):
        steps, batch = source.shape
        if lengths is None:
            return None, None
        lengths = np.asarray(lengths)
        if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
            raise ValueError(f"source_lengths must be {batch} integers, got shape {lengths.shape} of {lengths.dtype}")
        if lengths.min() < 1 or lengths.max() > steps:
            raise ValueError(f"source_lengths must lie in [1, {steps}], got values from {lengths.min()} to "
                             f"{lengths.max()}")
        mask = np.arange(steps)[None, :] >= lengths[:, None]             # (N, S): True = padding
        return lengths.astype(np.int64), (mask if mask.any() else None)

    # --- the encoder and the bridge -------------------------------------------------------------
    def _encode(self, source, lengths):
        """source (S, N) -> encoder outputs (S, N, D*H), the decoder's initial state (a list of parts)."""
        if self.bidirectional:
            enc_out, enc_state = self.encoder(self.source_embedding(source), None, lengths=lengths)
        else:
            x_proj = self.source_embedding.forward_projected(source, self.encoder.weight_ih_l0,
                                                             self.encoder.bias_ih_l0)
            enc_out, enc_state = self.encoder.forward_projected(x_proj, None, lengths=lengths)
        parts = state_parts(enc_state)                                        # (L*D, N, H) each
        if not self.bidirectional:
            return enc_out, parts, None
        bridged = []
        for k, (part, bridge) in enumerate(zip(parts, (self.bridge_h, getattr(self, "bridge_c", None)))):
            layers, batch, hidden = self.num_layers, part.shape[1], self.hidden_size
            joined = part.reshape(layers, 2, batch, hidden).transpose(0, 2, 1, 3).reshape(layers, batch, 2 * hidden)
            out = bridge(joined)                                                   # (L, N, H)
            if k == 0:
                out = np.tanh(out)
            bridged.append(out)
        return enc_out, bridged, bridged[0]

    def _bridge_backward(self, grad_parts, tanh_h):
        """Gradients of the decoder's initial state -> gradients of the encoder's final state."""
        if not self.bidirectional:
            return grad_parts
        grads = []
        for k, (grad, bridge) in enumerate(zip(grad_parts, (self.bridge_h, getattr(self, "bridge_c", None)))):
            if k == 0:
                grad = grad * (1.0 - tanh_h * tanh_h)
            grad_joined = bridge.backward(grad)                                     # (L, N, 2H)
            layers, batch, hidden = grad_joined.shape[0], grad_joined.shape[1], self.hidden_size
            grads.append(grad_joined.reshape(layers, batch, 2, hidden).transpose(0, 2, 1, 3)
                         .reshape(2 * layers, batch, hidden))
        return grads

    # --- forward beside backward --------------------------------------------------------------
    def forward(self, source, target_input, source_lengths=None, teacher_forcing: float = 1.0):
        """source ``(S, N)``, target_input ``(T, N)`` -> logits ``(T, N, V_tgt)``.

        ``teacher_forcing`` < 1: each input after the first is, with probability ``1 - teacher_forcing``
        (drawn from rnnlab's generator per step and sequence), the model's own previous prediction
        (see :meth:`mix_predictions`)."""
        source = self._ids(source, "source")
        target_input = self._ids(target_input, "target_input")
        if target_input.shape[1] != source.shape[1]:
            raise ValueError(f"source and target_input must hold the same number of sequences, got "
                             f"{source.shape[1]} and {target_input.shape[1]}")
        if teacher_forcing < 1.0:
            target_input = self.mix_predictions(source, target_input, source_lengths, teacher_forcing)
        lengths, mask = self._lengths(source_lengths, source)
        enc_out, parts, tanh_h = self._encode(source, lengths)
        x_proj = self.target_embedding.forward_projected(target_input, self.decoder.weight_ih_l0,
                                                         self.decoder.bias_ih_l0)
        dec_out, _ = self.decoder.forward_projected(x_proj, state_from_parts(parts, self._is_lstm))  # (T, N, H)
        if self.attention_score is not None:
            context, weights = self.attention(dec_out, enc_out, key_padding_mask=mask)
            features = np.tanh(self.combine(np.concatenate([context, dec_out], axis=-1)))   # (T, N, H)
            object.__setattr__(self, "attention_weights", weights)
        else:
            features = dec_out
        logits = self.output_projection(self.feature_dropout(features))
        self._cache = (features, tanh_h, enc_out.shape) if backend.is_grad_enabled() else None
        return logits

    def backward(self, grad_logits) -> None:
        """grad_logits ``(T, N, V_tgt)`` -> gradients accumulated into every parameter's ``.grad``."""
        if self._cache is None:
            raise RuntimeError("Seq2Seq.backward: no forward to go back through (call forward first, outside "
                               "no_grad; each forward allows one backward)")
        features, tanh_h, enc_shape = self._cache
        self._cache = None
        grad_features = self.feature_dropout.backward(self.output_projection.backward(grad_logits))
        grad_enc_out = None
        if self.attention_score is not None:
            grad_joined = self.combine.backward(grad_features * (1.0 - features * features))
            keys = enc_shape[-1]
            grad_query, grad_enc_out, _ = self.attention.backward(grad_joined[..., :keys])
            grad_dec_out = grad_joined[..., keys:] + grad_query
        else:
            grad_dec_out = grad_features
        grad_x_proj, grad_state0 = self.decoder.backward(grad_dec_out, None)
        self.target_embedding.backward_projected(grad_x_proj)
        grad_enc_state = state_from_parts(self._bridge_backward(state_parts(grad_state0), tanh_h), self._is_lstm)
        grad_source, _ = self.encoder.backward(grad_enc_out, grad_enc_state)
        if self.bidirectional:
            self.source_embedding.backward(grad_source)
        else:
            self.source_embedding.backward_projected(grad_source)

    # --- one decoding step for a whole batch (no gradients) -------------------------------------
    def start(self, source, source_lengths=None):
        """Encode without gradients: -> ``(state, memory)`` for :meth:`step` (memory ``None`` without attention)."""
        source = self._ids(source, "source")
        with backend.no_grad():
            lengths, mask = self._lengths(source_lengths, source)
            enc_out, parts, _ = self._encode(source, lengths)
            memory = None
            if self.attention_score is not None:
                memory = self.attention.prepare(enc_out, None, key_padding_mask=mask)
        return state_from_parts(parts, self._is_lstm), memory

    def step(self, ids, state, memory=None):
        """Ids ``(M,)`` (the previous symbols) -> logits ``(M, V_tgt)`` and the next state; no caches kept."""
        with backend.no_grad():
            dec_out, state = self.decoder(self.target_embedding(np.asarray(ids).reshape(1, -1)), state)
            features = dec_out[0]                                                   # (M, H)
            if memory is not None:
                context, _ = self.attention.attend(features, memory)
                features = np.tanh(self.combine(np.concatenate([context, features], axis=-1)))
            return self.output_projection(features), state

    def mix_predictions(self, source, target_input, source_lengths=None, teacher_forcing: float = 1.0):
        """Scheduled sampling's inputs: ``target_input`` with each input after the first replaced, with
        probability ``1 - teacher_forcing``, by the argmax of the model's previous step given the inputs
        chosen so far (a pass without gradients, in the model's current mode). Padding stays padding."""
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must lie in [0, 1], got {teacher_forcing}")
        target_input = self._ids(target_input, "target_input")
        keep = backend.generator().random(target_input.shape) < teacher_forcing           # (T, N)
        mixed = target_input.copy()
        if keep[1:].all():
            return mixed
        state, memory = self.start(source, source_lengths)
        for t in range(target_input.shape[0] - 1):
            logits, state = self.step(mixed[t], state, memory)
            take = ~keep[t + 1] & (target_input[t + 1] != self.pad_id)
            mixed[t + 1] = np.where(take, logits.argmax(axis=-1), target_input[t + 1])
        return mixed

    # --- decoding -----------------------------------------------------------------------------
    def _default_max_length(self, source, max_length):
        return 2 * source.shape[0] + 10 if max_length is None else int(max_length)

    def greedy_search(self, source, source_lengths=None, max_length: int | None = None):
        """The most likely symbol at every step, for every sequence at once (evaluation mode).

        Returns ``(sequences, log_probs)``: a list of ``N`` int64 arrays (without ``<bos>``/``<eos>``) and
        each sequence's total log-probability ``(N,)`` (``<eos>`` included). Stops at ``<eos>`` or after
        ``max_length`` symbols (default ``2 S + 10``)."""
        source = self._ids(source, "source")
        batch, limit = source.shape[1], self._default_max_length(source, max_length)
        was_training = self.training
        self.eval()
        try:
            state, memory = self.start(source, source_lengths)
            ids = np.full(batch, self.bos_id, dtype=np.int64)
            finished = np.zeros(batch, dtype=bool)
            log_probs = np.zeros(batch)
            columns = []
            for _ in range(limit):
                logits, state = self.step(ids, state, memory)
                log_p = _log_softmax(np.asarray(logits, dtype=np.float64))
                ids = log_p.argmax(axis=-1)
                log_probs += np.where(finished, 0.0, log_p[np.arange(batch), ids])
                columns.append(np.where(finished, self.pad_id, ids))
                finished |= ids == self.eos_id
                if finished.all():
                    break
        finally:
            self.train(was_training)
        return self._trim(np.stack(columns, axis=1) if columns else np.zeros((batch, 0), np.int64)), log_probs

    def beam_search(self, source, source_lengths=None, beam_size: int = 5, max_length: int | None = None,
                    length_penalty: float = 0.6):
        r"""Beam search for every sequence at once (``N * beam_size`` rows per step, evaluation mode).

        Each step extends every live hypothesis by every symbol and keeps the ``beam_size`` best by total
        log-probability; a hypothesis that wrote ``<eos>`` stays in its beam unchanged. At the end each
        sequence takes the hypothesis with the best length-normalised score
        :math:`\log p(y) / |y|^{\alpha}` (:math:`|y|` counts ``<eos>``; :math:`\alpha` = ``length_penalty``,
        0 = no normalisation). ``beam_size=1`` is :meth:`greedy_search`.

        Returns ``(sequences, log_probs)`` as :meth:`greedy_search` (log_probs unnormalised)."""
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        source = self._ids(source, "source")
        batch, beams, limit = source.shape[1], int(beam_size), self._default_max_length(source, max_length)
        vocab = self.target_vocab_size
        was_training = self.training
        self.eval()
        try:
            state, memory = self.start(source, source_lengths)
            state = state_from_parts([np.repeat(p, beams, axis=1) for p in state_parts(state)], self._is_lstm)
            memory = None if memory is None else memory.repeat(beams)
            totals = np.full((batch, beams), -np.inf)
            totals[:, 0] = 0.0                                  # one live hypothesis to start from
            finished = np.zeros((batch, beams), dtype=bool)
            lengths = np.zeros((batch, beams), dtype=np.int64)
            history = np.zeros((batch, beams, 0), dtype=np.int64)
            ids = np.full(batch * beams, self.bos_id, dtype=np.int64)
            rows = np.arange(batch)[:, None]
            for _ in range(limit):
                logits, state = self.step(ids, state, memory)
                log_p = _log_softmax(np.asarray(logits, dtype=np.float64)).reshape(batch, beams, vocab)
                log_p[finished] = -np.inf
                log_p[finished, self.pad_id] = 0.0              # a finished hypothesis continues unchanged
                candidates = (totals[:, :, None] + log_p).reshape(batch, beams * vocab)
                best = _top_k(candidates, beams)                                         # (N, K)
                origin, symbol = best // vocab, best % vocab
                totals = np.take_along_axis(candidates, best, axis=1)
                was_finished = finished[rows, origin]
                lengths = lengths[rows, origin] + ~was_finished
                finished = was_finished | (symbol == self.eos_id)
                history = np.concatenate([history[rows, origin], symbol[:, :, None]], axis=2)
                flat = (rows * beams + origin).reshape(-1)
                state = state_from_parts([p[:, flat] for p in state_parts(state)], self._is_lstm)
                ids = symbol.reshape(-1)
                if finished.all():
                    break
        finally:
            self.train(was_training)
        with np.errstate(invalid="ignore"):
            scores = totals / np.maximum(lengths, 1) ** float(length_penalty)
        scores = np.where(np.isfinite(totals), scores, -np.inf)
        choice = scores.argmax(axis=1)                                                   # ties: the first beam
        chosen = history[np.arange(batch), choice]
        return self._trim(chosen), totals[np.arange(batch), choice]

    def _trim(self, columns) -> list[np.ndarray]:
        """Rows of ids -> each row up to its first ``<eos>`` (padding after it dropped)."""
        sequences = []
        for row in np.asarray(columns, dtype=np.int64):
            stop = np.flatnonzero(row == self.eos_id)
            sequences.append(row[:stop[0]] if stop.size else row[row != self.pad_id])
        return sequences

    def translate(self, texts, beam_size: int = 1, max_length: int | None = None, length_penalty: float = 0.6,
                  batch_size: int = 256) -> list[str]:
        """Texts -> their translations, with the model's vocabularies (unknown symbols read as ``<unk>``;
        an empty text reads as one ``<unk>``). ``beam_size=1``: greedy search."""
        if self.source_vocabulary is None or self.target_vocabulary is None:
            raise TypeError("translate needs vocabularies: build Seq2Seq(source_vocabulary, target_vocabulary, ...)")
        outputs = []
        unk = getattr(self.source_vocabulary, "unk_id", self.pad_id)
        for start in range(0, len(texts), batch_size):
            encoded = [self.source_vocabulary.encode(text) for text in texts[start:start + batch_size]]
            encoded = [ids if len(ids) else np.asarray([unk]) for ids in encoded]
            lengths = np.asarray([len(ids) for ids in encoded], dtype=np.int64)
            source = np.full((int(lengths.max()), len(encoded)), self.pad_id, dtype=np.int64)   # (S, N)
            for column, ids in enumerate(encoded):
                source[:len(ids), column] = ids
            if beam_size == 1:
                sequences, _ = self.greedy_search(source, lengths, max_length)
            else:
                sequences, _ = self.beam_search(source, lengths, beam_size, max_length, length_penalty)
            outputs.extend(self.target_vocabulary.decode(ids) for ids in sequences)
        return outputs
