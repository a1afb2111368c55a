"""``rnnlab tag train|apply|eval``: a label for every character; the task: restoring spaces.

Parsing and printing only: the loop is :mod:`rnnlab.training.tagging`, the scores and the restoring
:mod:`rnnlab.training.tagging_eval`, the task's data :mod:`rnnlab.data.spacing`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .. import strict_json
from ..errors import RnnlabError
from .flags import (add_checkpoint_flag, add_command_group, add_encoding_flag, add_evaluation_flags, add_input_flags,
                    add_length_flags, add_recurrent_flags, add_run_dir_argument, add_run_flags,
                    add_step_schedule_flags, add_subcommand, blas_threads, check_new_run, read_input_lines,
                    resolved_path, resumed_run, run_encoding, settings_from_flags)
from .messages import one_line_messages, print_train_summary, to_stdout, unknown_examples, warn_unknown

# the train flags that are TagConfig fields of the same name
FLAGS = ("val_file", "task", "encoding", "max_length", "model", "hidden_size", "num_layers", "embedding_size",
         "bidirectional", "dropout", "dtype", "optimizer", "lr", "lr_decay", "lr_decay_every", "min_lr", "batch_size",
         "grad_clip", "steps", "epochs", "time_budget", "eval_every", "eval_lines", "seed")
PATH_FLAGS = ("val_file",)


def register(subparsers) -> None:
    from ..training.tagging import TASKS, TagConfig

    d = TagConfig()
    commands = add_command_group(
        subparsers, "tag", "{train,apply,eval}",
        help="per-character tagging: restore the spaces of text written without them",
        description="A label for every step: train a (bidirectional) recurrent tagger to restore word "
                    "boundaries (remove the spaces of any text, tag each character with 'a space follows').")

    parser = add_subcommand(
        commands, "train", run_train, help="train a tagger on a text; checkpoints go to RUN_DIR",
        description="Train a tagger on TEXT's lines (the first 90% train, the next 5% validate, the last 5% "
                    "test; or all train with --val-file). Each validation prints precision, recall and F1 of "
                    "the predicted spaces; the best weights by F1 are kept; the end scores the test lines and "
                    "writes RUN_DIR/results.json. Checkpoints are atomic; Ctrl-C saves and exits; --resume "
                    "continues exactly.",
        epilog="Example: rnnlab tag train shakespeare.txt --task spacing --out runs/spacing")
    parser.add_argument("text_file", nargs="?", metavar="TEXT", help="UTF-8 text with spaces between words "
                                                                     "(may be left out with --resume)")
    parser.add_argument("--task", choices=TASKS, help=f"what to tag (default: {d.task})")
    add_run_flags(parser, out_help="run directory (default: runs/<name of TEXT>-<task>)",
                  resume_help="continue the run in RUN_DIR exactly where its last checkpoint left it")
    data = parser.add_argument_group("data")
    data.add_argument("--val-file", metavar="TEXT", help="validation text (then all of TEXT trains, no test split)")
    data.add_argument("--encoding", metavar="NAME", help=f"default: {d.encoding}")
    data.add_argument("--max-length", type=int, metavar="N",
                      help=f"cut longer lines at word boundaries into pieces of N characters (default: {d.max_length})")
    model = parser.add_argument_group("model")
    add_recurrent_flags(model, d, cell_help=f"default: {d.model}",
                        hidden_help=f"per direction (default: {d.hidden_size})",
                        unidirectional_help="read each line left to right only (default: both ways)")
    model.add_argument("--dropout", type=float, metavar="P", help=f"default: {d.dropout}")
    model.add_argument("--dtype", choices=("float32", "float64"), help=f"default: {d.dtype}")
    optimization = parser.add_argument_group("optimization")
    add_step_schedule_flags(optimization, d, batch_help=f"lines per step (default: {d.batch_size})")
    optimization.add_argument("--seed", type=int, metavar="S", help=f"default: {d.seed}")
    add_length_flags(parser, "lines")
    evaluation = add_evaluation_flags(parser, d)
    evaluation.add_argument("--eval-lines", type=int, metavar="N",
                            help=f"validation lines scored at each validation (default: {d.eval_lines})")

    parser = add_subcommand(
        commands, "apply", run_apply, help="restore the spaces of lines from stdin (or --input)",
        description="For every line read, write it with its whitespace removed and spaces put back where the "
                    "tagger says. Characters unseen in training are tagged as <unk>; their count goes to stderr.",
        epilog="Example: echo 'tobeornottobe' | rnnlab tag apply runs/spacing")
    add_run_dir_argument(parser, "tag train")
    add_input_flags(parser, "restore")
    add_checkpoint_flag(parser)

    parser = add_subcommand(
        commands, "eval", run_eval, help="precision, recall and F1 of the restored spaces of a text",
        description="Remove the spaces of TEXT's lines, restore them with the tagger and score the result: "
                    "precision, recall and F1 of the spaces, and the share of lines restored exactly.",
        epilog="Example: rnnlab tag eval runs/spacing held_out.txt --json")
    add_run_dir_argument(parser, "tag train")
    parser.add_argument("text_file", metavar="TEXT", help="text with its spaces (the reference)")
    add_checkpoint_flag(parser)
    add_encoding_flag(parser, "TEXT")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (keys: precision, recall, f1, exact_line, lines, characters, "
                             "spaces, unknown_characters, checkpoint, run_dir)")


def run_train(args) -> int:
    from ..training import distributed
    from ..training.tagging import TagConfig, train

    dist = distributed.context()  # under mpiexec: rank 0 alone reads the run directory and prints the summary

    saved_train = None
    if args.resume:
        out, saved_train = resumed_run(args, "tagger", dist)
    else:
        if args.text_file is None:
            raise RnnlabError("no TEXT file given; give a text whose words are separated by spaces")
        out = Path(args.out) if args.out else Path("runs") / f"{Path(args.text_file).stem or 'text'}-{args.task or 'spacing'}"
        check_new_run(out, dist)
    values = settings_from_flags(args, FLAGS, saved_train, PATH_FLAGS)
    if args.text_file is not None:
        values["text_file"] = resolved_path("TEXT", args.text_file)
    config = TagConfig.from_dict(values).validate()
    limiter = blas_threads(args.threads)  # noqa: F841  (kept for the run)
    with one_line_messages("--hidden-size, --num-layers, --batch-size or --max-length"):
        result = train(config, out, resume=args.resume, stream=sys.stderr)
    if args.json and dist.is_root:
        print_train_summary(out, result)
    return 0


def run_apply(args) -> int:
    from ..training.tagging import load_tagger
    from ..training.tagging_eval import restore_lines

    model, vocabulary, _, _ = load_tagger(args.run_dir, args.checkpoint)
    lines = read_input_lines(args)
    restored, unknown = restore_lines(model, lines, vocabulary)
    warn_unknown(unknown, unknown_examples(["".join(line.split()) for line in lines], vocabulary))
    to_stdout("".join(line + "\n" for line in restored), end="")
    return 0


def run_eval(args) -> int:
    from ..data.spacing import tagged_lines
    from ..data.text import read_text
    from ..training.tagging import load_tagger
    from ..training.tagging_eval import score_spacing

    model, vocabulary, saved, checkpoint = load_tagger(args.run_dir, args.checkpoint)
    text = read_text(args.text_file, encoding=run_encoding(args, saved), bytes_hint=False)
    lines = tagged_lines(text, int(saved.get("train", {}).get("max_length", 256)))
    if not lines:
        raise RnnlabError(f"{args.text_file}: holds no words; give a text with words separated by spaces")
    score = score_spacing(model, lines, vocabulary)
    warn_unknown(score.unknown_characters, unknown_examples([c for c, _ in lines], vocabulary))
    if args.json:
        to_stdout(strict_json.dumps({**score.to_dict(), "checkpoint": checkpoint, "run_dir": str(args.run_dir)}))
    else:
        to_stdout(f"spaces: precision {score.precision:.4f}, recall {score.recall:.4f}, F1 {score.f1:.4f}; "
              f"exact lines {100 * score.exact_line:.2f}% of {score.lines:,} ({checkpoint} weights of {args.run_dir})")
    return 0
