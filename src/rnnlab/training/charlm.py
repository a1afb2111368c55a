"""Training and evaluating a character-level language model: the loop, read top to bottom.

One step::

    x, y = streams.batch(position)           # (T, B) ids, time-major; y is x shifted by one character
    logits, state = model(x, state)          # state carried from the previous batch (truncated BPTT)
    loss = criterion(logits, y)              # mean cross-entropy, nats per character
    model.backward(criterion.backward())     # gradients into every parameter's .grad
    clip_grad_norm_(params, grad_clip); optimizer.step()

Around it: evaluation on the validation split (loss in nats and bits per character, a short sample),
checkpoints in a run directory (:class:`rnnlab.training.RunDirectory`; written atomically), the best
weights by validation loss, Ctrl-C/SIGTERM saving and exiting cleanly, steps that turn NaN skipped.

Exact resume: the training state holds everything the next step depends on (weights, optimizer moments,
step, data position and epoch, the random generator's state and the hidden state carried between
batches), so ``train(steps=20)`` then ``train(resume=True, steps=40)`` gives, loss by loss, what
``train(steps=40)`` gives.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__, backend
from ..data.sources import Corpus
from ..errors import RnnlabError
from ..models import CharRNN
from . import loop
from .config import CHECKPOINT_SECONDS, CHECKPOINT_STEPS, DEFAULT_TIME_BUDGET, TrainConfig, parse_interval
from .signals import Interrupted, stop_if_requested

LN2 = math.log(2.0)
# Evaluation reads the text as this many streams of this many steps at a time (forward only, so wider
# and longer than a training batch is cheap); fixed, so a run's numbers do not depend on its batch size.
EVAL_BATCH_SIZE = 64
EVAL_SEQ_LEN = 128
# printed at the first Ctrl-C / SIGTERM while the test split is scored (the checkpoint is already written)
TEST_INTERRUPT_MESSAGE = "{signal}: stopping the test scoring (the training state is saved)"


# ---------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------

def load_corpus(config: TrainConfig, vocab=None, extend: bool = False) -> Corpus:
    """Find, read, encode and split the run's text (:func:`rnnlab.data.sources.load_corpus`): with ``vocab``
    given, encode with exactly that vocabulary, or with ``extend`` with it plus the text's new symbols."""
    from ..data.sources import load_corpus as load

    return load(config.text_file, config.glob, config.encoding, config.byte_mode, config.split, config.val_file,
                vocab=vocab, extend=extend, min_train=config.batch_size * config.seq_len + 1)


# ---------------------------------------------------------------------------------------------------
# model and optimizer
# ---------------------------------------------------------------------------------------------------

def build_model(config: TrainConfig, vocab) -> CharRNN:
    return CharRNN(vocab, hidden_size=config.hidden_size, num_layers=config.num_layers, cell=config.model,
                   embedding_size=config.embedding_size, dropout=config.dropout, dtype=config.dtype)


def build_optimizer(config: TrainConfig, params):
    return loop.build_optimizer(config.optimizer, params, config.lr)


# ---------------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------------

def evaluate(model: CharRNN, ids, batch_size: int = 32, seq_len: int = 128, max_chars: int | None = None,
             dist=None):
    """Mean cross-entropy (nats per character) of predicting ``ids[1:]`` from the characters before.

    The text is cut into up to ``batch_size`` contiguous streams read ``seq_len`` steps at a time with
    the state carried, as in training. Returns ``(loss, characters_scored)``; divide the loss by ln 2
    for bits per character. Up to ``batch_size - 1`` characters at the end are left out. Inside a
    training run a signal stops it between chunks (:class:`rnnlab.training.signals.Interrupted`).
    Data-parallel (``dist``, :mod:`.distributed`): each rank scores its share of the streams, the sums add.
    """
    ids = np.asarray(ids if max_chars is None else ids[:max_chars + 1])
    predictions = len(ids) - 1
    if predictions < 1:
        raise ValueError("evaluate needs at least two characters")
    streams = max(1, min(batch_size, predictions // seq_len))
    per_stream = predictions // streams
    used = streams * per_stream
    inputs = ids[:used].reshape(streams, per_stream).T          # (S, B): stream b is column b
    targets = ids[1:used + 1].reshape(streams, per_stream).T
    if dist is not None:
        inputs, targets = dist.shard((inputs, targets))  # this rank's streams (maybe none)
    was_training = model.training
    model.eval()
    total, state = 0.0, None
    try:
        with backend.no_grad():
            for start in range(0, per_stream if inputs.shape[1] else 0, seq_len):
                stop_if_requested()  # a signal during training: stop scoring within a chunk
                x = inputs[start:start + seq_len].astype(np.intp)
                y = targets[start:start + seq_len].astype(np.intp)
                logits, state = model(x, state)
                total += float(cross_entropy_sum(logits, y))
    finally:
        model.train(was_training)
    if dist is not None:
        total = dist.sum(total)
    return total / used, used


def cross_entropy_sum(logits, targets) -> float:
    """Sum over positions of ``-log softmax(logits)[target]``, in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=-1))
    picked = np.take_along_axis(shifted, targets[..., None], axis=-1)[..., 0]
    return float((log_norm - picked).sum())


def default_prime(vocab) -> str:
    """A newline if the vocabulary has one (a sample then starts like a line), else its first symbol."""
    if "\n" in vocab:
        return "\n"
    return vocab.decode_one(0)


# ---------------------------------------------------------------------------------------------------
# where the run is, and the checkpoint that records it
# ---------------------------------------------------------------------------------------------------

@dataclass
class RunPosition:
    """Where a run is: what a checkpoint records besides the weights, the optimizer and the hidden state."""
    step: int = 0                      # optimizer steps since the start of the run (skipped ones count)
    epoch: int = 0                     # completed passes over the training split
    position: int = 0                  # the next batch of the epoch
    best_val_loss: float | None = None
    history: list = field(default_factory=list)   # one {"step", "time", "val_loss", "val_bpc"} per evaluation
    time: float = 0.0                  # seconds since the run began, summed over resumes


def hidden_arrays(state) -> dict:
    """The hidden state carried between batches as named arrays: ``hidden/0`` (h), ``hidden/1`` (c, LSTM)."""
    if state is None:
        return {}
    parts = state if isinstance(state, tuple) else (state,)
    return {f"hidden/{i}": np.ascontiguousarray(part) for i, part in enumerate(parts)}


def hidden_from_arrays(arrays: dict, cell: str):
    parts = [arrays[f"hidden/{i}"] for i in range(2) if f"hidden/{i}" in arrays]
    if not parts:
        return None
    return tuple(parts) if cell == "lstm" else parts[0]


def save_checkpoint(run, model, optimizer, config: TrainConfig, corpus: Corpus, at: RunPosition, hidden,
                    history: bool = True, dist=None) -> None:
    """The latest checkpoint: weights, optimizer moments, random state, :class:`RunPosition`, hidden state
    (and with ``history`` the ``--keep`` copy of the weights). Data-parallel (``dist``): the hidden state
    of all the streams, gathered to rank 0, which alone writes."""
    if dist is not None:
        hidden = dist.gather_streams(hidden)
        if not dist.is_root:
            return
    from .history import save_history

    meta = {"step": at.step, "epoch": at.epoch, "position": at.position, "training_characters": len(corpus.train),
            "best_val_loss": at.best_val_loss, "history": at.history, "time": at.time, "train": config.to_dict()}
    loop.save_training_state(run, model, optimizer, meta, hidden_arrays(hidden))
    if history:
        save_history(run.path, model.state_dict(), at.step, config.keep, run._weights_metadata())  # --keep N


def restore_checkpoint(run, model, optimizer, config: TrainConfig, corpus: Corpus, batches: int):
    """``(RunPosition, hidden)`` from the latest checkpoint, weights and optimizer loaded; one line when the
    text changed since (its training split is no longer the saved length)."""
    def read(arrays, meta):
        return (RunPosition(int(meta["step"]), int(meta["epoch"]), int(meta["position"]), meta.get("best_val_loss"),
                            list(meta.get("history", [])), float(meta.get("time") or 0.0)),
                hidden_from_arrays(arrays, config.model), int(meta.get("training_characters", len(corpus.train))))

    _, _, (at, hidden, saved_chars) = loop.restore_training_state(run, model, optimizer, read)
    if saved_chars != len(corpus.train) or not 0 <= at.position < batches:
        raise RnnlabError(f"{corpus.name}: the text changed since the run was saved ({saved_chars:,} training "
                          f"characters then, {len(corpus.train):,} now); resume on the same text")
    return at, hidden


def check_resume_matches(config: TrainConfig, saved_train: dict, run_path) -> None:
    """RnnlabError when a setting that decides the model or the data differs from the saved run's."""
    loop.check_resume_matches(config, saved_train, run_path, TrainConfig.RESUME_MUST_MATCH,
                              path_settings=("text_file", "val_file"), flag_names={"text_file": "TEXT"})


def run_config(config: TrainConfig, model: CharRNN, corpus: Corpus) -> dict:
    """What ``config.json`` holds: the model, the data settings, the vocabulary and the rnnlab version."""
    return {"rnnlab_version": __version__, "kind": "charlm", "model": model.config(),
            "vocabulary": corpus.vocab.to_config(), "corpus": str(corpus.path.resolve()),
            "train": config.to_dict()}


def validate_and_sample(model: CharRNN, corpus: Corpus, config: TrainConfig, at: RunPosition, run, metrics, log,
                        dist=None):
    """Score the validation split, keep the best weights, show a sample; the validation loss (None: too short)."""
    if len(corpus.val) < 2:
        log(f"step {at.step}: validation split too short to evaluate")
        return None
    val_loss, _ = evaluate(model, corpus.val, EVAL_BATCH_SIZE, EVAL_SEQ_LEN, config.eval_chars, dist)
    writes = dist is None or dist.is_root  # data-parallel: rank 0 alone writes and samples
    at.history.append({"step": at.step, "time": at.time, "val_loss": val_loss, "val_bpc": val_loss / LN2})
    metrics.write(at.history[-1])
    if config.plot and writes:  # --plot: RUN_DIR/curves.png redrawn with this evaluation
        from .curves import plot_runs

        metrics.flush()
        plot_runs([run.path], run.path / "curves.png")
    # a NaN loss (or NaN weights, which save_best refuses) is never the best
    improved = math.isfinite(val_loss) and (at.best_val_loss is None or val_loss < at.best_val_loss) \
        and (not writes or run.save_best(model.state_dict(), {"step": at.step, "val_loss": val_loss}))
    if improved:
        at.best_val_loss = val_loss
    log(f"step {at.step}: val loss {val_loss:.4f} nats, {val_loss / LN2:.4f} bits/char" + ("  (best)" if improved else ""))
    if config.sample_length and math.isfinite(val_loss) and writes:
        # its own seeded generator: showing a sample must not change the training run's random stream
        chars = []
        for char in model.generate(default_prime(corpus.vocab), config.sample_length, temperature=0.8,
                                   seed=config.seed + at.step):
            stop_if_requested()  # a signal while sampling: stop within a character
            chars.append(char)
        log("sample: " + "".join(chars).replace("\n", "\n        "))
    return val_loss


# ---------------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------------

@dataclass
class TrainResult:
    run_dir: Path
    step: int                          # the step the run ended at (counted from the start of the run)
    stop_reason: str                   # "steps", "epochs", "time", "interrupted"
    losses: dict = field(default_factory=dict)   # step -> training loss, for this invocation's steps
    val_loss: float | None = None
    best_val_loss: float | None = None
    test_loss: float | None = None
    time: float | None = None          # seconds of training


def train(config: TrainConfig, out, resume: bool = False, stream=None) -> TrainResult:
    """Train a :class:`CharRNN` as ``config`` says; checkpoints go to the run directory ``out``.

    With ``resume`` the run continues from ``out``'s training state; ``config.steps`` still counts from
    the start of the run. Settings that decide the model or the data must match the saved run. The run
    directory is locked while the run trains in it (:meth:`rnnlab.training.rundir.RunDirectory.lock`).
    """
    from . import distributed
    from .rundir import RunDirectory

    config.validate()
    dist = distributed.context()  # under mpiexec: this rank of several; alone: a stand-in that does nothing
    dist.check_divides(config.batch_size)
    with dist.lock(RunDirectory(out)):  # held by rank 0, the one process that writes there
        return train_locked(config, out, resume, stream, dist)


def train_locked(config: TrainConfig, out, resume: bool = False, stream=None, dist=None) -> TrainResult:
    """:func:`train`, its run directory's lock held (data-parallel: by rank 0, which alone reads and
    writes the run directory; ``dist`` is :func:`rnnlab.training.distributed.context`)."""
    from ..data import BatchStreams, Vocabulary
    from ..nn import CrossEntropyLoss
    from .metrics import METRICS_FILE, MetricsLog
    from .progress import Progress
    from .rundir import RunDirectory, open_for_resume
    from .signals import graceful_interrupt

    from . import distributed

    dist = distributed.context() if dist is None else dist
    stream = dist.stream(sys.stderr if stream is None else stream)  # rank 0's messages only
    config.validate()

    # --- data: the saved run's vocabulary when resuming ------------------------------------------
    source = None  # --init-from: the run whose best weights this one starts from
    if resume:
        run, saved = dist.on_root(open_for_resume, out, "charlm")
        check_resume_matches(config, saved.get("train", {}), run.path)
        corpus = load_corpus(config, vocab=Vocabulary.from_config(saved["vocabulary"]))
        # killed between its config.json and its step-0 checkpoint: nothing trained yet, so start afresh
        resume = dist.on_root(lambda: run.training_state_path.exists() or run.model_path.exists())
    elif config.init_from is not None:
        from .finetune import source_run

        run = RunDirectory(out)
        source, _ = source_run(config.init_from)
        corpus = load_corpus(config, vocab=source.vocab, extend=True)
    else:
        run = RunDirectory(out)
        corpus = load_corpus(config)
    if config.plot:
        from .curves import require_matplotlib

        require_matplotlib("--plot")
    # before anything is written: a text too short for one batch must not leave a half-made run behind
    part = "all" if corpus.val_source is not None else f"the training part ({config.split[0]:.0%})"
    streams = BatchStreams(corpus.train, config.batch_size, config.seq_len, name=f"{part} of {corpus.name}")
    from .schedule import build_scheduler, check_horizon, describe

    check_horizon(config.lr_schedule, config.warmup, loop.step_limit(config.steps, config.epochs, len(streams)))

    # --- model and optimizer: fresh, or from the saved training state ---------------------------
    backend.manual_seed(config.seed)
    model = build_model(config, corpus.vocab)
    if source is not None:
        from .finetune import transplant

        transplant(model, source.model)  # new symbols' rows stay freshly initialised
    optimizer = build_optimizer(config, model.parameters())
    if resume:
        at, hidden = dist.on_root(restore_checkpoint, run, model, optimizer, config, corpus, len(streams))
        dist.share_training_state(model, optimizer)  # rank 0's weights, moments and random state on all
        hidden = dist.streams_of(hidden)  # the saved state of all streams: this rank's
    else:
        # a run directory that never reached its first checkpoint holds nothing to lose: start it afresh
        dist.on_root(lambda: run.create(run_config(config, model, corpus),
                                        overwrite=run.exists() and not run.has_training_state()))
        dist.broadcast_parameters(model)  # every rank starts from rank 0's weights
        at, hidden = RunPosition(), None
        # a first checkpoint at step 0: a run killed before its first evaluation can still --resume
        save_checkpoint(run, model, optimizer, config, corpus, at, hidden, history=False, dist=dist)
    criterion = CrossEntropyLoss()

    # --- when to stop (the first limit reached) and when to checkpoint ----------------------------
    max_steps = loop.step_limit(config.steps, config.epochs, len(streams))
    time_budget = config.time_budget
    if max_steps is None and time_budget is None:
        time_budget = DEFAULT_TIME_BUDGET
    # the learning rate of every step is a function of the step alone: rebuilt at a resumed step, exact
    scheduler = build_scheduler(optimizer, config.lr_schedule, config.lr, config.warmup, config.min_lr,
                                config.lr_decay, config.lr_decay_every, max_steps, at.step)
    # evaluations every so many steps or seconds; checkpoints at each evaluation and at least every
    # CHECKPOINT_SECONDS (every 200 steps with --eval-every 0), or as --checkpoint-every says
    eval_steps, eval_seconds = parse_interval(config.eval_every, "--eval-every")
    if config.checkpoint_every is None:
        checkpoint_steps = None if eval_steps or eval_seconds else CHECKPOINT_STEPS
        checkpoint_seconds = CHECKPOINT_SECONDS
    else:
        checkpoint_steps, checkpoint_seconds = parse_interval(config.checkpoint_every, "--checkpoint-every")

    # --- what the run reports ---------------------------------------------------------------------
    metrics = MetricsLog(run.path / METRICS_FILE, resume=resume, stream=stream) if dist.is_root \
        else distributed.NO_METRICS  # rank 0 alone writes; read (and checked) on resume
    chars_per_step = config.batch_size * config.seq_len
    progress = Progress(total_steps=max_steps, time_budget=time_budget, stream=stream)
    log = loop.LogLines(progress, stream)
    gradient_step = loop.GradientStep(model, optimizer, config.grad_clip, config.max_bad_steps, config.lr,
                                      run.path, log, dist)
    result = TrainResult(Path(out), at.step, "steps", best_val_loss=at.best_val_loss)
    from .summary import first_line, stop_rule

    log(first_line(resume, model, corpus, config.batch_size, config.seq_len,
                   stop_rule(config.steps, config.epochs, time_budget, max_steps if config.epochs else None,
                             default_budget=time_budget is not None and config.time_budget is None
                             and max_steps is None),
                   step=at.step, schedule=describe(config.lr_schedule, config.lr, config.warmup, config.min_lr,
                                                   config.lr_decay, config.lr_decay_every))
        + (f"; starting from the best weights of {config.init_from}" if source is not None else ""))
    placement = dist.describe()  # which process is which rank (every rank takes part)
    if placement:
        log(placement)
    started = time.perf_counter()
    time_before = at.time  # seconds of the run before this invocation
    last_eval_step, last_eval_time, last_checkpoint_time = None, started, started
    model.train()
    try:
        with graceful_interrupt(loop.INTERRUPT_MESSAGE, stream) as interrupt, \
                np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while True:
                # stop conditions, checked at step boundaries only
                reason = loop.stop_reason(at.step, max_steps, config.steps, time.perf_counter() - started,
                                          time_budget, interrupt.requested)
                reason = dist.agree_stop(reason)  # any rank's reason stops all at this step
                if reason is not None:
                    result.stop_reason = reason
                    break

                if at.position == 0:
                    hidden = None  # a new epoch: every stream starts again from the beginning
                x, y = dist.shard(streams.batch(at.position))  # data-parallel: (T, B / ranks), this rank's
                x, y = x.astype(np.intp), y.astype(np.intp)
                logits, new_hidden = model(x, hidden)                          # (T, B, V)
                loss = float(criterion(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)))
                lr = optimizer.param_groups[0]["lr"]  # this step's rate (the schedule's)
                if gradient_step(loss, lambda: model.backward(criterion.backward().reshape(logits.shape)),
                                 at.step + 1, weight=dist.weight(x.size, chars_per_step)):
                    hidden = new_hidden  # a skipped step keeps the carried state as it was; the data moves on
                scheduler.step()  # skipped steps count too: the rate follows the step number
                loss = gradient_step.loss  # the global batch's (alone: the same number)
                at.step += 1
                at.position += 1
                if at.position >= len(streams):
                    at.position, at.epoch = 0, at.epoch + 1
                result.losses[at.step] = loss
                now = time.perf_counter()
                at.time = time_before + (now - started)
                chars_per_s = (at.step - result.step) * chars_per_step / max(now - started, 1e-9)
                metrics.write({"step": at.step, "time": at.time, "loss": loss, "lr": lr, "chars_per_s": chars_per_s})
                progress.update(at.step, loss=loss, chars_per_s=chars_per_s)
                if gradient_step.bad_steps:
                    continue  # in a run of bad steps: keep the last good checkpoint as it is
                evaluated = False
                # every rank evaluates and saves at the same steps, even when a duration decides (each rank's clock)
                due_eval, due_checkpoint = dist.agree_any(
                    (eval_steps and at.step % eval_steps == 0) or (eval_seconds and now - last_eval_time >= eval_seconds),
                    checkpoint_seconds is not None and now - last_checkpoint_time >= checkpoint_seconds)
                if due_eval:
                    try:
                        result.val_loss = validate_and_sample(model, corpus, config, at, run, metrics, log, dist)
                    except Interrupted:
                        log(f"step {at.step}: evaluation stopped by the signal")
                        result.stop_reason = "interrupted"
                        break
                    last_eval_step, last_eval_time, evaluated = at.step, time.perf_counter(), True
                if (checkpoint_steps and at.step % checkpoint_steps == 0) or due_checkpoint \
                        or (evaluated and config.checkpoint_every is None):
                    save_checkpoint(run, model, optimizer, config, corpus, at, hidden, dist=dist)
                    metrics.sync()
                    last_checkpoint_time = time.perf_counter()

            # the end (or an interrupt): evaluate once more, save, and score the test split
            if result.stop_reason != "interrupted" and last_eval_step != at.step:
                try:
                    result.val_loss = validate_and_sample(model, corpus, config, at, run, metrics, log, dist)
                except Interrupted:
                    log(f"step {at.step}: evaluation stopped by the signal")
                    result.stop_reason = "interrupted"
            save_checkpoint(run, model, optimizer, config, corpus, at, hidden, dist=dist)
            metrics.sync()
    finally:
        progress.close()
        log.progress = None  # from here on, plain lines
        metrics.flush()
    result.step = at.step
    result.best_val_loss = at.best_val_loss
    result.time = at.time  # seconds since the run began, summed over resumes
    if result.stop_reason == "interrupted":
        log(f"interrupted: saved the training state at step {at.step} in {run.path}; continue with --resume")
        metrics.close()
        return result
    if len(corpus.test) >= 2:
        if len(corpus.test) > config.eval_chars:  # a large test split takes a while: say why the run goes on
            log(f"scoring the test split ({len(corpus.test):,} characters) ...")
        try:
            with graceful_interrupt(TEST_INTERRUPT_MESSAGE, stream), \
                    np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                test_loss, scored = evaluate(model, corpus.test, EVAL_BATCH_SIZE, EVAL_SEQ_LEN, dist=dist)
        except Interrupted:
            result.stop_reason = "interrupted"
            log(f"interrupted while scoring the test split; the training state at step {at.step} is saved in "
                f"{run.path}; --resume scores it")
            metrics.close()
            return result
        result.test_loss = test_loss
        metrics.write({"step": at.step, "time": at.time, "test_loss": test_loss, "test_bpc": test_loss / LN2})
        log(f"test: loss {test_loss:.4f} nats, {test_loss / LN2:.4f} bits/char over {scored:,} characters")
    metrics.close()
    log(f"done at step {at.step} ({result.stop_reason}); run directory: {run.path}")
    return result
