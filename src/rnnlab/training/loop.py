"""What the training loops (:mod:`.charlm`, :mod:`.classify`, :mod:`.seq2seq`, :mod:`.tagging`) share,
written once.

Every loop:

- :func:`create_or_resume_run`, :func:`start_run`, :func:`resume_run`: the run directory to create or
  to continue (settings that decide the model or the data must equal the saved run's,
  :func:`check_resume_matches`), rank 0's weights (and, on resume, training state) on every rank.
- :func:`step_limit`, :func:`stop_reason`, :func:`agreed_stop_reason`: when a loop stops (all ranks at
  the same step); :func:`interruptible`: Ctrl-C / SIGTERM noted for the step's end.
- :func:`build_optimizer`: an optimizer by its command-line name.
- :class:`GradientStep`: backward, clip, step; a loss or gradient that is not finite skips the step (the
  weights stay as they were), warns, and after ``max_bad_steps`` in a row stops the run with the last
  checkpoint intact.
- :func:`save_training_state` / :func:`restore_training_state`: the weights, the optimizer's moments and
  the random generator's state in the run directory's training state, beside each loop's own arrays
  and metadata; a damaged state is one line.
- :func:`this_rank`, :func:`run_lock`: the process among the ranks, where its messages go, the run
  directory's lock.
- :class:`LogLines`, :func:`progress_and_log`: messages beside the progress bar, or plain lines once it
  is gone; :func:`write_results`: ``results.json``.
- :class:`RunHistory`: ``metrics.jsonl`` (:mod:`.metrics`; rank 0 alone writes) and the run's clock,
  seconds since the run began summed over resumes (each loop keeps it as ``time`` in its training state).

The step-scheduled loops (:mod:`.seq2seq`, :mod:`.tagging`), which validate every ``eval_every`` steps:
:class:`RunPosition` and its checkpoint (:func:`save_position`, :func:`restore_position`),
:func:`step_schedule`, :func:`next_batch` and :func:`advance` (one step's bookkeeping),
:func:`keep_best` (the validation record and the best weights), :class:`StepRunResult` and
:func:`report_end` (``results.json`` and the last line).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__, backend
from ..errors import RnnlabError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
# printed at the first Ctrl-C / SIGTERM (rnnlab.training.signals.graceful_interrupt)
INTERRUPT_MESSAGE = "{signal}: saving at the end of this step (press Ctrl-C again to stop at once)"
OPTIMIZER_PREFIX = "optimizer/"
RESULTS_FILE = "results.json"


# ---------------------------------------------------------------------------------------------------
# the run directory: a new run, or the saved one continued
# ---------------------------------------------------------------------------------------------------

def this_rank(stream, dist=None):
    """``(dist, stream)``: this process among the ranks (under mpiexec one rank of several; alone a
    stand-in whose methods do nothing, :mod:`rnnlab.training.distributed`) and where its messages go
    (``stream``, default stderr; only rank 0's are shown)."""
    import sys

    from . import distributed

    dist = distributed.context() if dist is None else dist
    return dist, dist.stream(sys.stderr if stream is None else stream)


def run_lock(out, dist=None):
    """The lock on the run directory ``out``: one training process per run directory (held by rank 0,
    the one process that writes there)."""
    from . import distributed
    from .rundir import RunDirectory

    return (distributed.context() if dist is None else dist).lock(RunDirectory(out))


def create_or_resume_run(out, resume: bool, kind: str, config, must_match, dist, path_settings=(),
                         flag_names=None):
    """``(run directory, its config.json or None)``: ``out`` to create, or (``resume``) the saved run of
    ``kind`` there, read by rank 0, whose settings in ``must_match`` must equal ``config``'s
    (:func:`check_resume_matches`)."""
    from .rundir import RunDirectory, open_for_resume

    if not resume:
        return RunDirectory(out), None
    run, saved = dist.on_root(open_for_resume, out, kind)
    check_resume_matches(config, saved.get("train", {}), run.path, must_match, path_settings, flag_names)
    return run, saved


def start_run(run, run_config: dict, model, dist) -> None:
    """Create the run directory with ``run_config`` as config.json (rank 0); every rank starts from rank
    0's weights."""
    dist.on_root(run.create, run_config)
    dist.broadcast_parameters(model)


def resume_run(run, saved: dict, config, model, optimizer, restore, dist):
    """The saved training state in ``model`` and ``optimizer`` on every rank; returns where the run is.

    ``restore(run, model, optimizer)`` reads it on rank 0 (the loop's own position comes back); rank 0's
    weights, moments and random state are then shared. config.json keeps this invocation's settings, so
    the next --resume starts from them.
    """
    from .atomic import atomic_write_json

    at = dist.on_root(restore, run, model, optimizer)
    dist.share_training_state(model, optimizer)
    dist.on_root(atomic_write_json, run.config_path, {**saved, "train": config.to_dict()})
    return at


# ---------------------------------------------------------------------------------------------------
# when a loop stops
# ---------------------------------------------------------------------------------------------------


def step_limit(steps: int | None, epochs: float | None, batches_per_epoch: int) -> int | None:
    """The step a run stops at: ``steps`` or ``epochs`` passes of ``batches_per_epoch`` (whichever comes
    first, a fraction of an epoch rounded up), None for neither."""
    if epochs is None:
        return steps
    epoch_steps = math.ceil(epochs * batches_per_epoch)
    return epoch_steps if steps is None else min(steps, epoch_steps)


def stop_reason(step: int, max_steps: int | None, steps: int | None, seconds: float, time_budget: float | None,
                interrupted: bool) -> str | None:
    """Why a loop stops before its next step: "steps" or "epochs" (``max_steps`` reached: "steps" when
    ``steps`` decided it), "time" (``seconds`` of training reached ``time_budget``), "interrupted"; None: go on."""
    if max_steps is not None and step >= max_steps:
        return "steps" if steps is not None and step >= steps else "epochs"
    if time_budget is not None and seconds >= time_budget:
        return "time"
    if interrupted:
        return "interrupted"
    return None


def agreed_stop_reason(step: int, max_steps: int | None, steps: int | None, seconds: float,
                       time_budget: float | None, interrupted: bool, dist) -> str | None:
    """:func:`stop_reason`, agreed between the ranks: any rank's reason stops all at this step."""
    return dist.agree_stop(stop_reason(step, max_steps, steps, seconds, time_budget, interrupted))


@contextlib.contextmanager
def interruptible(stream):
    """The training steps' context: the first Ctrl-C / SIGTERM is noted (``.requested``: save and stop at
    the step's end) and said on ``stream``; NumPy's overflow warnings are off (a step whose loss is
    not finite is skipped by :class:`GradientStep`, with its own warning)."""
    from .signals import graceful_interrupt

    with graceful_interrupt(INTERRUPT_MESSAGE, stream) as interrupt, \
            np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        yield interrupt


# ---------------------------------------------------------------------------------------------------
# one optimizer step
# ---------------------------------------------------------------------------------------------------

def build_optimizer(name: str, params, lr: float):
    """``name`` (one of :data:`OPTIMIZERS`) over ``params`` with learning rate ``lr``, PyTorch's defaults otherwise."""
    from .. import optim

    classes = {"adam": optim.Adam, "adamw": optim.AdamW, "sgd": optim.SGD, "rmsprop": optim.RMSprop,
               "adagrad": optim.Adagrad}
    return classes[name](list(params), lr=lr)


class GradientStep:
    """One optimizer step that refuses non-finite numbers.

    ``step(loss, backward, step_number)`` runs ``backward()`` (gradients into ``.grad``) when ``loss`` is
    finite, clips the global gradient norm to ``grad_clip`` (0: off, the norm is still measured) and steps
    the optimizer, then clears the gradients. Returns whether the step was applied. A skipped step leaves
    the weights as they were; ``bad_steps`` counts them in a row, and reaching ``max_bad_steps`` raises
    :class:`RnnlabError`.

    Data-parallel (``dist``, a :class:`rnnlab.training.distributed.Distributed`): between the backward
    and the clip, one allreduce replaces this rank's gradients by the global batch's (``weight`` is this
    rank's share of the batch, ``n_r / N``), so every rank clips and steps alike; ``self.loss`` is then the
    global batch's mean loss (alone: the ``loss`` given).
    """

    def __init__(self, model, optimizer, grad_clip: float, max_bad_steps: int, lr: float, run_path, log,
                 dist=None):
        from .distributed import SingleProcess

        self.model, self.optimizer = model, optimizer
        self.dist = SingleProcess() if dist is None else dist
        self.params = list(model.parameters())
        self.grad_clip, self.max_bad_steps, self.lr = grad_clip, max_bad_steps, lr
        self.run_path, self.log = run_path, log
        self.bad_steps = 0

    def __call__(self, loss: float, backward, step_number: int, weight: float = 1.0) -> bool:
        from ..optim import clip_grad_norm_

        self.model.zero_grad()
        grad_norm = 0.0
        if math.isfinite(loss):
            backward()
        # data-parallel (rnnlab.training.distributed): the global batch's loss and gradients on every
        # rank, from one allreduce of this rank's share (``weight``); alone, the loss as it is
        loss = self.loss = self.dist.sum_gradients(self.params, loss, weight)
        if math.isfinite(loss):
            if self.grad_clip > 0:
                grad_norm = float(clip_grad_norm_(self.params, self.grad_clip))
            else:
                grad_norm = math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in self.params
                                          if p.grad is not None))
        applied = math.isfinite(loss) and math.isfinite(grad_norm)
        if applied:
            self.optimizer.step()
            self.bad_steps = 0
        else:
            self.bad_steps += 1
            self.log(f"warning: step {step_number}: loss {loss}, gradient norm {grad_norm}: step skipped")
            if self.bad_steps >= self.max_bad_steps:
                from .rundir import TRAINING_STATE_FILE

                saved = (Path(self.run_path) / TRAINING_STATE_FILE).is_file()
                kept = f"the last checkpoint in {self.run_path} is intact" if saved else "no checkpoint was written yet"
                raise RnnlabError(
                    f"the loss was not finite for {self.bad_steps} steps in a row (up to step {step_number}); "
                    f"stopped without saving, {kept}; try a lower --lr (now {self.lr}) or --grad-clip")
        self.model.zero_grad()
        return applied


# ---------------------------------------------------------------------------------------------------
# the training state
# ---------------------------------------------------------------------------------------------------

def save_training_state(run, model, optimizer, meta: dict, arrays: dict | None = None) -> None:
    """The latest checkpoint: weights, optimizer moments and the random state, plus the loop's ``meta``/``arrays``."""
    from ..optim.optimizer import flatten_state

    optimizer_arrays, optimizer_meta = flatten_state(optimizer.state_dict())
    all_arrays = {OPTIMIZER_PREFIX + k: v for k, v in optimizer_arrays.items()}
    all_arrays.update(arrays or {})
    run.save_latest(model.state_dict(), {**meta, "rng_state": backend.get_rng_state(),
                                         "optimizer": optimizer_meta}, all_arrays)


def restore_training_state(run, model, optimizer, restore=None):
    """Load the latest checkpoint into ``model`` and ``optimizer`` and restore the random state.

    ``restore(arrays, meta)``, if given, reads the loop's own values under the same damage check, and
    its result is returned with the loop's arrays (the optimizer's left out) and ``meta``:
    ``(arrays, meta, restored)``. A missing key or a shape that does not fit is one RnnlabError line.
    """
    from ..optim.optimizer import unflatten_state

    model_state, arrays, meta = run.load_training_state()
    own_arrays = {k: v for k, v in arrays.items() if not k.startswith(OPTIMIZER_PREFIX)}
    try:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(unflatten_state({k[len(OPTIMIZER_PREFIX):]: v for k, v in arrays.items()
                                                   if k.startswith(OPTIMIZER_PREFIX)}, meta["optimizer"]))
        backend.set_rng_state(meta["rng_state"])
        restored = restore(own_arrays, meta) if restore is not None else None
    except (KeyError, ValueError, TypeError, IndexError) as error:
        raise RnnlabError(f"{run.training_state_path}: damaged or from another model ({error}); restore it, "
                          f"or train again without --resume into a new --out") from None
    return own_arrays, meta, restored


def check_resume_matches(config, saved_train: dict, run_path, must_match, path_settings=(), flag_names=None) -> None:
    """RnnlabError when a setting in ``must_match`` differs from the saved run's.

    Settings in ``path_settings`` hold a path or a list of paths, compared once resolved; ``flag_names``
    maps a setting to what the message calls it (default ``--setting-name``).
    """
    def resolved(value):
        if value is None:
            return None
        return [str(Path(p).resolve()) for p in value] if isinstance(value, (list, tuple)) \
            else str(Path(value).resolve())

    for name in must_match:
        if name not in saved_train:
            continue
        ours, theirs = getattr(config, name), saved_train[name]
        if name in path_settings:
            ours, theirs = resolved(ours), resolved(theirs)
        if ours != theirs:
            flag = (flag_names or {}).get(name, "--" + name.replace("_", "-"))
            raise RnnlabError(f"{flag} {getattr(config, name)!r} differs from the saved run's {saved_train[name]!r} "
                              f"({Path(run_path) / 'config.json'}); resume with the same setting or train into "
                              f"a new --out")


# ---------------------------------------------------------------------------------------------------
# what a run reports
# ---------------------------------------------------------------------------------------------------

class LogLines:
    """Writes lines beside the progress bar (or plainly when there is none; :meth:`close` the bar, or set
    ``progress = None`` once it is closed)."""

    def __init__(self, progress, stream):
        self.progress, self.stream = progress, stream

    def __call__(self, message: str) -> None:
        if self.progress is not None:
            self.progress.write(message)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        """Close the progress bar; from here on, plain lines."""
        if self.progress is not None:
            self.progress.close()
        self.progress = None


def counted(count: int, noun: str, grouped: bool = True) -> str:
    """``count`` and ``noun``, singular for one: ``counted(1, "pair")`` is "1 pair", 1200 "1,200 pairs"
    (``grouped=False``: "1200 pairs")."""
    return (f"{count:,}" if grouped else str(count)) + f" {noun}{'' if count == 1 else 's'}"


def progress_and_log(progress_bar: bool, max_steps: int | None, time_budget: float | None, stream,
                     start_step: int):
    """``(progress bar or None, LogLines)`` on ``stream``: the bar counts to ``max_steps`` (or the time
    budget) from ``start_step``."""
    from .progress import Progress

    progress = Progress(total_steps=max_steps, time_budget=time_budget, stream=stream, start_step=start_step) \
        if progress_bar else None
    return progress, LogLines(progress, stream)


class RunHistory:
    """A loop's ``metrics.jsonl`` (:class:`rnnlab.training.metrics.MetricsLog`) and the run's clock.

    Rank 0 alone writes (the other ranks hold a stand-in that does nothing); ``resume``: the rows
    already logged are kept and not written again. The clock: ``time_before`` (the checkpoint's
    ``time``, seconds of the run before this invocation) plus this invocation's wall time. Rows::

        {"step", "time", "loss", "lr", <rate_key>}       # train_step(): every step
        {"step", "time", "val_...": ...}                  # scores(at, record, "val_"): every validation
        {"step", "time", "test_loss", "test_...": ...}    # scores(at, record, "test_"): a test split scored

    ``rate_key`` (``pairs_per_s``, ``images_per_s``, ``lines_per_s``) is the items of this invocation's
    steps over its training seconds (evaluations not counted), as the progress bar shows it.
    """

    def __init__(self, run, resume: bool, stream, dist, rate_key: str, time_before: float = 0.0):
        from . import distributed
        from .metrics import METRICS_FILE, MetricsLog

        self.metrics = MetricsLog(run.path / METRICS_FILE, resume=resume, stream=stream) if dist.is_root \
            else distributed.NO_METRICS
        self.rate_key, self.time_before = rate_key, float(time_before)
        self.started = time.perf_counter()
        self.items = 0

    def now(self) -> float:
        """Seconds since the run began, summed over resumes."""
        return self.time_before + (time.perf_counter() - self.started)

    def train_step(self, at, loss: float, lr: float, items: int, train_seconds: float) -> None:
        """Step ``at.step`` done (``items`` images, pairs or lines in the global batch; ``train_seconds``
        of training in this invocation so far): ``at.time`` set to the clock, its row written."""
        self.items += items
        at.time = self.now()
        self.metrics.write({"step": at.step, "time": at.time, "loss": loss, "lr": lr,
                            self.rate_key: self.items / max(train_seconds, 1e-9)})

    def scores(self, at, record: dict, prefix: str) -> None:
        """The keys of ``record`` that start with ``prefix`` (``"val_"``, ``"test_"``) as one row at
        ``at.step`` and ``at.time`` (none: no row)."""
        scores = {key: value for key, value in record.items() if key.startswith(prefix)}
        if scores:
            self.metrics.write({"step": at.step, "time": at.time, **scores})

    def flush(self) -> None:
        self.metrics.flush()

    def sync(self) -> None:
        """At a checkpoint: the log as durable as the checkpoint."""
        self.metrics.sync()

    def close(self) -> None:
        self.metrics.close()


def write_results(run, at, stop_reason: str, test: dict | None, train_seconds: float, start_step: int) -> None:
    """``results.json``: where the run ended and why, every validation, the test scores, and this
    invocation's training seconds and steps."""
    from .atomic import atomic_write_json

    atomic_write_json(run.path / RESULTS_FILE, {
        "rnnlab_version": __version__, "step": at.step, "epoch": at.epoch, "stop_reason": stop_reason,
        "history": at.history, "test": test, "train_seconds_this_run": round(train_seconds, 3),
        "steps_this_run": at.step - start_step})


# ---------------------------------------------------------------------------------------------------
# the step-scheduled loops (seq2seq, tagging): validated every eval_every steps, the best weights kept
# ---------------------------------------------------------------------------------------------------

@dataclass
class StepRunResult:
    """What a step-scheduled run returns."""
    run_dir: Path
    step: int
    epoch: int
    stop_reason: str                              # "steps", "epochs", "time", "interrupted"
    history: list = field(default_factory=list)   # one dict per validation
    test: object | None = None                    # the test split scored with the best weights
    losses: dict = field(default_factory=dict)    # step -> training loss, for this invocation's steps
    train_seconds: float = 0.0


@dataclass
class RunPosition:
    step: int = 0                     # optimizer steps since the start of the run
    epoch: int = 0                    # completed epochs
    position: int = 0                 # the next batch of the epoch's order
    order: list | None = None         # the epoch's batches (index arrays)
    best: tuple | None = None         # (score, -loss) of the best validation so far (score: exact match, F1)
    history: list = field(default_factory=list)    # one dict per validation
    time: float = 0.0                 # seconds since the run began, summed over resumes (RunHistory)


def save_position(run, model, optimizer, config, at: RunPosition, dist,
                  history: RunHistory | None = None) -> None:
    """The latest checkpoint, with ``at`` (the epoch's order as two arrays); rank 0 alone writes, then
    fsyncs ``history``'s metrics.jsonl."""
    if not dist.is_root:
        return
    meta = {"step": at.step, "epoch": at.epoch, "position": at.position, "best": at.best,
            "history": at.history, "time": at.time, "train": config.to_dict()}
    arrays = {}
    if at.order is not None and at.position > 0:
        arrays["order/indices"] = np.concatenate(at.order).astype(np.int64)
        arrays["order/sizes"] = np.asarray([len(b) for b in at.order], dtype=np.int64)
    save_training_state(run, model, optimizer, meta, arrays)
    if history is not None:
        history.sync()


def restore_position(run, model, optimizer) -> RunPosition:
    """The latest checkpoint into ``model`` and ``optimizer``; where the run was."""
    def read(arrays, meta):
        order = None
        if "order/indices" in arrays:
            bounds = np.cumsum(arrays["order/sizes"])[:-1]
            order = np.split(arrays["order/indices"], bounds)
        return RunPosition(int(meta["step"]), int(meta["epoch"]), int(meta["position"]), order,
                           None if meta.get("best") is None else tuple(meta["best"]), list(meta.get("history", [])),
                           float(meta.get("time") or 0.0))

    return restore_training_state(run, model, optimizer, read)[2]


def step_schedule(optimizer, config, start_step: int):
    """The learning rate after ``t`` steps: ``max(min_lr, lr * lr_decay ** (t // lr_decay_every))``
    (:mod:`rnnlab.training.schedule`'s step schedule), from ``start_step`` on."""
    from .schedule import build_scheduler

    return build_scheduler(optimizer, "step", config.lr, min_lr=min(config.min_lr, config.lr),
                           lr_decay=config.lr_decay, lr_decay_every=config.lr_decay_every, start_step=start_step)


def next_batch(at: RunPosition, batches, dist):
    """This rank's share of the next batch's indices (data-parallel; alone: all of it); a new epoch
    first draws its order of ``batches`` (rank 0's, on every rank)."""
    if at.position == 0:
        at.order = dist.broadcast(batches.order(backend.generator()))
    return dist.shard(at.order[at.position])


def advance(at: RunPosition, losses: dict, loss: float) -> None:
    """A step done: count it, record its ``loss``, go to the next batch (after the epoch's last, the
    next epoch, whose order is drawn anew)."""
    at.step += 1
    at.position += 1
    losses[at.step] = loss
    if at.position >= len(at.order):
        at.position, at.epoch, at.order = 0, at.epoch + 1, None


def keep_best(at: RunPosition, record: dict, key: tuple, message: str, run, model, log) -> None:
    """Record a validation (``record`` in the history, ``message`` logged); a ``key`` above the best so
    far (compared as tuples, e.g. ``(exact_match, -loss)``) keeps these weights as the best."""
    at.history.append(record)
    improved = at.best is None or key > tuple(at.best)
    log(message + ("  (best)" if improved else ""))
    if improved:
        at.best = key
        run.save_best(model.state_dict(), record)


def report_end(run, at: RunPosition, result: StepRunResult, start_step: int, dist, log) -> None:
    """The end of a step-scheduled run: interrupted, how to continue; otherwise (rank 0) ``results.json``
    and the last line."""
    if result.stop_reason == "interrupted":
        log(f"interrupted: saved the training state at step {at.step} in {run.path}; continue with --resume")
    elif dist.is_root:
        write_results(run, at, result.stop_reason, None if result.test is None else result.test.to_dict(),
                      result.train_seconds, start_step)
        log(f"done at step {at.step}, epoch {at.epoch} ({result.stop_reason}, {result.train_seconds:.1f} s "
            f"training); run directory: {run.path}")
