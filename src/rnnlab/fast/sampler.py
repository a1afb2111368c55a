"""One stream of :meth:`CharRNN.generate` as one compiled loop: step the whole stack, decode, draw.

The NumPy path (:meth:`CharRNN.lean_step` + :func:`sample_from_logits`) spends most of a character's
time in Python glue and small NumPy calls. Here a chunk of characters is one numba call that, for each
character, does (``G`` = gates per layer: ``H``, ``3H`` or ``4H``)::

    x      = table[id]                        # layer 0: embedding.weight @ W_ih_l0.T + b_ih_l0, (V, G)
    for each layer k:
        hg = W_hh_lk @ h_k                     # (G,)
        h_k (and c_k) = cell(x, hg, b_hh_lk)   # the training path's compiled row update (cell_steps)
        x  = W_ih_l(k+1) @ h_k + b_ih_l(k+1)   # next layer's input projection
    logits = decoder.weight @ h_top + decoder.bias
    id     = draw(logits / temperature, top_k, top_p, uniform) or argmax(logits) when greedy

into buffers made once (no allocation per character, except ``top_p``'s ordering of the ``V`` scores).
The cell update is :mod:`rnnlab.fast.cell_steps`' row function, the one the training kernels run.

**Randomness.** The draw is the inverse CDF of the same float64 distribution :func:`sample_from_logits`
builds (temperature, ``top_k`` ties kept, ``top_p`` with the most likely character always kept):
the first index whose cumulative probability exceeds ``u * total``. The uniforms ``u`` come from the
generator the NumPy path uses (rnnlab's global one, or ``default_rng(seed)``), one float64 per
character, drawn a chunk at a time with ``Generator.random(out=...)``: the same doubles in the same
order as the NumPy path's one ``random((1, 1))`` per character. So a seed gives the same text, and the
NumPy path's text too (only a logit rounded differently right at a CDF boundary could change a
character; the tests compare both paths). The one difference: a consumer that stops reading early
leaves the generator up to ``CHUNK - 1`` draws further on. Greedy decoding draws nothing.

**Matrix-vector products.** Each product is a loop of row dot products (``fastmath`` reassociation, so
LLVM vectorises the sums), single-threaded. Large layers (``G * H >= BLAS_MIN_WEIGHTS``, e.g. 2 x 512)
instead step in Python with BLAS's threaded ``sgemv`` (``np.dot(..., out=)``) and the same compiled cell
update and draw: a character of LSTM 2 x 512 streams 12.6 MB of weights and is bound by memory
bandwidth (one core reads ~28 GB/s here, two ~55 GB/s), so two threads nearly halve it, and at
~0.2 ms a character the Python loop costs little. (numba's own threads, ``prange``, were as fast but
a cached kernel reaching them crashed a fresh process once (numba issues #8578, #9938), so they are
not used.)

Used by :meth:`CharRNN.generate` for one stream when the compiled path is on (float32,
:func:`rnnlab.fast.enabled`); see :func:`rnnlab.models.charrnn.use_compiled_sampling`.
"""
from __future__ import annotations

import numpy as np

from . import record
from .cell_steps import gru_row, lstm_activation_constants, lstm_row, rnn_row
from .jit import dot_products, exact, kernel

# Rows x columns of W_hh from which the products go to BLAS (threaded sgemv) instead of the compiled
# single-thread loop (measured on the 2-core benchmark VM: LSTM 1 x 128 (512 x 128) is 1.3x faster
# compiled, LSTM 2 x 512 (2048 x 512) 1.8x faster on BLAS's two threads: it is bound by memory bandwidth).
BLAS_MIN_WEIGHTS = 1024 * 1024
# Characters per compiled call: uniforms are drawn this many at a time.
CHUNK = 64

_CELL_CODES = {"rnn": 0, "rnn_relu": 1, "lstm": 2, "gru": 3}


@dot_products   # reassociation: vectorised dot products (the order of each sum changes)
def _matvec_add(weight, vector, bias, out):
    """out = weight @ vector + bias, one dot product per row."""
    rows, cols = weight.shape
    for g in range(rows):
        row = weight[g]
        acc = np.float32(0.0)
        for j in range(cols):
            acc += row[j] * vector[j]
        out[g] = acc + bias[g]


@exact   # float64 and no fast-math: NumPy's rounding
def _draw(logits, temperature, top_k, top_p, greedy, uniform, probs, scratch):
    """One id from logits (V,) float32, exactly as sample_from_logits' float64 inverse CDF given u."""
    vocab = logits.shape[0]
    if greedy:
        return np.argmax(logits)
    best = -np.inf
    for v in range(vocab):
        probs[v] = np.float64(logits[v]) / temperature
        if probs[v] > best:
            best = probs[v]
    if top_k > 0 and top_k < vocab:
        scratch[:] = probs
        scratch.sort()
        kth_best = scratch[vocab - top_k]
        best = -np.inf
        for v in range(vocab):
            if probs[v] < kth_best:
                probs[v] = -np.inf
            elif probs[v] > best:
                best = probs[v]
    total = 0.0
    for v in range(vocab):
        probs[v] = np.exp(probs[v] - best)
        total += probs[v]
    for v in range(vocab):
        probs[v] /= total
    if top_p < 1.0:
        order = np.argsort(-probs, kind="mergesort")     # stable, as the NumPy path
        mass_before = 0.0
        for rank in range(vocab):
            v = order[rank]
            p = probs[v]
            if not (mass_before + p) - p < top_p:         # same rounding as cumsum - sorted < top_p
                probs[v] = 0.0
            mass_before += p
        total = 0.0
        for v in range(vocab):
            total += probs[v]
        for v in range(vocab):
            probs[v] /= total
    cumulative = 0.0
    for v in range(vocab):
        cumulative += probs[v]
        scratch[v] = cumulative
    target = uniform * scratch[vocab - 1]
    count = 0
    for v in range(vocab):
        if scratch[v] <= target:
            count += 1
    return min(count, vocab - 1)


@kernel
def _cell_update(cell, x, hg, bias_hh, scale, offset, h_k, c_k, h_new, c_new, hidden_n):
    """One layer's new state, in place, from x = W_ih @ input + b_ih and hg = W_hh @ h_k: the row
    update of the training kernels (h_new, c_new, hidden_n are scratch)."""
    if cell == 2:                                  # LSTM: i, f, g, o
        lstm_row(x, hg, bias_hh, scale, offset, c_k, c_new, h_new)
        c_k[:] = c_new
    elif cell == 3:                                # GRU: r, z, n
        gru_row(hg, x, bias_hh, h_k, hidden_n, h_new)
    else:                                          # RNN tanh (0) or relu (1)
        rnn_row(hg, x, bias_hh, cell == 1, h_new)
    h_k[:] = h_new


@dot_products
def _step(token, cell, table, w_ih, b_ih, w_hh, b_hh, scale, offset, dec_w, dec_b, h, c, x, hg, zeros, scratch_h,
          scratch_c, hidden_n, logits):
    """Advance the stack by one character; logits (V,) of the next one are written in place."""
    num_layers = w_hh.shape[0]
    x[:] = table[token]
    for k in range(num_layers):
        if k:
            _matvec_add(w_ih[k - 1], h[k - 1], b_ih[k], x)
        _matvec_add(w_hh[k], h[k], zeros, hg)
        _cell_update(cell, x, hg, b_hh[k], scale, offset, h[k], c[k], scratch_h, scratch_c, hidden_n)
    _matvec_add(dec_w, h[num_layers - 1], dec_b, logits)


@dot_products
def _generate(count, step_after_last, cell, table, w_ih, b_ih, w_hh, b_hh, scale, offset, dec_w, dec_b, h, c, x,
              hg, zeros, scratch_h, scratch_c, hidden_n, logits, temperature, top_k, top_p, greedy, uniforms, probs,
              scratch, out):
    """Draw ``count`` ids from ``logits`` onward, stepping the model after each (and after the last one
    when ``step_after_last``); ids go to ``out``, state and logits are updated in place."""
    for i in range(count):
        token = _draw(logits, temperature, top_k, top_p, greedy, uniforms[i], probs, scratch)
        out[i] = token
        if i + 1 < count or step_after_last:
            _step(token, cell, table, w_ih, b_ih, w_hh, b_hh, scale, offset, dec_w, dec_b, h, c, x, hg, zeros,
                  scratch_h, scratch_c, hidden_n, logits)


def draw_index(logits, temperature=1.0, top_k=None, top_p=None, greedy=False, uniform=0.5) -> int:
    """The compiled draw for one row of logits ``(V,)`` given the uniform ``u`` in [0, 1) (for tests)."""
    record("draw")
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    vocab = logits.shape[0]
    return int(_draw(logits, float(temperature), int(top_k or 0), 1.0 if top_p is None else float(top_p),
                    bool(greedy), float(uniform), np.empty(vocab), np.empty(vocab)))


class CompiledSampler:
    """One stream of a :class:`CharRNN`, stepped and sampled in compiled code.

    The weights are copied when this is built (build a new one after changing them); the state starts at
    ``state`` (the model's structure, batch 1; ``None`` = zeros) and ``logits`` ``(1, V)`` or ``(V,)``.

    >>> import rnnlab
    >>> import numpy as np
    >>> from rnnlab.models import CharRNN
    >>> _ = rnnlab.manual_seed(0)
    >>> model = CharRNN(5, hidden_size=8, num_layers=2, cell="lstm")
    >>> sampler = CompiledSampler(model)
    >>> logits = sampler.step(3)                      # feed id 3, get the next character's logits
    >>> bool(np.allclose(logits, model.step([3])[0][0], atol=1e-5))
    True
    """

    def __init__(self, model, state=None, logits=None, blas: bool | None = None):
        rnn, layers, f32 = model.rnn, model.num_layers, np.float32
        self.cell_code = _CELL_CODES[model.cell]
        weights = [[getattr(rnn, f"{name}_l{k}").data.astype(f32) for name in
                    ("weight_ih", "bias_ih", "weight_hh", "bias_hh")] for k in range(layers)]
        hidden = model.hidden_size
        gates = weights[0][2].shape[0]
        self.table = np.ascontiguousarray(model.embedding.weight.data.astype(f32) @ weights[0][0].T + weights[0][1])
        self.w_ih = (np.ascontiguousarray(np.stack([w[0] for w in weights[1:]])) if layers > 1
                     else np.zeros((1, gates, hidden), f32))
        self.b_ih = np.ascontiguousarray(np.stack([w[1] for w in weights]))      # row 0 is in the table
        self.w_hh = np.ascontiguousarray(np.stack([w[2] for w in weights]))
        self.b_hh = np.ascontiguousarray(np.stack([w[3] for w in weights]))
        self.scale, self.offset = lstm_activation_constants(hidden) if model.cell == "lstm" else (self.b_hh[0],) * 2
        self.dec_w = np.ascontiguousarray(model.decoder.weight.data.astype(f32))
        self.dec_b = np.ascontiguousarray(model.decoder.bias.data.astype(f32))
        self.vocab_size = self.dec_w.shape[0]
        self.is_lstm = model.cell == "lstm"
        self.h = np.zeros((layers, hidden), f32)
        self.c = np.zeros((layers, hidden), f32)
        if state is not None:
            h_state, c_state = state if self.is_lstm else (state, None)
            self.h[:] = np.asarray(h_state).reshape(layers, hidden)
            if c_state is not None:
                self.c[:] = np.asarray(c_state).reshape(layers, hidden)
        self.logits = np.zeros(self.vocab_size, f32)
        if logits is not None:
            self.logits[:] = np.asarray(logits).reshape(-1)
        self.x, self.hg, self.zeros = np.empty(gates, f32), np.empty(gates, f32), np.zeros(gates, f32)
        self.scratch_h, self.scratch_c, self.hidden_n = (np.empty(hidden, f32) for _ in range(3))
        self.probs, self.scratch = np.empty(self.vocab_size), np.empty(self.vocab_size)
        self.uniforms = np.zeros(CHUNK)
        self.ids = np.zeros(CHUNK, np.int64)
        self.blas = gates * hidden >= BLAS_MIN_WEIGHTS if blas is None else bool(blas)

    def _arrays(self):
        return (self.cell_code, self.table, self.w_ih, self.b_ih, self.w_hh, self.b_hh, self.scale, self.offset,
                self.dec_w, self.dec_b, self.h, self.c, self.x, self.hg, self.zeros, self.scratch_h, self.scratch_c,
                self.hidden_n, self.logits)

    def step(self, token: int) -> np.ndarray:
        """Feed one id; returns (a copy of) the next character's logits ``(V,)``."""
        if not 0 <= int(token) < self.vocab_size:
            raise ValueError(f"id {token} is out of range for a vocabulary of {self.vocab_size}")
        record("sampler")
        if self.blas:
            self._blas_step(int(token))
        else:
            _step(int(token), *self._arrays())
        return self.logits.copy()

    def _blas_step(self, token: int) -> None:
        """:func:`_step` with BLAS's threaded products (np.dot with out=), for large layers."""
        x, hg, h, c = self.x, self.hg, self.h, self.c
        x[:] = self.table[token]
        for k in range(self.w_hh.shape[0]):
            if k:
                np.dot(self.w_ih[k - 1], h[k - 1], out=x)
                x += self.b_ih[k]
            np.dot(self.w_hh[k], h[k], out=hg)
            _cell_update(self.cell_code, x, hg, self.b_hh[k], self.scale, self.offset, h[k], c[k], self.scratch_h,
                         self.scratch_c, self.hidden_n)
        np.dot(self.dec_w, h[-1], out=self.logits)
        self.logits += self.dec_b

    def state(self):
        """The state in the model's structure, batch 1: ``h`` ``(num_layers, 1, H)`` or ``(h, c)``."""
        h = self.h[:, None, :].copy()
        return (h, self.c[:, None, :].copy()) if self.is_lstm else h

    def generate_ids(self, length: int, rng: np.random.Generator | None, temperature: float = 1.0,
                     top_k: int | None = None, top_p: float | None = None, greedy: bool = False):
        """Yield ``length`` ids, drawn from the current logits onward, ``CHUNK`` per compiled call.

        ``rng`` supplies one float64 uniform per character (not used when ``greedy``)."""
        record("sampler")
        top_k = int(top_k or 0)
        top_p = 1.0 if top_p is None else float(top_p)
        done = 0
        while done < length:
            count = min(CHUNK, length - done)
            if not greedy:
                rng.random(out=self.uniforms[:count])
            if self.blas:      # a character takes ~0.2 ms here: the Python loop costs little
                for i in range(count):
                    token = int(_draw(self.logits, float(temperature), top_k, top_p, bool(greedy),
                                      self.uniforms[i], self.probs, self.scratch))
                    yield token
                    if done + i + 1 < length:
                        self._blas_step(token)
                done += count
                continue
            _generate(count, done + count < length, *self._arrays(), float(temperature), top_k, top_p,
                      bool(greedy), self.uniforms, self.probs, self.scratch, self.ids)
            done += count
            yield from self.ids[:count].tolist()
