"""Restoring spaces: a bidirectional LSTM tags every character of "tobeornottobe" with "a space follows".

The many-to-many aligned pattern: one label per step. The spaces of a text are removed and become the
labels; the tagger learns them from the text alone (Korean spacing correction is the best-known use).
Trained on shakespeare.txt, scored on the last 5% of its lines (held out of training).

    python examples/spacing.py                      # 5 minutes of training
    python examples/spacing.py --budget 30 --text some.txt

From the command line: ``rnnlab tag train shakespeare.txt --task spacing --out runs/spacing``, then
``echo tobeornottobe | rnnlab tag apply runs/spacing``.
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

import rnnlab.errors
from rnnlab.training.tagging import TagConfig, load_tagger, train
from rnnlab.training.tagging_eval import restore_lines

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("tobeornottobethatisthequestion", "nowisthewinterofourdiscontent", "whatsinaname")


def main(argv=None) -> int:
    shared = Path(os.environ.get("RNNLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--text", default=str(shared / "text" / "shakespeare.txt"))
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of training (default: 300)")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--out", help="run directory to keep (default: a temporary one)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        run = Path(args.out) if args.out else Path(folder) / "run"
        config = TagConfig(text_file=args.text, hidden_size=args.hidden_size, time_budget=args.budget)
        result = train(config, run, stream=sys.stdout, progress_bar=False)
        model, vocabulary, _, _ = load_tagger(run)
    test = result.test
    print(f"held-out lines: precision {test.precision:.4f}, recall {test.recall:.4f}, F1 {test.f1:.4f}, "
          f"{100 * test.exact_line:.1f}% of {test.lines:,} lines exactly right")
    restored, _ = restore_lines(model, list(EXAMPLES), vocabulary)
    for text, line in zip(EXAMPLES, restored):
        print(f"{text:>32} -> {line}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except rnnlab.errors.RnnlabError as error:
        raise SystemExit(f"error: {error}") from None
