"""Flags the subcommands share: their checks, argparse's own mistakes as one line, the flag groups of
the step-scheduled trainers (``seq2seq train``, ``tag train``) and the start of a training run.

Flag values are checked here, after parsing, so a nonsensical value is one line
(``rnnlab: error: --temperature 0: must be > 0``) rather than argparse's usage block. Training flags
default to ``None`` so that ``--resume`` can tell a flag the user gave from one left out
(:func:`settings_from_flags`).
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


def add_encoding_flag(parser, what: str) -> None:
    """``--encoding NAME`` of an evaluation's input file (None: the run's, :func:`run_encoding`)."""
    parser.add_argument("--encoding", default=None, metavar="NAME",
                        help=f"text encoding of {what} (default: the run's)")


def run_encoding(args, saved: dict) -> str:
    """``--encoding``, or the encoding the run was trained on (its config.json's training settings)."""
    train = saved.get("train") if isinstance(saved.get("train"), dict) else {}
    return args.encoding or train.get("encoding") or "utf-8"


def print_help(parser) -> int:
    """A command group called without its subcommand: its help on stderr, usage status 2."""
    parser.print_help(sys.stderr)
    return 2


def add_command_group(subparsers, name: str, commands_metavar: str, **kwargs):
    """``rnnlab NAME`` (``kwargs``: help, description), whose subcommands are added to what it returns;
    called alone it prints its help."""
    top = subparsers.add_parser(name, **kwargs)
    one_line_errors(top)
    top.set_defaults(handler=lambda args: print_help(top))
    return top.add_subparsers(dest=f"{name}_command", metavar=commands_metavar)


def add_subcommand(commands, name: str, handler, **kwargs):
    """``NAME`` in ``commands`` (``kwargs``: help, description, epilog) running ``handler(args)``, its
    argparse mistakes one line."""
    parser = commands.add_parser(name, **kwargs)
    one_line_errors(parser)
    parser.set_defaults(handler=handler)
    return parser


def add_run_dir_argument(parser, written_by: str) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help=f"a run directory written by `rnnlab {written_by}`")


# ---------------------------------------------------------------------------------------------------
# the flag groups of `seq2seq train` and `tag train` (defaults from d, their config)
# ---------------------------------------------------------------------------------------------------

def add_run_flags(parser, out_help: str, resume_help: str) -> None:
    """--out, --resume, --json, --threads."""
    parser.add_argument("--out", metavar="RUN_DIR", help=out_help)
    parser.add_argument("--resume", action="store_true", help=resume_help)
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout at the end")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="BLAS threads (default: the library's choice; 1 is often faster on a busy machine)")


def add_recurrent_flags(group, d, cell_help: str, hidden_help: str, unidirectional_help: str) -> None:
    """--model, --hidden-size, --num-layers, --embedding-size, --unidirectional (into ``bidirectional``)."""
    from ..training.config import MODELS

    group.add_argument("--model", choices=MODELS, help=cell_help)
    group.add_argument("--hidden-size", type=int, metavar="H", help=hidden_help)
    group.add_argument("--num-layers", type=int, metavar="K", help=f"default: {d.num_layers}")
    group.add_argument("--embedding-size", type=int, metavar="E", help="default: the hidden size, at most 64")
    group.add_argument("--unidirectional", dest="bidirectional", action="store_const", const=False, default=None,
                       help=unidirectional_help)


def add_step_schedule_flags(group, d, batch_help: str) -> None:
    """--optimizer, --lr, --lr-decay, --lr-decay-every, --min-lr, --batch-size, --grad-clip."""
    from ..training.loop import OPTIMIZERS

    group.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default: {d.optimizer}")
    group.add_argument("--lr", type=float, help=f"learning rate (default: {d.lr})")
    group.add_argument("--lr-decay", type=float, metavar="GAMMA",
                       help=f"multiply the learning rate by this every --lr-decay-every steps (default: "
                            f"{d.lr_decay})")
    group.add_argument("--lr-decay-every", type=int, metavar="N", help=f"default: {d.lr_decay_every}")
    group.add_argument("--min-lr", type=float, metavar="LR", help=f"the decay stops here (default: {d.min_lr})")
    group.add_argument("--batch-size", type=int, metavar="B", help=batch_help)
    group.add_argument("--grad-clip", type=float, metavar="NORM", help=f"0: off (default: {d.grad_clip})")


def add_length_flags(parser, items: str) -> None:
    """The "how long" group: --steps, --epochs (passes over the training ``items``), --time-budget."""
    length = parser.add_argument_group("how long (the first limit reached stops the run; none: 300 seconds)")
    length.add_argument("--steps", type=int, metavar="N", help="optimizer steps, counted from the start of the run")
    length.add_argument("--epochs", type=float, metavar="E", help=f"passes over the training {items}")
    length.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="seconds of training in this invocation (validations not counted)")


def add_evaluation_flags(parser, d):
    """The "evaluation" group with --eval-every; the caller adds what each validation scores."""
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--eval-every", type=int, metavar="N",
                            help=f"steps between validations; 0: only at the end (default: {d.eval_every})")
    return evaluation


# ---------------------------------------------------------------------------------------------------
# the start of a training run
# ---------------------------------------------------------------------------------------------------

def resumed_run(args, kind: str, dist) -> tuple[Path, dict]:
    """``--resume``: ``(--out, the saved run's settings)``, rank 0 reading the run directory."""
    from ..training.rundir import open_for_resume

    if args.out is None:
        raise RnnlabError("--resume needs --out RUN_DIR: the run directory to continue")
    out = Path(args.out)
    return out, dist.on_root(open_for_resume, out, kind)[1]["train"]


def check_new_run(out: Path, dist) -> None:
    """A new run's ``out`` must not hold one already."""
    if dist.on_root((out / "config.json").exists):
        raise RnnlabError(f"{out}: already holds a run; add --resume to continue it, or choose another --out")


def settings_from_flags(args, flags, saved_train: dict | None, path_flags=()) -> dict:
    """A run's settings: the flags given, then the saved run's (on resume), then the defaults (by leaving
    the key out). Path flags are stored resolved."""
    values = dict(saved_train or {})
    for flag in flags:
        given = getattr(args, flag)
        if given is not None:
            values[flag] = resolved_path("--" + flag.replace("_", "-"), given) if flag in path_flags else given
    return values


def blas_threads(threads: int | None):
    """``--threads``: BLAS threads for the run; keep what it returns while the run lasts."""
    from ..bench import set_blas_threads

    require(threads is None or threads >= 1, "--threads", threads, "a positive integer")
    return set_blas_threads(threads)


def add_input_flags(parser, what: str) -> None:
    """``--input TEXT`` (repeatable) instead of stdin, and ``--encoding`` of stdin (:func:`read_input_lines`)."""
    parser.add_argument("--input", action="append", metavar="TEXT", help=f"{what} TEXT instead of stdin (repeatable)")
    parser.add_argument("--encoding", default=None, metavar="NAME",
                        help="text encoding of stdin (default: utf-8; e.g. cp949, latin-1)")


def read_input_lines(args) -> list[str]:
    """``--input`` texts, or stdin's lines (decoded as ``--encoding``, UTF-8 by default); empty input is
    one error line."""
    if args.input is not None:
        return list(args.input)
    from ..data.text import canonical_encoding

    encoding = canonical_encoding(getattr(args, "encoding", None) or "utf-8")
    raw = getattr(sys.stdin, "buffer", None)  # None: a text stream given in place of stdin (tests, notebooks)
    try:
        text = sys.stdin.read() if raw is None else raw.read().decode(encoding)
    except UnicodeDecodeError as error:
        shown = "UTF-8" if encoding == "utf-8" else encoding
        raise RnnlabError(f"stdin: not {shown} text ({error.reason} at byte {error.start}); give {shown} lines "
                          f"or name their encoding with --encoding") from None
    if not text:
        raise RnnlabError("no input: stdin is empty; give lines on stdin or --input TEXT")
    return text.splitlines()
