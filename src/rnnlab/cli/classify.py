"""``rnnlab classify train|eval``: sequence classification of images read row by row (MNIST, Fashion-MNIST, IDX).

Every model and data flag of ``train`` defaults to ``None`` here so that ``--resume`` can tell a flag the
user gave (which must agree with the saved run when it decides the model or the data) from one left out
(which takes the saved run's value). Fresh runs fill the gaps from
:class:`rnnlab.training.config.ClassifyConfig`. Values are checked after parsing, and a mistyped flag
is one line too (``rnnlab: error: argument --epochs: invalid int value: 'x'``), not a usage block.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .. import strict_json
from ..errors import RnnlabError
from .flags import (add_checkpoint_flag, add_command_group, add_run_dir_argument, add_subcommand, check_new_run,
                    resolved_path, resumed_run)
from .messages import one_line_messages, to_stdout

# flag -> ClassifyConfig field, in the order --help lists them
FLAGS = ("dataset", "data_dir", "idx", "train_size", "val_size", "test_size", "model", "hidden_size", "num_layers",
         "bidirectional", "pool", "init", "dropout", "dtype", "optimizer", "lr", "lr_decay", "batch_size",
         "grad_clip", "epochs", "steps", "time_budget", "seed")


def register(subparsers) -> None:
    from ..models.classifier import INITS, POOLS
    from ..training.config import DATASETS, MODELS, OPTIMIZERS, ClassifyConfig

    defaults = ClassifyConfig()
    commands = add_command_group(
        subparsers, "classify", "{train,eval}",
        help="classify sequences: images read row by row (MNIST, Fashion-MNIST, any IDX files)",
        description="Train and evaluate a sequence classifier (RNN/LSTM/GRU -> last or mean output -> Linear) "
                    "on images read as sequences of rows: a 28x28 image is 28 steps of 28 pixels.")

    # --- train ----------------------------------------------------------------------------------
    parser = add_subcommand(
        commands, "train", run_train, help="train a classifier; checkpoints go to RUN_DIR",
        description="Train a sequence classifier on images read row by row. Pixels are scaled to [0, 1] "
                    "(uint8 / 255). Each epoch prints the training loss and accuracy and the test (and "
                    "validation, with --val-size) loss and accuracy; the end prints the test confusion matrix "
                    "and writes RUN_DIR/results.json. Checkpoints are written atomically after every epoch "
                    "and at the end; Ctrl-C saves and exits; --resume continues exactly.",
        epilog="Example: rnnlab classify train --dataset fashion-mnist --out runs/fmnist --model lstm "
               "--hidden-size 128 --epochs 5")
    parser.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/classify-<dataset>-<model>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in RUN_DIR where its last checkpoint left it; --epochs and "
                             "--steps count from the start of the run")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", metavar="{" + ",".join(DATASETS) + "}",
                      help=f"a named dataset, found with --data-dir, $RNNLAB_DATA, the cache or downloaded "
                           f"(default: {defaults.dataset})")
    data.add_argument("--data-dir", metavar="DIR", help="directory holding the dataset's four files")
    data.add_argument("--idx", nargs=4, metavar=("TRAIN_IMAGES", "TRAIN_LABELS", "TEST_IMAGES", "TEST_LABELS"),
                      help="any IDX files instead of a named dataset (images (N, rows, cols), labels 0..C-1)")
    data.add_argument("--train-size", type=int, metavar="N", help="train on the first N training images (default: all)")
    data.add_argument("--val-size", type=int, metavar="M",
                      help="hold out the last M training images to pick the best weights (default: 0)")
    data.add_argument("--test-size", type=int, metavar="M", help="score the first M test images (default: all)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", metavar="{" + ",".join(MODELS) + "}",
                       help=f"recurrent cell (default: {defaults.model})")
    model.add_argument("--hidden-size", type=int, metavar="H", help=f"default: {defaults.hidden_size}")
    model.add_argument("--num-layers", type=int, metavar="K", help=f"default: {defaults.num_layers}")
    model.add_argument("--bidirectional", action="store_const", const=True, default=None,
                       help="read each image top-down and bottom-up")
    model.add_argument("--pool", metavar="{" + ",".join(POOLS) + "}",
                       help=f"last: the top layer's final state; mean: the mean output over the rows "
                            f"(default: {defaults.pool})")
    model.add_argument("--init", metavar="{" + ",".join(INITS) + "}",
                       help="identity: IRNN (recurrent weights = I, biases 0), for rnn and rnn_relu "
                            f"(default: {defaults.init})")
    model.add_argument("--dropout", type=float, metavar="P",
                       help=f"between recurrent layers (default: {defaults.dropout})")
    model.add_argument("--dtype", metavar="{float32,float64}", help=f"default: {defaults.dtype}")
    optimization = parser.add_argument_group("optimization")
    optimization.add_argument("--optimizer", metavar="{" + ",".join(OPTIMIZERS) + "}",
                              help=f"default: {defaults.optimizer}")
    optimization.add_argument("--lr", type=float, help=f"learning rate (default: {defaults.lr})")
    optimization.add_argument("--lr-decay", type=float, metavar="GAMMA",
                              help=f"multiply the learning rate by this after every epoch "
                                   f"(default: {defaults.lr_decay})")
    optimization.add_argument("--batch-size", type=int, metavar="B", help=f"default: {defaults.batch_size}")
    optimization.add_argument("--grad-clip", type=float, metavar="NORM",
                              help=f"clip the global gradient norm to this; 0: off (default: {defaults.grad_clip})")
    optimization.add_argument("--seed", type=int, metavar="S", help=f"seed for initialisation, shuffling and dropout "
                                                       f"(default: {defaults.seed})")
    length = parser.add_argument_group("how long (the first limit reached stops the run)")
    length.add_argument("--epochs", type=int, metavar="E", help=f"passes over the training images (default: "
                                                                f"{defaults.epochs})")
    length.add_argument("--steps", type=int, metavar="N", help="optimizer steps, counted from the start of the run")
    length.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="seconds of training in this invocation (evaluations not counted)")

    # --- eval -----------------------------------------------------------------------------------
    parser = add_subcommand(
        commands, "eval", run_eval, help="accuracy, loss and confusion matrix of a trained classifier",
        description="Score the classifier in RUN_DIR on a test set: by default the one it was trained with.",
        epilog="Example: rnnlab classify eval runs/fmnist --json")
    add_run_dir_argument(parser, "classify train")
    parser.add_argument("--dataset", metavar="{" + ",".join(DATASETS) + "}", help="score this dataset's test set")
    parser.add_argument("--data-dir", metavar="DIR", help="directory holding the dataset's four files")
    parser.add_argument("--idx", nargs=2, metavar=("TEST_IMAGES", "TEST_LABELS"), help="score these IDX files")
    parser.add_argument("--test-size", type=int, metavar="M", help="score the first M images (default: the run's)")
    add_checkpoint_flag(parser)
    parser.add_argument("--batch-size", type=int, default=1000, metavar="B",
                        help="images per forward pass (default: 1000)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (keys: accuracy, loss, count, confusion_matrix, classes, "
                             "checkpoint, run_dir, data)")


# ---------------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------------

def build_config(args, saved_train: dict | None):
    """The run's ClassifyConfig: given flags first, then the saved run's settings (resume), then defaults.

    On resume the saved limits carry over too (as ``rnnlab train`` does): an interrupted ``--epochs 10`` run
    resumed without flags goes on to epoch 10, and a saved ``--time-budget`` gives this invocation that long.
    """
    from ..training.config import ClassifyConfig

    values = dict(saved_train or {})
    if args.idx is not None:
        values["idx"] = [resolved_path("--idx", p) for p in args.idx]
        values["dataset"] = None
    elif args.dataset is not None:
        values["idx"] = None
    for flag in FLAGS:
        given = getattr(args, flag)
        if given is not None and flag != "idx":
            values[flag] = given
    if args.data_dir is not None:
        values["data_dir"] = resolved_path("--data-dir", args.data_dir)
    return ClassifyConfig.from_dict(values)


def default_out(config) -> Path:
    source = "idx" if config.idx is not None else config.dataset
    return Path("runs") / f"classify-{source}-{config.model}"


def run_train(args) -> int:
    from ..training import distributed
    from ..training.classify import check_resume_matches, train

    dist = distributed.context()  # under mpiexec: rank 0 alone reads the run directory

    if args.idx is not None and args.dataset is not None:
        raise RnnlabError("--dataset and --idx both given; use a named dataset or four IDX files, not both")
    saved_train = None
    if args.resume:
        out, saved_train = resumed_run(args, "classify", dist)
        config = build_config(args, saved_train)
        check_resume_matches(config, saved_train, out)
    else:
        config = build_config(args, None)
        out = Path(args.out) if args.out else default_out(config)
        check_new_run(out, dist)
    config.validate()
    with one_line_messages("--hidden-size, --num-layers or --batch-size"):
        train(config, out, resume=args.resume, stream=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------------
# eval
# ---------------------------------------------------------------------------------------------------

def _eval_data(args, saved_train: dict):
    """(test images, test labels, a description of where they came from)."""
    from ..data.idx import load_idx_pair
    from ..data.images import load_image_data
    from ..training.config import ClassifyConfig

    if args.idx is not None and args.dataset is not None:
        raise RnnlabError("--dataset and --idx both given; score a named dataset or two IDX files, not both")
    if args.test_size is not None and args.test_size < 1:
        raise RnnlabError(f"--test-size {args.test_size}: must be a positive integer")
    if args.idx is not None:
        for name, path in zip(("TEST_IMAGES", "TEST_LABELS"), args.idx):
            if not Path(path).is_file():
                what = "not a regular file" if Path(path).exists() else "no such file"
                raise RnnlabError(f"--idx {name} {path}: {what}; give the test images and labels as IDX files")
        images, labels = load_idx_pair(*args.idx)
        if args.test_size is not None:
            if args.test_size > len(images):
                raise RnnlabError(f"--test-size {args.test_size}: {args.idx[0]} holds only {len(images)} images")
            images, labels = images[:args.test_size], labels[:args.test_size]
        if labels.size and labels.min() < 0:
            raise RnnlabError(f"{args.idx[1]}: labels must be class numbers >= 0, found {labels.min()}")
        return images, labels, {"idx": [str(p) for p in args.idx]}
    values = ClassifyConfig.from_dict(saved_train).to_dict()
    values["val_size"] = 0
    values["train_size"] = None
    if args.dataset is not None:
        values.update(dataset=args.dataset, idx=None, data_dir=None, test_size=None)
    if args.data_dir is not None:
        values["data_dir"] = args.data_dir
    if args.test_size is not None:
        values["test_size"] = args.test_size
    config = ClassifyConfig.from_dict(values)
    if config.idx is None and config.dataset is None:
        raise RnnlabError(f"{args.run_dir}: the run does not say what it was trained on; give --dataset or --idx")
    data = load_image_data(config)
    source = {"idx": config.idx[2:]} if config.idx is not None else {"dataset": config.dataset}
    return data.test_images, data.test_labels, source


def run_eval(args) -> int:
    from ..training.classify_eval import evaluate, format_confusion_matrix
    from ..training.rundir import load_run

    if args.batch_size < 1:
        raise RnnlabError(f"--batch-size {args.batch_size}: must be a positive integer")
    loaded = load_run(args.run_dir, "classify", args.checkpoint)
    images, labels, source = _eval_data(args, loaded.config.get("train", {}))
    model = loaded.model
    if images.ndim != 3 or images.shape[2] != model.input_size:
        raise RnnlabError(f"the test images are {'x'.join(map(str, images.shape[1:]))} but the model reads rows of "
                          f"{model.input_size} pixels; score images shaped like the training images")
    if len(images) == 0:
        raise RnnlabError("the test set holds no images; nothing to score")
    result = evaluate(model, images, labels, batch_size=args.batch_size)
    if args.json:
        to_stdout(strict_json.dumps({**result.to_dict(loaded.classes), "checkpoint": loaded.checkpoint,
                          "run_dir": str(loaded.path), "data": source}))
    else:
        to_stdout(f"accuracy {100 * result.accuracy:.2f}%, loss {result.loss:.4f} over {result.count:,} images "
              f"({loaded.checkpoint} weights of {loaded.path})")
        to_stdout(format_confusion_matrix(result.confusion, loaded.classes))
    return 0
