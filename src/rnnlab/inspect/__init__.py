"""See what a character model learned: states and gates over a text, interpretable units, an HTML report::

    model = rnnlab.load("runs/x")
    tr = rnnlab.inspect.trace(model, "def f(x):\n    return 'x'\n")
    tr.states[1]["c"].shape, tr.bits.shape, tr.topk(3)

- :mod:`~rnnlab.inspect.trace`: :func:`trace` -> :class:`Trace` (``text``, ``states``, ``bits``, ``topk``)
- :mod:`~rnnlab.inspect.features`: text features, per-unit correlations, ranked tables
- :mod:`~rnnlab.inspect.report`: the self-contained HTML report (``rnnlab inspect RUN_DIR --out report.html``)
- :mod:`~rnnlab.inspect.ansi`: one unit's activation as coloured terminal text
"""
from .features import FEATURES, UnitScore, correlations, rank_units, text_features
from .trace import Trace, trace

__all__ = ["trace", "Trace", "FEATURES", "UnitScore", "text_features", "correlations", "rank_units"]
