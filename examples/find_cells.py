"""Train a 2-layer LSTM for ~10 minutes, then look for the cells Karpathy's post shows: one that turns on
inside quotes, one that follows the position in the line (and brackets, comments, indentation ...).

The model learns Python's own standard library sources (rnnlab's default corpus: quotes, brackets,
comments and indentation everywhere) unless ``--text`` names another file, e.g. the shared shakespeare.txt.
After training, the model reads the start of the validation split (text it never trained on) with
:func:`rnnlab.inspect.trace`; every unit of every state is correlated with each text feature, the best are
printed, and the HTML report is written beside the run (open it in a browser).

    python examples/find_cells.py                                # 10 minutes, runs/find_cells/report.html
    python examples/find_cells.py --text ../shared/data/text/shakespeare.txt --out runs/cells_shakespeare
    python examples/find_cells.py --analyse-only --chars 50000      # look again at the trained run, no training
    rnnlab inspect runs/find_cells --format ansi --cell 1:42 --state c     # one cell in the terminal
"""
import argparse
import json
import sys
from pathlib import Path

import rnnlab
import rnnlab.errors
from rnnlab.inspect import FEATURES, correlations, rank_units, trace
from rnnlab.inspect.features import interpretable_fraction
from rnnlab.inspect.report import build_report
from rnnlab.training.charlm import load_corpus, train
from rnnlab.training.config import TrainConfig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="train a 2-layer LSTM, then find its interpretable cells")
    parser.add_argument("--text", default=None, help="text file (default: Python's standard library sources)")
    parser.add_argument("--out", default="runs/find_cells", help="run directory (default: runs/find_cells)")
    parser.add_argument("--hidden-size", type=int, default=256, help="(default: 256)")
    parser.add_argument("--time-budget", type=float, default=600.0, help="seconds of training (default: 600)")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps instead")
    parser.add_argument("--batch-size", type=int, default=32, help="(default: 32)")
    parser.add_argument("--seq-len", type=int, default=100, help="(default: 100)")
    parser.add_argument("--chars", type=int, default=20_000, help="validation characters to read (default: 20000)")
    parser.add_argument("--top", type=int, default=3, help="units listed per feature (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--analyse-only", action="store_true",
                        help="do not train: analyse the run already in --out (trained by this script)")
    args = parser.parse_args(argv)

    config = TrainConfig(text_file=args.text, model="lstm", hidden_size=args.hidden_size, num_layers=2,
                         seq_len=args.seq_len, batch_size=args.batch_size, lr=2e-3, time_budget=args.time_budget,
                         steps=args.steps, eval_every=1000, eval_chars=50_000, sample_length=0, seed=args.seed)
    if not args.analyse_only:
        result = train(config, args.out, stream=sys.stdout)
        print(f"trained {result.step} steps ({result.stop_reason}); best validation loss {result.best_val_loss}")

    model = rnnlab.load(args.out)                              # the best weights by validation loss
    corpus = load_corpus(config, vocab=model.vocabulary)      # the same 90/5/5 split training used
    text = model.vocabulary.decode(corpus.val[:args.chars])
    tr = trace(model, text)
    table = correlations(tr)
    ranked = rank_units(table, top=args.top)
    found, total = interpretable_fraction(table, threshold=0.5)
    print(f"\n{len(tr.text):,} validation characters, {tr.bits_per_char:.3f} bits/char; "
          f"{found} of {total} units ({100 * found / total:.1f}%) have |r| >= 0.5 in h or c with quotes, docstrings, "
          f"brackets, the column, comments or indentation")
    for name, label in FEATURES.items():
        rows = ranked[name]
        listed = ", ".join(f"layer {r.layer} {r.state} unit {r.unit} (r = {r.r:+.3f})" for r in rows) or "no variation"
        print(f"  {label:<18} {listed}")
    for name in ("quote", "docstring", "line_position"):
        if ranked[name]:
            best = ranked[name][0]
            print(f"the {FEATURES[name]} cell: layer {best.layer} unit {best.unit}, state {best.state}, "
                  f"r = {best.r:+.3f}   (rnnlab inspect {args.out} --format ansi --cell {best.layer}:{best.unit} "
                  f"--state {best.state})")

    with open(Path(args.out) / "metrics.jsonl", encoding="utf-8") as lines:
        metrics = [json.loads(line) for line in lines if line.strip()]
    report = build_report(tr, about=[("run", args.out), ("model", f"lstm, 2 x {args.hidden_size}"),
                                     ("text", f"validation split of {args.text or 'the Python standard library'}, "
                                              f"first {len(tr.text):,} characters")],
                          metrics=metrics, title=f"rnnlab inspect: {Path(args.out).name}")
    path = Path(args.out) / "report.html"
    path.write_text(report.html, encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except rnnlab.errors.RnnlabError as error:  # a wrong path or flag: one line, not a traceback
        raise SystemExit(f"error: {error}") from None
