"""Dates to ISO with attention: "Thursday, June 25, 2009", "25th of June, 2009", "6/25/09" -> "2009-06-25".

The classic demonstration of attention in an encoder-decoder: sixteen human formats (names and
abbreviations of months and weekdays, ordinals, two-digit years, US month-first slashes, day-first
dots) are read by a bidirectional LSTM; the decoder attends to the characters that hold the year, the
month and the day as it writes each part of the ISO date.

    python examples/dates.py                        # 5 minutes of training, 5,000 held-out dates
    python examples/dates.py --budget 30 --count 5000

From the command line: ``rnnlab seq2seq data dates --count 55000 > dates.tsv``, then
``rnnlab seq2seq train dates.tsv --out runs/dates``.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rnnlab.errors  # noqa: E402
from addition import main as run_task  # noqa: E402  (the same recipe, another task)

EXAMPLES = ("Thursday, June 25, 2009", "25th of June, 2009", "6/25/09", "1 Jan 2000", "the 3rd of March 1999")


def main(argv=None) -> int:
    return run_task(argv, task="dates", examples=EXAMPLES)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except rnnlab.errors.RnnlabError as error:
        raise SystemExit(f"error: {error}") from None
