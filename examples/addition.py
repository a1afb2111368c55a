"""Learning to add: an encoder-decoder reads "123+45" character by character and writes "168".

Keras' ``addition_rnn`` example (numbers of 1 to 3 digits, 50,000 questions; an LSTM of 128 reaches a
per-character validation accuracy of 0.97 after 9 epochs) as rnnlab's many-to-many unaligned pattern:
a bidirectional LSTM encoder reads the question, an LSTM decoder with Luong attention writes the sum,
one character at a time, until ``<eos>``. The score that matters is the exact match: every digit right.

    python examples/addition.py                     # 5 minutes of training, 5,000 held-out questions
    python examples/addition.py --budget 30 --count 5000     # a quick look

The same run from the command line::

    rnnlab seq2seq data addition --count 55000 > add.tsv
    rnnlab seq2seq train add.tsv --out runs/add --time-budget 300
    echo "123+45" | rnnlab seq2seq translate runs/add --beam 5
"""
import argparse
import sys
import tempfile
from pathlib import Path

import rnnlab.errors
from rnnlab.data.pair_files import format_pairs
from rnnlab.data.tasks import generate
from rnnlab.training.seq2seq import Seq2SeqConfig, load_seq2seq, train
from rnnlab.training.seq2seq_eval import translate_pairs


def main(argv=None, task="addition", examples=("123+45", "999+1", "7+8", "500+500")) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=50_000, help="training pairs (default: 50,000)")
    parser.add_argument("--test", type=int, default=5_000, help="held-out pairs scored at the end (default: 5,000)")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of training (default: 300)")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--out", help="run directory to keep (default: a temporary one)")
    args = parser.parse_args(argv)

    pairs = generate(task, args.count + 1000 + args.test, seed=2026)     # distinct pairs
    train_pairs, val_pairs, test_pairs = pairs[:args.count], pairs[args.count:args.count + 1000], pairs[-args.test:]
    print(f"{task}: {len(train_pairs):,} training pairs such as {train_pairs[0][0]!r} -> {train_pairs[0][1]!r}")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "train.tsv").write_text(format_pairs(train_pairs), encoding="utf-8")
        (folder / "val.tsv").write_text(format_pairs(val_pairs), encoding="utf-8")
        run = Path(args.out) if args.out else folder / "run"
        config = Seq2SeqConfig(pairs_file=str(folder / "train.tsv"), val_file=str(folder / "val.tsv"),
                               hidden_size=args.hidden_size, time_budget=args.budget)
        result = train(config, run, stream=sys.stdout, progress_bar=False)
        model, _, _ = load_seq2seq(run)                                  # the best weights by validation
    for beam in (1, 5):
        _, score = translate_pairs(model, test_pairs, beam=beam)
        print(f"held out, {'greedy' if beam == 1 else 'beam 5'}: exact match {100 * score.exact_match:.2f}% of "
              f"{score.pairs:,}, char accuracy {100 * score.char_accuracy:.2f}%, CER {score.cer:.4f}")
    for question, answer in zip(examples, model.translate(list(examples), beam_size=5)):
        print(f"{question:>28} -> {answer}")
    print(f"{result.step:,} steps, {result.train_seconds:.0f} s of training")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except rnnlab.errors.RnnlabError as error:
        raise SystemExit(f"error: {error}") from None
