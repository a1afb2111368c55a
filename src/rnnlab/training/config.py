"""The settings of a run, side by side, each with its default: ``TrainConfig`` (a character-level language
model, ``rnnlab train``) and ``ClassifyConfig`` (a sequence classifier, ``rnnlab classify train``).

The command line fills one from its flags; Python users build one directly. A run is reproducible from
its config: it is saved in the run directory's ``config.json`` (under ``train``). ``validate`` names the
first nonsensical setting in one line (the flag, the value, what is allowed).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..errors import require
from ..models.classifier import INITS, POOLS
from ..models.stack import CELLS
from .loop import OPTIMIZERS

MODELS = CELLS                # the recurrent cells a run may use, by --model name
DATASETS = ("mnist", "fashion-mnist")  # the named datasets rnnlab.data.load_dataset finds
MAX_SAMPLE_LENGTH = 10_000     # characters of the sample an evaluation shows, at most
CHECKPOINT_SECONDS = 120.0     # without --checkpoint-every, a checkpoint at least this often (and at each evaluation)
DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
DEFAULT_TIME_BUDGET = 300.0  # seconds, used when no --steps, --epochs or --time-budget is given
CHECKPOINT_STEPS = 200       # with --eval-every 0 and no --checkpoint-every: a checkpoint every this many steps


def finite(value) -> bool:
    """Whether ``value`` is a finite number (not NaN, not an infinity)."""
    try:
        return math.isfinite(value)
    except TypeError:
        return False


def parse_interval(value, flag: str) -> tuple[int | None, float | None]:
    """``(steps, seconds)`` of an interval flag: ``200`` (or ``"200"``) every 200 steps, ``"60s"``, ``"2m"``,
    ``"1.5h"`` every so many seconds; ``0``: never (``(0, None)``). One RnnlabError line otherwise.

    >>> parse_interval(200, "--eval-every"), parse_interval("2m", "--eval-every"), parse_interval("0", "--eval-every")
    ((200, None), (None, 120.0), (0, None))
    """
    allowed = "a number of steps >= 0 (200) or a duration (90s, 2m, 1h)"
    if isinstance(value, bool):
        require(False, flag, value, allowed)
    if isinstance(value, int):
        require(value >= 0, flag, value, allowed)
        return value, None
    text = str(value).strip().lower()
    if text.isdigit():
        return int(text), None
    number, unit = text[:-1], text[-1:]
    try:
        seconds = float(number) * DURATION_UNITS[unit]
    except (KeyError, ValueError):
        seconds = None
    require(seconds is not None and finite(seconds) and seconds > 0, flag, value, allowed)
    return None, seconds


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
    text_file: str | list | None = None  # a file, a folder, or a list of them (rnnlab.data.sources); None: the
    #                                  Python standard library's sources (rnnlab.data.default_corpus_path)
    encoding: str = "utf-8"          # how to decode text_file
    byte_mode: bool = False          # model bytes (0..255) instead of Unicode characters
    glob: str | None = None          # in folders, only the files whose name matches this ('*.txt'); None: all
    split: list = field(default_factory=lambda: [0.9, 0.05, 0.05])  # train, validation, test fractions
    val_file: str | None = None      # validate on this text; the whole of text_file then trains (no test part)
    init_from: str | None = None     # fine-tune: start from this run's best weights (rnnlab.training.finetune)
    # model: the size, seq_len, batch_size and lr defaults are the lowest validation bits/char a measured sweep
    # found for the default budget on a 2-core CPU (benchmarks/defaults_sweep.py, docs/charlm.md)
    model: str = "lstm"              # rnn (tanh), rnn_relu, lstm or gru
    hidden_size: int = 256
    num_layers: int = 1
    embedding_size: int | None = None  # None: min(hidden_size, 128)
    dropout: float = 0.0             # between recurrent layers
    dtype: str = "float32"
    # optimisation
    seq_len: int = 64                # truncated BPTT length (characters per stream per step)
    batch_size: int = 32             # parallel contiguous streams
    optimizer: str = "adam"
    lr: float = 3e-3
    lr_schedule: str = "constant"    # constant, step or cosine (rnnlab.training.schedule)
    warmup: int = 0                  # steps of linear warmup from 0 to lr
    min_lr: float = 0.0              # the floor of the step and cosine schedules
    lr_decay: float = 0.5            # the step schedule multiplies the rate by this ...
    lr_decay_every: int = 1000       # ... every this many steps
    grad_clip: float = 5.0           # global gradient-norm clip; 0 turns it off
    # how long: the first limit reached stops the run; none given -> DEFAULT_TIME_BUDGET seconds
    steps: int | None = None         # total optimizer steps, counted from the start of the run (also on --resume)
    epochs: float | None = None      # passes over the training split
    time_budget: float | None = None  # seconds of training in this invocation
    # evaluation and checkpoints
    eval_every: int | str = "60s"    # a duration ("60s", "2m") or steps (200) between validations; 0: only at the end
    eval_chars: int = 100_000        # validation characters scored per evaluation (the whole split if smaller)
    checkpoint_every: int | str | None = None  # steps or a duration between checkpoints; None: at each evaluation
    #                                  and at least every CHECKPOINT_SECONDS (every CHECKPOINT_STEPS steps with
    #                                  eval_every 0)
    sample_length: int = 200         # characters of the sample shown at each evaluation (0: none; <= MAX_SAMPLE_LENGTH)
    keep: int = 0                    # also keep the last N checkpoints as checkpoints/step-NNNNNN.safetensors
    plot: bool = False               # redraw RUN_DIR/curves.png at each evaluation (needs matplotlib)
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
        require(finite(self.lr) and self.lr > 0, "--lr", self.lr, "> 0 and finite")
        require(finite(self.grad_clip) and self.grad_clip >= 0, "--grad-clip", self.grad_clip,
                ">= 0 and finite (0 turns clipping off)")
        if self.steps is not None:
            require(self.steps >= 1, "--steps", self.steps, "a positive integer")
        if self.epochs is not None:
            require(finite(self.epochs) and self.epochs > 0, "--epochs", self.epochs, "> 0 and finite")
        if self.time_budget is not None:
            require(finite(self.time_budget) and self.time_budget > 0, "--time-budget", self.time_budget,
                    "> 0 seconds and finite")
        parse_interval(self.eval_every, "--eval-every")
        require(self.eval_chars >= 1, "--eval-chars", self.eval_chars, "a positive integer")
        if self.checkpoint_every is not None:
            steps, seconds = parse_interval(self.checkpoint_every, "--checkpoint-every")
            require(steps != 0, "--checkpoint-every", self.checkpoint_every,
                    "a positive number of steps or a duration (60s, 5m)")
        require(0 <= self.sample_length <= MAX_SAMPLE_LENGTH, "--sample-length", self.sample_length,
                f"in [0, {MAX_SAMPLE_LENGTH:,}] (for longer text use `rnnlab sample`)")
        require(self.max_bad_steps >= 1, "--max-bad-steps", self.max_bad_steps, "a positive integer")
        require(isinstance(self.seed, int) and 0 <= self.seed < 2 ** 63, "--seed", self.seed,
                "an integer in [0, 2**63)")
        require(self.dtype in ("float32", "float64"), "--dtype", self.dtype, "float32 or float64")
        require(isinstance(self.keep, int) and self.keep >= 0, "--keep", self.keep, "a number of checkpoints >= 0")
        from ..data.sources import parse_split
        from .schedule import check_horizon, check_schedule

        if self.val_file is None:
            self.split = list(parse_split(self.split))
        check_schedule(self.lr_schedule, self.lr, self.warmup, self.min_lr, self.lr_decay, self.lr_decay_every)
        if self.steps is None and self.epochs is None:
            check_horizon(self.lr_schedule, self.warmup, None)  # the real horizon is checked once it is known
        return self

    # settings that must match the saved run when resuming (they decide the model or the data)
    RESUME_MUST_MATCH = ("text_file", "encoding", "byte_mode", "glob", "split", "val_file", "model", "hidden_size",
                         "num_layers", "embedding_size", "dtype", "seq_len", "batch_size", "optimizer")


@dataclass
class ClassifyConfig(Settings):
    # data: a named dataset, or four IDX files
    dataset: str | None = "fashion-mnist"  # mnist or fashion-mnist (found by rnnlab.data.load_dataset)
    data_dir: str | None = None      # where the dataset's files are (None: $RNNLAB_DATA, the cache, system dirs)
    idx: list | None = None          # [train images, train labels, test images, test labels]; replaces dataset
    train_size: int | None = None    # the first N training images (None: all except the validation slice)
    val_size: int = 0                # the last M images of the training file, held out to pick the best weights
    test_size: int | None = None     # the first M test images (None: all)
    # model
    model: str = "lstm"              # rnn (tanh), rnn_relu, lstm or gru
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    pool: str = "last"               # last (top layer's final state) or mean (mean output over time)
    init: str = "default"            # default (PyTorch's) or identity (IRNN, for rnn / rnn_relu)
    dropout: float = 0.0             # between recurrent layers
    dtype: str = "float32"
    # optimisation
    optimizer: str = "adam"
    lr: float = 2e-3
    lr_decay: float = 1.0            # the learning rate is multiplied by this after every epoch
    batch_size: int = 64
    grad_clip: float = 5.0           # global gradient-norm clip; 0 turns it off
    # how long: the first limit reached stops the run
    epochs: int | None = 10          # passes over the training images, counted from the start of the run
    steps: int | None = None         # optimizer steps, counted from the start of the run
    time_budget: float | None = None  # seconds of training in this invocation (evaluations not counted)
    eval_batch_size: int = 1000
    max_bad_steps: int = 5           # stop after this many non-finite losses in a row
    seed: int = 1337

    # settings that must match the saved run when resuming (they decide the model or the data)
    RESUME_MUST_MATCH = ("dataset", "idx", "train_size", "val_size", "model", "hidden_size", "num_layers",
                         "bidirectional", "pool", "init", "dropout", "dtype", "optimizer", "batch_size")

    def validate(self) -> "ClassifyConfig":
        """RnnlabError naming the first nonsensical setting (the flag, the value, what is allowed)."""
        if self.idx is not None:
            require(len(self.idx) == 4, "--idx", " ".join(map(str, self.idx)),
                 "four files: TRAIN_IMAGES TRAIN_LABELS TEST_IMAGES TEST_LABELS")
        else:
            require(self.dataset in DATASETS, "--dataset", self.dataset, "one of " + ", ".join(DATASETS))
        require(self.model in MODELS, "--model", self.model, "one of " + ", ".join(MODELS))
        require(self.pool in POOLS, "--pool", self.pool, "one of " + ", ".join(POOLS))
        require(self.init in INITS, "--init", self.init, "one of " + ", ".join(INITS))
        require(self.init != "identity" or self.model in ("rnn", "rnn_relu"), "--init", self.init,
             "default for --model " + self.model + " (identity is the IRNN init, for rnn and rnn_relu)")
        require(self.optimizer in OPTIMIZERS, "--optimizer", self.optimizer, "one of " + ", ".join(OPTIMIZERS))
        for flag in ("hidden_size", "num_layers", "batch_size", "eval_batch_size", "max_bad_steps"):
            value = getattr(self, flag)
            require(isinstance(value, int) and value >= 1, "--" + flag.replace("_", "-"), value, "a positive integer")
        for flag in ("train_size", "test_size", "epochs", "steps"):
            value = getattr(self, flag)
            require(value is None or (isinstance(value, int) and value >= 1), "--" + flag.replace("_", "-"), value,
                 "a positive integer")
        require(isinstance(self.val_size, int) and self.val_size >= 0, "--val-size", self.val_size, ">= 0")
        require(0.0 <= self.dropout < 1.0, "--dropout", self.dropout, "in [0, 1)")
        require(math.isfinite(self.lr) and self.lr > 0, "--lr", self.lr, "> 0")
        require(0.0 < self.lr_decay <= 1.0, "--lr-decay", self.lr_decay, "in (0, 1]")
        require(finite(self.grad_clip) and self.grad_clip >= 0, "--grad-clip", self.grad_clip,
                ">= 0 and finite (0 turns clipping off)")
        if self.time_budget is not None:
            require(finite(self.time_budget) and self.time_budget > 0, "--time-budget", self.time_budget,
                    "> 0 seconds and finite")
        require(isinstance(self.seed, int) and 0 <= self.seed < 2 ** 63, "--seed", self.seed,
                "an integer in [0, 2**63)")
        require(self.dtype in ("float32", "float64"), "--dtype", self.dtype, "float32 or float64")
        return self
