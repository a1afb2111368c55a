"""rnnlab: recurrent neural networks from scratch in NumPy, exact to PyTorch's semantics.

>>> import rnnlab
>>> from rnnlab import nn
>>> _ = rnnlab.manual_seed(0)
>>> rnn = nn.RNN(4, 2, batch_first=True)

A trained run in one line: ``rnnlab.load("runs/hamlet").sample("HAMLET.", 200, temperature=0.8, seed=1)``
(:func:`load`: a ``CharRNN`` or ``SequenceClassifier`` in evaluation mode, vocabulary or classes attached).
"""
from . import backend
from .backend import get_default_dtype, manual_seed, no_grad, set_default_dtype
from .errors import RnnlabError

__version__ = "0.1.0"

__all__ = ["backend", "load", "manual_seed", "no_grad", "get_default_dtype", "set_default_dtype", "RnnlabError",
           "__version__"]


def load(run_dir, checkpoint="best"):
    """The trained model in ``run_dir`` (written by ``rnnlab train``, ``rnnlab classify train`` or
    :meth:`rnnlab.models.CharRNN.save`), in evaluation mode, with the ``checkpoint`` weights ("best", by
    validation loss, or "latest"): a ``CharRNN`` (its ``vocabulary`` attached) or a ``SequenceClassifier``
    (its ``classes`` attached). A missing, damaged or foreign directory is one :class:`RnnlabError` line."""
    from .training.rundir import load as load_model

    return load_model(run_dir, checkpoint)


def __getattr__(name):
    # Subpackages load on first use so `import rnnlab` stays light for the command line.
    import importlib

    if name == "gradcheck":
        # `rnnlab.gradcheck(module, *inputs)` is the function; its module stays importable as
        # `rnnlab.gradcheck` via `import rnnlab.gradcheck` / `from rnnlab.gradcheck import GradcheckReport`.
        from .gradcheck import gradcheck

        globals()[name] = gradcheck
        return gradcheck
    if name in {"nn", "optim", "data", "models", "training", "inspect"}:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'rnnlab' has no attribute {name!r}")
