"""JSON that every parser reads: a NaN or an infinity (a diverged loss) is written as ``null``.

Python's :func:`json.dumps` writes ``NaN`` and ``Infinity``, which are not JSON (RFC 8259): ``jq``,
JavaScript's ``JSON.parse`` and most parsers refuse them. rnnlab writes every JSON document (``--json``
output, ``config.json``, ``results.json``, ``metrics.jsonl``) through :func:`dumps`.

>>> dumps({"loss": float("nan"), "bpc": [1.5, float("inf")]})
'{"loss": null, "bpc": [1.5, null]}'
"""
from __future__ import annotations

import json
import math


def finite(obj):
    """``obj`` with every non-finite float (NaN, +-inf) replaced by ``None``, through dicts, lists and tuples."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(value) for value in obj]
    if hasattr(obj, "dtype") and getattr(obj, "shape", None) == () and obj.dtype.kind == "f":  # a NumPy scalar
        return finite(float(obj))
    return obj


def dumps(obj, **kwargs) -> str:
    """:func:`json.dumps` of ``obj`` with non-finite floats as ``null`` (``allow_nan=False`` as a guard)."""
    return json.dumps(finite(obj), allow_nan=False, **kwargs)
