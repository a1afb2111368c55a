"""Entry point of the ``rnnlab`` command.

Each subcommand lives in its own module, which defines ``register(subparsers)``: it adds its parser
and sets ``handler=<function(args) -> int>``. User mistakes raise :class:`rnnlab.errors.RnnlabError`
and are printed here as one line on stderr (``rnnlab: error: ...``) with exit status 2 for
usage errors and 1 for everything else; Ctrl-C without a handler exits 130.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import RnnlabError
from ..training.distributed import run_guarded
from .flags import one_line_errors
from .messages import discard_stdout, flush_stdout

# Subcommand modules, in the order `rnnlab --help` lists them.
SUBCOMMANDS = ["train", "sample", "eval", "plot", "classify", "seq2seq", "tag", "bench", "inspect"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnlab",
        description="Train, sample and evaluate recurrent neural networks written from scratch in NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f".{name}", __package__).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    one_line_errors(parser)
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        # under mpiexec: a failure on one rank names the rank and ends every rank (a plain call otherwise)
        status = int(run_guarded(args.handler, args) or 0)
        flush_stdout()  # `> /dev/full`: one line now, not a traceback at exit
        return status
    except RnnlabError as error:
        discard_stdout()
        print(f"rnnlab: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `rnnlab sample ... | head` closes the pipe early: not an error.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
