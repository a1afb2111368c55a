"""``rnnlab train [TEXT_FILE] --out RUN_DIR``: train a character-level language model.

Every model and data flag defaults to ``None`` here so that ``--resume`` can tell a flag the user gave
(which must agree with the saved run when it decides the model or the data) from one left out (which
takes the saved run's value). Fresh runs fill the gaps from :class:`rnnlab.training.config.TrainConfig`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import RnnlabError
from ..training.rundir import open_for_resume
from .flags import one_line_errors
from .messages import one_line_messages

# flag -> TrainConfig field, in the order --help lists them
FLAGS = {
    "model": "model", "hidden_size": "hidden_size", "num_layers": "num_layers", "embedding_size": "embedding_size",
    "dropout": "dropout", "seq_len": "seq_len", "batch_size": "batch_size", "optimizer": "optimizer", "lr": "lr",
    "grad_clip": "grad_clip", "steps": "steps", "epochs": "epochs", "time_budget": "time_budget",
    "eval_every": "eval_every", "eval_chars": "eval_chars", "checkpoint_every": "checkpoint_every",
    "sample_length": "sample_length", "seed": "seed", "encoding": "encoding", "byte_mode": "byte_mode",
    "dtype": "dtype",
}


def register(subparsers) -> None:
    from ..training.config import DEFAULT_TIME_BUDGET, MODELS, OPTIMIZERS, TrainConfig

    defaults = TrainConfig()
    parser = subparsers.add_parser(
        "train", help="train a character-level language model on a text file",
        description="Train a character-level language model (Embedding -> RNN/LSTM/GRU -> Linear) on a text "
                    "file. A progress bar shows step, loss, characters/s and time left; each evaluation prints "
                    "the validation loss (nats) and bits per character and a short sample. Checkpoints (latest "
                    "and best) are written atomically to RUN_DIR; Ctrl-C saves and exits.",
        epilog=f"Stops at the first of --steps, --epochs and --time-budget; with none of them it trains for "
               f"{DEFAULT_TIME_BUDGET:g} seconds. Example: rnnlab train hamlet.txt --out runs/hamlet --steps 2000")
    parser.add_argument("text_file", nargs="?", metavar="TEXT_FILE",
                        help="UTF-8 text to train on (default: the source files of Python's own standard library)")
    parser.add_argument("--out", metavar="RUN_DIR",
                        help="run directory for config.json and checkpoints (default: runs/<name of the text>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in RUN_DIR exactly where its last checkpoint left it; flags left "
                             "out take the saved run's values; --steps counts from the start of the run")
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
    data.add_argument("--seq-len", type=int, metavar="T",
                      help=f"characters per stream per step, the truncated-BPTT length (default: {d.seq_len})")
    data.add_argument("--batch-size", type=int, metavar="B",
                      help=f"parallel contiguous streams (default: {d.batch_size})")
    optimization = parser.add_argument_group("optimization")
    optimization.add_argument("--optimizer", choices=OPTIMIZERS,
                              help=f"update rule, PyTorch's (default: {d.optimizer})")
    optimization.add_argument("--lr", type=float, help=f"learning rate (default: {d.lr})")
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
    evaluation.add_argument("--eval-every", type=int, metavar="N",
                            help=f"steps between validation evaluations; 0: only at the end (default: {d.eval_every})")
    evaluation.add_argument("--eval-chars", type=int, metavar="N",
                            help=f"validation characters scored per evaluation (default: {d.eval_chars})")
    evaluation.add_argument("--checkpoint-every", type=int, metavar="N",
                            help=f"steps between checkpoints (default: at each evaluation, every {d.eval_every} steps "
                                 f"with --eval-every 0; always at the end)")
    evaluation.add_argument("--sample-length", type=int, metavar="N",
                            help=f"characters of the sample shown at each evaluation; 0: none "
                                 f"(default: {d.sample_length})")
    one_line_errors(parser)
    parser.set_defaults(handler=run)


def default_out(text_file: str | None) -> Path:
    return Path("runs") / ("stdlib" if text_file is None else Path(text_file).stem or "text")


def build_config(args, saved_train: dict | None):
    """The run's TrainConfig: given flags first, then the saved run's settings (resume), then defaults.

    On resume the saved limits carry over too: an interrupted ``--steps 1000`` run resumed without flags
    goes on to step 1000 (and a saved ``--time-budget`` gives this invocation that many seconds).
    """
    from ..training.config import TrainConfig

    values = dict(saved_train or {})
    for flag, name in FLAGS.items():
        given = getattr(args, flag)
        if given is not None:
            values[name] = given
    if args.text_file is not None:
        values["text_file"] = str(Path(args.text_file).resolve())
    elif saved_train is None:
        values["text_file"] = None
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
    if args.text_file is not None and saved_train.get("text_file") is not None \
            and str(Path(args.text_file).resolve()) != str(Path(saved_train["text_file"]).resolve()):
        raise RnnlabError(f"TEXT_FILE {args.text_file} differs from the saved run's {saved_train['text_file']} "
                          f"({run_dir / 'config.json'}); resume on the same text, or train into a new --out")


def run(args) -> int:
    from ..training.charlm import train

    out = Path(args.out) if args.out else default_out(args.text_file)
    saved_train = None
    if args.resume:
        saved_train = open_for_resume(out, "charlm")[1]["train"]
        check_resume_flags(args, saved_train, out)
    elif (out / "config.json").exists() and (out / "training_state.safetensors").exists():
        raise RnnlabError(f"{out}: already holds a run; add --resume to continue it, or choose another --out")
    config = build_config(args, saved_train)
    config.validate()
    with one_line_messages("--hidden-size, --num-layers, --batch-size or --seq-len"):
        train(config, out, resume=args.resume, stream=sys.stderr)
    return 0
