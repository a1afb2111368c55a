"""``rnnlab eval RUN_DIR TEXT_FILE``: loss (nats) and bits per character of any text under a trained model.

Characters the model has never seen cannot be scored: they are left out, counted and named, not a crash.
"""
from __future__ import annotations

import math

from .. import strict_json
from ..errors import RnnlabError
from ..training.rundir import load_run
from .flags import add_checkpoint_flag, check_positive_int, one_line_errors
from .messages import to_stdout


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="loss and bits per character of a text under a trained model",
        description="Score TEXT_FILE under the model in RUN_DIR: mean cross-entropy in nats per character and "
                    "in bits per character. Characters not in the model's vocabulary are skipped and reported.",
        epilog="Example: rnnlab eval runs/hamlet other.txt --json")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `rnnlab train`")
    parser.add_argument("text_file", metavar="TEXT_FILE", help="the text to score")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (keys: loss, bpc, characters, unknown, unknown_symbols, "
                             "checkpoint)")
    parser.add_argument("--encoding", default=None, metavar="NAME",
                        help="text encoding of TEXT_FILE (default: the run's)")
    # the layout of training's evaluations (rnnlab.training.charlm.EVAL_BATCH_SIZE, EVAL_SEQ_LEN): same numbers
    parser.add_argument("--batch-size", type=int, metavar="B", default=64,
                        help="parallel streams while scoring (default: 64)")
    parser.add_argument("--seq-len", type=int, metavar="T", default=128,
                        help="steps per chunk while scoring (default: 128)")
    add_checkpoint_flag(parser)
    one_line_errors(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..data import read_text
    from ..training.charlm import evaluate

    check_positive_int("--batch-size", args.batch_size)
    check_positive_int("--seq-len", args.seq_len)
    loaded = load_run(args.run_dir, "charlm", args.checkpoint)
    vocab = loaded.vocab
    trained_on = loaded.config.get("train", {}).get("encoding", "utf-8")
    encoding = args.encoding or trained_on
    text = read_text(args.text_file, encoding=encoding, byte_mode=vocab.byte_mode)
    ids = vocab.encode(text, unknown="skip")
    unknown_symbols = vocab.unknown(text)
    unknown = len(text) - len(ids)
    if len(ids) < 2:
        hint = (f"; is the encoding {encoding} right? (the run was trained on {trained_on} text)"
                if unknown > len(ids) and not vocab.byte_mode else "")
        raise RnnlabError(f"{args.text_file}: fewer than two characters the model knows "
                          f"({unknown} unknown); nothing to score{hint}")
    loss, characters = evaluate(loaded.model, ids, batch_size=args.batch_size, seq_len=args.seq_len)
    bpc = loss / math.log(2.0)
    if args.json:
        to_stdout(strict_json.dumps({"loss": loss, "bpc": bpc, "characters": characters, "unknown": unknown,
                          "unknown_symbols": [s if isinstance(s, str) else int(s) for s in unknown_symbols],
                          "checkpoint": loaded.checkpoint, "run_dir": str(loaded.path),
                          "text_file": str(args.text_file)}, ensure_ascii=False))
    else:
        to_stdout(f"{args.text_file}: loss {loss:.4f} nats/char, {bpc:.4f} bits/char over {characters:,} characters "
              f"({loaded.checkpoint} weights of {loaded.path})")
        if unknown:
            shown = ", ".join(repr(s) for s in unknown_symbols[:20]) + (" ..." if len(unknown_symbols) > 20 else "")
            to_stdout(f"{unknown:,} characters not in the model's vocabulary were skipped: {shown}")
    return 0
