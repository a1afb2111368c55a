"""Around a training run: Python warnings and running out of memory as one line each."""
from __future__ import annotations

import contextlib
import sys
import warnings

from ..errors import RnnlabError


@contextlib.contextmanager
def one_line_messages(sizes: str):
    """Python warnings (e.g. PyTorch's "dropout expects num_layers greater than 1") as one line
    ``rnnlab: warning: ...`` instead of a file name, a line number and a line of rnnlab's source; and
    running out of memory (a model or batch too large) as one error line naming the flags to lower (``sizes``)."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"rnnlab: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        try:
            yield
        except MemoryError as error:
            raise RnnlabError(f"not enough memory ({error}); lower {sizes}") from None
