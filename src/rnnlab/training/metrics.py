"""``RUN_DIR/metrics.jsonl``: the run's history, one JSON object per line, appended and never truncated.

Every kind of run writes it: the char-LM loop (:mod:`.charlm`) here directly, the classifier, seq2seq and
tagging loops through :class:`rnnlab.training.loop.RunHistory`; under MPI rank 0 alone writes. Rows
(``time``: seconds since the run began, summed over resumes, kept in the training state; a non-finite
number is ``null``; losses are mean cross-entropy in nats)::

    {"step": 120, "time": 31.4, "loss": 1.83, "lr": 0.002, "chars_per_s": 10544.2}    # every training step
    {"step": 200, "time": 52.0, "val_loss": 1.61, "val_bpc": 2.32}                     # every evaluation
    {"step": 900, "time": 240.7, "test_loss": 1.58, "test_bpc": 2.28}                  # the end of a run

The other kinds' rows have the same ``step``, ``time``, ``loss``, ``lr``, ``val_loss`` and ``test_loss``;
their rate and scores are their own::

    classify  train: "images_per_s"   validation (each epoch, with a validation slice): "val_accuracy"
              test (each epoch, and the end): "test_loss", "test_accuracy"             (loss per image)
    seq2seq   train: "pairs_per_s"    validation: "val_exact_match", "val_char_accuracy", "val_cer"
              test (the end, best weights): "test_loss", "test_exact_match", "test_char_accuracy",
              "test_cer"                                                               (loss per target symbol)
    tagger    train: "lines_per_s"    validation: "val_precision", "val_recall", "val_f1", "val_exact_line"
              test (the end, best weights): "test_loss", "test_precision", "test_recall", "test_f1",
              "test_exact_line"                                                        (loss per character)

Every row is flushed to the operating system as it is written (a ``kill -9`` loses none) and the file is
fsynced at each checkpoint (:meth:`MetricsLog.sync`). A resumed run repeats the steps since its last
checkpoint exactly; rows already logged for them (by the run that was killed) are not written again, so
the file holds every step once. A damaged file (a line cut short by a full disk, bytes that are not
UTF-8 or not JSON) is still read: damaged lines are skipped with one warning and left in place, and
new rows start on a line of their own. The rate (``chars_per_s`` ...) is this invocation's. A run
trained before its kind wrote the file gets one from its next ``--resume`` on.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .. import strict_json
from ..errors import RnnlabError

METRICS_FILE = "metrics.jsonl"
# the kinds of row, by the key only that kind has
KINDS = (("loss", "train"), ("val_loss", "val"), ("test_loss", "test"))


def row_kind(row: dict) -> str:
    for key, kind in KINDS:
        if key in row:
            return kind
    return "other"


def read_rows(path) -> tuple[list[dict], int]:
    """``(rows, damaged)``: the rows of a metrics file that parse as JSON objects with an integer ``step``,
    and the count of lines that do not. RnnlabError (one line) when the file cannot be read at all."""
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():  # a device (/dev/zero would never end)
        raise RnnlabError(f"{path}: not a regular file, not the run's metrics log; move it out of the way "
                          f"(the run's checkpoints are intact) and resume again")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    except IsADirectoryError:
        raise RnnlabError(f"{path}: is a directory, not the run's metrics log; move it out of the way "
                          f"(the run's checkpoints are intact) and resume again") from None
    except OSError as error:
        raise RnnlabError(f"{path}: cannot read the run's metrics log ({error.strerror or error}); "
                          f"fix its permissions or move it out of the way, then resume again") from None
    rows, damaged = [], 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            damaged += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and not isinstance(row["step"], bool):
            rows.append(row)
        else:
            damaged += 1
    return rows, damaged


class MetricsLog:
    """Appends rows to ``metrics.jsonl`` (see the module docstring).

    ``resume``: the file is read first (what is already logged is not written again; damaged lines
    are reported on ``stream`` once). Otherwise a new run starts a new file.
    """

    def __init__(self, path, resume: bool = False, stream=None):
        self.path = Path(path)
        self.logged = {}             # row kind -> the last step logged
        self.last_time = 0.0
        needs_newline = False
        if resume:
            rows, damaged = read_rows(self.path)
            for row in rows:
                kind = row_kind(row)
                self.logged[kind] = max(self.logged.get(kind, row["step"]), row["step"])
                if isinstance(row.get("time"), (int, float)):
                    self.last_time = max(self.last_time, float(row["time"]))
            if damaged:
                print(f"rnnlab: warning: {self.path}: {damaged} damaged line{'s' if damaged > 1 else ''} "
                      f"skipped (left in the file)", file=stream or sys.stderr, flush=True)
            needs_newline = self._ends_without_newline()
        try:
            self.file = open(self.path, "a" if resume else "w", encoding="utf-8")
            if needs_newline:
                self.file.write("\n")  # a line cut short stays one damaged line; new rows start afresh
        except OSError as error:
            raise RnnlabError(f"{self.path}: cannot write the run's metrics log ({error.strerror or error}); "
                              f"check {self.path.parent}") from None

    def _ends_without_newline(self) -> bool:
        try:
            with open(self.path, "rb") as file:
                file.seek(0, os.SEEK_END)
                if file.tell() == 0:
                    return False
                file.seek(-1, os.SEEK_END)
                return file.read(1) != b"\n"
        except OSError:
            return False

    def write(self, row: dict) -> None:
        """Append ``row`` (it has a ``step``) and flush it, unless a row of its kind was already logged for
        that step or a later one; ``time`` never goes backwards."""
        kind = row_kind(row)
        if row["step"] <= self.logged.get(kind, -1):
            return
        if "time" in row:
            row = {**row, "time": round(max(float(row["time"]), self.last_time), 3)}
            self.last_time = row["time"]
        self.logged[kind] = row["step"]
        self.file.write(strict_json.dumps(row) + "\n")
        self.file.flush()

    def flush(self) -> None:
        self.file.flush()

    def sync(self) -> None:
        """Flush and fsync (at a checkpoint: the log is as durable as the checkpoint)."""
        self.file.flush()
        try:
            os.fsync(self.file.fileno())
        except OSError:
            pass

    def close(self) -> None:
        if not self.file.closed:
            self.sync()
            self.file.close()
