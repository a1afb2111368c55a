"""``SequenceClassifier``: a recurrent stack reads a sequence, a Linear layer scores the classes.

The MNIST tutorial's model, generalised: each 28 x 28 image is a sequence of 28 rows of 28 pixels, an
RNN reads the rows, and a Linear layer turns the last output into 10 class scores::

    out, h_n = rnn(x, lengths=lengths)              # x (N, L, F) batch-first; out (N, L, D*H)
    features = pool(out, h_n)                        # (N, D*H)
    logits   = features @ classifier.weight.T + classifier.bias     # (N, C)

Two ways to pool the sequence into one vector:

- ``'last'`` (default): ``h_n`` of the top layer, i.e. the forward direction's state at each sequence's
  own last step, concatenated (with ``bidirectional``) with the reverse direction's state after it
  has read the whole sequence backwards (its output at step 0). Without ``lengths`` and with one
  direction this is ``out[:, -1]``, the tutorial's choice.
- ``'mean'``: the mean of ``out`` over each sequence's own valid steps, ``out[n, :lengths[n]].mean(0)``.

The backward pass is written by hand beside the forward: the pooled gradient goes back into the
top layer's ``grad_h_n`` (``'last'``) or is spread evenly over the valid steps of ``grad_out``
(``'mean'``), then through the recurrent stack's own backward. The input is data (images), so by
default the backward does not compute its gradient (``rnn.backward(..., input_grad=False)`` skips layer
0's ``g @ W_ih_l0``) and returns None; ``backward(grad_logits, input_grad=True)`` returns it.

Parameter names are PyTorch's (``rnn.weight_ih_l0`` ..., ``classifier.weight``), so the same weights
load into ``torch.nn.LSTM(..., batch_first=True)`` + ``torch.nn.Linear`` by name.

>>> import numpy as np, rnnlab
>>> from rnnlab.models import SequenceClassifier
>>> _ = rnnlab.manual_seed(0)
>>> model = SequenceClassifier(input_size=28, num_classes=10, hidden_size=16, cell="gru")
>>> logits = model(np.zeros((4, 28, 28), dtype=np.float32))    # 4 images, 28 rows of 28 pixels
>>> logits.shape
(4, 10)
>>> model.backward(np.ones_like(logits)) is None       # parameter gradients only
True
>>> model.classifier.weight.grad.shape
(10, 16)
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..nn import GRU, LSTM, RNN, Linear, Module
from .stack import CELLS

POOLS = ("last", "mean")
INITS = ("default", "identity")


class SequenceClassifier(Module):
    r"""Recurrent stack -> pooled sequence vector -> Linear: one class score vector per sequence.

    Args:
        input_size: ``F``, features per step (28 pixels per row for MNIST).
        num_classes: ``C``, number of classes.
        hidden_size: ``H``, features of the recurrent state. Default: 128
        num_layers: recurrent layers stacked. Default: 1
        cell: ``'rnn'`` (tanh), ``'rnn_relu'``, ``'lstm'`` or ``'gru'``. Default: ``'lstm'``
        bidirectional: read each sequence both ways (``D = 2``). Default: ``False``
        pool: ``'last'`` (the top layer's ``h_n``) or ``'mean'`` (mean output over valid steps).
            Default: ``'last'``
        dropout: dropout on each recurrent layer's output except the last (training mode only). Default: 0
        init: ``'default'`` (PyTorch's: uniform in :math:`\pm 1/\sqrt{H}`) or ``'identity'`` (IRNN,
            Le, Jaitly & Hinton 2015: every ``weight_hh`` = the identity, every bias 0, ``weight_ih`` as
            default; for ``'rnn'`` and ``'rnn_relu'`` only). ``'identity'`` is what makes a ReLU RNN
            train well; the recurrence starts by carrying the state unchanged. Default: ``'default'``
        dtype: ``float32`` (default) or ``float64``.

    Shapes (``N`` batch, ``L`` steps, ``D`` directions):
        - x: ``(N, L, F)``, batch first; an unbatched ``(L, F)`` gives logits ``(C,)``
        - lengths: ``None`` (all ``L`` steps valid) or ``N`` ints in ``[1, L]``; steps from
          ``lengths[n]`` on are padding and do not affect sequence ``n``'s logits
        - logits: ``(N, C)``

    Attributes:
        rnn (RNN | LSTM | GRU): ``batch_first=True``, PyTorch's parameter names
        classifier (Linear): ``weight`` ``(C, D*H)``, ``bias`` ``(C,)``
    """

    def __init__(self, input_size: int, num_classes: int, hidden_size: int = 128, num_layers: int = 1,
                 cell: str = "lstm", bidirectional: bool = False, pool: str = "last", dropout: float = 0.0,
                 init: str = "default", dtype=None):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {cell!r}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}; got {pool!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
        if init == "identity" and cell not in ("rnn", "rnn_relu"):
            raise ValueError(f"init='identity' is for cell 'rnn' or 'rnn_relu' (IRNN), not {cell!r}")
        for name, value in (("input_size", input_size), ("num_classes", num_classes),
                            ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if int(value) < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        dtype = backend.resolve_dtype(dtype)
        self.input_size = int(input_size)
        self.num_classes = int(num_classes)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.cell = cell
        self.bidirectional = bool(bidirectional)
        self.pool = pool
        self.dropout = float(dropout)
        self.init = init
        self.dtype = dtype
        self.num_directions = 2 if self.bidirectional else 1

        common = dict(batch_first=True, bidirectional=self.bidirectional, dropout=self.dropout, dtype=dtype)
        if cell == "lstm":
            self.rnn = LSTM(self.input_size, self.hidden_size, self.num_layers, **common)
        elif cell == "gru":
            self.rnn = GRU(self.input_size, self.hidden_size, self.num_layers, **common)
        else:
            nonlinearity = "relu" if cell == "rnn_relu" else "tanh"
            self.rnn = RNN(self.input_size, self.hidden_size, self.num_layers, nonlinearity=nonlinearity, **common)
        self.classifier = Linear(self.num_directions * self.hidden_size, self.num_classes, dtype=dtype)
        if init == "identity":
            self.identity_init_()
        self._cache = None

    def identity_init_(self) -> None:
        """IRNN initialisation: ``weight_hh_l*`` = I, ``bias_ih_l*`` = ``bias_hh_l*`` = 0 (in place)."""
        for name, param in self.rnn.named_parameters():
            if name.startswith("weight_hh"):
                param.data[...] = backend.xp.eye(param.shape[0], param.shape[1], dtype=param.dtype)
            elif name.startswith("bias"):
                param.data[...] = 0

    # --- configuration ------------------------------------------------------------------------
    def config(self) -> dict:
        """The constructor's arguments as a JSON-able dict (kept in a run's ``config.json``)."""
        return {"input_size": self.input_size, "num_classes": self.num_classes, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "cell": self.cell, "bidirectional": self.bidirectional,
                "pool": self.pool, "dropout": self.dropout, "init": self.init, "dtype": str(np.dtype(self.dtype))}

    @classmethod
    def from_config(cls, config: dict) -> "SequenceClassifier":
        """Rebuild a model from :meth:`config` (weights are loaded separately)."""
        return cls(config["input_size"], config["num_classes"], hidden_size=config["hidden_size"],
                   num_layers=config["num_layers"], cell=config["cell"],
                   bidirectional=config.get("bidirectional", False), pool=config.get("pool", "last"),
                   dropout=config.get("dropout", 0.0), init=config.get("init", "default"), dtype=config.get("dtype"))

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, num_classes={self.num_classes}, cell={self.cell!r}, "
                f"hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, pool={self.pool!r}")

    # --- forward beside backward --------------------------------------------------------------
    def _check_lengths(self, lengths, batch: int, steps: int):
        if lengths is None:
            return None
        lengths = np.asarray(lengths)
        if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
            raise ValueError(f"lengths must be {batch} integers (one per sequence), got shape "
                             f"{tuple(lengths.shape)} of {lengths.dtype}")
        if lengths.min() < 1 or lengths.max() > steps:
            raise ValueError(f"lengths must be in [1, {steps}] (the input has {steps} steps), "
                             f"got values from {lengths.min()} to {lengths.max()}")
        return lengths.astype(np.int64)

    def forward(self, x, lengths=None):
        """x ``(N, L, F)`` (or unbatched ``(L, F)``) -> logits ``(N, C)`` (or ``(C,)``)."""
        xp = backend.xp
        x = xp.asarray(x)
        unbatched = x.ndim == 2
        if unbatched:
            x = x[None]
            if lengths is not None:
                lengths = np.asarray(lengths).reshape(1)
        if x.ndim != 3:
            raise ValueError(f"SequenceClassifier: expected input of shape (N, L, F) or (L, F), got {x.ndim}D "
                             f"input of shape {tuple(x.shape)}")
        batch, steps, _ = x.shape
        lengths = self._check_lengths(lengths, batch, steps)
        out, state = self.rnn(x, None, lengths=lengths)                # out (N, L, D*H)
        h_n = state[0] if isinstance(state, tuple) else state           # (num_layers*D, N, H)
        if self.pool == "last":
            top = h_n[-self.num_directions:]                            # (D, N, H): forward, then reverse
            features = xp.concatenate(list(top), axis=-1)               # (N, D*H)
            step_weights = None
        else:
            if lengths is None:
                step_weights = xp.full((batch, steps, 1), 1.0 / steps, dtype=out.dtype)
            else:
                valid = (np.arange(steps)[None, :] < lengths[:, None])  # (N, L)
                step_weights = xp.asarray((valid / lengths[:, None])[..., None], dtype=out.dtype)
            features = (out * step_weights).sum(axis=1)                 # (N, D*H)
        logits = self.classifier(features)                              # (N, C)
        self._cache = (h_n.shape, step_weights, unbatched) if backend.is_grad_enabled() else None
        return logits[0] if unbatched else logits

    def backward(self, grad_logits, *, input_grad: bool = False):
        """grad_logits ``(N, C)`` -> None (default) or, with ``input_grad=True``, the gradient of the input
        ``(N, L, F)`` (``(L, F)`` unbatched); parameter gradients accumulate, the same either way."""
        xp = backend.xp
        if self._cache is None:
            raise RuntimeError("SequenceClassifier.backward: no forward to go back through "
                               "(call forward first, outside no_grad; each forward allows one backward)")
        h_n_shape, step_weights, unbatched = self._cache
        self._cache = None
        grad_logits = xp.asarray(grad_logits)
        if unbatched:
            grad_logits = grad_logits[None]
        grad_features = self.classifier.backward(grad_logits)           # (N, D*H)
        if self.pool == "last":
            grad_h_n = xp.zeros(h_n_shape, dtype=grad_features.dtype)
            hidden = self.hidden_size
            for direction in range(self.num_directions):
                grad_h_n[h_n_shape[0] - self.num_directions + direction] = \
                    grad_features[:, direction * hidden:(direction + 1) * hidden]
            grad_out = None                                             # only h_n was read
        else:
            grad_out = grad_features[:, None, :] * step_weights         # (N, L, D*H); 0 at padded steps
            grad_h_n = None
        grad_state = (grad_h_n, None) if self.cell == "lstm" else grad_h_n
        grad_x, _ = self.rnn.backward(grad_out, grad_state, input_grad=input_grad)
        return grad_x[0] if unbatched and grad_x is not None else grad_x

    # --- prediction ---------------------------------------------------------------------------
    def predict(self, x, lengths=None, batch_size: int = 1000) -> np.ndarray:
        """The most likely class of each sequence, ``(N,)`` ints; evaluation mode, no caches kept."""
        was_training = self.training
        self.eval()
        try:
            with backend.no_grad():
                x = np.asarray(x)
                predictions = []
                for start in range(0, len(x), batch_size):
                    chunk_lengths = None if lengths is None else np.asarray(lengths)[start:start + batch_size]
                    predictions.append(np.asarray(self.forward(x[start:start + batch_size], chunk_lengths))
                                       .argmax(axis=-1))
        finally:
            self.train(was_training)
        return np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64)
