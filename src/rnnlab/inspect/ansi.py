"""One unit's activation as coloured terminal text (ANSI 256-colour backgrounds), for a quick look over ssh.

Blue is the low end of the unit's range, white the middle, red the high end (the report's colours). Control
characters other than line breaks and tabs are shown as their visible symbols (``\\r`` as ``␍``), so a text
cannot send escape sequences to the terminal.

>>> out = colour_text("ab\\n", [-1.0, 1.0, 0.0], -1.0, 1.0)
>>> out.count("\\x1b[48;5;"), out.endswith("\\x1b[0m\\n")
(2, True)
"""
from __future__ import annotations

import numpy as np

RESET = "\x1b[0m"
_BLUE, _WHITE, _RED = np.array([33, 102, 172]), np.array([247, 247, 247]), np.array([178, 24, 43])


def _cube_index(rgb) -> int:
    """The xterm 256-colour cube entry (16..231) nearest to an RGB colour."""
    levels = np.array([0, 95, 135, 175, 215, 255])
    r, g, b = (int(np.abs(levels - channel).argmin()) for channel in rgb)
    return 16 + 36 * r + 6 * g + b


def diverging_code(fraction: float) -> tuple[int, bool]:
    """``(256-colour index, dark)`` for ``fraction`` in [-1, 1]; ``dark``: use a white foreground."""
    fraction = float(np.clip(fraction, -1.0, 1.0)) if np.isfinite(fraction) else 0.0
    end = _BLUE if fraction < 0 else _RED
    rgb = _WHITE + (end - _WHITE) * abs(fraction)
    return _cube_index(rgb), abs(fraction) > 0.6


def visible(char: str) -> str:
    """``char`` as it can be printed safely: C0 controls (but line break and tab) and DEL as their symbols."""
    code = ord(char)
    if char in "\n\t":
        return char
    if code < 32:
        return chr(0x2400 + code)
    if code == 127:
        return "\u2421"
    if 0x80 <= code < 0xA0:
        return "\ufffd"
    return char


def colour_text(text: str, values, low: float, high: float) -> str:
    """``text`` with each character's background coloured by ``values`` over ``[low, high]``."""
    values = np.asarray(values, dtype=np.float64)
    span = (high - low) or 1.0
    out, previous = [], None
    for char, value in zip(text, values):
        if char == "\n":
            out.append(RESET + "\n")
            previous = None
            continue
        code, dark = diverging_code(2.0 * (value - low) / span - 1.0)
        style = f"\x1b[48;5;{code}m\x1b[38;5;{231 if dark else 16}m"
        if style != previous:
            out.append(style)
            previous = style
        out.append(visible(char))
    if previous is not None or not out:
        out.append(RESET)
    return "".join(out)


def legend(low: float, high: float, steps: int = 11) -> str:
    """A one-line colour bar from ``low`` to ``high``."""
    cells = []
    for k in range(steps):
        code, _ = diverging_code(-1.0 + 2.0 * k / (steps - 1))
        cells.append(f"\x1b[48;5;{code}m  ")
    return f"{low:+.2f} " + "".join(cells) + RESET + f" {high:+.2f}"
