"""What the two training loops (:mod:`.charlm`, :mod:`.classify`) share, written once.

- :func:`step_limit`, :func:`stop_reason`: when a loop stops.
- :func:`build_optimizer`: an optimizer by its command-line name.
- :class:`GradientStep`: backward, clip, step; a loss or gradient that is not finite skips the step (the
  weights stay as they were), warns, and after ``max_bad_steps`` in a row stops the run with the last
  checkpoint intact.
- :func:`save_training_state` / :func:`restore_training_state`: the weights, the optimizer's moments and
  the random generator's state in the run directory's training state, beside each loop's own arrays
  and metadata; a damaged state is one line.
- :func:`check_resume_matches`: settings that decide the model or the data must equal the saved run's.
- :class:`LogLines`: messages beside the progress bar, or plain lines once it is gone.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import backend
from ..errors import RnnlabError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
# printed at the first Ctrl-C / SIGTERM (rnnlab.training.signals.graceful_interrupt)
INTERRUPT_MESSAGE = "{signal}: saving at the end of this step (press Ctrl-C again to stop at once)"
OPTIMIZER_PREFIX = "optimizer/"


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


class LogLines:
    """Writes lines beside the progress bar (or plainly when there is none; set ``progress = None`` once
    it is closed)."""

    def __init__(self, progress, stream):
        self.progress, self.stream = progress, stream

    def __call__(self, message: str) -> None:
        if self.progress is not None:
            self.progress.write(message)
        else:
            print(message, file=self.stream, flush=True)
