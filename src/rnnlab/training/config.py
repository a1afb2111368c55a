"""``TrainConfig``: every setting of a character-level language-model run, with its default.

The command line (``rnnlab train``) fills one from its flags; Python users build one directly. A run is
reproducible from its config: it is saved in the run directory's ``config.json``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import require
from .loop import OPTIMIZERS

MODELS = ("rnn", "rnn_relu", "lstm", "gru")
DEFAULT_TIME_BUDGET = 300.0  # seconds, used when no --steps, --epochs or --time-budget is given


class Settings:
    """A run's settings dataclass as a dict (config.json's ``train``) and back; unknown keys are ignored,
    so a config.json from an older or newer rnnlab still opens."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass
class TrainConfig(Settings):
    # data
    text_file: str | None = None     # None: the Python standard library's sources (rnnlab.data.default_corpus_path)
    encoding: str = "utf-8"          # how to decode text_file
    byte_mode: bool = False          # model bytes (0..255) instead of Unicode characters
    # model
    model: str = "lstm"              # rnn (tanh), rnn_relu, lstm or gru
    hidden_size: int = 256
    num_layers: int = 2
    embedding_size: int | None = None  # None: min(hidden_size, 128)
    dropout: float = 0.0             # between recurrent layers
    dtype: str = "float32"
    # optimisation
    seq_len: int = 64                # truncated BPTT length (characters per stream per step)
    batch_size: int = 32             # parallel contiguous streams
    optimizer: str = "adam"
    lr: float = 2e-3
    grad_clip: float = 5.0           # global gradient-norm clip; 0 turns it off
    # how long: the first limit reached stops the run; none given -> DEFAULT_TIME_BUDGET seconds
    steps: int | None = None         # total optimizer steps, counted from the start of the run (also on --resume)
    epochs: float | None = None      # passes over the training split
    time_budget: float | None = None  # seconds of training in this invocation
    # evaluation and checkpoints
    eval_every: int = 200            # steps between validation evaluations (0: only at the end)
    eval_chars: int = 100_000        # validation characters scored per evaluation (the whole split if smaller)
    checkpoint_every: int | None = None  # steps between checkpoints; None: at each evaluation (or every 200 steps)
    sample_length: int = 200         # characters of the sample shown at each evaluation (0: none)
    max_bad_steps: int = 5           # stop after this many non-finite losses in a row
    seed: int = 1337

    def validate(self) -> "TrainConfig":
        """RnnlabError naming the first nonsensical setting (the flag's name, the value, what is allowed)."""
        require(self.model in MODELS, "--model", self.model, "one of " + ", ".join(MODELS))
        require(self.optimizer in OPTIMIZERS, "--optimizer", self.optimizer, "one of " + ", ".join(OPTIMIZERS))
        for flag in ("hidden_size", "num_layers", "seq_len", "batch_size"):
            value = getattr(self, flag)
            require(isinstance(value, int) and value >= 1, "--" + flag.replace("_", "-"), value, "a positive integer")
        if self.embedding_size is not None:
            require(self.embedding_size >= 1, "--embedding-size", self.embedding_size, "a positive integer")
        require(0.0 <= self.dropout < 1.0, "--dropout", self.dropout, "in [0, 1)")
        require(self.lr > 0, "--lr", self.lr, "> 0")
        require(self.grad_clip >= 0, "--grad-clip", self.grad_clip, ">= 0 (0 turns clipping off)")
        if self.steps is not None:
            require(self.steps >= 1, "--steps", self.steps, "a positive integer")
        if self.epochs is not None:
            require(self.epochs > 0, "--epochs", self.epochs, "> 0")
        if self.time_budget is not None:
            require(self.time_budget > 0, "--time-budget", self.time_budget, "> 0 seconds")
        require(self.eval_every >= 0, "--eval-every", self.eval_every, ">= 0")
        require(self.eval_chars >= 1, "--eval-chars", self.eval_chars, "a positive integer")
        if self.checkpoint_every is not None:
            require(self.checkpoint_every >= 1, "--checkpoint-every", self.checkpoint_every, "a positive integer")
        require(self.sample_length >= 0, "--sample-length", self.sample_length, ">= 0")
        require(self.max_bad_steps >= 1, "--max-bad-steps", self.max_bad_steps, "a positive integer")
        require(self.dtype in ("float32", "float64"), "--dtype", self.dtype, "float32 or float64")
        return self

    # settings that must match the saved run when resuming (they decide the model or the data)
    RESUME_MUST_MATCH = ("text_file", "encoding", "byte_mode", "model", "hidden_size", "num_layers",
                         "embedding_size", "dtype", "seq_len", "batch_size", "optimizer")
