"""``rnnlab seq2seq train|translate|eval|data``: encoder-decoder models on ``source<TAB>target`` pairs.

Parsing and printing only: the loop is :mod:`rnnlab.training.seq2seq`, the scores
:mod:`rnnlab.training.seq2seq_eval`, the generators :mod:`rnnlab.data.tasks`. As in ``rnnlab train``,
every setting flag of ``train`` defaults to ``None`` so that ``--resume`` can tell a flag the user gave
(which must agree with the saved run when it decides the model or the data) from one left out (which
takes the saved run's value).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

from .. import strict_json
from ..errors import RnnlabError, require
from .flags import (add_checkpoint_flag, add_command_group, add_encoding_flag, add_evaluation_flags, add_input_flags,
                    add_length_flags, add_recurrent_flags, add_run_dir_argument, add_run_flags,
                    add_step_schedule_flags, add_subcommand, blas_threads, check_new_run, check_seed,
                    read_input_lines, resolved_path, resumed_run, run_encoding, settings_from_flags)
from .messages import one_line_messages, print_train_summary, to_stdout, unknown_examples, warn_unknown

# the train flags that are Seq2SeqConfig fields of the same name
FLAGS = ("val_file", "encoding", "level", "model", "hidden_size", "num_layers", "embedding_size", "bidirectional", "attention",
         "dropout", "dtype", "optimizer", "lr", "lr_decay", "lr_decay_every", "min_lr", "batch_size", "grad_clip",
         "teacher_forcing", "steps", "epochs", "time_budget", "eval_every", "eval_pairs", "beam", "seed")
PATH_FLAGS = ("val_file",)
MAX_COUNT = 1_000_000  # `seq2seq data --count`: about 40 s of generating; far more runs for hours


def register(subparsers) -> None:
    from ..data.tasks import TASKS
    from ..training.seq2seq import ATTENTIONS, Seq2SeqConfig

    d = Seq2SeqConfig()
    commands = add_command_group(
        subparsers, "seq2seq", "{train,translate,eval,data}",
        help="encoder-decoder models (with attention) on source<TAB>target pairs",
        description="Read a whole sequence, then write another: train an encoder-decoder on pairs of lines "
                    "(source<TAB>target), translate with greedy or beam search, score exact match and CER.")

    # --- train ----------------------------------------------------------------------------------
    parser = add_subcommand(
        commands, "train", run_train, help="train on a pairs file; checkpoints go to RUN_DIR",
        description="Train an encoder-decoder on PAIRS (one source<TAB>target per line, UTF-8), split 90/5/5 "
                    "into training, validation and test pairs in a seeded order (or all for training with "
                    "--val-file). Each validation prints the loss and the greedy exact match; the best weights "
                    "by exact match are kept; the end decodes the test pairs and writes RUN_DIR/results.json. "
                    "Checkpoints are atomic; Ctrl-C saves and exits; --resume continues exactly.",
        epilog="Example: rnnlab seq2seq data addition --count 50000 > add.tsv && "
               "rnnlab seq2seq train add.tsv --out runs/add")
    parser.add_argument("pairs_file", nargs="?", metavar="PAIRS", help="source<TAB>target lines (may be left out "
                                                                       "with --resume)")
    add_run_flags(parser, out_help="run directory (default: runs/<name of PAIRS>)",
                  resume_help="continue the run in RUN_DIR exactly where its last checkpoint left it; flags left "
                              "out take the saved run's values; --steps counts from the start of the run")
    data = parser.add_argument_group("data")
    data.add_argument("--val-file", metavar="PAIRS", help="validation pairs (then all of PAIRS trains, no test split)")
    data.add_argument("--encoding", metavar="NAME", help=f"text encoding of the pairs files (default: {d.encoding})")
    data.add_argument("--level", choices=("char", "token"),
                      help=f"symbols: characters, or whitespace-separated tokens (default: {d.level})")
    model = parser.add_argument_group("model")
    add_recurrent_flags(model, d, cell_help=f"the encoder's and decoder's cell (default: {d.model})",
                        hidden_help=f"default: {d.hidden_size}",
                        unidirectional_help="read the source left to right only (default: a bidirectional "
                                            "encoder, its final states bridged to the decoder)")
    model.add_argument("--attention", choices=ATTENTIONS, help=f"the attention score, or none (default: {d.attention})")
    model.add_argument("--dropout", type=float, metavar="P", help=f"default: {d.dropout}")
    model.add_argument("--dtype", choices=("float32", "float64"), help=f"default: {d.dtype}")
    optimization = parser.add_argument_group("optimization")
    add_step_schedule_flags(optimization, d, batch_help=f"pairs per step (default: {d.batch_size})")
    optimization.add_argument("--teacher-forcing", type=float, metavar="RATIO",
                              help=f"the share of decoder inputs taken from the reference, the rest from the "
                                   f"model's own predictions (default: {d.teacher_forcing})")
    optimization.add_argument("--seed", type=int, metavar="S", help=f"fixes the split, initialisation, order and "
                                                                    f"dropout (default: {d.seed})")
    add_length_flags(parser, "pairs")
    evaluation = add_evaluation_flags(parser, d)
    evaluation.add_argument("--eval-pairs", type=int, metavar="N",
                            help=f"validation pairs decoded for the exact match (default: {d.eval_pairs})")
    evaluation.add_argument("--beam", type=int, metavar="K", help=f"beam size for the test split (default: {d.beam})")

    # --- translate ------------------------------------------------------------------------------
    parser = add_subcommand(
        commands, "translate", run_translate, help="translate lines from stdin (or --input) with a trained model",
        description="Write one line to stdout for every line read: its translation. Characters unseen in "
                    "training are read as <unk>; their count is reported on stderr.",
        epilog="Example: echo 123+45 | rnnlab seq2seq translate runs/add --beam 5")
    add_run_dir_argument(parser, "seq2seq train")
    add_input_flags(parser, "translate")
    _decoding_flags(parser)

    # --- eval -----------------------------------------------------------------------------------
    parser = add_subcommand(
        commands, "eval", run_eval, help="exact match, character accuracy and CER on a pairs file",
        description="Translate the sources of PAIRS and score them against the targets: exact match, "
                    "character accuracy (position by position) and CER (edit distance / target length).",
        epilog="Example: rnnlab seq2seq eval runs/add test.tsv --beam 5 --json")
    add_run_dir_argument(parser, "seq2seq train")
    parser.add_argument("pairs_file", metavar="PAIRS", help="source<TAB>target lines to score")
    _decoding_flags(parser)
    add_encoding_flag(parser, "PAIRS")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (keys: exact_match, char_accuracy, cer, pairs, "
                             "unknown_characters, pairs_with_unknown, beam, checkpoint, run_dir, seconds)")

    # --- data -----------------------------------------------------------------------------------
    parser = add_subcommand(
        commands, "data", run_data, help="write a built-in task's pairs to stdout",
        description="Pairs for learning and demos: addition ('123+45' -> '168', Keras' addition_rnn), reverse "
                    "('abc' -> 'cba'), dates (human formats such as '25th of June, 2009', '6/25/09', "
                    "'Thursday, June 25, 2009' -> ISO '2009-06-25'). The pairs are distinct; a seed fixes them.",
        epilog="Example: rnnlab seq2seq data dates --count 50000 --seed 1 > dates.tsv")
    parser.add_argument("task", choices=tuple(TASKS), help="which task")
    parser.add_argument("--count", type=int, default=1000, metavar="N", help="pairs to write (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="default: 0")


def _decoding_flags(parser) -> None:
    add_checkpoint_flag(parser)
    parser.add_argument("--beam", type=int, default=1, metavar="K", help="beam size; 1: greedy (default: 1)")
    parser.add_argument("--length-penalty", type=float, default=0.6, metavar="ALPHA",
                        help="beam search picks by log p / length**ALPHA; 0: raw log p (default: 0.6)")
    parser.add_argument("--batch-size", type=int, default=256, metavar="B", help="lines decoded at once (default: 256)")


def _check_decoding_flags(args) -> None:
    require(args.beam >= 1, "--beam", args.beam, "a positive integer (1: greedy)")
    require(math.isfinite(args.length_penalty) and args.length_penalty >= 0, "--length-penalty",
            args.length_penalty, ">= 0 and finite")
    require(args.batch_size >= 1, "--batch-size", args.batch_size, "a positive integer")


# ---------------------------------------------------------------------------------------------------
# the handlers
# ---------------------------------------------------------------------------------------------------

def run_train(args) -> int:
    from ..training import distributed
    from ..training.seq2seq import Seq2SeqConfig, train

    dist = distributed.context()  # under mpiexec: rank 0 alone reads the run directory and prints the summary

    saved_train = None
    if args.resume:
        out, saved_train = resumed_run(args, "seq2seq", dist)
    else:
        if args.pairs_file is None:
            raise RnnlabError("no PAIRS file given; give a file of source<TAB>target lines (make one with "
                              "`rnnlab seq2seq data addition --count 50000 > pairs.tsv`)")
        out = Path(args.out) if args.out else Path("runs") / (Path(args.pairs_file).stem or "seq2seq")
        check_new_run(out, dist)
    values = settings_from_flags(args, FLAGS, saved_train, PATH_FLAGS)
    if args.pairs_file is not None:
        values["pairs_file"] = resolved_path("PAIRS", args.pairs_file)
    config = Seq2SeqConfig.from_dict(values).validate()
    limiter = blas_threads(args.threads)  # noqa: F841  (kept for the run)
    with one_line_messages("--hidden-size, --num-layers or --batch-size"):
        result = train(config, out, resume=args.resume, stream=sys.stderr)
    if args.json and dist.is_root:
        print_train_summary(out, result)
    return 0


def run_translate(args) -> int:
    from ..training.seq2seq import load_seq2seq

    _check_decoding_flags(args)
    model, _, _ = load_seq2seq(args.run_dir, args.checkpoint)
    lines = read_input_lines(args)
    vocabulary = model.source_vocabulary
    unknown, examples = 0, []
    for line in lines:
        unseen = vocabulary.unknown(line)
        unknown += sum(symbol in set(unseen) for symbol in vocabulary.split(line))
        examples.extend(s for s in unseen if s not in examples)
    texts = [line for line in lines if line.strip()]
    translations = iter(model.translate(texts, beam_size=args.beam, length_penalty=args.length_penalty,
                                        batch_size=args.batch_size) if texts else [])
    warn_unknown(unknown, examples, "token" if vocabulary.level == "token" else "character")
    to_stdout("".join((next(translations) if line.strip() else "") + "\n" for line in lines), end="")
    return 0


def run_eval(args) -> int:
    from ..data.pair_files import read_pairs
    from ..training.loop import counted
    from ..training.seq2seq import load_seq2seq
    from ..training.seq2seq_eval import translate_pairs

    _check_decoding_flags(args)
    model, saved, checkpoint = load_seq2seq(args.run_dir, args.checkpoint)
    pairs = read_pairs(args.pairs_file, run_encoding(args, saved))
    _, score = translate_pairs(model, pairs, beam=args.beam, length_penalty=args.length_penalty,
                               batch_size=args.batch_size)
    if score.unknown_characters:
        examples = unknown_examples([source for source, _ in pairs], model.source_vocabulary)
        warn_unknown(score.unknown_characters, examples,
                     "token" if model.source_vocabulary.level == "token" else "character")
    if args.json:
        to_stdout(strict_json.dumps({**score.to_dict(), "checkpoint": checkpoint, "run_dir": str(args.run_dir)}))
    else:
        to_stdout(f"exact match {100 * score.exact_match:.2f}%, char accuracy {100 * score.char_accuracy:.2f}%, "
              f"CER {score.cer:.4f} over {counted(score.pairs, 'pair')} (beam {score.beam}, {checkpoint} weights "
              f"of {args.run_dir})")
    return 0


def run_data(args) -> int:
    from ..data.pair_files import format_pairs
    from ..data.tasks import generate

    require(args.count >= 1, "--count", args.count, "a positive integer")
    require(args.count <= MAX_COUNT, "--count", args.count, f"at most {MAX_COUNT:,} (write several files with "
            f"different --seed for more)")
    check_seed(args.seed)
    try:
        pairs = generate(args.task, args.count, args.seed)
    except ValueError as error:
        raise RnnlabError(f"--count {args.count}: {error}") from None
    to_stdout(format_pairs(pairs), end="")
    return 0
