"""Training a per-character tagger (:class:`~rnnlab.models.SequenceTagger`) to restore spaces: the loop,
top to bottom.

The text's non-blank lines become ``(characters without spaces, labels)`` (:mod:`rnnlab.data.spacing`,
label 1: a space follows); the first 90% of the lines train, the next 5% validate, the last 5% test
(or all train and ``val_file`` validates). One step::

    batch = order[position]                         # B lines of similar length
    ids, lengths = pad(lines[batch])                # (L, B) character ids, <pad> after each end
    logits = tagger(ids, lengths)                   # (L, B, 2)
    loss = criterion(logits.reshape(-1, 2), labels.reshape(-1))   # -100 after each end: ignored
    tagger.backward(criterion.backward().reshape(logits.shape)); clip; optimizer.step()

Every ``eval_every`` steps (and at the end) the validation lines are scored (loss, precision, recall
and F1 of the predicted spaces, :mod:`rnnlab.training.tagging_eval`); the best weights by F1 are kept.
At the end the test lines are scored with the best weights and ``results.json`` written. The learning
rate schedule and the exact resume are
those of :mod:`rnnlab.training.seq2seq` (:mod:`rnnlab.training.loop`'s step-scheduled parts): weights,
optimizer moments, random state, batch order, position.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__, backend
from ..data.pairs import PairBatches, SymbolVocabulary
from ..data.spacing import tagged_lines
from ..data.text import read_text
from ..errors import RnnlabError, require
from ..models import SequenceTagger
from . import loop
from .config import MODELS
from .loop import RunPosition
from .step_settings import StepSettings
from .tagging_eval import SpacingScore, label_batch, score_spacing, tagging_loss

TASKS = ("spacing",)
IGNORE = -100


@dataclass
class TagConfig(StepSettings):
    # data
    text_file: str | None = None
    val_file: str | None = None       # validation text; None: 5% of the lines (and 5% for the test split)
    task: str = "spacing"
    encoding: str = "utf-8"
    max_length: int = 256             # longer lines are cut at word boundaries into pieces this long
    # model
    model: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 2
    embedding_size: int | None = None  # None: min(hidden_size, 64)
    bidirectional: bool = True
    dropout: float = 0.0
    dtype: str = "float32"
    # optimisation
    optimizer: str = "adam"
    lr: float = 3e-3
    lr_decay: float = 0.7             # the learning rate is multiplied by this every lr_decay_every steps ...
    lr_decay_every: int = 500
    min_lr: float = 1e-4              # ... down to this
    batch_size: int = 64
    grad_clip: float = 5.0
    # how long
    steps: int | None = None
    epochs: float | None = None
    time_budget: float | None = None
    # evaluation
    eval_every: int = 500
    eval_lines: int = 2000            # validation lines scored at each validation
    max_bad_steps: int = 5
    seed: int = 1337

    RESUME_MUST_MATCH = ("text_file", "val_file", "task", "encoding", "max_length", "model", "hidden_size",
                         "num_layers", "embedding_size", "bidirectional", "dropout", "dtype", "optimizer",
                         "batch_size", "seed")

    def validate(self) -> "TagConfig":
        require(self.task in TASKS, "--task", self.task, "one of " + ", ".join(TASKS))
        require(self.model in MODELS, "--model", self.model, "one of " + ", ".join(MODELS))
        require(self.optimizer in loop.OPTIMIZERS, "--optimizer", self.optimizer, "one of " + ", ".join(loop.OPTIMIZERS))
        self.check_sizes_limits_and_rates(("hidden_size", "num_layers", "batch_size",
                                           "eval_lines", "max_length", "max_bad_steps"))
        require(self.eval_every >= 0, "--eval-every", self.eval_every, ">= 0")
        require(self.dtype in ("float32", "float64"), "--dtype", self.dtype, "float32 or float64")
        return self


# ---------------------------------------------------------------------------------------------------
# data, model, run configuration
# ---------------------------------------------------------------------------------------------------

@dataclass
class TaggedLines:
    """Lines as ``(characters, labels)`` and their ids under the run's vocabulary."""
    lines: list
    vocabulary: SymbolVocabulary

    def ids(self) -> list[np.ndarray]:
        return [self.vocabulary.encode(characters) for characters, _ in self.lines]

    def batches(self, batch_size: int, bucket: bool = True) -> PairBatches:
        return PairBatches(self.ids(), None, batch_size=batch_size, bucket=bucket)


def read_tagged_lines(path, config: TagConfig) -> list:
    lines = tagged_lines(read_text(path, encoding=config.encoding, bytes_hint=False), config.max_length)
    if not lines:
        raise RnnlabError(f"{path}: holds no words; give a text with words separated by spaces")
    return lines


def load_tag_data(config: TagConfig, saved: dict | None = None):
    """``(train, val, test, vocabulary)``: lists of ``(characters, labels)`` and the character vocabulary."""
    if config.text_file is None:
        raise RnnlabError("no TEXT file given; give a text whose words are separated by spaces")
    lines = read_tagged_lines(config.text_file, config)
    if config.val_file is not None:
        train, val, test = lines, read_tagged_lines(config.val_file, config), []
    else:
        if len(lines) < 2:
            raise RnnlabError(f"{config.text_file}: {loop.counted(len(lines), 'line')}: too few to split into "
                              f"training and validation; give a longer text (1000s of lines), or a separate "
                              f"--val-file")
        num_val = max(1, round(0.05 * len(lines)))
        num_test = round(0.05 * len(lines)) if len(lines) - num_val > 2 else 0
        num_train = len(lines) - num_val - num_test
        train, val, test = lines[:num_train], lines[num_train:num_train + num_val], lines[num_train + num_val:]
    if saved is not None:
        vocabulary = SymbolVocabulary.from_config(saved["vocabulary"])
    else:
        vocabulary = SymbolVocabulary.build(characters for characters, _ in train)
    return train, val, test, vocabulary


def build_model(config: TagConfig, vocabulary: SymbolVocabulary) -> SequenceTagger:
    return SequenceTagger(len(vocabulary), 2, hidden_size=config.hidden_size, num_layers=config.num_layers,
                          cell=config.model, bidirectional=config.bidirectional, embedding_size=config.embedding_size,
                          dropout=config.dropout, padding_idx=vocabulary.pad_id, dtype=config.dtype)


def validate(model, val: TaggedLines, criterion, config: TagConfig, at: RunPosition, run, log, history) -> None:
    """Score the validation lines, record them (and in metrics.jsonl), keep the best weights (by F1,
    then loss)."""
    loss = tagging_loss(model, val.lines[:config.eval_lines], val.vocabulary, criterion)
    score = score_spacing(model, val.lines[:config.eval_lines], val.vocabulary)
    record = {"step": at.step, "epoch": at.epoch, "val_loss": loss, "val_precision": score.precision,
              "val_recall": score.recall, "val_f1": score.f1, "val_exact_line": score.exact_line}
    loop.keep_best(at, record, (score.f1, -loss),
                   f"step {at.step}: val loss {loss:.4f}, spaces precision {score.precision:.4f} recall "
                   f"{score.recall:.4f} F1 {score.f1:.4f}, exact lines {100 * score.exact_line:.2f}% "
                   f"({loop.counted(score.lines, 'line', grouped=False)})", run, model, log)
    history.scores(at, record, "val_")


# ---------------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------------

@dataclass
class TagResult(loop.StepRunResult):
    test: SpacingScore | None = None              # the test lines scored with the best weights


def train(config: TagConfig, out, resume: bool = False, stream=None, progress_bar: bool = True) -> TagResult:
    """Train a :class:`SequenceTagger` to restore spaces as ``config`` says; checkpoints go to ``out``."""
    config.validate()
    with loop.run_lock(out):  # one training process per run directory (rank 0)
        return train_locked(config, out, resume, stream, progress_bar)


def train_locked(config: TagConfig, out, resume: bool = False, stream=None, progress_bar: bool = True) -> TagResult:
    from ..nn import CrossEntropyLoss
    from .rundir import load_model

    dist, stream = loop.this_rank(stream)  # under mpiexec: this rank of several, rank 0's messages only
    config.validate()
    dist.check_divides(config.batch_size)
    run, saved = loop.create_or_resume_run(out, resume, "tagger", config, TagConfig.RESUME_MUST_MATCH,
                                           dist, path_settings=("text_file", "val_file"),
                                           flag_names={"text_file": "TEXT", "val_file": "--val-file"})
    train_lines, val_lines, test_lines, vocabulary = load_tag_data(config, saved)
    steps, epochs, time_budget = config.limits()

    backend.manual_seed(config.seed)
    model = build_model(config, vocabulary)
    optimizer = loop.build_optimizer(config.optimizer, model.parameters(), config.lr)
    if resume:
        at = loop.resume_run(run, saved, config, model, optimizer, loop.restore_position, dist)
    else:
        loop.start_run(run, {"rnnlab_version": __version__, "kind": "tagger", "task": config.task,
                             "model": model.config(), "vocabulary": vocabulary.to_config(),
                             "labels": ["no space follows", "a space follows"],
                             "data": {"train": len(train_lines), "val": len(val_lines), "test": len(test_lines)},
                             "train": config.to_dict()}, model, dist)
        at = RunPosition()
    scheduler = loop.step_schedule(optimizer, config, at.step)
    criterion = CrossEntropyLoss(ignore_index=IGNORE)
    batches = TaggedLines(train_lines, vocabulary).batches(config.batch_size)
    val = TaggedLines(val_lines, vocabulary)
    max_steps = loop.step_limit(steps, epochs, len(batches))

    progress, log = loop.progress_and_log(progress_bar, max_steps, time_budget, stream, at.step)
    history = loop.RunHistory(run, resume, stream, dist, "lines_per_s", at.time)  # metrics.jsonl, rank 0
    gradient_step = loop.GradientStep(model, optimizer, config.grad_clip, config.max_bad_steps, config.lr,
                                      run.path, log, dist)
    result = TagResult(Path(out), at.step, at.epoch, "epochs", at.history)
    start_step = at.step
    log(f"{'resuming' if resume else 'training'} {model.cell} tagger ({config.task}, "
        f"{model.num_parameters():,} parameters): {len(train_lines):,} training, {len(val_lines):,} validation, "
        f"{loop.counted(len(test_lines), 'test line')}; {len(vocabulary.symbols)} characters; epoch {at.epoch}, "
        f"step {at.step}")
    train_seconds = 0.0
    validated_step = saved_step = None
    model.train()
    try:
        with loop.interruptible(stream) as interrupt:
            while True:
                reason = loop.agreed_stop_reason(at.step, max_steps, steps, train_seconds, time_budget,
                                                 interrupt.requested, dist)
                if reason is not None:
                    result.stop_reason = reason
                    break

                started = time.perf_counter()
                indices = loop.next_batch(at, batches, dist)  # data-parallel: this rank's share of the batch
                lines, lr = len(at.order[at.position]), optimizer.param_groups[0]["lr"]  # the global batch's
                if len(indices):
                    batch = batches.batch(indices)
                    labels = label_batch([train_lines[k][1] for k in indices.tolist()], batch.source.shape[0], IGNORE)
                    logits = model(batch.source, batch.source_lengths)                     # (L, B, 2)
                    loss = float(criterion(logits.reshape(-1, 2), labels.reshape(-1)))
                    backward = lambda: model.backward(criterion.backward().reshape(logits.shape))  # noqa: E731
                    labelled = int((labels != IGNORE).sum())  # the loss's mean is over these
                else:  # an epoch's last batch, smaller than the ranks
                    loss, backward, labelled = 0.0, (lambda: None), 0
                gradient_step(loss, backward, at.step + 1, weight=dist.weight(labelled, dist.sum(labelled)))
                scheduler.step()
                loop.advance(at, result.losses, gradient_step.loss)  # the global batch's loss (alone: the same)
                train_seconds += time.perf_counter() - started
                history.train_step(at, gradient_step.loss, lr, lines, train_seconds)
                if progress is not None:
                    chars_per_s = (at.step - start_step) * config.batch_size * float(batch.source_lengths.mean()) \
                        / max(train_seconds, 1e-9)
                    progress.update(at.step, loss=gradient_step.loss,
                                    extra=f"epoch {at.epoch + 1}  ~{chars_per_s:,.0f} chars/s")
                if config.eval_every and at.step % config.eval_every == 0 and dist.is_root:  # rank 0 alone
                    validate(model, val, criterion, config, at, run, log, history)
                    loop.save_position(run, model, optimizer, config, at, dist, history)
                    validated_step = saved_step = at.step
            # data-parallel: rank 0 alone validates, writes and scores the test lines
            if dist.is_root and validated_step != at.step and result.stop_reason != "interrupted":
                validate(model, val, criterion, config, at, run, log, history)
            if saved_step != at.step:
                loop.save_position(run, model, optimizer, config, at, dist, history)
    finally:
        log.close()
        history.flush()
    result.step, result.epoch, result.train_seconds = at.step, at.epoch, train_seconds
    if result.stop_reason != "interrupted" and dist.is_root and test_lines:
        best, name = load_model(run, lambda: build_model(config, vocabulary))
        result.test = score_spacing(best, test_lines, vocabulary)
        history.scores(at, {"test_loss": tagging_loss(best, test_lines, vocabulary, criterion),
                            **{"test_" + key: getattr(result.test, key)
                               for key in ("precision", "recall", "f1", "exact_line")}}, "test_")
        log(f"test ({loop.counted(result.test.lines, 'line')}, {name} weights): spaces precision "
            f"{result.test.precision:.4f} recall {result.test.recall:.4f} F1 {result.test.f1:.4f}, "
            f"exact lines {100 * result.test.exact_line:.2f}%")
    loop.report_end(run, at, result, start_step, dist, log)
    history.close()
    return result


def load_tagger(run_dir, checkpoint=None) -> tuple[SequenceTagger, SymbolVocabulary, dict, str]:
    """``(tagger, vocabulary, config.json, checkpoint name)`` of a tagger run, evaluation mode."""
    from .rundir import load_model, open_run

    run, saved = open_run(run_dir, "tagger")
    vocabulary = SymbolVocabulary.from_config(saved["vocabulary"])
    model, name = load_model(run, lambda: SequenceTagger.from_config(saved["model"]), checkpoint)
    if model.vocab_size != len(vocabulary):
        raise RnnlabError(f"{run.config_path}: the vocabulary ({len(vocabulary)} ids) does not fit the model "
                          f"({model.vocab_size}); re-train or restore the file")
    return model, vocabulary, saved, name
