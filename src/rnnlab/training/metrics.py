"""``RUN_DIR/metrics.jsonl``: the run's history, one JSON object per line (for plots)."""
from __future__ import annotations

import json
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """``RUN_DIR/metrics.jsonl``: one JSON object per line, ``{"step", "loss"}`` for each training step and
    ``{"step", "val_loss", "val_bpc"}`` / ``{"step", "test_loss", "test_bpc"}`` for evaluations (for plots).

    On resume, lines after the resumed step (written by a run killed after its last checkpoint) are dropped,
    so the file reads as the history of one uninterrupted run.
    """

    def __init__(self, path: Path, keep_up_to: int):
        self.path = Path(path)
        kept = []
        if keep_up_to and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line)["step"] <= keep_up_to:
                        kept.append(line + "\n")
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash
        self.file = open(self.path, "w", encoding="utf-8")
        self.file.writelines(kept)

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()
