"""One-to-many: an LSTM draws Fashion-MNIST images row by row from a class label alone.

The class sets the LSTM's initial state and rides beside every input; each step predicts the next row's
28 pixel intensities from the rows drawn so far (teacher forcing while training: the true previous row
goes in), trained with ``BCEWithLogitsLoss`` on intensities in [0, 1]. Drawing feeds each row back in.
The PNG has one row of samples per class (T-shirt/top, trouser, pullover, ... ankle boot).

    python examples/fashion_generator.py                            # ~5 minutes, fashion_generator.png
    python examples/fashion_generator.py --budget 20 --png quick.png --samples 4

The PNG needs matplotlib (``pip install 'rnnlab[plot]'``); without it the losses are still printed.
"""
import argparse
import os
import time
from pathlib import Path

import numpy as np

import rnnlab
import rnnlab.errors
from rnnlab import nn, optim
from rnnlab.data import load_dataset
from rnnlab.data.images import scale_pixels
from rnnlab.models import SequenceGenerator

REPO_ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def test_loss(model, images, labels, criterion, batch_size=500) -> float:
    """Mean binary cross-entropy per pixel on held-out images (teacher forced, evaluation mode)."""
    model.eval()
    total = 0.0
    with rnnlab.no_grad():
        for start in range(0, len(images), batch_size):
            x = scale_pixels(images[start:start + batch_size])
            total += float(criterion(model(x, labels[start:start + batch_size]), x)) * len(x)
    model.train()
    return total / len(images)


def write_grid(samples, path: Path) -> bool:
    """``samples`` (classes, per class, 28, 28) as one PNG, a row per class; False without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed (pip install 'rnnlab[plot]'); no PNG written")
        return False
    rows, columns = samples.shape[:2]
    figure = Figure(figsize=(1.0 * columns + 1.6, 1.0 * rows), dpi=100)
    FigureCanvasAgg(figure)
    for r in range(rows):
        for c in range(columns):
            axes = figure.add_subplot(rows, columns, r * columns + c + 1)
            axes.imshow(samples[r, c], cmap="gray_r", vmin=0, vmax=1)
            axes.set_xticks([]), axes.set_yticks([])
            if c == 0:
                axes.set_ylabel(CLASSES[r] if rows == len(CLASSES) else str(r), rotation=0, ha="right", va="center")
    figure.subplots_adjust(left=1.4 / (1.0 * columns + 1.6), right=0.99, top=0.99, bottom=0.01, wspace=0.05,
                           hspace=0.05)
    figure.savefig(path)
    print(f"wrote {path}")
    return True


def main(argv=None) -> int:
    shared = Path(os.environ.get("RNNLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(shared / "fashion-mnist"))
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of training (default: 300)")
    parser.add_argument("--train-size", type=int, default=60_000)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--samples", type=int, default=8, help="samples per class in the PNG (default: 8)")
    parser.add_argument("--sample", action="store_true", help="draw Bernoulli pixels instead of their means")
    parser.add_argument("--png", default="fashion_generator.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = load_dataset("fashion-mnist", data_dir=args.data_dir)
    images, labels = data.train_images[:args.train_size], data.train_labels[:args.train_size].astype(np.int64)
    held_images, held_labels = data.test_images[:2000], data.test_labels[:2000].astype(np.int64)
    rnnlab.manual_seed(args.seed)
    model = SequenceGenerator(input_size=28, num_classes=10, hidden_size=args.hidden_size)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    criterion = nn.BCEWithLogitsLoss()
    print(f"{len(images):,} training images; {model.num_parameters():,} parameters; "
          f"held-out BCE at the start {test_loss(model, held_images, held_labels, criterion):.4f}")
    seconds, step, epoch = 0.0, 0, 0
    while seconds < args.budget:
        order = rnnlab.backend.generator().permutation(len(images))
        for start in range(0, len(order), args.batch_size):
            started = time.perf_counter()
            batch = order[start:start + args.batch_size]
            x = scale_pixels(images[batch])                           # (B, 28 rows, 28 pixels) in [0, 1]
            loss = criterion(model(x, labels[batch]), x)              # row t predicted from rows < t
            model.zero_grad()
            model.backward(criterion.backward())
            optim.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            seconds += time.perf_counter() - started
            if seconds >= args.budget:
                break
        epoch += 1
        print(f"epoch {epoch} (step {step}, {seconds:.0f} s): training BCE {float(loss):.4f}, held out "
              f"{test_loss(model, held_images, held_labels, criterion):.4f}", flush=True)
    classes = np.repeat(np.arange(10), args.samples)
    drawn = model.generate(classes, num_steps=28, sample=args.sample, seed=args.seed)   # (10 * S, 28, 28)
    write_grid(drawn.reshape(10, args.samples, 28, 28), Path(args.png))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except rnnlab.errors.RnnlabError as error:
        raise SystemExit(f"error: {error}") from None
