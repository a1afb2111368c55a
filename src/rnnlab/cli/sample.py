"""``rnnlab sample RUN_DIR``: generate text from a trained model, streamed to stdout as it is made."""
from __future__ import annotations

import os
import sys
import time

from ..blas_threads import one_blas_thread
from ..errors import RnnlabError
from ..training.rundir import load_run
from .flags import add_checkpoint_flag, check_sampling_flags, one_line_errors
from .messages import stdout_error

FLUSH_SECONDS = 0.05  # flush at least this often (and at every newline), so output streams but stays cheap


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample", help="generate text from a trained model",
        description="Generate text from the model in RUN_DIR, one character at a time, written to stdout as it "
                    "is generated. The prime is read in one pass and the hidden state carries on from it.",
        epilog="Example: rnnlab sample runs/hamlet --prime 'HAMLET:' --length 300 --temperature 0.8")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `rnnlab train`")
    parser.add_argument("--length", type=int, metavar="N", default=500,
                        help="characters to generate per sample (default: 500)")
    parser.add_argument("--temperature", type=float, metavar="T", default=1.0,
                        help="> 0; below 1 sharper and safer, above 1 more varied (default: 1.0)")
    parser.add_argument("--top-k", type=int, metavar="K", default=None,
                        help="sample only among the K most likely characters (default: all)")
    parser.add_argument("--top-p", type=float, metavar="P", default=None,
                        help="nucleus sampling: only among the most likely characters that make up probability P "
                             "(default: 1, all)")
    parser.add_argument("--greedy", action="store_true",
                        help="always take the most likely character (ignores --temperature, --top-k, --top-p)")
    parser.add_argument("--prime", default=None, metavar="TEXT",
                        help="text to start from, printed before the continuation (default: a newline)")
    parser.add_argument("--seed", type=int, metavar="S", default=None,
                        help="random seed, for a reproducible sample (default: a fresh one each time)")
    parser.add_argument("--num-samples", type=int, metavar="M", default=1,
                        help="independent samples, separated by a blank line (default: 1)")
    add_checkpoint_flag(parser)
    one_line_errors(parser)
    parser.set_defaults(handler=run)


class _StreamWriter:
    """Writes characters to stdout, flushing at newlines and every FLUSH_SECONDS (bytes in byte mode)."""

    def __init__(self, byte_mode: bool):
        self.byte_mode = byte_mode
        self.last_flush = time.monotonic()

    def write(self, text: str) -> None:
        try:
            if self.byte_mode:
                # byte-mode symbols come as Latin-1 characters: write the bytes themselves
                sys.stdout.flush()
                sys.stdout.buffer.write(text.encode("latin-1"))
            else:
                sys.stdout.write(text)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise stdout_error(error) from None
        now = time.monotonic()
        if "\n" in text or now - self.last_flush >= FLUSH_SECONDS:
            self.flush()
            self.last_flush = now

    def flush(self) -> None:
        try:
            if self.byte_mode:
                sys.stdout.buffer.flush()
            else:
                sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise stdout_error(error) from None


def run(args) -> int:
    from ..training.charlm import default_prime

    check_sampling_flags(args)
    loaded = load_run(args.run_dir, "charlm", args.checkpoint)
    model, vocab = loaded.model, loaded.vocab
    prime = args.prime
    shown_prime = prime
    if prime is None or prime == "":
        prime, shown_prime = default_prime(vocab), ""
    missing = vocab.unknown(prime)
    if missing:
        raise RnnlabError("--prime: " + vocab.unknown_message(missing, where="the prime"))
    if vocab.byte_mode:
        shown_prime = shown_prime.encode("utf-8").decode("latin-1")
    # no --seed: a fresh sample every time (rnnlab's global generator starts from a fixed seed)
    base_seed = int.from_bytes(os.urandom(4), "little") if args.seed is None else args.seed
    writer = _StreamWriter(vocab.byte_mode)
    with one_blas_thread():   # generation is matrix-vector work, one character at a time
        _write_samples(args, model, prime, shown_prime, base_seed, writer)
    writer.write("\n")
    writer.flush()
    return 0


def _write_samples(args, model, prime, shown_prime, base_seed, writer) -> None:
    for index in range(args.num_samples):
        if index:
            writer.write("\n\n")
        writer.write(shown_prime)
        seed = base_seed + index
        for char in model.generate(prime, args.length, temperature=args.temperature, top_k=args.top_k,
                                   top_p=args.top_p, greedy=args.greedy, seed=seed):
            writer.write(char)
