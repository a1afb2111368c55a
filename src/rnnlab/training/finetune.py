"""Fine-tuning: ``rnnlab train NEW_TEXT --init-from RUN_DIR --out NEW_RUN`` starts from RUN_DIR's best weights.

The model keeps RUN_DIR's shape (cell, layers, hidden and embedding sizes, dtype). Its vocabulary is
RUN_DIR's with the characters of NEW_TEXT it lacks appended (:meth:`rnnlab.data.Vocabulary.extended`), so
every old id keeps its meaning; the rows of the embedding and of the decoder for the new characters are
those of a freshly initialised model (the run's seed), and every other weight is RUN_DIR's. The optimizer,
the step count and the data position start afresh: a new run, in a new directory.
"""
from __future__ import annotations

import numpy as np

from ..errors import RnnlabError

# TrainConfig settings a fine-tuned run takes from the run it starts from (they decide the weights' shapes)
INHERITED = ("model", "hidden_size", "num_layers", "embedding_size", "dtype", "byte_mode")
# the parameters with one row per vocabulary symbol
PER_SYMBOL = ("embedding.weight", "decoder.weight", "decoder.bias")


def source_run(run_dir):
    """``(LoadedRun, train settings)`` of the run to start from, with its best weights (latest if no
    validation ran); one line when it is not a character-model run."""
    from .rundir import load_run

    loaded = load_run(run_dir, "charlm", None)
    return loaded, dict(loaded.config.get("train") or {})


def inherited_settings(source_train: dict, source_model: dict) -> dict:
    """The settings of :data:`INHERITED` as the source run had them (its model config wins: it is what the
    weights are)."""
    values = {name: source_train[name] for name in INHERITED if name in source_train}
    values.update(model=source_model["cell"], hidden_size=source_model["hidden_size"],
                  num_layers=source_model["num_layers"], embedding_size=source_model["embedding_size"],
                  dtype=source_model.get("dtype", values.get("dtype", "float32")))
    return values


def check_flags_agree(given: dict, inherited: dict, run_dir) -> None:
    """A flag given with ``--init-from`` that decides a weight's shape must equal the source run's."""
    for name, value in given.items():
        if name in inherited and value is not None and value != inherited[name]:
            shown = "--bytes" if name == "byte_mode" else "--" + name.replace("_", "-")
            raise RnnlabError(f"{shown} {value} differs from {run_dir}'s {inherited[name]}: a fine-tuned model keeps "
                              f"the shape of the run it starts from; drop the flag or train from scratch")


def transplant(model, source_model) -> None:
    """Copy ``source_model``'s weights into ``model`` (built with the extended vocabulary): every parameter
    whole, except the per-symbol ones (:data:`PER_SYMBOL`), whose first ``source_model.vocab_size`` rows are
    copied and whose new rows stay as ``model`` initialised them."""
    old = source_model.state_dict()
    new = model.state_dict()
    if set(old) != set(new):
        raise RnnlabError(f"the run to start from has parameters {sorted(set(old) ^ set(new))} that the new "
                          f"model lacks (or the other way round); train from scratch")
    merged = {}
    for name, value in new.items():
        source = np.asarray(old[name])
        if name in PER_SYMBOL:
            value = np.array(value, copy=True)
            value[:source.shape[0]] = source
        elif source.shape != np.shape(value):
            raise RnnlabError(f"parameter {name} has shape {list(source.shape)} in the run to start from and "
                              f"{list(np.shape(value))} here; train from scratch")
        else:
            value = source
        merged[name] = value
    model.load_state_dict(merged)
