"""The HTML report: one self-contained file (inline data, style and script; no server, no network).

Views: (1) the text coloured by one unit (layer, state, unit from a picker or the feature tables);
(2) hovering, clicking or the arrow keys show a character's loss and the model's top guesses for the next one;
(3) the text coloured by loss (bits); (4) gate saturation per gate, one colour per layer (Karpathy, Johnson
and Fei-Fei 2015); (5) the units that follow each text feature best, and the training curves; (6) a header.

The data is one JSON object in ``<script type="application/json" id="report-data">``::

    text, vocab             the characters read; the vocabulary's symbols by id
    num_layers, state_names, state_labels
    series                  [{layer, state, unit, lo, hi, d0, d1, q}]: activations as base64 uint8,
                            value = lo + q / 255 * (hi - lo); coloured over [d0, d1] (diverging)
    selected                the index of the series shown first
    topk {k, ids, probs, wide}   the k likeliest next characters per position: ids uint8 (uint16 if wide),
                            probabilities uint16 (/ 65535), position-major
    cost, cost_scale        bits of reading each character, uint16 (/ 256; 65535 for the first)

Size: one byte per character and included unit. A report holds every unit of every state when that fits
in ``max_values`` bytes (default 4 M: 20,000 characters x 200 units); otherwise the units of the feature
tables (always), then ``h`` (layers alternating), then ``c``, then the gates, as many as fit.
"""
from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field

import numpy as np

from . import charts, page
from .features import FEATURES, best_unit, correlations, interpretable_fraction, rank_units
from .trace import SIGMOID_GATES

DEFAULT_MAX_VALUES = 4_000_000
TOP_GUESSES = 5
COST_SCALE_BITS = 8.0        # the loss view is fully red at 8 bits and beyond
STATE_LABELS = {"h": "hidden state", "c": "cell state", "i": "input gate", "f": "forget gate", "g": "cell candidate",
                "o": "output gate", "r": "reset gate", "z": "update gate", "n": "new gate"}


@dataclass
class Report:
    """What :func:`build_report` made: the page, and which units it holds."""
    html: str
    included: list                     # [(layer, state, unit), ...] in the order of the picker's data
    total_series: int                  # layers x states x units of the model
    ranked: dict = field(default_factory=dict)   # feature -> [UnitScore, ...]
    interpretable: tuple = (0, 0)      # features.interpretable_fraction: (units, all units)


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def display_range(cell: str, state: str, values: np.ndarray) -> tuple[float, float]:
    """The range a state is coloured over: [0, 1] for sigmoid gates; [0, m] for a ReLU ``h`` and [-m, m] for an
    LSTM's ``c``, with ``m`` the 99th percentile of ``|value|`` (at least 1 for ``c``: ``c`` is not bounded by 1);
    else [-1, 1]."""
    if state in SIGMOID_GATES[cell]:
        return 0.0, 1.0
    if cell == "rnn_relu" or state == "c":
        top = float(np.percentile(np.abs(values), 99)) if len(values) else 1.0
        if state == "c":
            top = max(top, 1.0)
            return -top, top
        return 0.0, top if top > 0 else 1.0
    return -1.0, 1.0


def encode_series(values: np.ndarray) -> tuple[float, float, str]:
    """``(lo, hi, base64)``: ``values`` as uint8 steps between their min and max."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
    span = hi - lo
    q = np.zeros(len(values), dtype=np.uint8) if span <= 0 else np.rint((values - lo) / span * 255).astype(np.uint8)
    return lo, (hi if span > 0 else lo + 1.0), _b64(q)


def top_guesses(logits: np.ndarray, k: int, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, probabilities)``, each ``(L, k)``: the ``k`` likeliest symbols per row of ``logits`` ``(L, V)``,
    likeliest first, with their softmax probabilities (rows taken a chunk at a time: no ``(L, V)`` float64)."""
    length = logits.shape[0]
    ids = np.empty((length, k), dtype=np.int64)
    probabilities = np.empty((length, k), dtype=np.float64)
    for start in range(0, length, chunk):
        rows = logits[start:start + chunk].astype(np.float64)
        rows -= rows.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(rows).sum(axis=1, keepdims=True))
        best = np.argpartition(-rows, k - 1, axis=1)[:, :k] if k < rows.shape[1] else np.tile(
            np.arange(rows.shape[1]), (len(rows), 1))
        picked = np.take_along_axis(rows, best, axis=1)
        order = np.argsort(-picked, axis=1, kind="stable")
        ids[start:start + chunk] = np.take_along_axis(best, order, axis=1)
        probabilities[start:start + chunk] = np.exp(np.take_along_axis(picked, order, axis=1) - log_norm)
    return ids, probabilities


def choose_series(tr, ranked: dict, selected=None, max_values: int = DEFAULT_MAX_VALUES) -> list:
    """Which ``(layer, state, unit)`` go into the report (see the module docstring): ``selected`` and the rows
    of the feature tables always; then the ``h`` of those units, then every ``h``, ``c`` and gate (layers
    alternating), while the total stays within ``max_values // L`` series."""
    length, hidden = len(tr.text), tr.states[0]["h"].shape[1]
    chosen, seen = [], set()

    def add(key, limit=None):
        if key not in seen and (limit is None or len(chosen) < limit):
            seen.add(key)
            chosen.append(key)

    if selected is not None:
        add(tuple(selected))
    for rows in ranked.values():
        for row in rows:
            add((row.layer, row.state, row.unit))
    limit = max(len(chosen), max_values // max(length, 1), 1)
    for rows in ranked.values():
        for row in rows:
            add((row.layer, "h", row.unit), limit)
    for state in tr.state_names:
        for unit in range(hidden):
            for layer in range(tr.num_layers):
                add((layer, state, unit), limit)
    return chosen


def _feature_tables(ranked: dict, index_of: dict) -> str:
    blocks = []
    for name, label in FEATURES.items():
        rows = ranked.get(name, [])
        if not rows:
            blocks.append(f'<div><h3>{html.escape(label)}</h3><p class="note">does not vary in this text</p></div>')
            continue
        body = "".join(
            f'<tr data-series="{index_of[(row.layer, row.state, row.unit)]}"><td>{rank}</td><td>{row.layer}</td>'
            f'<td>{row.state}</td><td>{row.unit}</td><td>{row.r:+.3f}</td>'
            f'<td><button type="button">view</button></td></tr>'
            for rank, row in enumerate(rows, 1))
        blocks.append(f'<div><h3>{html.escape(label)}</h3><table class="rank"><thead><tr><th>#</th><th>layer</th>'
                      f'<th>state</th><th>unit</th><th>r</th><th></th></tr></thead><tbody>{body}</tbody></table></div>')
    return f'<div class="features">{"".join(blocks)}</div>'


def _saturation_charts(tr) -> str:
    gates = SIGMOID_GATES[tr.cell]
    if not gates:
        return (f'<p class="note">A {tr.cell} layer has no gates (h_t = {"relu" if tr.cell == "rnn_relu" else "tanh"}'
                f'(x W_ih^T + h_(t-1) W_hh^T + b)); nothing saturates here.</p>')
    svgs = []
    for gate in gates:
        per_layer = [charts.saturation(states[gate]) for states in tr.states]
        svgs.append(charts.saturation_scatter(f"{gate}: {STATE_LABELS[gate]}", per_layer))
    legend = "".join(f'<span class="swatch" style="background:{charts.layer_colour(k)}"></span>layer {k}'
                     for k in range(tr.num_layers))
    return (f'<div class="charts">{"".join(svgs)}</div><p class="note">{legend} &nbsp; One point per unit: the '
            f'fraction of characters where the gate is below 0.1 (left-saturated, x) and above 0.9 '
            f'(right-saturated, y). Points near the dashed diagonal are gates that act as switches.</p>')


def _training_charts(metrics) -> str:
    if not metrics:
        return '<p class="note">No training history (metrics.jsonl) for this model.</p>'
    train = [(r["step"], r["loss"] / math.log(2)) for r in metrics
             if isinstance(r.get("loss"), (int, float)) and isinstance(r.get("step"), (int, float))]
    val = [(r["step"], r["val_bpc"]) for r in metrics
           if isinstance(r.get("val_bpc"), (int, float)) and isinstance(r.get("step"), (int, float))]
    series = []
    if train:
        series.append(("training (smoothed)", charts.downsample(train), "#1f77b4"))
    if val:
        series.append(("validation", val, "#d62728"))
    if not series:
        return '<p class="note">metrics.jsonl holds no losses to plot.</p>'
    return charts.line_chart(series, "step", "bits per character")


def _facts(about) -> str:
    items = "".join(f"<div><dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd></div>" for k, v in about)
    return f'<dl class="facts">{items}</dl>'


def build_report(tr, about=(), metrics=None, selected=None, top: int = 5,
                 max_values: int = DEFAULT_MAX_VALUES, title: str = "rnnlab inspect") -> Report:
    """The report of a :class:`~rnnlab.inspect.trace.Trace` as a :class:`Report` (``.html``: the page).

    Args:
        tr: the trace.
        about: ``[(label, value), ...]`` for the header (the run, model size, checkpoint, text); bits per
            character on this text and the number of characters are added.
        metrics: the run's ``metrics.jsonl`` records (``{"step", "loss"}``, ``{"step", "val_bpc"}``), or None.
        selected: ``(layer, state, unit)`` shown first (always included); default :func:`~.features.best_unit`.
        top: rows per feature table.
        max_values: bytes of activations to include at most (see the module docstring).
    """
    table = correlations(tr)
    ranked = rank_units(table, top=top)
    interpretable = interpretable_fraction(table)
    if selected is None:
        best = best_unit(ranked)
        selected = (best[1].layer, best[1].state, best[1].unit) if best else (tr.num_layers - 1, "h", 0)
    included = choose_series(tr, ranked, selected, max_values)
    index_of = {key: i for i, key in enumerate(included)}
    series = []
    for layer, state, unit in included:
        values = tr.states[layer][state][:, unit]
        lo, hi, q = encode_series(values)
        d0, d1 = display_range(tr.cell, state, values)
        series.append({"layer": layer, "state": state, "unit": unit, "lo": round(lo, 6), "hi": round(hi, 6),
                       "d0": round(d0, 6), "d1": round(d1, 6), "q": q})

    length, vocab_size = len(tr.text), tr.logits.shape[1]
    k = min(TOP_GUESSES, vocab_size)
    top_ids, top_probs = top_guesses(tr.logits, k)                                     # (L, k) each
    wide = vocab_size > 256
    cost = np.full(length, 65535, dtype=np.uint16)
    cost[1:] = np.clip(np.rint(tr.bits * 256), 0, 65534).astype(np.uint16)
    data = {
        "text": tr.text,
        "vocab": [tr.vocabulary.decode_one(i) for i in range(vocab_size)],
        "num_layers": tr.num_layers,
        "state_names": list(tr.state_names),
        "state_labels": {name: STATE_LABELS[name] for name in tr.state_names},
        "series": series,
        "selected": index_of[tuple(selected)],
        "topk": {"k": k, "wide": wide, "ids": _b64(top_ids.astype(np.uint16 if wide else np.uint8)),
                 "probs": _b64(np.rint(top_probs * 65535).astype(np.uint16))},
        "cost": _b64(cost),
        "cost_scale": COST_SCALE_BITS,
    }
    # `<` escaped so no "</script>" (or "<!--") inside the text can end the data block
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")

    bpc = tr.bits_per_char
    about = list(about) + [("characters", f"{length:,}"),
                           ("bits/char on this text", "n/a" if math.isnan(bpc) else f"{bpc:.3f}")]
    if tr.skipped:
        shown = " ".join(repr(ch) for ch in tr.unknown[:12]) + (" ..." if len(tr.unknown) > 12 else "")
        about.append(("left out (not in the vocabulary)", f"{tr.skipped:,}: {shown}"))
    found, total = interpretable
    total_count = total_series(tr)
    coverage = f"{len(included):,} of {total_count:,} unit-states (layer x state x unit) are in this report"
    if len(included) < total_count:
        coverage += " (the feature tables' units first, then h, c and gates as fit; rnnlab inspect --cell adds one)"
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{page.STYLE}</style></head>
<body>
<header><h1>{html.escape(title)}</h1>{_facts(about)}</header>
<nav><a href="#units">unit</a><a href="#surprise">loss</a><a href="#features">features</a>
<a href="#saturation">gate saturation</a><a href="#training">training curves</a></nav>
<div class="layout"><main>
<section id="units"><h2>Text coloured by a unit: <span id="unit-title"></span></h2>
<div class="controls"><label>layer <select id="pick-layer"></select></label>
<label>state <select id="pick-state"></select></label><label>unit <select id="pick-unit"></select></label>
<span class="legend"><span id="legend-lo"></span><span class="bar div"></span><span id="legend-hi"></span></span></div>
<div id="text-unit" class="text" tabindex="0" aria-label="text coloured by the chosen unit"></div>
<p class="note">{html.escape(coverage)}. Hover or click a character (or focus the text and use the arrow keys)
to see what the model expected next.</p></section>
<section id="surprise"><h2>Text coloured by loss: where the model is surprised</h2>
<div class="controls"><span class="legend">0 bits<span class="bar seq"></span>{COST_SCALE_BITS:g}+ bits</span></div>
<div id="text-loss" class="text" tabindex="0" aria-label="text coloured by loss"></div></section>
<section id="features"><h2>Units that follow a feature of the text</h2>
<p class="note">Pearson's r of each unit's activation (every layer and state) with the feature, over this text; one
row per unit, its best state. Click a row to colour the text by it. {found:,} of {total:,} units
({100 * found / max(total, 1):.1f}%) have |r| &ge; 0.5 in h or c with quotes, docstrings, brackets, the column,
comments or indentation.</p>{_feature_tables(ranked, index_of)}</section>
<section id="saturation"><h2>Gate saturation</h2>{_saturation_charts(tr)}</section>
<section id="training"><h2>Training curves</h2>{_training_charts(metrics)}</section>
</main><aside id="info" aria-live="polite"></aside></div>
<script type="application/json" id="report-data">{payload}</script>
<script>{page.SCRIPT}</script>
</body></html>
"""
    return Report(html=body, included=included, total_series=total_count, ranked=ranked, interpretable=interpretable)


def total_series(tr) -> int:
    """Layers x states x units: every series the trace holds."""
    return tr.num_layers * len(tr.state_names) * tr.states[0]["h"].shape[1]
