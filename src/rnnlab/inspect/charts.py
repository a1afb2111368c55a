"""Small inline SVG charts for the report: the gate-saturation scatter and training curves.

Plain SVG strings (no script, no library), so the report draws them even with JavaScript off.

>>> svg = line_chart([("loss", [(1, 2.0), (2, 1.5)], "#1f77b4")], "step", "bits/char")
>>> svg.startswith("<svg") and "polyline" in svg
True
"""
from __future__ import annotations

import html
import math

import numpy as np

LAYER_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
LEFT_SATURATED, RIGHT_SATURATED = 0.1, 0.9


def layer_colour(layer: int) -> str:
    return LAYER_COLOURS[layer % len(LAYER_COLOURS)]


def saturation(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(left, right)``, each ``(H,)``: the fraction of steps a gate unit is below 0.1 / above 0.9
    (Karpathy, Johnson and Fei-Fei 2015, figure 3). ``values`` ``(L, H)`` after the sigmoid."""
    return (values < LEFT_SATURATED).mean(axis=0), (values > RIGHT_SATURATED).mean(axis=0)


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _format_tick(value: float) -> str:
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.0e}"
    return f"{value:g}" if abs(value) >= 1 or value == 0 else f"{value:.2g}"


def _frame(width, height, margin, x_range, y_range, x_label, y_label, title=""):
    """The axes, ticks and labels; returns ``(parts, to_x, to_y)``."""
    left, top, right, bottom = margin
    plot_w, plot_h = width - left - right, height - top - bottom
    (x0, x1), (y0, y1) = x_range, y_range

    def to_x(x):
        return left + (x - x0) / (x1 - x0 or 1) * plot_w

    def to_y(y):
        return top + plot_h - (y - y0) / (y1 - y0 or 1) * plot_h

    parts = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="plot-bg"/>']
    for tick in _nice_ticks(x0, x1):
        x = to_x(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" class="axis"/>'
                     f'<text x="{x:.1f}" y="{top + plot_h + 16}" class="tick" text-anchor="middle">'
                     f'{_format_tick(tick)}</text>')
    for tick in _nice_ticks(y0, y1):
        y = to_y(tick)
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_format_tick(tick)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" class="label" text-anchor="middle">'
                 f'{html.escape(x_label)}</text>')
    parts.append(f'<text transform="translate(12 {top + plot_h / 2:.1f}) rotate(-90)" class="label" '
                 f'text-anchor="middle">{html.escape(y_label)}</text>')
    if title:
        parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{top - 8}" class="title" text-anchor="middle">'
                     f'{html.escape(title)}</text>')
    return parts, to_x, to_y


def saturation_scatter(title: str, per_layer: list, width: int = 260, height: int = 260) -> str:
    """One gate's scatter: a point per unit at (left-saturated fraction, right-saturated fraction), one colour
    per layer. ``per_layer``: ``[(left (H,), right (H,)), ...]``."""
    margin = (44, 26, 10, 36)
    parts, to_x, to_y = _frame(width, height, margin, (0, 1), (0, 1), "fraction < 0.1", "fraction > 0.9", title)
    parts.append(f'<line x1="{to_x(0):.1f}" y1="{to_y(1):.1f}" x2="{to_x(1):.1f}" y2="{to_y(0):.1f}" class="diag"/>')
    for layer, (left, right) in enumerate(per_layer):
        colour = layer_colour(layer)
        dots = "".join(f'<circle cx="{to_x(x):.1f}" cy="{to_y(y):.1f}" r="2.2"><title>layer {layer} unit {unit}: '
                       f'{x:.2f} left, {y:.2f} right</title></circle>'
                       for unit, (x, y) in enumerate(zip(left.tolist(), right.tolist())))
        parts.append(f'<g fill="{colour}" fill-opacity="0.55">{dots}</g>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" class="chart">{"".join(parts)}</svg>')


def line_chart(series: list, x_label: str, y_label: str, width: int = 560, height: int = 260,
               title: str = "") -> str:
    """Lines ``[(name, [(x, y), ...], colour), ...]`` on shared axes, with a legend."""
    points = [(x, y) for _, line, _ in series for x, y in line if math.isfinite(y)]
    if not points:
        return '<p class="note">no points to plot</p>'
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_range = (min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1)
    low, high = min(ys), max(ys)
    pad = (high - low) * 0.05 or 0.5
    margin = (52, 26 if title else 12, 12, 36)
    parts, to_x, to_y = _frame(width, height, margin, x_range, (low - pad, high + pad), x_label, y_label, title)
    for index, (name, line, colour) in enumerate(series):
        coords = " ".join(f"{to_x(x):.1f},{to_y(y):.1f}" for x, y in line if math.isfinite(y))
        if len(line) == 1:
            x, y = line[0]
            parts.append(f'<circle cx="{to_x(x):.1f}" cy="{to_y(y):.1f}" r="3" fill="{colour}"/>')
        else:
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
            if len(line) <= 60:   # few points (evaluations): mark each one
                parts.append(f'<g fill="{colour}">' + "".join(f'<circle cx="{to_x(x):.1f}" cy="{to_y(y):.1f}" r="2.5"/>'
                                                            for x, y in line if math.isfinite(y)) + "</g>")
        legend_y = margin[1] + 14 + 16 * index
        parts.append(f'<line x1="{width - 150}" y1="{legend_y - 4}" x2="{width - 132}" y2="{legend_y - 4}" '
                     f'stroke="{colour}" stroke-width="2"/><text x="{width - 128}" y="{legend_y}" class="tick">'
                     f'{html.escape(name)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" class="chart">{"".join(parts)}</svg>')


def downsample(points: list, limit: int = 600) -> list:
    """At most ``limit`` points: the mean x and y of consecutive buckets (a smoothed curve)."""
    if len(points) <= limit:
        return points
    array = np.asarray(points, dtype=np.float64)
    buckets = np.array_split(array, limit)
    return [(float(b[:, 0].mean()), float(b[:, 1].mean())) for b in buckets]
