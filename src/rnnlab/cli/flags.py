"""Flag checks the subcommands share, and argparse's own mistakes as one line.

Flag values are checked here, after parsing, so a nonsensical value is one line
(``rnnlab: error: --temperature 0: must be > 0``) rather than argparse's usage block.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from ..errors import RnnlabError, require


def resolved_path(flag: str, value) -> str:
    """``value`` as an absolute path for config.json; a symlink loop (or another path the system refuses)
    is one line naming ``flag``. A missing path is left for the reader of the file to report."""
    path = Path(value).expanduser()
    try:
        os.stat(path)
        return str(path.resolve())
    except FileNotFoundError:
        return str(path.absolute())
    except (OSError, RuntimeError) as error:  # Python 3.11's resolve() raises RuntimeError on a loop
        reason = getattr(error, "strerror", None) or "a symbolic link loop"
        raise RnnlabError(f"{flag} {value}: cannot open ({reason}); check the path") from None


def check_positive_int(flag: str, value) -> None:
    require(value is None or value >= 1, flag, value, "a positive integer")


def steps_or_duration(text: str):
    """An argparse type: ``"200"`` -> 200 (steps); anything else (``"60s"``, ``"2m"``) stays text, for
    :func:`rnnlab.training.config.parse_interval` to check."""
    return int(text) if text.strip().isdigit() else text.strip()


def check_seed(value) -> None:
    require(value is None or 0 <= value < 2 ** 63, "--seed", value, "an integer in [0, 2**63)")


def check_sampling_flags(args) -> None:
    """Temperature > 0, top-k >= 1, top-p in (0, 1], length >= 0, num-samples >= 1, seed >= 0."""
    require(math.isfinite(args.temperature) and args.temperature > 0, "--temperature", args.temperature,
            "> 0 (for the most likely character every time, use --greedy)")
    check_positive_int("--top-k", args.top_k)
    if args.top_p is not None:
        require(0 < args.top_p <= 1, "--top-p", args.top_p, "in (0, 1]")
    require(args.length >= 0, "--length", args.length, ">= 0")
    require(args.num_samples >= 1, "--num-samples", args.num_samples, "a positive integer")
    check_seed(args.seed)


def one_line_errors(parser) -> None:
    """argparse's own mistakes (a missing value, a mistyped number) as one line and exit status 2,
    not a usage block: ``rnnlab: error: argument --steps: invalid int value: 'x' (see `rnnlab train --help`)``."""
    def error(message):
        print(f"rnnlab: error: {message} (see `{parser.prog} --help`)", file=sys.stderr)
        sys.exit(2)
    parser.error = error


def add_checkpoint_flag(parser) -> None:
    """``--checkpoint NAME``: which weights of a run to use (resolved by rnnlab.training.rundir.resolve_checkpoint)."""
    parser.add_argument("--checkpoint", default=None, metavar="{best,latest,STEP,PATH}",
                        help="which weights to use: the best by validation loss, the latest, a step the run kept "
                             "with `train --keep` (checkpoints/step-*.safetensors), or a weights file "
                             "(default: best if the run has it, else latest)")
