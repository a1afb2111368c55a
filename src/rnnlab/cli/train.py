"""``rnnlab train [TEXT ...] --out RUN_DIR``: train a character-level language model.

Every model and data flag defaults to ``None`` here so that ``--resume`` can tell a flag the user gave
(which must agree with the saved run when it decides the model or the data) from one left out (which
takes the saved run's value). Fresh runs fill the gaps from :class:`rnnlab.training.config.TrainConfig`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import RnnlabError
from ..training.rundir import open_for_resume
from .flags import one_line_errors, resolved_path, steps_or_duration
from .messages import one_line_messages, to_stdout

# flag -> TrainConfig field, in the order --help lists them
FLAGS = {
    "model": "model", "hidden_size": "hidden_size", "num_layers": "num_layers", "embedding_size": "embedding_size",
    "dropout": "dropout", "seq_len": "seq_len", "batch_size": "batch_size", "optimizer": "optimizer", "lr": "lr",
    "grad_clip": "grad_clip", "steps": "steps", "epochs": "epochs", "time_budget": "time_budget",
    "eval_every": "eval_every", "eval_chars": "eval_chars", "checkpoint_every": "checkpoint_every",
    "sample_length": "sample_length", "seed": "seed", "encoding": "encoding", "byte_mode": "byte_mode",
    "dtype": "dtype", "glob": "glob", "lr_schedule": "lr_schedule", "warmup": "warmup", "min_lr": "min_lr",
    "lr_decay": "lr_decay", "lr_decay_every": "lr_decay_every", "keep": "keep", "plot": "plot",
}
SCHEDULE_FLAGS = ("min_lr", "lr_decay", "lr_decay_every")  # refused where the chosen schedule would ignore them


def register(subparsers) -> None:
    from ..training.config import CHECKPOINT_SECONDS, DEFAULT_TIME_BUDGET, MODELS, OPTIMIZERS, TrainConfig
    from ..training.schedule import SCHEDULES

    defaults = TrainConfig()
    parser = subparsers.add_parser(
        "train", help="train a character-level language model on a text file",
        description="Train a character-level language model (Embedding -> RNN/LSTM/GRU -> Linear) on a text "
                    "file. A progress bar shows step, loss, characters/s and time left; each evaluation prints "
                    "the validation loss (nats) and bits per character and a short sample. Checkpoints (latest "
                    "and best) are written atomically to RUN_DIR; Ctrl-C saves and exits.",
        epilog=f"Stops at the first of --steps, --epochs and --time-budget; with none of them it trains for "
               f"{DEFAULT_TIME_BUDGET:g} seconds. Example: rnnlab train hamlet.txt --out runs/hamlet --steps 2000")
    parser.add_argument("text_file", nargs="*", metavar="TEXT",
                        help="UTF-8 text files or folders to train on, read in order (a folder recursively, its "
                             "files sorted), each ending with a newline (default: the source files of Python's "
                             "own standard library)")
    parser.add_argument("--out", metavar="RUN_DIR",
                        help="run directory for config.json and checkpoints (default: runs/<name of the text>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in RUN_DIR exactly where its last checkpoint left it; flags left "
                             "out take the saved run's values; --steps counts from the start of the run")
    parser.add_argument("--init-from", metavar="OLD_RUN",
                        help="fine-tune: start a new run from the best weights of OLD_RUN (same model shape); "
                             "characters of TEXT it has never seen are added to its vocabulary")
    parser.add_argument("--json", action="store_true",
                        help="at the end print one JSON object on stdout (steps, time, val_bpc, test_bpc, run_dir, "
                             "best_val_bpc, stop_reason); progress and samples stay on stderr")
    d = defaults
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=MODELS, help=f"recurrent cell (default: {d.model})")
    model.add_argument("--hidden-size", type=int, metavar="N",
                       help=f"features of the hidden state (default: {d.hidden_size})")
    model.add_argument("--num-layers", type=int, metavar="N",
                       help=f"stacked recurrent layers (default: {d.num_layers})")
    model.add_argument("--embedding-size", type=int, metavar="N",
                       help="features of a character's embedding (default: the hidden size, at most 128)")
    model.add_argument("--dropout", type=float, metavar="P",
                       help=f"dropout between recurrent layers (default: {d.dropout})")
    model.add_argument("--dtype", choices=("float32", "float64"), help=f"floating type (default: {d.dtype})")
    data = parser.add_argument_group("data")
    data.add_argument("--encoding", metavar="NAME", help=f"text encoding of TEXT_FILE (default: {d.encoding})")
    data.add_argument("--bytes", dest="byte_mode", action="store_const", const=True, default=None,
                      help="byte mode: model the raw bytes (for text that is not UTF-8 or mixes encodings)")
    data.add_argument("--glob", metavar="PATTERN",
                      help="in folders, read only the files whose name matches PATTERN, e.g. '*.txt' (default: all "
                           "but hidden and empty files)")
    data.add_argument("--split", metavar="TRAIN,VAL,TEST",
                      help=f"fractions of the text for training, validation and test, in that order "
                           f"(default: {','.join(f'{f:g}' for f in d.split)})")
    data.add_argument("--val-file", metavar="FILE",
                      help="validate on FILE instead; the whole TEXT then trains (no test part, no --split)")
    data.add_argument("--seq-len", type=int, metavar="T",
                      help=f"characters per stream per step, the truncated-BPTT length (default: {d.seq_len})")
    data.add_argument("--batch-size", type=int, metavar="B",
                      help=f"parallel contiguous streams (default: {d.batch_size})")
    optimization = parser.add_argument_group("optimization")
    optimization.add_argument("--optimizer", choices=OPTIMIZERS,
                              help=f"update rule, PyTorch's (default: {d.optimizer})")
    optimization.add_argument("--lr", type=float, help=f"learning rate (default: {d.lr})")
    optimization.add_argument("--lr-schedule", choices=SCHEDULES,
                              help=f"learning-rate schedule: constant, step (times --lr-decay every --lr-decay-every "
                                   f"steps) or cosine (down to --min-lr at the last step; needs --steps or "
                                   f"--epochs) (default: {d.lr_schedule}; step when --lr-decay* is given)")
    optimization.add_argument("--warmup", type=int, metavar="STEPS",
                              help=f"steps of linear warmup from 0 to --lr (default: {d.warmup})")
    optimization.add_argument("--min-lr", type=float, metavar="LR",
                              help=f"the lowest rate of the step and cosine schedules (default: {d.min_lr:g})")
    optimization.add_argument("--lr-decay", type=float, metavar="FACTOR",
                              help=f"step schedule: multiply the rate by FACTOR in (0, 1] ... (default: {d.lr_decay})")
    optimization.add_argument("--lr-decay-every", type=int, metavar="STEPS",
                              help=f"... every STEPS steps (default: {d.lr_decay_every})")
    optimization.add_argument("--grad-clip", type=float, metavar="NORM",
                              help=f"clip the global gradient norm to this; 0: off (default: {d.grad_clip})")
    optimization.add_argument("--seed", type=int, metavar="S",
                              help=f"seed for initialisation, dropout and sampling (default: {d.seed})")
    length = parser.add_argument_group("how long")
    length.add_argument("--steps", type=int, metavar="N", help="stop at this step, counted from the start of the run")
    length.add_argument("--epochs", type=float, metavar="E", help="stop after this many passes over the training split")
    length.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="stop after this many seconds of training (the final test-split score comes on top)")
    evaluation = parser.add_argument_group("evaluation and checkpoints")
    evaluation.add_argument("--eval-every", type=steps_or_duration, metavar="N|DURATION",
                            help=f"steps (200) or a duration (60s, 2m) between validation evaluations and samples; "
                                 f"0: only at the end (default: {d.eval_every})")
    evaluation.add_argument("--eval-chars", type=int, metavar="N",
                            help=f"validation characters scored per evaluation (default: {d.eval_chars})")
    evaluation.add_argument("--checkpoint-every", type=steps_or_duration, metavar="N|DURATION",
                            help=f"steps or a duration (5m) between checkpoints (default: at each evaluation and at "
                                 f"least every {CHECKPOINT_SECONDS:g} s; always at the start and the end)")
    evaluation.add_argument("--sample-length", type=int, metavar="N",
                            help=f"characters of the sample shown at each evaluation; 0: none "
                                 f"(default: {d.sample_length})")
    evaluation.add_argument("--keep", type=int, metavar="N",
                            help="also keep the last N checkpoints' weights as checkpoints/step-NNNNNN.safetensors, "
                                 "for `sample/eval --checkpoint STEP` (default: 0, none)")
    evaluation.add_argument("--plot", action="store_const", const=True, default=None,
                            help="redraw RUN_DIR/curves.png at each evaluation (needs matplotlib: "
                                 "pip install 'rnnlab[plot]')")
    one_line_errors(parser)
    parser.set_defaults(handler=run)


def default_out(texts) -> Path:
    """``runs/<name of the (first) text>``, ``runs/stdlib`` for the default corpus."""
    if not texts:
        return Path("runs") / "stdlib"
    first = Path(texts[0])
    return Path("runs") / (first.stem or first.resolve().name or "text")


def resolved_texts(texts):
    """TEXT as config.json keeps it: one absolute path (a str), several (a list), or None (none given)."""
    from ..data.sources import find_text_files

    if not texts:
        return None
    find_text_files(texts)  # a missing path or a symlink loop: one line now, before any path is resolved
    paths = [str(Path(t).expanduser().resolve()) for t in texts]
    return paths[0] if len(paths) == 1 else paths


def build_config(args, saved_train: dict | None):
    """The run's TrainConfig: given flags first, then the saved run's settings (resume), then defaults.

    On resume the saved limits carry over too: an interrupted ``--steps 1000`` run resumed without flags
    goes on to step 1000 (and a saved ``--time-budget`` gives this invocation that many seconds).
    """
    from ..training.config import TrainConfig

    from ..data.sources import parse_split

    values = dict(saved_train or {})
    for flag, name in FLAGS.items():
        given = getattr(args, flag)
        if given is not None:
            values[name] = given
    if args.text_file:
        values["text_file"] = resolved_texts(args.text_file)
    elif saved_train is None:
        values["text_file"] = None
    if args.split is not None:
        values["split"] = list(parse_split(args.split))
    if args.val_file is not None:
        values["val_file"] = resolved_path("--val-file", args.val_file)
    if args.init_from is not None:
        values["init_from"] = str(args.init_from)
    return TrainConfig.from_dict(values)


def check_resume_flags(args, saved_train: dict, run_dir: Path) -> None:
    """A flag given with --resume that decides the model or the data must equal the saved value."""
    from ..training.config import TrainConfig

    for flag, name in FLAGS.items():
        given = getattr(args, flag)
        if name in TrainConfig.RESUME_MUST_MATCH and given is not None and name in saved_train \
                and given != saved_train[name]:
            shown = "--bytes" if flag == "byte_mode" else "--" + flag.replace("_", "-")
            raise RnnlabError(f"{shown} {given} differs from the saved run's {saved_train[name]} "
                              f"({run_dir / 'config.json'}); drop the flag to resume, or train into a new --out")
    if args.text_file and saved_train.get("text_file") is not None \
            and resolved_texts(args.text_file) != saved_train["text_file"]:
        raise RnnlabError(f"TEXT {' '.join(args.text_file)} differs from the saved run's {saved_train['text_file']} "
                          f"({run_dir / 'config.json'}); resume on the same text, or train into a new --out")


def check_data_flags(args) -> None:
    """Flags that exclude each other, as one line."""
    if args.val_file is not None and args.split is not None:
        raise RnnlabError("--split and --val-file exclude each other: with --val-file the whole TEXT trains; "
                          "drop one of them")
    if args.init_from is not None and args.resume:
        raise RnnlabError("--init-from starts a new run from another run's weights; --resume continues one: "
                          "drop one of them")


def fine_tune_settings(args) -> dict:
    """``--init-from``: the model-shape settings of the run to start from (given flags must agree)."""
    from ..training.finetune import INHERITED, check_flags_agree, inherited_settings
    from ..training.rundir import open_run

    _, config = open_run(args.init_from, "charlm")
    inherited = inherited_settings(config.get("train") or {}, config["model"])
    check_flags_agree({name: getattr(args, name) for name in INHERITED}, inherited, args.init_from)
    return inherited


def run(args) -> int:
    from ..training import distributed
    from ..training.charlm import train
    from ..training.schedule import check_schedule, implied_schedule
    from ..training.summary import json_summary

    dist = distributed.context()  # under mpiexec: rank 0 alone reads the run directory and prints the summary
    check_data_flags(args)
    args.lr_schedule = implied_schedule(args.lr_schedule, args.lr_decay, args.lr_decay_every)
    out = Path(args.out) if args.out else default_out(args.text_file)
    saved_train = None
    if args.resume:
        saved_train = dist.on_root(open_for_resume, out, "charlm")[1]["train"]
        check_resume_flags(args, saved_train, out)
    elif dist.on_root(lambda: (out / "config.json").exists() and (out / "training_state.safetensors").exists()):
        raise RnnlabError(f"{out}: already holds a run; add --resume to continue it, or choose another --out")
    if args.init_from is not None:
        saved_train = fine_tune_settings(args)
    config = build_config(args, saved_train)
    config.validate()
    check_schedule(config.lr_schedule, config.lr, config.warmup, config.min_lr, config.lr_decay,
                   config.lr_decay_every, given=[name for name in SCHEDULE_FLAGS if getattr(args, name) is not None])
    with one_line_messages("--hidden-size, --num-layers, --batch-size or --seq-len"):
        result = train(config, out, resume=args.resume, stream=sys.stderr)
    if args.json and dist.is_root:
        to_stdout(json_summary(result.step, result.time, result.val_loss, result.test_loss, result.run_dir,
                           result.best_val_loss, result.stop_reason), flush=True)
    return 0
