"""Messages: Python warnings and running out of memory around a training run, and standard output that
cannot be written (a full disk, ``> /dev/full``), each as one line; symbols a model never saw; a
trainer's ``--json`` summary."""
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


def stdout_error(error: OSError) -> RnnlabError:
    """The one line for standard output that cannot be written (``rnnlab sample ... > /dev/full``)."""
    return RnnlabError(f"cannot write to standard output ({error.strerror or error}); free some space "
                       f"where it goes, or send it elsewhere")


def flush_stdout() -> None:
    """Flush standard output at the end of a command: a failure is one RnnlabError line, and standard output
    is pointed at the null device so that Python's own flush at exit does not print a second message."""
    import os

    try:
        sys.stdout.flush()
    except OSError as error:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if isinstance(error, BrokenPipeError):
            raise
        raise stdout_error(error) from None


def discard_stdout() -> None:
    """After an error: flush what standard output holds, or, if it cannot be written, drop it silently."""
    try:
        flush_stdout()
    except (RnnlabError, BrokenPipeError):
        pass


def to_stdout(*parts, **kwargs) -> None:
    """``print`` to standard output, where a write that fails (a full disk, ``> /dev/full``) is one line."""
    try:
        print(*parts, **kwargs)
    except BrokenPipeError:
        raise
    except OSError as error:
        discard_stdout()
        raise stdout_error(error) from None


def unknown_examples(texts, vocabulary) -> list:
    """The symbols of ``texts`` that ``vocabulary`` does not hold, each once, in order of appearance."""
    examples = []
    for text in texts:
        examples.extend(s for s in vocabulary.unknown(text) if s not in examples)
    return examples


def warn_unknown(count: int, example: list, what: str = "character") -> None:
    """One warning line about symbols the model never saw (they were read as <unk>)."""
    if count:
        shown = ", ".join(repr(c) for c in example[:5]) + (", ..." if len(example) > 5 else "")
        print(f"rnnlab: warning: {count} {what}{'s' if count != 1 else ''} unseen in training, read as <unk>: "
              f"{shown}", file=sys.stderr)


def print_train_summary(out, result) -> None:
    """``--json`` of ``seq2seq train`` / ``tag train``: one object on stdout (run_dir, step, epoch,
    stop_reason, train_seconds, the last validation, the test scores)."""
    from .. import strict_json

    to_stdout(strict_json.dumps({"run_dir": str(out), "step": result.step, "epoch": result.epoch,
                                 "stop_reason": result.stop_reason, "train_seconds": round(result.train_seconds, 3),
                                 "validation": result.history[-1] if result.history else None,
                                 "test": None if result.test is None else result.test.to_dict()}))
