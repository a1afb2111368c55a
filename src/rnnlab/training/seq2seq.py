"""Training an encoder-decoder (:class:`~rnnlab.models.Seq2Seq`) on a pairs file: the loop, top to bottom.

The pairs (``source<TAB>target``, :mod:`rnnlab.data.pair_files`) are split 90/5/5 in a seeded order
(or all train, with ``val_file`` validating); character vocabularies are built from the training
pairs (or token vocabularies: ``level="token"``). One step::

    batch = batches.batch(order[position])     # B pairs of similar source length, padded, time-major
    logits = model(batch.source, batch.target_input, batch.source_lengths, teacher_forcing)  # (T, B, V)
    loss = criterion(logits.reshape(-1, V), batch.target_output.reshape(-1))   # mean over targets, <pad> ignored
    model.backward(criterion.backward().reshape(logits.shape))
    clip_grad_norm_(params, grad_clip); optimizer.step()

Every ``eval_every`` steps (and at the end) the validation pairs are scored: the teacher-forced loss
and the greedy decoding's exact match on up to ``eval_pairs`` of them; the best weights by exact match
(then loss) are kept in ``best.safetensors``. At the end the test split (if any) is decoded with the
best weights and ``results.json`` written. The learning rate after ``t`` steps is
``max(min_lr, lr * lr_decay ** (t // lr_decay_every))`` (:mod:`rnnlab.training.schedule`'s step schedule).

Exact resume: the training state holds the weights, the optimizer's moments, the random generator's
state (teacher forcing and dropout draw from it), the epoch's batch order and the position within it
(the learning rate is a function of the step alone),
so ``train(steps=20)`` then ``train(resume=True, steps=40)`` gives the losses and weights of
``train(steps=40)``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .. import __version__, backend
from ..data.pair_files import read_pairs, split_pairs
from ..data.pairs import LEVELS, PairBatches, SymbolVocabulary
from ..errors import RnnlabError, require
from ..models import Seq2Seq
from . import loop
from .config import MODELS
from .loop import RunPosition
from .step_settings import StepSettings
from .seq2seq_eval import Translations, translate_pairs, validation_loss

ATTENTIONS = ("general", "dot", "additive", "none")


@dataclass
class Seq2SeqConfig(StepSettings):
    # data
    pairs_file: str | None = None     # source<TAB>target per line
    val_file: str | None = None       # validation pairs; None: 5% of pairs_file (and 5% for the test split)
    encoding: str = "utf-8"
    level: str = "char"               # symbols: characters, or whitespace-separated tokens
    # model
    model: str = "lstm"               # the encoder's and decoder's cell
    hidden_size: int = 128
    num_layers: int = 1
    embedding_size: int | None = None  # None: min(hidden_size, 64)
    bidirectional: bool = True        # a bidirectional encoder (bridged to the decoder)
    attention: str = "general"        # general (Luong), dot, additive (Bahdanau) or none
    dropout: float = 0.0
    dtype: str = "float32"
    # optimisation
    optimizer: str = "adam"
    lr: float = 3e-3
    lr_decay: float = 0.7             # the learning rate is multiplied by this every lr_decay_every steps ...
    lr_decay_every: int = 800
    min_lr: float = 1e-4              # ... down to this
    batch_size: int = 128
    grad_clip: float = 5.0
    teacher_forcing: float = 1.0      # the share of decoder inputs that are the reference's symbols
    # how long: the first limit reached stops the run; none given -> DEFAULT_TIME_BUDGET seconds
    steps: int | None = None
    epochs: float | None = None
    time_budget: float | None = None  # seconds of training in this invocation (evaluations not counted)
    # evaluation
    eval_every: int = 500             # steps between validations (0: only at the end)
    eval_pairs: int = 1000            # validation pairs decoded for the exact match at each validation
    beam: int = 1                     # the beam size of the final test-split decoding
    max_bad_steps: int = 5
    seed: int = 1337

    RESUME_MUST_MATCH = ("pairs_file", "val_file", "encoding", "level", "model", "hidden_size", "num_layers",
                         "embedding_size", "bidirectional", "attention", "dropout", "dtype", "optimizer",
                         "batch_size", "seed")

    def validate(self) -> "Seq2SeqConfig":
        """RnnlabError naming the first nonsensical setting (the flag, the value, what is allowed)."""
        require(self.level in LEVELS, "--level", self.level, "one of " + ", ".join(LEVELS))
        require(self.model in MODELS, "--model", self.model, "one of " + ", ".join(MODELS))
        require(self.attention in ATTENTIONS, "--attention", self.attention, "one of " + ", ".join(ATTENTIONS))
        require(not (self.attention == "dot" and self.bidirectional), "--attention", self.attention,
                "general or additive with a bidirectional encoder (dot needs --unidirectional: equal encoder and "
                "decoder sizes)")
        require(self.optimizer in loop.OPTIMIZERS, "--optimizer", self.optimizer, "one of " + ", ".join(loop.OPTIMIZERS))
        self.check_sizes_limits_and_rates(("hidden_size", "num_layers", "batch_size",
                                           "eval_pairs", "beam", "max_bad_steps"))
        require(0.0 <= self.teacher_forcing <= 1.0, "--teacher-forcing", self.teacher_forcing, "in [0, 1]")
        require(self.eval_every >= 0, "--eval-every", self.eval_every, ">= 0")
        require(self.dtype in ("float32", "float64"), "--dtype", self.dtype, "float32 or float64")
        return self


# ---------------------------------------------------------------------------------------------------
# data, model, run configuration
# ---------------------------------------------------------------------------------------------------

@dataclass
class PairData:
    train: list
    val: list
    test: list
    source_vocabulary: SymbolVocabulary
    target_vocabulary: SymbolVocabulary

    def encoded(self, pairs) -> tuple[list, list]:
        return ([self.source_vocabulary.encode(s) for s, _ in pairs],
                [self.target_vocabulary.encode(t) for _, t in pairs])


def load_pair_data(config: Seq2SeqConfig, saved: dict | None = None) -> PairData:
    """The split pairs and the vocabularies (built from the training pairs, or the saved run's)."""
    if config.pairs_file is None:
        raise RnnlabError("no PAIRS file given; give a file of source<TAB>target lines (make one with "
                          "`rnnlab seq2seq data addition --count 50000 > pairs.tsv`)")
    pairs = read_pairs(config.pairs_file, config.encoding)
    if config.val_file is not None:
        train, val, test = pairs, read_pairs(config.val_file, config.encoding), []
    else:
        train, val, test = split_pairs(pairs, config.seed, source=config.pairs_file)
    if saved is not None:
        source_vocabulary = SymbolVocabulary.from_config(saved["source_vocabulary"])
        target_vocabulary = SymbolVocabulary.from_config(saved["target_vocabulary"])
    else:
        source_vocabulary = SymbolVocabulary.build((s for s, _ in train), level=config.level)
        target_vocabulary = SymbolVocabulary.build((t for _, t in train), level=config.level)
    return PairData(train, val, test, source_vocabulary, target_vocabulary)


def build_model(config: Seq2SeqConfig, data: PairData) -> Seq2Seq:
    return Seq2Seq(data.source_vocabulary, data.target_vocabulary, hidden_size=config.hidden_size,
                   num_layers=config.num_layers, cell=config.model, embedding_size=config.embedding_size,
                   bidirectional=config.bidirectional, attention=None if config.attention == "none" else config.attention,
                   dropout=config.dropout, dtype=config.dtype)


def run_config(config: Seq2SeqConfig, model: Seq2Seq, data: PairData) -> dict:
    """What ``config.json`` holds: the model, both vocabularies, the data's sizes, the settings."""
    return {"rnnlab_version": __version__, "kind": "seq2seq", "model": model.config(),
            "source_vocabulary": data.source_vocabulary.to_config(),
            "target_vocabulary": data.target_vocabulary.to_config(),
            "data": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
            "train": config.to_dict()}


def validate(model, data: PairData, val_batches, criterion, config, at: RunPosition, run, log, history) -> None:
    """Score the validation pairs, record them (and in metrics.jsonl), keep the best weights (by exact
    match, then loss)."""
    loss = validation_loss(model, val_batches, criterion)
    _, score = translate_pairs(model, data.val[:config.eval_pairs])
    record = {"step": at.step, "epoch": at.epoch, "val_loss": loss, "val_exact_match": score.exact_match,
              "val_char_accuracy": score.char_accuracy, "val_cer": score.cer}
    loop.keep_best(at, record, (score.exact_match, -loss),
                   f"step {at.step}: val loss {loss:.4f}, exact match {100 * score.exact_match:.2f}% "
                   f"({loop.counted(score.pairs, 'pair', grouped=False)}), char accuracy "
                   f"{100 * score.char_accuracy:.2f}%, CER {score.cer:.4f}", run, model, log)
    history.scores(at, record, "val_")


# ---------------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------------

@dataclass
class Seq2SeqResult(loop.StepRunResult):
    test: Translations | None = None              # the test split decoded with the best weights


def train(config: Seq2SeqConfig, out, resume: bool = False, stream=None, progress_bar: bool = True) -> Seq2SeqResult:
    """Train a :class:`Seq2Seq` as ``config`` says; checkpoints go to the run directory ``out``."""
    config.validate()
    with loop.run_lock(out):  # one training process per run directory (rank 0)
        return train_locked(config, out, resume, stream, progress_bar)


def train_locked(config: Seq2SeqConfig, out, resume: bool = False, stream=None, progress_bar: bool = True) -> Seq2SeqResult:
    from ..nn import CrossEntropyLoss

    dist, stream = loop.this_rank(stream)  # under mpiexec: this rank of several, rank 0's messages only
    config.validate()
    dist.check_divides(config.batch_size)
    run, saved = loop.create_or_resume_run(out, resume, "seq2seq", config, Seq2SeqConfig.RESUME_MUST_MATCH,
                                           dist, path_settings=("pairs_file", "val_file"),
                                           flag_names={"pairs_file": "PAIRS", "val_file": "--val-file"})
    data = load_pair_data(config, saved)
    steps, epochs, time_budget = config.limits()

    # --- model and optimizer: fresh, or from the saved training state ---------------------------
    backend.manual_seed(config.seed)
    model = build_model(config, data)
    optimizer = loop.build_optimizer(config.optimizer, model.parameters(), config.lr)
    if resume:
        at = loop.resume_run(run, saved, config, model, optimizer, loop.restore_position, dist)
    else:
        loop.start_run(run, run_config(config, model, data), model, dist)
        at = RunPosition()
    scheduler = loop.step_schedule(optimizer, config, at.step)
    criterion = CrossEntropyLoss(ignore_index=model.pad_id)
    batches = PairBatches(*data.encoded(data.train), batch_size=config.batch_size)
    val_batches = PairBatches(*data.encoded(data.val), batch_size=256, bucket=False)
    max_steps = loop.step_limit(steps, epochs, len(batches))

    # --- what the run reports ---------------------------------------------------------------------
    progress, log = loop.progress_and_log(progress_bar, max_steps, time_budget, stream, at.step)
    history = loop.RunHistory(run, resume, stream, dist, "pairs_per_s", at.time)  # metrics.jsonl, rank 0
    gradient_step = loop.GradientStep(model, optimizer, config.grad_clip, config.max_bad_steps, config.lr,
                                      run.path, log, dist)
    result = Seq2SeqResult(Path(out), at.step, at.epoch, "epochs", at.history)
    start_step = at.step
    log(f"{'resuming' if resume else 'training'} {model.cell} seq2seq "
        f"(attention {config.attention}, {model.num_parameters():,} parameters): {len(data.train):,} training, "
        f"{len(data.val):,} validation, {loop.counted(len(data.test), 'test pair')}; "
        f"{len(data.source_vocabulary)} source, {len(data.target_vocabulary)} target symbols; epoch {at.epoch}, "
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
                mine = loop.next_batch(at, batches, dist)  # data-parallel: this rank's share of the batch
                pairs, lr = len(at.order[at.position]), optimizer.param_groups[0]["lr"]  # the global batch's
                if len(mine):
                    batch = batches.batch(mine)
                    logits = model(batch.source, batch.target_input, batch.source_lengths, config.teacher_forcing)
                    loss = float(criterion(logits.reshape(-1, logits.shape[-1]), batch.target_output.reshape(-1)))
                    backward = lambda: model.backward(criterion.backward().reshape(logits.shape))  # noqa: E731
                    symbols = int((batch.target_output != model.pad_id).sum())  # the loss's mean is over these
                else:  # an epoch's last batch, smaller than the ranks
                    loss, backward, symbols = 0.0, (lambda: None), 0
                gradient_step(loss, backward, at.step + 1, weight=dist.weight(symbols, dist.sum(symbols)))
                scheduler.step()
                loop.advance(at, result.losses, gradient_step.loss)  # the global batch's loss (alone: the same)
                train_seconds += time.perf_counter() - started
                history.train_step(at, gradient_step.loss, lr, pairs, train_seconds)
                if progress is not None:
                    pairs_per_s = (at.step - start_step) * config.batch_size / max(train_seconds, 1e-9)
                    progress.update(at.step, loss=gradient_step.loss,
                                    extra=f"epoch {at.epoch + 1}  {pairs_per_s:,.0f} pairs/s")
                if config.eval_every and at.step % config.eval_every == 0 and dist.is_root:  # rank 0 alone
                    validate(model, data, val_batches, criterion, config, at, run, log, history)
                    loop.save_position(run, model, optimizer, config, at, dist, history)
                    validated_step = saved_step = at.step
            # data-parallel: rank 0 alone validates, writes and decodes the test split
            if dist.is_root and validated_step != at.step and result.stop_reason != "interrupted":
                validate(model, data, val_batches, criterion, config, at, run, log, history)
            if saved_step != at.step:
                loop.save_position(run, model, optimizer, config, at, dist, history)
    finally:
        log.close()
        history.flush()
    result.step, result.epoch, result.train_seconds = at.step, at.epoch, train_seconds
    if result.stop_reason != "interrupted" and dist.is_root and data.test:
        from .rundir import load_model

        best, name = load_model(run, lambda: build_model(config, data))
        _, result.test = translate_pairs(best, data.test, beam=config.beam)
        test_loss = validation_loss(best, PairBatches(*data.encoded(data.test), batch_size=256, bucket=False),
                                    criterion)
        history.scores(at, {"test_loss": test_loss, **{"test_" + key: getattr(result.test, key)
                                                       for key in ("exact_match", "char_accuracy", "cer")}}, "test_")
        log(f"test ({loop.counted(result.test.pairs, 'pair')}, {name} weights, beam {config.beam}): exact match "
            f"{100 * result.test.exact_match:.2f}%, char accuracy {100 * result.test.char_accuracy:.2f}%, "
            f"CER {result.test.cer:.4f}")
    loop.report_end(run, at, result, start_step, dist, log)
    history.close()
    return result


# ---------------------------------------------------------------------------------------------------
# a trained run
# ---------------------------------------------------------------------------------------------------

def load_seq2seq(run_dir, checkpoint=None) -> tuple[Seq2Seq, dict, str]:
    """``(model with its vocabularies, config.json, checkpoint name)`` of a seq2seq run, evaluation mode."""
    from .rundir import load_model, open_run

    run, saved = open_run(run_dir, "seq2seq")
    try:
        source = SymbolVocabulary.from_config(saved["source_vocabulary"])
        target = SymbolVocabulary.from_config(saved["target_vocabulary"])
    except (KeyError, TypeError) as error:
        raise RnnlabError(f"{run.config_path}: the vocabularies are damaged ({error}); re-train or restore "
                          f"the file") from None
    model, name = load_model(run, lambda: Seq2Seq.from_config(saved["model"], source, target), checkpoint)
    return model, saved, name
