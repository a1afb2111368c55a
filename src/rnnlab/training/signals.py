"""Stop training cleanly on Ctrl-C or ``kill``: finish the step, save, exit.

Inside ``with graceful_interrupt() as interrupt:`` the first SIGINT (Ctrl-C) or SIGTERM only sets
``interrupt.requested`` (and ``interrupt.signal_name``); the loop checks it at each step boundary,
saves a checkpoint and leaves. A second signal raises ``KeyboardInterrupt`` at once, for when saving
itself hangs. The previous handlers come back on exit.

Work that takes longer than a step (an evaluation, a sample, the final test scoring) calls
:func:`stop_if_requested` every chunk or character: after the first signal it raises :class:`Interrupted`,
so the run notices within a fraction of a second and saves; outside a ``graceful_interrupt`` block it
does nothing.

Signal handlers can only be installed from the main thread; elsewhere the context does nothing
(``requested`` stays False) and signals keep their usual effect.

>>> with graceful_interrupt() as interrupt:
...     pass   # the training loop: `if interrupt.requested: save and break`
>>> interrupt.requested
False
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

HANDLED_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s)


class Interrupted(Exception):
    """Raised by :func:`stop_if_requested` inside long work once a signal asked the run to stop."""


_active: list = []  # the InterruptRequest of each graceful_interrupt block now running, innermost last
_between_steps_only = False


def stop_between_steps_only() -> None:
    """From now on :func:`stop_if_requested` does nothing: a signal stops the run at the next step boundary.
    Data-parallel training (:mod:`rnnlab.training.distributed`) sets it: its ranks agree to stop there,
    and a rank leaving an evaluation early would leave the others waiting in its collectives."""
    global _between_steps_only
    _between_steps_only = True


def stop_if_requested() -> None:
    """Raise :class:`Interrupted` if the innermost ``graceful_interrupt`` block has received a signal."""
    if _active and _active[-1].requested and not _between_steps_only:
        raise Interrupted(_active[-1].signal_name)


class InterruptRequest:
    """The flag a training loop polls: ``requested`` and the ``signal_name`` that set it."""

    def __init__(self, message: str | None = None, stream=None):
        self.requested = False
        self.signal_name: str | None = None
        self.message = message
        self.stream = stream

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested:
            raise KeyboardInterrupt(f"second {name}: stopping at once")
        self.requested, self.signal_name = True, name
        if self.message and self.stream is not None:
            print(self.message.format(signal=name), file=self.stream, flush=True)

    def __bool__(self) -> bool:
        return self.requested

    def __repr__(self) -> str:
        return f"InterruptRequest(requested={self.requested}, signal_name={self.signal_name!r})"


@contextlib.contextmanager
def graceful_interrupt(message: str | None = None, stream=None) -> Iterator[InterruptRequest]:
    """Turn SIGINT and SIGTERM into a flag while the block runs (see the module docstring).

    ``message`` (with ``{signal}``) is printed to ``stream`` at the first signal, e.g.
    ``"{signal}: saving at the end of this step (press Ctrl-C again to stop at once)"``.
    """
    request = InterruptRequest(message, stream)
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {}
    _active.append(request)
    try:
        for signum in HANDLED_SIGNALS:
            previous[signum] = signal.signal(signum, request._handle)
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _active.remove(request)
