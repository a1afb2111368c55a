"""Training a sequence classifier on images read row by row: the loop, top to bottom.

An image of ``rows x cols`` pixels is a sequence of ``rows`` steps of ``cols`` features (MNIST: 28 steps
of 28 pixels), read and scaled by :mod:`rnnlab.data.images`. One step::

    batch = order[position * B:(position + 1) * B]      # a shuffled slice of the training images
    x = scale_pixels(train_images[batch])               # (B, rows, cols) in [0, 1]
    logits = model(x)                                   # (B, C)
    loss = criterion(logits, train_labels[batch])       # mean cross-entropy, nats
    model.backward(criterion.backward())                # gradients into every parameter's .grad
    clip_grad_norm_(params, grad_clip); optimizer.step()

After each epoch: the learning rate is multiplied by ``lr_decay``; the validation slice (if any) and the
test set are scored (loss and accuracy, :mod:`rnnlab.training.classify_eval`); the best weights by
validation loss are kept; a checkpoint is written. At the end the test set's confusion matrix is printed
and ``results.json`` written.

Exact resume: the training state holds the weights, the optimizer's moments, the epoch, the position
within it, the epoch's shuffled order, the random generator's state and the epoch's running sums, so
``train(steps=20)`` then ``train(resume=True, steps=40)`` ends with the weights ``train(steps=40)`` gives.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__, backend
from ..data.images import ImageData, load_image_data, scale_pixels
from ..models.classifier import SequenceClassifier
from . import loop
from .classify_eval import Evaluation, evaluate, format_confusion_matrix
from .config import CHECKPOINT_SECONDS, ClassifyConfig
from .signals import Interrupted

# printed at the first Ctrl-C / SIGTERM while the final test set is scored (the checkpoint is already written)
TEST_INTERRUPT_MESSAGE = "{signal}: stopping the test scoring (the training state is saved)"


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
# where the run is, and the checkpoint that records it
# ---------------------------------------------------------------------------------------------------

def fresh_running() -> dict:
    """The epoch's running sums: training loss (times batch size), correct predictions, images seen."""
    return {"loss_sum": 0.0, "correct": 0, "seen": 0}


@dataclass
class EpochPosition:
    """Where a run is: what a checkpoint records besides the weights and the optimizer."""
    step: int = 0                      # optimizer steps since the start of the run
    epoch: int = 0                     # completed epochs
    position: int = 0                  # the next batch of the epoch
    order: np.ndarray | None = None    # the epoch's shuffled image order
    best_val_loss: float | None = None
    history: list = field(default_factory=list)      # one dict per completed epoch
    running: dict = field(default_factory=fresh_running)
    time: float = 0.0                  # seconds since the run began, summed over resumes (loop.RunHistory)


def save_checkpoint(run, model, optimizer, config: ClassifyConfig, at: EpochPosition, dist=None) -> None:
    if dist is not None and not dist.is_root:
        return  # data-parallel: rank 0 alone writes
    meta = {"step": at.step, "epoch": at.epoch, "position": at.position, "best_val_loss": at.best_val_loss,
            "history": at.history, "running": at.running, "time": at.time, "train": config.to_dict()}
    loop.save_training_state(run, model, optimizer, meta,
                             {"order": at.order} if at.order is not None and at.position > 0 else {})


def restore_checkpoint(run, model, optimizer) -> EpochPosition:
    def read(arrays, meta):
        return EpochPosition(int(meta["step"]), int(meta["epoch"]), int(meta["position"]), arrays.get("order"),
                             meta.get("best_val_loss"), list(meta.get("history", [])),
                             dict(meta.get("running", fresh_running())), float(meta.get("time") or 0.0))

    return loop.restore_training_state(run, model, optimizer, read)[2]


def _percent(value) -> str:
    return "-" if value is None else f"{100.0 * value:.2f}%"


def end_of_epoch(model, optimizer, data: ImageData, config: ClassifyConfig, at: EpochPosition, run, log,
                 epoch_train_seconds: float, dist=None) -> None:
    """Score the validation slice (if any) and the test set, record the epoch, keep the best weights
    (data-parallel, ``dist``: the scoring split over the ranks; rank 0 alone writes)."""
    record = {"epoch": at.epoch, "step": at.step, "lr": optimizer.param_groups[0]["lr"],
              "train_seconds": round(epoch_train_seconds, 3),
              "train_loss": at.running["loss_sum"] / max(at.running["seen"], 1),
              "train_accuracy": at.running["correct"] / max(at.running["seen"], 1)}
    val = (evaluate(model, data.val_images, data.val_labels, config.eval_batch_size, dist)
           if len(data.val_images) else None)
    test = evaluate(model, data.test_images, data.test_labels, config.eval_batch_size, dist)
    if val is not None:
        record.update(val_loss=val.loss, val_accuracy=val.accuracy)
    record.update(test_loss=test.loss, test_accuracy=test.accuracy)
    at.history.append(record)
    # a NaN loss (or NaN weights, which save_best refuses) is never the best
    improved = val is not None and math.isfinite(val.loss) \
        and (at.best_val_loss is None or val.loss < at.best_val_loss) \
        and (dist is not None and not dist.is_root
             or run.save_best(model.state_dict(), {"step": at.step, "epoch": at.epoch, "val_loss": val.loss,
                                                   "val_accuracy": val.accuracy}))
    log(f"epoch {at.epoch}: train loss {record['train_loss']:.4f} acc {_percent(record['train_accuracy'])}"
        + (f" | val loss {val.loss:.4f} acc {_percent(val.accuracy)}" if val is not None else "")
        + f" | test loss {test.loss:.4f} acc {_percent(test.accuracy)}"
        + f" | {epoch_train_seconds:.1f} s training" + ("  (best)" if improved else ""))
    if improved:
        at.best_val_loss = val.loss


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


def train(config: ClassifyConfig, out, resume: bool = False, stream=None, data: ImageData | None = None,
          progress_bar: bool = True) -> ClassifyResult:
    """Train a :class:`SequenceClassifier` as ``config`` says; checkpoints go to the run directory ``out``.

    ``data`` may be given already loaded (it must be what ``config`` describes); otherwise it is read with
    :func:`rnnlab.data.images.load_image_data`. With ``resume`` the run continues from ``out``'s training
    state; ``epochs`` and ``steps`` still count from the start of the run. The run directory is locked
    while the run trains in it (:meth:`rnnlab.training.rundir.RunDirectory.lock`).
    """
    from . import distributed

    config.validate()
    dist = distributed.context()  # under mpiexec: this rank of several; alone: a stand-in that does nothing
    dist.check_divides(config.batch_size)
    with loop.run_lock(out, dist):  # held by rank 0, the one process that writes there
        return train_locked(config, out, resume, stream, data, progress_bar, dist)


def train_locked(config: ClassifyConfig, out, resume: bool = False, stream=None, data: ImageData | None = None,
                 progress_bar: bool = True, dist=None) -> ClassifyResult:
    """:func:`train`, its run directory's lock held (data-parallel: by rank 0, which alone reads and
    writes the run directory; ``dist`` is :func:`rnnlab.training.distributed.context`)."""
    from ..nn import CrossEntropyLoss
    from .signals import graceful_interrupt

    dist, stream = loop.this_rank(stream, dist)  # rank 0's messages only
    config.validate()
    run, saved = loop.create_or_resume_run(out, resume, "classify", config, ClassifyConfig.RESUME_MUST_MATCH,
                                           dist, path_settings=("idx",))
    data = load_image_data(config) if data is None else data
    dtype = backend.resolve_dtype(config.dtype)

    # --- model and optimizer: fresh, or from the saved training state ---------------------------
    backend.manual_seed(config.seed)
    model = build_model(config, data)
    optimizer = build_optimizer(config, model.parameters())
    if resume:
        at = loop.resume_run(run, saved, config, model, optimizer, restore_checkpoint, dist)
    else:
        loop.start_run(run, run_config(config, model, data), model, dist)
        at = EpochPosition()
        # a first checkpoint at step 0: a run killed before its first epoch ends can still --resume
        save_checkpoint(run, model, optimizer, config, at, dist)
    criterion = CrossEntropyLoss()
    num_train = len(data.train_images)
    batches_per_epoch = math.ceil(num_train / config.batch_size)
    max_steps = loop.step_limit(config.steps, config.epochs, batches_per_epoch)

    # --- what the run reports ---------------------------------------------------------------------
    progress, log = loop.progress_and_log(progress_bar, max_steps, config.time_budget, stream, at.step)
    history = loop.RunHistory(run, resume, stream, dist, "images_per_s", at.time)  # metrics.jsonl, rank 0
    gradient_step = loop.GradientStep(model, optimizer, config.grad_clip, config.max_bad_steps, config.lr,
                                      run.path, log, dist)
    result = ClassifyResult(Path(out), at.step, at.epoch, "epochs", at.history)
    start_step = at.step
    log(f"{'resuming' if resume else 'training'} {model.cell} classifier ({model.num_parameters():,} parameters) "
        f"on {data.name}: {num_train:,} training, {len(data.val_images):,} validation, {len(data.test_images):,} "
        f"test images of {data.steps} rows x {data.features} pixels, {data.num_classes} classes; "
        f"epoch {at.epoch}, step {at.step}")
    placement = dist.describe()  # which process is which rank (every rank takes part)
    if placement:
        log(placement)
    train_seconds = 0.0       # this invocation's, evaluations excluded
    epoch_seconds = 0.0
    saved_step, last_checkpoint_time = None, time.perf_counter()
    model.train()
    try:
        with loop.interruptible(stream) as interrupt:
            while True:
                reason = loop.agreed_stop_reason(at.step, max_steps, config.steps, train_seconds,
                                                 config.time_budget, interrupt.requested, dist)
                if reason is not None:
                    result.stop_reason = reason
                    break

                started = time.perf_counter()
                if at.position == 0:
                    at.order = dist.broadcast(backend.generator().permutation(num_train))  # rank 0's order
                    at.running = fresh_running()
                    for group in optimizer.param_groups:
                        group["lr"] = config.lr * config.lr_decay ** at.epoch
                batch = at.order[at.position * config.batch_size:(at.position + 1) * config.batch_size]
                mine = dist.shard(batch)  # data-parallel: this rank's contiguous share of the batch
                x = scale_pixels(data.train_images[mine], dtype)               # (B / ranks, rows, cols)
                y = data.train_labels[mine]
                logits = model(x)                                               # (B / ranks, C)
                lr = optimizer.param_groups[0]["lr"]
                loss = float(criterion(logits, y))
                applied = gradient_step(loss, lambda: model.backward(criterion.backward()), at.step + 1,
                                        weight=dist.weight(len(mine), len(batch)))
                loss = gradient_step.loss  # the global batch's (alone: the same number)
                correct = dist.sum(int((np.asarray(logits).argmax(axis=1) == y).sum()))
                if applied:
                    at.running["loss_sum"] += loss * len(batch)
                    at.running["correct"] += correct
                    at.running["seen"] += len(batch)
                at.step += 1
                at.position += 1
                result.losses[at.step] = loss
                elapsed = time.perf_counter() - started
                train_seconds += elapsed
                epoch_seconds += elapsed
                history.train_step(at, loss, lr, len(batch), train_seconds)
                if progress is not None:
                    images_per_s = (at.step - start_step) * config.batch_size / max(train_seconds, 1e-9)
                    progress.update(at.step, loss=loss, extra=f"epoch {at.epoch + 1}  {images_per_s:,.0f} images/s")
                if at.position >= batches_per_epoch:
                    at.position, at.epoch = 0, at.epoch + 1
                    try:
                        end_of_epoch(model, optimizer, data, config, at, run, log, epoch_seconds, dist)
                    except Interrupted:  # a signal while scoring: save the epoch's end, then stop
                        log(f"epoch {at.epoch}: evaluation stopped by the signal")
                        result.stop_reason = "interrupted"
                        break
                    history.scores(at, at.history[-1], "val_")  # the epoch's validation and test scores
                    history.scores(at, at.history[-1], "test_")
                    epoch_seconds = 0.0
                    save_checkpoint(run, model, optimizer, config, at, dist)
                    history.sync()
                    saved_step, last_checkpoint_time = at.step, time.perf_counter()
                # a long epoch: mid-way too (agreed: each rank has its own clock)
                elif dist.agree_any(time.perf_counter() - last_checkpoint_time >= CHECKPOINT_SECONDS)[0]:
                    save_checkpoint(run, model, optimizer, config, at, dist)
                    history.sync()
                    saved_step, last_checkpoint_time = at.step, time.perf_counter()
            if saved_step != at.step:
                save_checkpoint(run, model, optimizer, config, at, dist)
                history.sync()
    finally:
        log.close()  # from here on, plain lines
        history.flush()
    result.step, result.epoch = at.step, at.epoch
    if result.stop_reason == "interrupted":
        log(f"interrupted: saved the training state at epoch {at.epoch}, step {at.step} in {run.path}; "
            f"continue with --resume")
        history.close()
        return result
    try:
        with graceful_interrupt(TEST_INTERRUPT_MESSAGE, stream):
            test = evaluate(model, data.test_images, data.test_labels, config.eval_batch_size, dist)
    except Interrupted:
        result.stop_reason = "interrupted"
        log(f"interrupted while scoring the test set; the training state at epoch {at.epoch}, step {at.step} is "
            f"saved in {run.path}; --resume scores it")
        history.close()
        return result
    result.test = test
    history.scores(at, {"test_loss": test.loss, "test_accuracy": test.accuracy}, "test_")
    log(f"test ({test.count:,} images, latest weights): loss {test.loss:.4f}, accuracy {_percent(test.accuracy)}")
    log(format_confusion_matrix(test.confusion, data.classes))
    dist.on_root(loop.write_results, run, at, result.stop_reason, test.to_dict(data.classes), train_seconds,
                 start_step)
    history.close()
    log(f"done at epoch {at.epoch}, step {at.step} ({result.stop_reason}); run directory: {run.path}")
    return result
