"""Learning curves: a run's ``metrics.jsonl`` read back, and drawn as training and validation loss in bits.

``metrics.jsonl`` (:mod:`.metrics`) holds one JSON object per line, whatever kind of run wrote it
(``rnnlab train``, ``classify train``, ``seq2seq train``, ``tag train``). Rows with ``loss`` are
training steps (``step``, ``time`` in seconds since the run began, summed over resumes, ``lr``, a
rate); rows with ``val_bpc`` (or ``val_loss``) are evaluations. :func:`read_curves` keeps the last row
seen for a step and skips a line cut short by a crash. Losses are nats (mean cross-entropy), drawn as
bits (``/ ln 2``) per what each kind's loss is a mean over (:data:`LOSS_UNITS`, read from the run's
``config.json`` kind, :func:`rnnlab.training.rundir.kind_on_disk`): characters (charlm), target symbols
(seq2seq), tagged characters (tagger), images (classify); runs of different kinds overlaid share the
label :data:`GENERIC_LABEL`.

:func:`plot_runs` draws, for one run or several overlaid, that loss against steps (left) and against
time (right): training as a line (the mean of each stretch of steps, so thousands of noisy steps read as
a curve), validation as markers. It needs matplotlib (``pip install 'rnnlab[plot]'``) and uses no global
state (no ``pyplot``), so it is safe inside a training run or a notebook. The image is written atomically.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RnnlabError

LN2 = math.log(2.0)
METRICS_FILE = "metrics.jsonl"
PLOT_EXTRA = "pip install 'rnnlab[plot]'"
MAX_TRAIN_POINTS = 400  # training steps are averaged into at most this many points per run
# run kind (config.json's "kind") -> the y axis: what its loss is a mean over
LOSS_UNITS = {"charlm": "bits per character", "seq2seq": "bits per target symbol",
              "tagger": "bits per character tag", "classify": "bits per image"}
GENERIC_LABEL = "cross-entropy (bits)"  # runs of several kinds, or a kind not known


@dataclass
class Curves:
    """One run's curves: parallel lists, ordered by step, losses in bits; ``None`` where a row has no
    time. ``kind``: config.json's (None when it cannot be read)."""
    name: str
    kind: str | None = None
    train_steps: list = field(default_factory=list)
    train_bits: list = field(default_factory=list)
    train_time: list = field(default_factory=list)
    val_steps: list = field(default_factory=list)
    val_bits: list = field(default_factory=list)
    val_time: list = field(default_factory=list)


def loss_label(kinds) -> str:
    """The y axis for runs of ``kinds``: one kind's :data:`LOSS_UNITS`, else :data:`GENERIC_LABEL`.

    >>> loss_label(["seq2seq", "seq2seq"]), loss_label(["charlm", "tagger"])
    ('bits per target symbol', 'cross-entropy (bits)')
    """
    kinds = set(kinds)
    return LOSS_UNITS.get(kinds.pop(), GENERIC_LABEL) if len(kinds) == 1 else GENERIC_LABEL


def missing_metrics(path: Path, run_dir) -> RnnlabError:
    """The one line for a run directory without metrics.jsonl: an old run, or no run at all."""
    from .rundir import KINDS, kind_on_disk

    kind = kind_on_disk(run_dir)
    if kind == "charlm":  # char-LM runs have always kept one
        return RnnlabError(f"{path}: no such file; the run in {run_dir} has not taken a step yet, or its "
                           f"metrics.jsonl was moved away (`rnnlab train --resume --out {run_dir}` logs the steps "
                           f"from here on)")
    if kind in KINDS:
        what, command, _ = KINDS[kind]
        return RnnlabError(f"{path}: no such file; {run_dir} holds {what} trained before its kind of run kept "
                           f"metrics.jsonl, or it has not taken a step yet; `{command} --resume --out {run_dir}` "
                           f"logs the steps from here on")
    return RnnlabError(f"{path}: no such file; {run_dir} is not a training run, or it has not taken a step yet "
                       f"(give a directory that `rnnlab train`, `rnnlab classify train`, `rnnlab seq2seq train` "
                       f"or `rnnlab tag train` wrote with --out)")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_curves(run_dir, name: str | None = None) -> Curves:
    """The curves in ``run_dir/metrics.jsonl``; one :class:`RnnlabError` line if there is none to read."""
    path = Path(run_dir) / METRICS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise missing_metrics(path, run_dir) from None
    except OSError as error:
        raise RnnlabError(f"{path}: cannot read ({error.strerror or error})") from None
    train, val = {}, {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
            step = row["step"]
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash, or not a row
        if not _finite(step):
            continue
        time = row.get("time") if _finite(row.get("time")) else None
        if _finite(row.get("loss")):
            train[step] = (row["loss"] / LN2, time)
        bpc = row.get("val_bpc")
        if not _finite(bpc) and _finite(row.get("val_loss")):
            bpc = row["val_loss"] / LN2
        if _finite(bpc):
            val[step] = (bpc, time)
    if not train and not val:
        raise RnnlabError(f"{path}: holds no training steps yet; plot it once the run has taken a few steps")
    from .rundir import kind_on_disk

    curves = Curves(name or Path(run_dir).resolve().name, kind_on_disk(run_dir))
    for step in sorted(train):
        curves.train_steps.append(step)
        curves.train_bits.append(train[step][0])
        curves.train_time.append(train[step][1])
    for step in sorted(val):
        curves.val_steps.append(step)
        curves.val_bits.append(val[step][0])
        curves.val_time.append(val[step][1])
    return curves


def binned(xs: list, ys: list, max_points: int = MAX_TRAIN_POINTS) -> tuple[list, list]:
    """Means of ``ys`` (and of ``xs``) over consecutive stretches, at most ``max_points`` of them.

    >>> binned([1, 2, 3, 4], [4.0, 2.0, 3.0, 1.0], max_points=2)
    ([1.5, 3.5], [3.0, 2.0])
    """
    pairs = [(x, y) for x, y in zip(xs, ys) if x is not None]
    if len(pairs) <= max_points:
        return [x for x, _ in pairs], [y for _, y in pairs]
    size = math.ceil(len(pairs) / max_points)
    out_x, out_y = [], []
    for start in range(0, len(pairs), size):
        chunk = pairs[start:start + size]
        out_x.append(sum(x for x, _ in chunk) / len(chunk))
        out_y.append(sum(y for _, y in chunk) / len(chunk))
    return out_x, out_y


def require_matplotlib(what: str = "drawing curves"):
    """The Agg canvas and Figure classes, or one line saying how to install them."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RnnlabError(f"{what} needs matplotlib: {PLOT_EXTRA}") from None
    return FigureCanvasAgg, Figure


def _time_axis(all_curves: list) -> tuple[float, str]:
    longest = max((t for c in all_curves for t in c.train_time + c.val_time if t is not None), default=0.0)
    if longest >= 3 * 3600:
        return 3600.0, "hours"
    if longest >= 180:
        return 60.0, "minutes"
    return 1.0, "seconds"


def plot_runs(run_dirs, out, title: str | None = None) -> Path:
    """Draw the curves of ``run_dirs`` (overlaid, one colour each) into the PNG file ``out``; returns it."""
    require_matplotlib()
    all_curves = []
    names = [Path(r).resolve().name for r in run_dirs]
    for run_dir, name in zip(run_dirs, names):
        # two runs in folders of the same name (a/run, b/run) are told apart by their whole path
        all_curves.append(read_curves(run_dir, str(run_dir) if names.count(name) > 1 else name))
    figure = draw_figure(all_curves, title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    from .atomic import atomic_write_bytes

    out = Path(out)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def draw_figure(all_curves: list, title: str | None = None):
    """The matplotlib Figure of ``all_curves`` (:class:`Curves`) on an Agg canvas, not yet drawn to
    pixels: the left axes against steps, the right against time, the y axis :func:`loss_label` of their
    kinds."""
    FigureCanvasAgg, Figure = require_matplotlib()
    scale, unit = _time_axis(all_curves)
    figure = Figure(figsize=(11, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    by_step, by_time = figure.subplots(1, 2, sharey=True)
    palette = [f"C{i}" for i in range(10)]
    for index, curves in enumerate(all_curves):
        colour = palette[index % len(palette)]
        x, y = binned(curves.train_steps, curves.train_bits)
        by_step.plot(x, y, color=colour, linewidth=1.2, alpha=0.8, label=f"{curves.name} train")
        by_step.plot(curves.val_steps, curves.val_bits, color=colour, linestyle="--", marker="o", markersize=4,
                     label=f"{curves.name} validation")
        times = [None if t is None else t / scale for t in curves.train_time]
        x, y = binned(times, curves.train_bits)
        by_time.plot(x, y, color=colour, linewidth=1.2, alpha=0.8)
        vt = [(t / scale, b) for t, b in zip(curves.val_time, curves.val_bits) if t is not None]
        by_time.plot([t for t, _ in vt], [b for _, b in vt], color=colour, linestyle="--", marker="o", markersize=4)
    by_step.set_xlabel("step")
    by_step.set_ylabel(loss_label(c.kind for c in all_curves))
    by_time.set_xlabel(f"time ({unit})")
    for axes in (by_step, by_time):
        axes.grid(True, alpha=0.3)
    by_step.legend(fontsize=8)
    figure.suptitle(title or ", ".join(c.name for c in all_curves))
    figure.tight_layout()
    return figure
