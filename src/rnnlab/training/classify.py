"""Training and evaluating a sequence classifier on images read row by row: the loop, top to bottom.

An image of ``rows x cols`` pixels is a sequence of ``rows`` steps of ``cols`` features (MNIST: 28 steps
of 28 pixels). Pixels are scaled to ``[0, 1]`` on the way in (``uint8`` divided by 255; other integer
types by their largest value; float images are used as stored). One step::

    batch = order[position * B:(position + 1) * B]      # a shuffled slice of the training images
    x = scale_pixels(train_images[batch])               # (B, rows, cols) in [0, 1]
    logits = model(x)                                   # (B, C)
    loss = criterion(logits, train_labels[batch])       # mean cross-entropy, nats
    model.backward(criterion.backward())                # gradients into every parameter's .grad
    clip_grad_norm_(params, grad_clip); optimizer.step()

After each epoch: the learning rate is multiplied by ``lr_decay``; the validation slice (if any) and the
test set are scored (loss and accuracy); the best weights by validation loss are kept; a checkpoint is
written. At the end the test set's confusion matrix is printed and ``results.json`` written.

Exact resume: the training state holds the weights, the optimizer's moments, the epoch, the position
within it, the epoch's shuffled order, the random generator's state and the epoch's running sums, so
``train(steps=20)`` then ``train(resume=True, steps=40)`` ends with the weights ``train(steps=40)`` gives.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__, backend
from ..errors import RnnlabError
from ..models.classifier import CELLS, INITS, POOLS, SequenceClassifier
from . import loop
from ..errors import require
from .config import Settings
from .loop import OPTIMIZERS

DATASETS = ("mnist", "fashion-mnist")
RESULTS_FILE = "results.json"


@dataclass
class ClassifyConfig(Settings):
    # data: a named dataset, or four IDX files
    dataset: str | None = "fashion-mnist"  # mnist or fashion-mnist (found by rnnlab.data.load_dataset)
    data_dir: str | None = None      # where the dataset's files are (None: $RNNLAB_DATA, the cache, system dirs)
    idx: list | None = None          # [train images, train labels, test images, test labels]; replaces dataset
    train_size: int | None = None    # the first N training images (None: all except the validation slice)
    val_size: int = 0                # the last M images of the training file, held out to pick the best weights
    test_size: int | None = None     # the first M test images (None: all)
    # model
    model: str = "lstm"              # rnn (tanh), rnn_relu, lstm or gru
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    pool: str = "last"               # last (top layer's final state) or mean (mean output over time)
    init: str = "default"            # default (PyTorch's) or identity (IRNN, for rnn / rnn_relu)
    dropout: float = 0.0             # between recurrent layers
    dtype: str = "float32"
    # optimisation
    optimizer: str = "adam"
    lr: float = 2e-3
    lr_decay: float = 1.0            # the learning rate is multiplied by this after every epoch
    batch_size: int = 64
    grad_clip: float = 5.0           # global gradient-norm clip; 0 turns it off
    # how long: the first limit reached stops the run
    epochs: int | None = 10          # passes over the training images, counted from the start of the run
    steps: int | None = None         # optimizer steps, counted from the start of the run
    time_budget: float | None = None  # seconds of training in this invocation (evaluations not counted)
    eval_batch_size: int = 1000
    max_bad_steps: int = 5           # stop after this many non-finite losses in a row
    seed: int = 1337

    # settings that must match the saved run when resuming (they decide the model or the data)
    RESUME_MUST_MATCH = ("dataset", "idx", "train_size", "val_size", "model", "hidden_size", "num_layers",
                         "bidirectional", "pool", "init", "dropout", "dtype", "optimizer", "batch_size")

    def validate(self) -> "ClassifyConfig":
        """RnnlabError naming the first nonsensical setting (the flag, the value, what is allowed)."""
        if self.idx is not None:
            require(len(self.idx) == 4, "--idx", " ".join(map(str, self.idx)),
                 "four files: TRAIN_IMAGES TRAIN_LABELS TEST_IMAGES TEST_LABELS")
        else:
            require(self.dataset in DATASETS, "--dataset", self.dataset, "one of " + ", ".join(DATASETS))
        require(self.model in CELLS, "--model", self.model, "one of " + ", ".join(CELLS))
        require(self.pool in POOLS, "--pool", self.pool, "one of " + ", ".join(POOLS))
        require(self.init in INITS, "--init", self.init, "one of " + ", ".join(INITS))
        require(self.init != "identity" or self.model in ("rnn", "rnn_relu"), "--init", self.init,
             "default for --model " + self.model + " (identity is the IRNN init, for rnn and rnn_relu)")
        require(self.optimizer in OPTIMIZERS, "--optimizer", self.optimizer, "one of " + ", ".join(OPTIMIZERS))
        for flag in ("hidden_size", "num_layers", "batch_size", "eval_batch_size", "max_bad_steps"):
            value = getattr(self, flag)
            require(isinstance(value, int) and value >= 1, "--" + flag.replace("_", "-"), value, "a positive integer")
        for flag in ("train_size", "test_size", "epochs", "steps"):
            value = getattr(self, flag)
            require(value is None or (isinstance(value, int) and value >= 1), "--" + flag.replace("_", "-"), value,
                 "a positive integer")
        require(isinstance(self.val_size, int) and self.val_size >= 0, "--val-size", self.val_size, ">= 0")
        require(0.0 <= self.dropout < 1.0, "--dropout", self.dropout, "in [0, 1)")
        require(math.isfinite(self.lr) and self.lr > 0, "--lr", self.lr, "> 0")
        require(0.0 < self.lr_decay <= 1.0, "--lr-decay", self.lr_decay, "in (0, 1]")
        require(self.grad_clip >= 0, "--grad-clip", self.grad_clip, ">= 0 (0 turns clipping off)")
        if self.time_budget is not None:
            require(self.time_budget > 0, "--time-budget", self.time_budget, "> 0 seconds")
        require(self.dtype in ("float32", "float64"), "--dtype", self.dtype, "float32 or float64")
        return self


# ---------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------

@dataclass
class ImageData:
    """Images (``(N, rows, cols)``, as stored) and ``int64`` labels for training, validation and test."""
    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def steps(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def features(self) -> int:
        return int(self.train_images.shape[2])


def scale_pixels(images, dtype=np.float32) -> np.ndarray:
    """Images as stored -> floats in ``[0, 1]``: ``uint8`` / 255, other integers / their largest value.

    Float images are taken as they are (already scaled by whoever wrote them).

    >>> scale_pixels(np.array([[[0, 51, 255]]], dtype=np.uint8))
    array([[[0. , 0.2, 1. ]]], dtype=float32)
    """
    images = np.asarray(images)
    if images.dtype.kind in "iu":
        return images.astype(dtype) / np.asarray(np.iinfo(images.dtype).max, dtype=dtype)
    return images.astype(dtype, copy=False)


def _read_idx_files(paths) -> tuple:
    from ..data.idx import load_idx_pair

    names = ("TRAIN_IMAGES", "TRAIN_LABELS", "TEST_IMAGES", "TEST_LABELS")
    for name, path in zip(names, paths):
        if not Path(path).is_file():
            what = "not a regular file" if Path(path).exists() else "no such file"
            raise RnnlabError(f"--idx {name} {path}: {what}; give four IDX files (gzipped or not): "
                              f"{' '.join(names)}")
    train_images, train_labels = load_idx_pair(paths[0], paths[1])
    test_images, test_labels = load_idx_pair(paths[2], paths[3])
    if train_images.shape[1:] != test_images.shape[1:]:
        raise RnnlabError(f"{paths[2]}: test images are {test_images.shape[1]}x{test_images.shape[2]} but the "
                          f"training images ({paths[0]}) are {train_images.shape[1]}x{train_images.shape[2]}; "
                          f"the files do not belong together")
    for labels, path in ((train_labels, paths[1]), (test_labels, paths[3])):
        if labels.size and labels.min() < 0:
            raise RnnlabError(f"{path}: labels must be class numbers >= 0, found {labels.min()}")
    largest = max(int(train_labels.max(initial=0)), int(test_labels.max(initial=0)))
    classes = tuple(str(label) for label in range(largest + 1))
    return train_images, train_labels, test_images, test_labels, classes


def load_image_data(config: ClassifyConfig) -> ImageData:
    """Read the dataset (or IDX files) and cut the training, validation and test slices ``config`` asks for.

    The validation slice is the LAST ``val_size`` images of the training file; training uses the first
    ``train_size`` of the rest; the test slice is the first ``test_size`` test images.
    """
    if config.idx is not None:
        train_images, train_labels, test_images, test_labels, classes = _read_idx_files(config.idx)
        name = "idx"
    else:
        from ..data.datasets import load_dataset

        dataset = load_dataset(config.dataset, data_dir=config.data_dir)
        train_images, train_labels = dataset.train_images, dataset.train_labels
        test_images, test_labels = dataset.test_images, dataset.test_labels
        classes, name = tuple(dataset.classes), dataset.name
    available = len(train_images) - config.val_size
    if available < 1:
        raise RnnlabError(f"--val-size {config.val_size}: the training file holds only {len(train_images)} images; "
                          f"leave some for training")
    train_size = available if config.train_size is None else config.train_size
    if train_size > available:
        raise RnnlabError(f"--train-size {config.train_size}: only {available} training images are available "
                          f"({len(train_images)} in the file, {config.val_size} held out by --val-size); "
                          f"ask for at most {available}")
    test_size = len(test_images) if config.test_size is None else config.test_size
    if test_size > len(test_images):
        raise RnnlabError(f"--test-size {config.test_size}: the test file holds only {len(test_images)} images; "
                          f"ask for at most {len(test_images)}")
    if len(test_images) == 0:
        raise RnnlabError("the test file holds no images; give a test set with at least one image")
    val_start = len(train_images) - config.val_size
    return ImageData(name, train_images[:train_size], train_labels[:train_size],
                     train_images[val_start:], train_labels[val_start:],
                     test_images[:test_size], test_labels[:test_size], classes)


# ---------------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------------

@dataclass
class Evaluation:
    loss: float                  # mean cross-entropy, nats
    accuracy: float              # fraction correct, in [0, 1]
    count: int                   # images scored
    predictions: np.ndarray      # (count,) predicted classes
    confusion: np.ndarray        # (C, C): row = true class, column = predicted class

    def to_dict(self, classes=None) -> dict:
        result = {"loss": self.loss, "accuracy": self.accuracy, "count": self.count,
                  "confusion_matrix": self.confusion.tolist()}
        if classes is not None:
            result["classes"] = list(classes)
        return result


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """``(C, C)`` counts: ``matrix[true, predicted]``.

    >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3)
    array([[1, 0, 0],
           [0, 1, 1],
           [0, 0, 1]])
    """
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    counts = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def format_confusion_matrix(matrix, classes) -> str:
    """A text table: one row per true class (named), one column per predicted class (numbered).

    >>> print(format_confusion_matrix(np.array([[5, 1], [0, 4]]), ["cat", "dog"]))
    true \\ predicted    0    1  recall
    0 cat               5    1    83.3%
    1 dog               0    4   100.0%
    """
    matrix = np.asarray(matrix)
    width = max(5, len(str(int(matrix.max(initial=0)))) + 1)
    names = [f"{i} {name}" if str(name) != str(i) else str(i) for i, name in enumerate(classes)]
    label_width = max(len("true \\ predicted"), *(len(name) for name in names))
    lines = ["true \\ predicted".ljust(label_width) + "".join(f"{i:>{width}}" for i in range(len(classes)))
             + "  recall"]
    for index, (name, row) in enumerate(zip(names, matrix)):
        total = row.sum()
        recall = f"{100.0 * row[index] / total:6.1f}%" if total else "     -"
        lines.append(name.ljust(label_width) + "".join(f"{int(v):>{width}}" for v in row) + "  " + recall)
    return "\n".join(lines)


def evaluate(model: SequenceClassifier, images, labels, batch_size: int = 1000) -> Evaluation:
    """Loss, accuracy and confusion matrix of ``model`` on ``images`` (as stored; scaled here).

    Runs in evaluation mode (dropout off) under :func:`rnnlab.no_grad`; the model's mode is restored.
    """
    from ..nn.loss import log_softmax

    labels = np.asarray(labels, dtype=np.int64)
    if len(images) == 0:
        raise ValueError("evaluate needs at least one image")
    if labels.max(initial=0) >= model.num_classes:
        raise RnnlabError(f"the labels go up to {labels.max()} but the model knows {model.num_classes} classes "
                          f"(0..{model.num_classes - 1}); evaluate on data from the same label set")
    was_training = model.training
    model.eval()
    total_loss, predictions = 0.0, []
    try:
        with backend.no_grad():
            for start in range(0, len(images), batch_size):
                x = scale_pixels(images[start:start + batch_size], model.dtype)
                y = labels[start:start + batch_size]
                logits = np.asarray(model(x), dtype=np.float64)
                log_probs = log_softmax(logits, axis=-1)
                total_loss -= float(np.take_along_axis(log_probs, y[:, None], axis=1).sum())
                predictions.append(logits.argmax(axis=1))
    finally:
        model.train(was_training)
    predictions = np.concatenate(predictions)
    return Evaluation(loss=total_loss / len(labels), accuracy=float((predictions == labels).mean()),
                      count=len(labels), predictions=predictions,
                      confusion=confusion_matrix(labels, predictions, model.num_classes))


# ---------------------------------------------------------------------------------------------------
# model, optimizer, run configuration
# ---------------------------------------------------------------------------------------------------

def build_model(config: ClassifyConfig, data: ImageData) -> SequenceClassifier:
    return SequenceClassifier(data.features, data.num_classes, hidden_size=config.hidden_size,
                              num_layers=config.num_layers, cell=config.model, bidirectional=config.bidirectional,
                              pool=config.pool, dropout=config.dropout, init=config.init, dtype=config.dtype)


def build_optimizer(config: ClassifyConfig, params):
    return loop.build_optimizer(config.optimizer, params, config.lr)


def run_config(config: ClassifyConfig, model: SequenceClassifier, data: ImageData) -> dict:
    """What ``config.json`` holds: the model, the data, the class names, the settings, the rnnlab version."""
    return {"rnnlab_version": __version__, "kind": "classify", "model": model.config(),
            "data": {"name": data.name, "steps": data.steps, "features": data.features,
                     "train": len(data.train_images), "val": len(data.val_images), "test": len(data.test_images),
                     "pixel_scaling": "uint8 / 255 (other integers / their largest value; floats as stored)"},
            "classes": list(data.classes), "train": config.to_dict()}


def check_resume_matches(config: ClassifyConfig, saved_train: dict, run_path) -> None:
    """RnnlabError when a setting that decides the model or the data differs from the saved run's."""
    loop.check_resume_matches(config, saved_train, run_path, ClassifyConfig.RESUME_MUST_MATCH, path_settings=("idx",))


# ---------------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------------

@dataclass
class ClassifyResult:
    run_dir: Path
    step: int                    # the step the run ended at (counted from the start of the run)
    epoch: int                   # completed epochs
    stop_reason: str             # "epochs", "steps", "time", "interrupted"
    history: list = field(default_factory=list)   # one dict per completed epoch (train/val/test loss, accuracy)
    test: Evaluation | None = None                 # the final test evaluation (latest weights)
    losses: dict = field(default_factory=dict)     # step -> training loss, for this invocation's steps


def _percent(value) -> str:
    return "-" if value is None else f"{100.0 * value:.2f}%"


def train(config: ClassifyConfig, out, resume: bool = False, stream=None, data: ImageData | None = None,
          progress_bar: bool = True) -> ClassifyResult:
    """Train a :class:`SequenceClassifier` as ``config`` says; checkpoints go to the run directory ``out``.

    ``data`` may be given already loaded (it must be what ``config`` describes); otherwise it is read with
    :func:`load_image_data`. With ``resume`` the run continues from ``out``'s training state; ``epochs``
    and ``steps`` still count from the start of the run.
    """
    from ..nn import CrossEntropyLoss
    from .atomic import atomic_write_json
    from .rundir import RunDirectory, open_for_resume
    from .progress import Progress
    from .signals import graceful_interrupt

    stream = sys.stderr if stream is None else stream
    config.validate()
    run = RunDirectory(out)
    if resume:
        run, saved = open_for_resume(out, "classify")
        check_resume_matches(config, saved.get("train", {}), run.path)
    data = load_image_data(config) if data is None else data
    dtype = backend.resolve_dtype(config.dtype)

    # --- set up: fresh, or from the saved training state --------------------------------------
    backend.manual_seed(config.seed)
    model = build_model(config, data)
    optimizer = build_optimizer(config, model.parameters())
    if resume:
        arrays, meta, (step, epoch, position) = loop.restore_training_state(
            run, model, optimizer, lambda arrays, meta: (int(meta["step"]), int(meta["epoch"]), int(meta["position"])))
        order = arrays.get("order")
        best_val_loss, history = meta.get("best_val_loss"), list(meta.get("history", []))
        running = dict(meta.get("running", {"loss_sum": 0.0, "correct": 0, "seen": 0}))
        # config.json keeps the latest invocation's settings, so the next --resume starts from them
        atomic_write_json(run.config_path, {**saved, "train": config.to_dict()})
    else:
        run.create(run_config(config, model, data))
        step = epoch = position = 0
        order, best_val_loss, history = None, None, []
        running = {"loss_sum": 0.0, "correct": 0, "seen": 0}

    criterion = CrossEntropyLoss()
    num_train = len(data.train_images)
    batches_per_epoch = math.ceil(num_train / config.batch_size)
    max_steps = config.steps
    if config.epochs is not None:
        epoch_steps = config.epochs * batches_per_epoch
        max_steps = epoch_steps if max_steps is None else min(max_steps, epoch_steps)

    def save_checkpoint():
        meta = {"step": step, "epoch": epoch, "position": position, "best_val_loss": best_val_loss,
                "history": history, "running": running, "train": config.to_dict()}
        loop.save_training_state(run, model, optimizer, meta,
                                 {"order": order} if order is not None and position > 0 else {})

    def end_of_epoch(epoch_train_seconds: float):
        nonlocal best_val_loss
        record = {"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"],
                  "train_seconds": round(epoch_train_seconds, 3),
                  "train_loss": running["loss_sum"] / max(running["seen"], 1),
                  "train_accuracy": running["correct"] / max(running["seen"], 1)}
        val = (evaluate(model, data.val_images, data.val_labels, config.eval_batch_size)
               if len(data.val_images) else None)
        test = evaluate(model, data.test_images, data.test_labels, config.eval_batch_size)
        if val is not None:
            record.update(val_loss=val.loss, val_accuracy=val.accuracy)
        record.update(test_loss=test.loss, test_accuracy=test.accuracy)
        history.append(record)
        improved = val is not None and (best_val_loss is None or val.loss < best_val_loss)
        message = (f"epoch {epoch}: train loss {record['train_loss']:.4f} acc {_percent(record['train_accuracy'])}"
                   + (f" | val loss {val.loss:.4f} acc {_percent(val.accuracy)}" if val is not None else "")
                   + f" | test loss {test.loss:.4f} acc {_percent(test.accuracy)}"
                   + f" | {epoch_train_seconds:.1f} s training" + ("  (best)" if improved else ""))
        log(message)
        if improved:
            best_val_loss = val.loss
            run.save_best(model.state_dict(), {"step": step, "epoch": epoch, "val_loss": val.loss,
                                               "val_accuracy": val.accuracy})

    progress = Progress(total_steps=max_steps, time_budget=config.time_budget, stream=stream, start_step=step) \
        if progress_bar else None
    log = loop.LogLines(progress, stream)
    gradient_step = loop.GradientStep(model, optimizer, config.grad_clip, config.max_bad_steps, config.lr,
                                      run.path, log)
    result = ClassifyResult(Path(out), step, epoch, "epochs", history)
    start_step = step
    log(f"{'resuming' if resume else 'training'} {model.cell} classifier ({model.num_parameters():,} parameters) "
        f"on {data.name}: {num_train:,} training, {len(data.val_images):,} validation, {len(data.test_images):,} "
        f"test images of {data.steps} rows x {data.features} pixels, {data.num_classes} classes; "
        f"epoch {epoch}, step {step}")
    train_seconds = 0.0       # this invocation's, evaluations excluded
    epoch_seconds = 0.0
    saved_step = None
    model.train()
    try:
        with graceful_interrupt(loop.INTERRUPT_MESSAGE, stream) as interrupt, \
                np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while True:
                if max_steps is not None and step >= max_steps:
                    result.stop_reason = "steps" if config.steps is not None and step >= config.steps else "epochs"
                    break
                if config.time_budget is not None and train_seconds >= config.time_budget:
                    result.stop_reason = "time"
                    break
                if interrupt.requested:
                    result.stop_reason = "interrupted"
                    break

                started = time.perf_counter()
                if position == 0:
                    order = backend.generator().permutation(num_train)
                    running = {"loss_sum": 0.0, "correct": 0, "seen": 0}
                    for group in optimizer.param_groups:
                        group["lr"] = config.lr * config.lr_decay ** epoch
                batch = order[position * config.batch_size:(position + 1) * config.batch_size]
                x = scale_pixels(data.train_images[batch], dtype)
                y = data.train_labels[batch]
                logits = model(x)
                loss = float(criterion(logits, y))
                if gradient_step(loss, lambda: model.backward(criterion.backward()), step + 1):
                    running["loss_sum"] += loss * len(batch)
                    running["correct"] += int((np.asarray(logits).argmax(axis=1) == y).sum())
                    running["seen"] += len(batch)
                step += 1
                position += 1
                result.losses[step] = loss
                elapsed = time.perf_counter() - started
                train_seconds += elapsed
                epoch_seconds += elapsed
                if progress is not None:
                    images_per_s = (step - start_step) * config.batch_size / max(train_seconds, 1e-9)
                    progress.update(step, loss=loss, extra=f"epoch {epoch + 1}  {images_per_s:,.0f} images/s")
                if position >= batches_per_epoch:
                    position, epoch = 0, epoch + 1
                    end_of_epoch(epoch_seconds)
                    epoch_seconds = 0.0
                    save_checkpoint()
                    saved_step = step
            if saved_step != step:
                save_checkpoint()
    finally:
        if progress is not None:
            progress.close()
        log.progress = None  # from here on, plain lines
    result.step, result.epoch = step, epoch
    if result.stop_reason == "interrupted":
        log(f"interrupted: saved the training state at epoch {epoch}, step {step} in {run.path}; "
            f"continue with --resume")
        return result
    test = evaluate(model, data.test_images, data.test_labels, config.eval_batch_size)
    result.test = test
    log(f"test ({test.count:,} images, latest weights): loss {test.loss:.4f}, accuracy {_percent(test.accuracy)}")
    log(format_confusion_matrix(test.confusion, data.classes))
    atomic_write_json(run.path / RESULTS_FILE, {"rnnlab_version": __version__, "step": step, "epoch": epoch,
                                                "stop_reason": result.stop_reason, "history": history,
                                                "test": test.to_dict(data.classes),
                                                "train_seconds_this_run": round(train_seconds, 3),
                                                "steps_this_run": step - start_step})
    log(f"done at epoch {epoch}, step {step} ({result.stop_reason}); run directory: {run.path}")
    return result
