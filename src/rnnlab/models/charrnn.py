"""``CharRNN``: a character-level language model, Embedding -> RNN/LSTM/GRU stack -> Linear.

The model reads ids time-major, ``(L, N)``, and predicts the next character at every step::

    e_t      = embedding.weight[id_t]                       # (L, N, E)
    h_t      = rnn(e_t, h_{t-1})  (num_layers, dropout between layers)   # (L, N, H)
    logits_t = h_t @ decoder.weight.T + decoder.bias          # (L, N, V)

Parameter names are PyTorch's: ``embedding.weight``, ``rnn.weight_ih_l0`` ..., ``decoder.weight``,
``decoder.bias``. So a saved ``model.safetensors`` loads into PyTorch as it is: the ``rnn.`` part into a
``torch.nn.LSTM`` after stripping the prefix::

    tensors = safetensors.torch.load_file("runs/x/model.safetensors")
    lstm.load_state_dict({k[len("rnn."):]: v for k, v in tensors.items() if k.startswith("rnn.")})

Generation is streaming: :meth:`CharRNN.generate` reads the prime in one pass, then yields one character
at a time, carrying the hidden state, under :func:`rnnlab.no_grad`.

>>> import rnnlab
>>> from rnnlab.models import CharRNN
>>> _ = rnnlab.manual_seed(0)
>>> model = CharRNN(5, hidden_size=8, num_layers=2, cell="gru")
>>> import numpy as np
>>> logits, state = model(np.zeros((7, 3), dtype=np.int64))   # ids (L, N)
>>> logits.shape, state.shape
((7, 3, 5), (2, 3, 8))
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .. import backend, fast
from ..nn import GRU, LSTM, RNN, Embedding, Linear, Module
from .stack import CELLS


def default_embedding_size(hidden_size: int) -> int:
    """Characters need few dimensions: the hidden size, capped at 128 (keeps layer 0 cheap)."""
    return min(int(hidden_size), 128)


class CharRNN(Module):
    r"""Embedding -> recurrent stack -> Linear: a next-character model.

    Args:
        vocab: the vocabulary size (an int), or a vocabulary object (``len()``, ``encode(text)``,
            ``decode_one(id)``, as :class:`rnnlab.data.Vocabulary`); :meth:`generate` needs the latter.
        hidden_size: ``H``, features of the recurrent state. Default: 256
        num_layers: recurrent layers stacked. Default: 2
        cell: ``'rnn'`` (tanh), ``'rnn_relu'``, ``'lstm'`` or ``'gru'``. Default: ``'lstm'``
        embedding_size: ``E``, features of a character's embedding. Default: ``min(H, 128)``
        dropout: dropout on each recurrent layer's output except the last (training mode only). Default: 0
        dtype: ``float32`` (default) or ``float64``.

    Shapes (``L`` sequence length, ``N`` batch, ``V`` vocabulary size):
        - ids: ``(L, N)`` integers in ``[0, V)``
        - state: ``h`` of shape ``(num_layers, N, H)``, for ``'lstm'`` a tuple ``(h, c)``; ``None`` = zeros
        - logits: ``(L, N, V)``

    Attributes:
        embedding (Embedding): ``weight`` ``(V, E)``
        rnn (RNN | LSTM | GRU): time-major, PyTorch's parameter names
        decoder (Linear): ``weight`` ``(V, H)``, ``bias`` ``(V,)``
    """

    def __init__(self, vocab, hidden_size: int = 256, num_layers: int = 2, cell: str = "lstm",
                 embedding_size: int | None = None, dropout: float = 0.0, dtype=None):
        super().__init__()
        if isinstance(vocab, (int, np.integer)):
            vocab_size, vocabulary = int(vocab), None
        else:
            vocab_size, vocabulary = len(vocab), vocab
        if vocab_size <= 0:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {cell!r}")
        if embedding_size is None:
            embedding_size = default_embedding_size(hidden_size)
        dtype = backend.resolve_dtype(dtype)
        object.__setattr__(self, "vocabulary", vocabulary)  # plain attribute: not a parameter or module
        self.vocab_size = vocab_size
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.cell = cell
        self.embedding_size = int(embedding_size)
        self.dropout = float(dropout)
        self.dtype = dtype

        self.embedding = Embedding(vocab_size, self.embedding_size, dtype=dtype)
        if cell == "lstm":
            self.rnn = LSTM(self.embedding_size, self.hidden_size, self.num_layers, dropout=self.dropout, dtype=dtype)
        elif cell == "gru":
            self.rnn = GRU(self.embedding_size, self.hidden_size, self.num_layers, dropout=self.dropout, dtype=dtype)
        else:
            nonlinearity = "relu" if cell == "rnn_relu" else "tanh"
            self.rnn = RNN(self.embedding_size, self.hidden_size, self.num_layers, nonlinearity=nonlinearity,
                           dropout=self.dropout, dtype=dtype)
        self.decoder = Linear(self.hidden_size, vocab_size, dtype=dtype)

    # --- configuration ------------------------------------------------------------------------
    def config(self) -> dict:
        """The constructor's arguments as a JSON-able dict (kept in a run's ``config.json``)."""
        return {"vocab_size": self.vocab_size, "cell": self.cell, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "embedding_size": self.embedding_size,
                "dropout": self.dropout, "dtype": str(np.dtype(self.dtype))}

    @classmethod
    def from_config(cls, config: dict, vocabulary=None) -> "CharRNN":
        """Rebuild a model from :meth:`config` (weights are loaded separately)."""
        vocab = vocabulary if vocabulary is not None else int(config["vocab_size"])
        if vocabulary is not None and len(vocabulary) != int(config["vocab_size"]):
            raise ValueError(f"vocabulary has {len(vocabulary)} symbols but the config says {config['vocab_size']}")
        return cls(vocab, hidden_size=config["hidden_size"], num_layers=config["num_layers"], cell=config["cell"],
                   embedding_size=config["embedding_size"], dropout=config.get("dropout", 0.0),
                   dtype=config.get("dtype"))

    def save(self, run_dir, overwrite: bool = False) -> None:
        """Write a run directory that ``rnnlab sample``, ``rnnlab eval`` and :func:`rnnlab.load` open:
        ``config.json`` (model settings, vocabulary) and the weights as both the latest and the best.

        Needs the vocabulary object (not just its size). RnnlabError if ``run_dir`` already holds a run,
        unless ``overwrite``."""
        from ..training.rundir import save_model

        if self.vocabulary is None or not hasattr(self.vocabulary, "to_config"):
            raise TypeError("save needs a vocabulary: build CharRNN(vocabulary, ...) or set model.vocabulary")
        save_model(run_dir, {"kind": "charlm", "model": self.config(), "vocabulary": self.vocabulary.to_config()},
                   self.state_dict(), overwrite)

    @classmethod
    def load(cls, run_dir, checkpoint="best") -> "CharRNN":
        """The model in a run directory (``rnnlab train``'s or :meth:`save`'s), vocabulary attached, in
        evaluation mode, with the ``checkpoint`` weights ("best" or "latest")."""
        from ..training.rundir import load_run

        return load_run(run_dir, "charlm", checkpoint).model

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, cell={self.cell!r}, hidden_size={self.hidden_size}, "
                f"num_layers={self.num_layers}, embedding_size={self.embedding_size}, dropout={self.dropout}")

    # --- state --------------------------------------------------------------------------------
    def init_state(self, batch_size: int):
        """Zeros: ``h`` ``(num_layers, N, H)``, or ``(h, c)`` for an LSTM."""
        h = backend.xp.zeros((self.num_layers, batch_size, self.hidden_size), dtype=self.dtype)
        return (h, h.copy()) if self.cell == "lstm" else h

    # --- forward beside backward --------------------------------------------------------------
    def forward(self, ids, state=None):
        """ids ``(L, N)`` -> logits ``(L, N, V)``, final state (same structure as ``state``)."""
        ids = backend.xp.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"CharRNN: expected ids of shape (L, N), got {ids.ndim}D input of shape "
                             f"{tuple(ids.shape)}")
        # embedding then layer 0's input projection, as a lookup in a (V, G) table of projected embeddings
        x_proj = self.embedding.forward_projected(ids, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0)  # (L, N, G)
        output, state = self.rnn.forward_projected(x_proj, state)   # (L, N, H)
        logits = self.decoder(output)                # (L, N, V)
        return logits, state

    def backward(self, grad_logits, grad_state=None):
        """grad_logits ``(L, N, V)`` -> gradients accumulated into every parameter's ``.grad``.

        Returns the gradient of the initial state (truncated BPTT ignores it).
        """
        grad_output = self.decoder.backward(grad_logits)               # (L, N, H)
        grad_x_proj, grad_state0 = self.rnn.backward(grad_output, grad_state)
        self.embedding.backward_projected(grad_x_proj)
        return grad_state0

    # --- generation ---------------------------------------------------------------------------
    def step(self, ids, state=None):
        """One character per stream: ids ``(N,)`` -> logits ``(N, V)``, next state. No caches kept."""
        with backend.no_grad():
            logits, state = self.forward(backend.xp.asarray(ids).reshape(1, -1), state)
        return logits[0], state

    def lean_step(self):
        """A per-character step for generation, straight on the recurrence kernels, with no layer overhead.

        Layer 0's input projection of every character, ``embedding.weight @ W_ih_l0.T + b_ih_l0`` (V, G), is
        computed once, so reading a character is a row lookup; each layer is then one call of the kernel
        the layers use (:func:`rnnlab.nn.recurrent.cell_math`) with ``L = 1``. Dropout is off (as in
        evaluation mode). The weights are read when this is called: build a new step after changing them.

        Returns ``step(ids (N,), state) -> (logits (N, V), state)`` with :meth:`forward`'s state structure;
        ``state`` may be ``None`` (zeros).
        """
        from ..nn.recurrent import cell_math

        math, rnn, num_layers = cell_math(np.dtype(self.dtype)), self.rnn, self.num_layers
        layers = [tuple(getattr(rnn, f"{name}_l{k}").data for name in ("weight_ih", "bias_ih", "weight_hh", "bias_hh"))
                  for k in range(num_layers)]
        table = self.embedding.weight.data @ layers[0][0].T + layers[0][1]      # (V, G)
        decoder_weight_t = self.decoder.weight.data.T.copy()                      # (H, V)
        decoder_bias = self.decoder.bias.data
        is_lstm = self.cell == "lstm"
        nonlinearity = "relu" if self.cell == "rnn_relu" else "tanh"

        def step(ids, state=None):
            ids = np.asarray(ids, dtype=np.intp).reshape(-1)
            if state is None:
                state = self.init_state(len(ids))
            h_all, c_all = state if is_lstm else (state, None)
            new_h, new_c = [], []
            with backend.no_grad():
                x_proj = table[ids]                                               # (N, G)
                for k, (weight_ih, bias_ih, weight_hh, bias_hh) in enumerate(layers):
                    if k:
                        x_proj = output @ weight_ih.T + bias_ih
                    if is_lstm:
                        out, h, c, _ = math.lstm_forward(x_proj[None], h_all[k], c_all[k], None, None, weight_hh,
                                                         bias_hh)
                        new_c.append(c)
                    elif self.cell == "gru":
                        out, h, _ = math.gru_forward(x_proj[None], h_all[k], None, None, weight_hh, bias_hh)
                    else:
                        out, h, _ = math.rnn_forward(x_proj[None], h_all[k], None, None, weight_hh, bias_hh,
                                                     nonlinearity)
                    output = out[0]                                               # (N, H)
                    new_h.append(h)
            logits = output @ decoder_weight_t + decoder_bias                     # (N, V)
            h_n = np.stack(new_h)
            return logits, ((h_n, np.stack(new_c)) if is_lstm else h_n)

        return step

    def _prime(self, prime, num_streams: int):
        """Read the prime in one pass; returns the last step's logits (num_streams, V) and the state."""
        if self.vocabulary is None:
            raise TypeError("generate needs a vocabulary: build CharRNN(vocabulary, ...) or set model.vocabulary")
        ids = self.vocabulary.encode(prime) if isinstance(prime, (str, bytes)) else np.asarray(prime)
        if len(ids) == 0:
            raise ValueError("prime must hold at least one character")
        was_training = self.training
        self.eval()
        try:
            with backend.no_grad():
                logits, state = self.forward(np.asarray(ids, dtype=np.intp).reshape(-1, 1))
        finally:
            self.train(was_training)
        logits = np.repeat(logits[-1], num_streams, axis=0)
        if isinstance(state, tuple):
            state = tuple(np.repeat(s, num_streams, axis=1) for s in state)
        else:
            state = np.repeat(state, num_streams, axis=1)
        return logits, state

    def generate(self, prime, length: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, greedy: bool = False, seed: int | None = None) -> Iterator[str]:
        """Yield ``length`` characters one at a time, continuing ``prime`` (read in one pass).

        Args:
            prime: text to start from (at least one character, all in the vocabulary).
            length: how many characters to generate.
            temperature: divides the logits; < 1 sharper, > 1 flatter. Must be > 0.
            top_k: sample only among the ``k`` most likely characters.
            top_p: nucleus sampling: only among the most likely characters whose probabilities add up to ``p``.
            greedy: always take the most likely character (ignores temperature, top_k, top_p).
            seed: draw from ``numpy.random.default_rng(seed)`` instead of rnnlab's global generator
                (so a seeded sample does not disturb a training run's random stream).

        Generation runs as in evaluation mode (no dropout) on :meth:`lean_step`; the model's mode is unchanged.
        On the fast path (float32, numba) the stream is stepped and drawn in compiled code instead
        (:mod:`rnnlab.fast.sampler`), drawing the same uniforms: a seed gives the same text on both.
        """
        for chars in self.generate_batch(prime, length, 1, temperature=temperature, top_k=top_k, top_p=top_p,
                                         greedy=greedy, seed=seed):
            yield chars[0]

    def generate_batch(self, prime, length: int, num_samples: int, temperature: float = 1.0,
                       top_k: int | None = None, top_p: float | None = None, greedy: bool = False,
                       seed: int | None = None) -> Iterator[list[str]]:
        """Like :meth:`generate` for ``num_samples`` independent streams at once: yields a list per step."""
        check_sampling_args(temperature, top_k, top_p)
        if length < 0:
            raise ValueError(f"length must be non-negative, got {length}")
        rng = backend.generator() if seed is None else np.random.default_rng(seed)
        compiled = use_compiled_sampling(self, num_samples, length)
        if compiled or fast.loaded("recurrent"):
            logits, state = self._prime(prime, num_samples)
        else:
            with fast.use(False):  # a short sample on NumPy alone: no numba import to pay
                logits, state = self._prime(prime, num_samples)
        if compiled:
            from ..fast.sampler import CompiledSampler   # imports numba: only on the compiled path
            for token in CompiledSampler(self, state, logits).generate_ids(length, rng, temperature, top_k, top_p,
                                                                            greedy):
                yield [self.vocabulary.decode_one(token)]
            return
        with fast.use(fast.enabled() and fast.loaded("recurrent")):
            step = self.lean_step()   # picks its cell math now, for the whole stream
        for position in range(length):
            ids = sample_from_logits(logits, temperature, top_k, top_p, greedy, rng)
            yield [self.vocabulary.decode_one(int(i)) for i in ids]
            if position + 1 < length:
                logits, state = step(ids, state)

    def sample(self, prime, length: int, **kwargs) -> str:
        """The whole of :meth:`generate` as one string."""
        return "".join(self.generate(prime, length, **kwargs))


# The compiled sampler's one-off cost in a fresh process (numba's import, the cached kernels loaded:
# ~1 s) is paid back when the stream is long enough: characters x (recurrent + decoder weights + a fixed
# per-character overhead in weight units) of at least this much. Measured with `rnnlab sample`: LSTM
# 1x256 breaks even near 8,000 characters (NumPy ~0.2 ms a character, compiled ~0.03 ms).
COMPILED_SAMPLING_MIN_WORK = 5.0e9
_PER_CHARACTER_OVERHEAD = 200_000


def use_compiled_sampling(model: CharRNN, num_samples: int, length: int | None = None) -> bool:
    """Generate in compiled code (:mod:`rnnlab.fast.sampler`; same uniforms from the same generator, same
    inverse CDF: a seed gives the NumPy path's text)? For one float32 stream on the compiled path, when
    the sampler is already loaded in this process, or ``length`` is unknown (None), or the stream is long
    enough to pay for loading it (:data:`COMPILED_SAMPLING_MIN_WORK`)."""
    if num_samples != 1 or np.dtype(model.dtype) != np.float32 or not fast.enabled():
        return False
    if length is None or fast.loaded("sampler"):
        return True
    weights = sum(p.data.size for name, p in model.named_parameters() if not name.startswith("embedding"))
    return length * (weights + _PER_CHARACTER_OVERHEAD) >= COMPILED_SAMPLING_MIN_WORK


def check_sampling_args(temperature, top_k, top_p) -> None:
    """ValueError for settings that select nothing."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def sample_from_logits(logits, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                       greedy: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
    """Draw one id per row of ``logits`` ``(N, V)``; returns ``(N,)`` ints.

    >>> sample_from_logits(np.array([[0.0, 3.0, 1.0]]), greedy=True)
    array([1])
    >>> sample_from_logits(np.array([[0.0, 3.0, 1.0]]), top_k=1, rng=np.random.default_rng(0))
    array([1])
    """
    logits = np.asarray(logits, dtype=np.float64)
    if greedy:
        return logits.argmax(axis=-1)
    rng = backend.generator() if rng is None else rng
    scores = logits / temperature
    vocab_size = scores.shape[-1]
    if top_k is not None and top_k < vocab_size:
        kth_best = np.partition(scores, -top_k, axis=-1)[:, -top_k:].min(axis=-1, keepdims=True)
        scores = np.where(scores < kth_best, -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=-1, keepdims=True)
    if top_p is not None and top_p < 1:
        order = np.argsort(-probs, axis=-1, kind="stable")
        sorted_probs = np.take_along_axis(probs, order, axis=-1)
        # keep a character while the mass before it is still short of top_p (the first always stays)
        keep_sorted = (np.cumsum(sorted_probs, axis=-1) - sorted_probs) < top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum(axis=-1, keepdims=True)
    cumulative = np.cumsum(probs, axis=-1)
    draws = rng.random((probs.shape[0], 1)) * cumulative[:, -1:]
    return np.minimum((cumulative <= draws).sum(axis=-1), vocab_size - 1)
