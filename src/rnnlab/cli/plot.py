"""``rnnlab plot RUN [RUN ...] --out curves.png``: training and validation loss (bits) against steps and time."""
from __future__ import annotations

import sys

from .flags import one_line_errors, resolved_path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "plot", help="draw the learning curves of one or more runs",
        description="Draw training and validation loss in bits (per character, target symbol, tagged "
                    "character or image, by the kind of run) against steps and against time, from each run's "
                    "metrics.jsonl, several runs overlaid in one PNG image. Needs matplotlib "
                    "(pip install 'rnnlab[plot]').",
        epilog="Example: rnnlab plot runs/small runs/large --out curves.png")
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run directories written by `rnnlab train`, `rnnlab classify train`, "
                             "`rnnlab seq2seq train` or `rnnlab tag train`")
    parser.add_argument("--out", default="curves.png", metavar="PNG", help="the image to write (default: curves.png)")
    parser.add_argument("--title", default=None, help="the figure's title (default: the runs' names)")
    one_line_errors(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..training.curves import plot_runs

    runs = [resolved_path("RUN", run) for run in args.runs]  # a symbolic link loop: one line
    out = plot_runs(runs, args.out, title=args.title)
    print(f"wrote {out}", file=sys.stderr)
    return 0
