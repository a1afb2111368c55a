"""Truncated backpropagation through time: a text cut into ``batch_size`` contiguous streams.

The ids of a text are cut into ``B = batch_size`` equal streams laid side by side, stream ``b`` being
``ids[b*S : (b+1)*S]`` with ``S = len(ids) // B`` (the last ``len(ids) % B`` ids are not used). Batch
``k`` is the next ``T = seq_len`` steps of every stream::

    x[t, b] = ids[b*S + k*T + t]          t = 0 .. T-1   (input, time-major: shape (T, B))
    y[t, b] = ids[b*S + k*T + t + 1]                      (target: the character that follows)

so column ``b`` of batch ``k+1`` continues column ``b`` of batch ``k`` exactly where it stopped, and
the hidden state a model ends batch ``k`` with is the right state to start batch ``k+1`` with (detached:
gradients are truncated at batch borders, the state is not). Batch ``0`` starts every stream afresh,
so a training loop resets the hidden state whenever ``k == 0``, i.e. at each epoch.

An epoch has ``(S - 1) // T`` batches; the at most ``T`` last ids of each stream that do not fill a whole
batch are left out. Batches are cheap slices of ``ids`` (which may be a read-only memory map) converted
to ``np.intp`` only for the batch at hand.

>>> import numpy as np
>>> streams = BatchStreams(np.arange(20, dtype=np.uint8), batch_size=2, seq_len=3)
>>> len(streams)
3
>>> x, y = streams.batch(0)
>>> x.T.tolist(), y.T.tolist()
([[0, 1, 2], [10, 11, 12]], [[1, 2, 3], [11, 12, 13]])
>>> streams.batch(1)[0].T.tolist()
[[3, 4, 5], [13, 14, 15]]
"""
from __future__ import annotations

import numpy as np

from ..errors import RnnlabError


class BatchStreams:
    """Time-major ``(x, y)`` batches from ``batch_size`` contiguous streams of ``ids`` (see the module doc).

    Args:
        ids: 1-D integer array (or memory map) of token ids.
        batch_size: ``B``, the number of streams (columns of a batch).
        seq_len: ``T``, the steps per batch (how far back gradients flow).
        name: what the ids are, for error messages (``"the training text"``, ``"the validation split"``).

    Attributes:
        position: the index of the next batch an iteration yields, ``0 <= position < len(self)``.
        epoch: how many full passes iteration has completed.

    Iterating (``for k, x, y in streams.epoch_batches()``, or ``for x, y in streams``) runs from
    :attr:`position` to the end of the epoch. ``position`` moves past a batch *before* the batch is
    yielded, so a checkpoint saved in the loop body after the optimizer step records the batch to run
    next; after the last batch it wraps to ``0`` and ``epoch`` counts up. :meth:`state_dict` /
    :meth:`load_state_dict` carry ``position`` and ``epoch`` across a resume, so a resumed run sees
    exactly the batches the interrupted run would have seen.
    """

    def __init__(self, ids, batch_size: int, seq_len: int, name: str = "the text"):
        if getattr(ids, "ndim", None) != 1:
            raise ValueError(f"ids must be a 1-D array, got {type(ids).__name__} with "
                             f"shape {getattr(ids, 'shape', None)}")
        for flag, value in (("batch_size", batch_size), ("seq_len", seq_len)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise RnnlabError(f"{flag} must be a positive integer, got {value!r}")
        self.batch_size = int(batch_size)
        self.seq_len = int(seq_len)
        self.name = name
        needed = self.batch_size * (self.seq_len + 1)
        if len(ids) < needed:
            raise RnnlabError(
                f"{name} has {len(ids)} characters, fewer than one batch needs: batch_size x (seq_len + 1) = "
                f"{self.batch_size} x {self.seq_len + 1} = {needed}; lower --batch-size or --seq-len, or use a "
                f"longer text")
        self.stream_length = len(ids) // self.batch_size
        self.streams = ids[:self.batch_size * self.stream_length].reshape(self.batch_size, self.stream_length)  # (B, S)
        self.num_ids = len(ids)
        self.position = 0
        self.epoch = 0

    def __len__(self) -> int:
        """Batches per epoch."""
        return (self.stream_length - 1) // self.seq_len

    @property
    def tokens_per_batch(self) -> int:
        return self.batch_size * self.seq_len

    def batch(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``k`` of an epoch: ``x`` and ``y``, ``np.intp`` arrays shaped ``(seq_len, batch_size)``.

        ``k == 0`` starts every stream from its beginning: reset the hidden state before it.
        """
        if not 0 <= k < len(self):
            raise IndexError(f"batch index {k} out of range for {len(self)} batches per epoch")
        start = k * self.seq_len
        window = self.streams[:, start:start + self.seq_len + 1]  # (B, T+1): a view, even of a memmap
        x = np.ascontiguousarray(window[:, :-1].T, dtype=np.intp)
        y = np.ascontiguousarray(window[:, 1:].T, dtype=np.intp)
        return x, y

    def epoch_batches(self, start: int | None = None):
        """Yield ``(k, x, y)`` from batch ``start`` (default :attr:`position`) to the end of the epoch."""
        if start is not None:
            self._set_position(start)
        while True:
            k = self.position
            x, y = self.batch(k)
            if k + 1 == len(self):
                self.position, self.epoch = 0, self.epoch + 1
            else:
                self.position = k + 1
            yield k, x, y
            if k + 1 == len(self):
                return

    def __iter__(self):
        for _, x, y in self.epoch_batches():
            yield x, y

    @staticmethod
    def starts_epoch(k: int) -> bool:
        """Whether batch ``k`` starts the streams afresh (reset the hidden state): ``k == 0``."""
        return k == 0

    def _set_position(self, position: int) -> None:
        if not isinstance(position, (int, np.integer)) or not 0 <= position < len(self):
            raise ValueError(f"position must be in [0, {len(self)}), got {position!r}")
        self.position = int(position)

    def state_dict(self) -> dict:
        """Where iteration stands (JSON-able): ``position``, ``epoch``, and the layout it applies to."""
        return {"position": self.position, "epoch": self.epoch, "batch_size": self.batch_size,
                "seq_len": self.seq_len, "num_ids": self.num_ids}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict`; the batch layout (sizes and text length) must be the same."""
        for key in ("batch_size", "seq_len", "num_ids"):
            if key in state and int(state[key]) != getattr(self, key):
                flag = {"batch_size": "--batch-size", "seq_len": "--seq-len", "num_ids": "text"}[key]
                raise RnnlabError(f"cannot resume: the run used {key}={state[key]}, now {getattr(self, key)}; "
                                  f"resume with the same {flag} (and the same text)")
        self._set_position(int(state["position"]))
        self.epoch = int(state.get("epoch", 0))

    def __repr__(self) -> str:
        return (f"BatchStreams({self.num_ids} ids, batch_size={self.batch_size}, seq_len={self.seq_len}, "
                f"{len(self)} batches per epoch)")
