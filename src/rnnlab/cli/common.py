"""What the ``train``, ``sample`` and ``eval`` subcommands share: flag checks and opening a run directory.

Flag values are checked here, after parsing, so a nonsensical value is one line
(``rnnlab: error: --temperature 0: must be > 0``) rather than argparse's usage block.
"""
from __future__ import annotations

import contextlib
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import RnnlabError


def require(condition: bool, flag: str, value, allowed: str) -> None:
    """RnnlabError ``--flag value: must be <allowed>`` unless ``condition``."""
    if not condition:
        raise RnnlabError(f"{flag} {value}: must be {allowed}")


def check_positive_int(flag: str, value) -> None:
    require(value is None or value >= 1, flag, value, "a positive integer")


def check_sampling_flags(args) -> None:
    """Temperature > 0, top-k >= 1, top-p in (0, 1], length >= 0, num-samples >= 1."""
    require(math.isfinite(args.temperature) and args.temperature > 0, "--temperature", args.temperature,
            "> 0 (for the most likely character every time, use --greedy)")
    check_positive_int("--top-k", args.top_k)
    if args.top_p is not None:
        require(0 < args.top_p <= 1, "--top-p", args.top_p, "in (0, 1]")
    require(args.length >= 0, "--length", args.length, ">= 0")
    require(args.num_samples >= 1, "--num-samples", args.num_samples, "a positive integer")


def one_line_errors(parser) -> None:
    """argparse's own mistakes (a missing value, a mistyped number) as one line and exit status 2,
    not a usage block: ``rnnlab: error: argument --steps: invalid int value: 'x' (see `rnnlab train --help`)``."""
    def error(message):
        print(f"rnnlab: error: {message} (see `{parser.prog} --help`)", file=sys.stderr)
        sys.exit(2)
    parser.error = error


@contextlib.contextmanager
def one_line_messages(sizes: str):
    """Around a training run: Python warnings (e.g. PyTorch's "dropout expects num_layers greater than 1") as
    one line ``rnnlab: warning: ...`` instead of a file name, a line number and a line of rnnlab's source; and
    running out of memory (a model or batch too large) as one error line naming the flags to lower (``sizes``)."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"rnnlab: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        try:
            yield
        except MemoryError as error:
            raise RnnlabError(f"not enough memory ({error}); lower {sizes}") from None


def saved_train_settings(out: Path, kind: str, what: str, command: str) -> dict:
    """For ``--resume``: the ``train`` settings in ``out/config.json`` of a run of this ``kind`` (one line if none)."""
    from ..training.checkpoint import RunDirectory

    if not (out / "config.json").is_file():
        raise RnnlabError(f"{out}: no run to resume (no config.json); train without --resume first, "
                          f"or give the run directory with --out")
    saved = RunDirectory(out).read_config()
    if saved.get("kind", "charlm") != kind or not isinstance(saved.get("train"), dict):
        raise RnnlabError(f"{out}: holds a {saved.get('kind', 'charlm')!r} run, not {what}; "
                          f"give a run directory written by `{command}`")
    return saved["train"]


def add_checkpoint_flag(parser) -> None:
    parser.add_argument("--checkpoint", choices=("best", "latest"), default=None,
                        help="which weights to use: the best by validation loss or the latest "
                             "(default: best if the run has it, else latest)")


@dataclass
class LoadedRun:
    path: Path
    config: dict          # config.json as saved
    model: object         # a CharRNN with the chosen weights, in evaluation mode, vocabulary attached
    vocab: object
    checkpoint: str       # "best" or "latest"


def load_run(run_dir, which: str | None = None) -> LoadedRun:
    """Open a character-model run directory: config, vocabulary, model and weights.

    RnnlabError (one line) when the path is missing, not a run, another kind of run, or damaged.
    """
    from ..data import Vocabulary
    from ..models import CharRNN
    from ..training.checkpoint import load_model, open_run

    run, config = open_run(run_dir, "charlm", "a character language model", "rnnlab train",
                           required=("model", "vocabulary"))
    vocab = Vocabulary.from_config(config["vocabulary"])
    model, which = load_model(run, lambda: CharRNN.from_config(config["model"], vocabulary=vocab), which)
    return LoadedRun(run.path, config, model, vocab, which)
