"""``rnnlab bench``: how fast rnnlab trains and samples on this machine (and PyTorch, side by side).

Argument parsing and printing only; the measuring is :mod:`rnnlab.bench` (which ``benchmarks/speed.py``
also uses, adding the whole suite, min-char-rnn, peak memory and the FLOP efficiency).
"""
from __future__ import annotations

import argparse

from .. import strict_json
from ..bench import QUICK, SUITE, measure_suite
from ..errors import RnnlabError
from .messages import to_stdout


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure training and sampling speed on this machine",
        description="Measure rnnlab's training and sampling throughput (characters per second) on small "
        "char-LM configurations, side by side with PyTorch when it is installed, plus the float32 "
        "matrix-product rate of this machine. The full comparison is benchmarks/speed.py.",
    )
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS and PyTorch threads (default: what NumPy's BLAS library chose)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated repetitions per measurement (default: 3)")
    parser.add_argument("--full", action="store_true",
                        help="all four configurations (LSTM 1x128, LSTM 2x512, GRU 2x256, RNN 1x100), not just the two LSTMs")
    parser.add_argument("--only", action="append", metavar="NAME", choices=[c.name for c in SUITE],
                        help="measure only this configuration (repeatable): " + ", ".join(c.name for c in SUITE))
    parser.add_argument("--no-torch", action="store_true", help="measure rnnlab alone even if PyTorch is installed")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.threads is not None and args.threads < 1:
        raise RnnlabError(f"--threads must be at least 1, got {args.threads}")
    if args.rounds < 1:
        raise RnnlabError(f"--rounds must be at least 1, got {args.rounds}")
    configs = [c for c in SUITE if c.name in args.only] if args.only else (SUITE if args.full else QUICK)
    results = measure_suite(configs, threads=args.threads, rounds=args.rounds, with_torch=not args.no_torch)
    if args.json:
        to_stdout(strict_json.dumps(results, indent=2))
        return 0
    with_torch = results["torch"]
    blas = results["blas"]
    to_stdout(f"BLAS: {blas['library']} {blas['version']} ({blas['kernel']} kernel, {blas['threads']} threads); "
          f"float32 1024^3 matmul {results['matmul_gflops']} GFLOP/s; rnnlab kernels: {results['kernels']}")
    header = f"{'configuration':<16} {'work':<22} {'rnnlab':>10}"
    if with_torch:
        header += f" {'PyTorch':>10} {'ratio':>7}"
    to_stdout(header)
    for row in results["rows"]:
        for work, rates in (("train, batch 32 (ch/s)", row["train_chars_per_s"]),
                            ("sample, 1 stream (ch/s)", row["sample_chars_per_s"])):
            line = f"{row['config']['name']:<16} {work:<22} {rates['rnnlab']:>10,.0f}"
            if with_torch:
                line += f" {rates['torch']:>10,.0f} {rates['rnnlab'] / rates['torch']:>6.2f}x"
            to_stdout(line)
    return 0
