"""What a character-model run says about itself: its first line, and the JSON summary of ``--json``.

The first line names everything that decides how long the run takes and what it can learn::

    training lstm 2x128 (215,041 parameters), batch 32x64, lr 0.002 on shakespeare.txt (4,951,440 training
    characters, vocabulary 65) until 300 s of training; compiled path on

The summary (``rnnlab train --json``, one object on stdout at the end) holds ``steps``, ``time`` (seconds of
training, summed over resumes), ``val_bpc`` (the last evaluation), ``test_bpc`` and ``run_dir``, plus
``best_val_bpc`` and ``stop_reason``; a number that is not finite is ``null``, never ``NaN``.
"""
from __future__ import annotations

import json
import math


def compiled_path_on() -> bool:
    """Whether the layers run the compiled (numba) kernels: :func:`rnnlab.fast.enabled`."""
    from .. import fast

    return bool(fast.enabled())


def stop_rule(steps: int | None, epochs: float | None, time_budget: float | None, epoch_steps: int | None = None,
              default_budget: bool = False) -> str:
    """``until step 2000``, ``until 2 epochs (1,234 steps)``, ``until 300 s of training``, joined with ``or``.

    >>> stop_rule(2000, None, 60.0)
    'until step 2000 or 60 s of training, whichever comes first'
    >>> stop_rule(None, None, 300.0, default_budget=True)
    'until 300 s of training (the default; set --steps, --epochs or --time-budget)'
    """
    rules = []
    if steps is not None:
        rules.append(f"step {steps}")
    if epochs is not None:
        rules.append(f"{epochs:g} epochs" + (f" ({epoch_steps:,} steps)" if epoch_steps is not None else ""))
    if time_budget is not None:
        rules.append(f"{time_budget:g} s of training")
    if not rules:
        return "until interrupted"
    text = "until " + " or ".join(rules) + (", whichever comes first" if len(rules) > 1 else "")
    if default_budget:
        text += " (the default; set --steps, --epochs or --time-budget)"
    return text


def first_line(resume: bool, model, corpus, batch_size: int, seq_len: int, stop: str, step: int = 0,
               schedule: str | None = None, compiled: bool | None = None) -> str:
    """The run's first line (see the module docstring); ``corpus`` as :class:`rnnlab.data.sources.Corpus`
    (``name``, ``train``, ``vocab``, ``new_symbols``) or anything with ``path``, ``train`` and ``vocab``."""
    compiled = compiled_path_on() if compiled is None else compiled
    name = getattr(corpus, "name", None) or str(corpus.path)
    new = len(getattr(corpus, "new_symbols", ()) or ())
    vocabulary = f"vocabulary {len(corpus.vocab)}" + (f", {new} new" if new else "")
    validation = getattr(corpus, "val_source", None)
    parts = [f"{'resuming' if resume else 'training'} {model.cell} {model.num_layers}x{model.hidden_size} "
             f"({model.num_parameters():,} parameters), batch {batch_size}x{seq_len}"
             + (f", {schedule}" if schedule else ""),
             f"on {name} ({len(corpus.train):,} training characters, {vocabulary})"
             + (f", validating on {validation.name}" if validation is not None else ""),
             (f"at step {step} " if resume else "") + stop + f"; compiled path {'on' if compiled else 'off'}"]
    return " ".join(parts)


def _finite_or_none(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_summary(steps: int, time_s: float | None, val_loss, test_loss, run_dir, best_val_loss=None,
                 stop_reason: str | None = None) -> str:
    """The one JSON line ``rnnlab train --json`` prints (bits per character from losses in nats).

    >>> json_summary(100, 12.5, float("nan"), None, "runs/x")
    '{"steps": 100, "time": 12.5, "val_bpc": null, "test_bpc": null, "run_dir": "runs/x", "best_val_bpc": null, "stop_reason": null}'
    """
    def bpc(loss):
        loss = _finite_or_none(loss)
        return None if loss is None else loss / math.log(2.0)

    record = {"steps": int(steps), "time": _finite_or_none(time_s), "val_bpc": bpc(val_loss),
              "test_bpc": bpc(test_loss), "run_dir": str(run_dir), "best_val_bpc": bpc(best_val_loss),
              "stop_reason": stop_reason}
    return json.dumps(record, allow_nan=False)
