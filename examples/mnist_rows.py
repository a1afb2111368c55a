"""Images read row by row: a vanilla RNN with tanh, then with ReLU, classifies Fashion-MNIST (or MNIST).

The tutorial's experiment: each 28 x 28 image is a sequence of 28 rows of 28 pixels; an RNN (hidden size
128) reads the rows and a Linear layer turns its last output into 10 class scores. 5,000 training and
1,000 test images, 10 epochs, once with tanh and once with ReLU; the loss and accuracy curves of both go
into one PNG.

ReLU needs a sensible start: with PyTorch's default uniform init its state can grow or die over 28 steps.
The IRNN initialisation (Le, Jaitly & Hinton, 2015: recurrent weights = the identity, biases 0) starts
the recurrence by carrying the state unchanged, and trains well. Pixels are scaled to [0, 1].

    python examples/mnist_rows.py                         # Fashion-MNIST from the shared data folder
    python examples/mnist_rows.py --dataset mnist         # MNIST, found or downloaded by load_dataset
    python examples/mnist_rows.py --png curves.png --epochs 5

The PNG needs matplotlib (``pip install rnnlab[plot]``); without it the numbers are still printed.
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
from rnnlab.models import SequenceClassifier
from rnnlab.data.images import scale_pixels
from rnnlab.training.classify_eval import evaluate

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir(dataset: str) -> Path | None:
    """Fashion-MNIST in the shared data folder ($RNNLAB_SHARED_DATA, default ../shared/data beside the repo)."""
    folder = Path(os.environ.get("RNNLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")) / dataset
    return folder if folder.is_dir() else None


def train_one(name, cell, init, train_images, train_labels, test_images, test_labels, args):
    """Train one RNN classifier; returns its per-epoch history (train loss, test loss, test accuracy)."""
    rnnlab.manual_seed(args.seed)
    model = SequenceClassifier(input_size=train_images.shape[2], num_classes=10, hidden_size=args.hidden_size,
                               cell=cell, init=init)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    criterion = nn.CrossEntropyLoss()
    history = {"train_loss": [], "test_loss": [], "test_accuracy": []}
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rnnlab.backend.generator().permutation(len(train_images))
        loss_sum = 0.0
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            logits = model(scale_pixels(train_images[batch]))      # (B, 28 rows, 28 pixels) -> (B, 10)
            loss = criterion(logits, train_labels[batch])
            model.zero_grad()
            model.backward(criterion.backward())
            optim.clip_grad_norm_(model.parameters(), args.grad_clip)
            optimizer.step()
            loss_sum += float(loss) * len(batch)
        test = evaluate(model, test_images, test_labels)
        history["train_loss"].append(loss_sum / len(order))
        history["test_loss"].append(test.loss)
        history["test_accuracy"].append(test.accuracy)
        print(f"{name:>10}  epoch {epoch:2d}: train loss {loss_sum / len(order):.4f} | test loss {test.loss:.4f} "
              f"acc {100 * test.accuracy:5.1f}%  ({time.perf_counter() - started:.1f} s)", flush=True)
    return history


def plot(histories, path: Path, title: str) -> bool:
    """Loss and accuracy curves of every run side by side; False (and one line) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install rnnlab[plot]); no PNG written, the numbers are above")
        return False
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for index, (name, history) in enumerate(histories.items()):
        epochs = np.arange(1, len(history["test_loss"]) + 1)
        color = f"C{index}"  # one colour per model: dashed = training loss, solid = test
        loss_axes.plot(epochs, history["train_loss"], "--", color=color, label=f"{name} train")
        loss_axes.plot(epochs, history["test_loss"], "-", color=color, label=f"{name} test")
        accuracy_axes.plot(epochs, 100 * np.asarray(history["test_accuracy"]), "-o", color=color, label=name)
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy (nats)", title="loss")
    accuracy_axes.set(xlabel="epoch", ylabel="test accuracy (%)", title="accuracy")
    loss_axes.legend(), accuracy_axes.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    print(f"wrote {path}")
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="RNN tanh vs ReLU on images read row by row")
    parser.add_argument("--dataset", choices=("fashion-mnist", "mnist"), default="fashion-mnist")
    parser.add_argument("--data-dir", help="directory with the dataset's four IDX files (default: the shared "
                                           "data folder for Fashion-MNIST, else load_dataset's search)")
    parser.add_argument("--train-size", type=int, default=5000, help="(default: 5000)")
    parser.add_argument("--test-size", type=int, default=1000, help="(default: 1000)")
    parser.add_argument("--epochs", type=int, default=10, help="(default: 10)")
    parser.add_argument("--hidden-size", type=int, default=128, help="(default: 128)")
    parser.add_argument("--batch-size", type=int, default=64, help="(default: 64)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default: 0.001)")
    parser.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clip (default: 1.0)")
    parser.add_argument("--png", default="mnist_rows.png", help="where the curves go (default: mnist_rows.png)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data_dir = args.data_dir or shared_data_dir(args.dataset)
    dataset = load_dataset(args.dataset, data_dir=data_dir)
    train_images, train_labels = dataset.train_images[:args.train_size], dataset.train_labels[:args.train_size]
    test_images, test_labels = dataset.test_images[:args.test_size], dataset.test_labels[:args.test_size]
    print(f"{dataset.name} from {dataset.directory}: {len(train_images):,} training and {len(test_images):,} test "
          f"images, each {train_images.shape[1]} rows of {train_images.shape[2]} pixels")

    histories = {}
    for name, cell, init in (("tanh", "rnn", "default"), ("relu", "rnn_relu", "identity")):
        histories[name] = train_one(name, cell, init, train_images, train_labels, test_images, test_labels, args)
    print("final test accuracy: " + ", ".join(f"{name} {100 * h['test_accuracy'][-1]:.1f}%"
                                             for name, h in histories.items()))
    plot(histories, Path(args.png), f"RNN ({args.hidden_size}) on {dataset.name} rows: "
                                    f"{len(train_images):,} train / {len(test_images):,} test images")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except rnnlab.errors.RnnlabError as error:  # a wrong path or flag: one line, not a traceback
        raise SystemExit(f"error: {error}") from None
