"""Fashion-MNIST read row by row: rnnlab's SequenceClassifier against the same model in PyTorch.

Two experiments, each trained twice, once by rnnlab and once by PyTorch, side by side:

- ``target``: LSTM 1 x 128 on the full training set (60,000 images), scored on the full test set (10,000).
  Target: test accuracy >= 89% within 3 minutes of training (``--time-budget 180``), and rnnlab within
  1 point of PyTorch.
- ``tutorial``: the tutorial's setting, a vanilla RNN (hidden 128), 5,000 training / 1,000 test images,
  10 epochs, once with tanh and once with ReLU (IRNN init: recurrent weights = I, biases 0).

Both frameworks get the same initial weights (rnnlab's seeded init, copied into PyTorch by parameter name),
the same batches in the same order (one permutation per epoch from ``numpy.random.default_rng(seed + epoch)``),
the same pixel scaling (uint8 / 255), the same optimizer (Adam, per-epoch decay ``--lr-decay``, global-norm
clip ``--grad-clip``) and the same limits: ``--epochs`` and ``--time-budget`` (seconds of training, the
first reached stops; evaluation time is not counted). PyTorch runs with as many threads as NumPy's BLAS
uses; the BLAS library and kernel are recorded (threadpoolctl). Run it with the OpenBLAS overrides unset::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/fashion_mnist.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/fashion_mnist.py \\
        --only target --time-budget 10 --test-size 2000                     # a quick check that it works

A table is printed and the results are written to ``benchmarks/results/fashion_mnist.json`` (``--json``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))

import rnnlab  # noqa: E402
from rnnlab.bench import blas_info  # noqa: E402  (library, kernel, threads, version)
from rnnlab import nn, optim  # noqa: E402
from rnnlab.data import load_dataset  # noqa: E402
from rnnlab.models import SequenceClassifier  # noqa: E402
from rnnlab.data.images import scale_pixels  # noqa: E402
from rnnlab.training.classify_eval import evaluate  # noqa: E402


def shared_data_dir() -> Path:
    return Path(os.environ.get("RNNLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")) / "fashion-mnist"


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """The batch order of one epoch, the same for both frameworks."""
    return np.random.default_rng(seed + epoch).permutation(count)


# ---------------------------------------------------------------------------------------------------
# the two training loops, step for step the same
# ---------------------------------------------------------------------------------------------------

def train_rnnlab(model, data, settings) -> dict:
    train_images, train_labels, test_images, test_labels = data
    optimizer = optim.Adam(model.parameters(), lr=settings["lr"])
    criterion = nn.CrossEntropyLoss()
    params = list(model.parameters())
    history, train_seconds, steps = [], 0.0, 0
    for epoch in range(settings["epochs"]):
        for group in optimizer.param_groups:
            group["lr"] = settings["lr"] * settings["lr_decay"] ** epoch
        order = epoch_order(settings["seed"], epoch, len(train_images))
        started = time.perf_counter()
        for start in range(0, len(order), settings["batch_size"]):
            batch = order[start:start + settings["batch_size"]]
            logits = model(scale_pixels(train_images[batch]))
            criterion(logits, train_labels[batch])
            model.zero_grad()
            model.backward(criterion.backward())
            if settings["grad_clip"] > 0:
                optim.clip_grad_norm_(params, settings["grad_clip"])
            optimizer.step()
            steps += 1
            if time.perf_counter() - started + train_seconds >= settings["time_budget"]:
                break
        train_seconds += time.perf_counter() - started
        test = evaluate(model, test_images, test_labels)
        history.append({"epoch": epoch + 1, "steps": steps, "train_seconds": round(train_seconds, 2),
                        "test_loss": test.loss, "test_accuracy": test.accuracy})
        print(f"    rnnlab  epoch {epoch + 1:2d}  step {steps:6d}  {train_seconds:7.1f} s  test loss {test.loss:.4f}  "
              f"acc {100 * test.accuracy:.2f}%", flush=True)
        if train_seconds >= settings["time_budget"]:
            break
    return {"history": history, "steps": steps, "train_seconds": train_seconds,
            "test_accuracy": history[-1]["test_accuracy"], "test_loss": history[-1]["test_loss"]}


def torch_twin(torch, model: SequenceClassifier):
    """The same network in PyTorch (batch_first), weights copied from the rnnlab model by name."""
    classes = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN, "rnn_relu": torch.nn.RNN}
    extra = {"nonlinearity": "relu"} if model.cell == "rnn_relu" else {}

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = classes[model.cell](model.input_size, model.hidden_size, model.num_layers, batch_first=True,
                                           bidirectional=model.bidirectional, **extra)
            self.classifier = torch.nn.Linear(model.num_directions * model.hidden_size, model.num_classes)

        def forward(self, x):
            _, state = self.rnn(x)
            h_n = state[0] if isinstance(state, tuple) else state
            return self.classifier(torch.cat(list(h_n[-model.num_directions:]), dim=-1))

    twin = Twin()
    twin.load_state_dict({name: torch.from_numpy(value) for name, value in model.state_dict().items()})
    return twin


def train_torch(torch, twin, data, settings) -> dict:
    train_images, train_labels, test_images, test_labels = data
    optimizer = torch.optim.Adam(twin.parameters(), lr=settings["lr"])
    criterion = torch.nn.CrossEntropyLoss()
    train_x = torch.from_numpy(scale_pixels(train_images))
    train_y = torch.from_numpy(np.asarray(train_labels, dtype=np.int64))
    test_x = torch.from_numpy(scale_pixels(test_images))
    test_y = torch.from_numpy(np.asarray(test_labels, dtype=np.int64))
    history, train_seconds, steps = [], 0.0, 0
    for epoch in range(settings["epochs"]):
        for group in optimizer.param_groups:
            group["lr"] = settings["lr"] * settings["lr_decay"] ** epoch
        order = torch.from_numpy(epoch_order(settings["seed"], epoch, len(train_images)))
        twin.train()
        started = time.perf_counter()
        for start in range(0, len(order), settings["batch_size"]):
            batch = order[start:start + settings["batch_size"]]
            loss = criterion(twin(train_x[batch]), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            if settings["grad_clip"] > 0:
                torch.nn.utils.clip_grad_norm_(twin.parameters(), settings["grad_clip"])
            optimizer.step()
            steps += 1
            if time.perf_counter() - started + train_seconds >= settings["time_budget"]:
                break
        train_seconds += time.perf_counter() - started
        twin.eval()
        with torch.no_grad():
            logits = torch.cat([twin(test_x[i:i + 1000]) for i in range(0, len(test_x), 1000)])
            test_loss = float(criterion(logits, test_y))
            accuracy = float((logits.argmax(dim=1) == test_y).double().mean())
        history.append({"epoch": epoch + 1, "steps": steps, "train_seconds": round(train_seconds, 2),
                        "test_loss": test_loss, "test_accuracy": accuracy})
        print(f"    torch   epoch {epoch + 1:2d}  step {steps:6d}  {train_seconds:7.1f} s  test loss {test_loss:.4f}  "
              f"acc {100 * accuracy:.2f}%", flush=True)
        if train_seconds >= settings["time_budget"]:
            break
    return {"history": history, "steps": steps, "train_seconds": train_seconds,
            "test_accuracy": history[-1]["test_accuracy"], "test_loss": history[-1]["test_loss"]}


def compare(name, cell, init, data, settings, torch) -> dict:
    print(f"{name}: {cell} ({init} init), hidden {settings['hidden_size']}, {len(data[0]):,} train / "
          f"{len(data[2]):,} test images, up to {settings['epochs']} epochs or {settings['time_budget']:g} s", flush=True)
    rnnlab.manual_seed(settings["seed"])
    model = SequenceClassifier(28, 10, hidden_size=settings["hidden_size"], cell=cell, init=init)
    twin = torch_twin(torch, model) if torch is not None else None
    result = {"name": name, "cell": cell, "init": init, "settings": dict(settings),
              "rnnlab": train_rnnlab(model, data, settings)}
    if twin is not None:
        result["torch"] = train_torch(torch, twin, data, settings)
    return result


def print_table(results) -> None:
    print()
    header = f"{'experiment':<14}{'framework':<10}{'epochs':>7}{'steps':>8}{'train s':>9}{'ms/step':>9}" \
             f"{'test acc':>10}{'test loss':>11}"
    print(header)
    print("-" * len(header))
    for result in results:
        for framework in ("rnnlab", "torch"):
            if framework not in result:
                continue
            run = result[framework]
            print(f"{result['name']:<14}{framework:<10}{len(run['history']):>7}{run['steps']:>8}"
                  f"{run['train_seconds']:>9.1f}{1000 * run['train_seconds'] / max(run['steps'], 1):>9.1f}"
                  f"{100 * run['test_accuracy']:>9.2f}%{run['test_loss']:>11.4f}")
        if "torch" in result:
            gap = 100 * (result["rnnlab"]["test_accuracy"] - result["torch"]["test_accuracy"])
            print(f"{'':<14}rnnlab - torch: {gap:+.2f} points")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Fashion-MNIST rows: rnnlab vs PyTorch, same model, same budget")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST's four files (default: the shared data)")
    parser.add_argument("--only", choices=("target", "tutorial"), default=None, help="run one experiment")
    parser.add_argument("--time-budget", type=float, default=180.0,
                        help="seconds of training for the target experiment (default: 180)")
    parser.add_argument("--epochs", type=int, default=12, help="epoch limit for the target experiment (default: 12)")
    parser.add_argument("--train-size", type=int, default=None, help="target: first N training images (default: all)")
    parser.add_argument("--test-size", type=int, default=None, help="target: first M test images (default: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate (default: 0.002)")
    parser.add_argument("--lr-decay", type=float, default=0.8, help="per-epoch learning-rate factor (default: 0.8)")
    parser.add_argument("--grad-clip", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-torch", action="store_true", help="train rnnlab only")
    parser.add_argument("--json", default=str(REPO_ROOT / "benchmarks" / "results" / "fashion_mnist.json"))
    args = parser.parse_args(argv)

    blas = blas_info()
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: rnnlab only")
        else:
            torch.set_num_threads(int(blas.get("threads") or 1))
            torch.manual_seed(args.seed)
    print(f"BLAS: {blas}; torch: {None if torch is None else torch.__version__} with "
          f"{None if torch is None else torch.get_num_threads()} threads; numpy {np.__version__}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}", flush=True)
    dataset = load_dataset("fashion-mnist", data_dir=args.data_dir or shared_data_dir())

    common = {"batch_size": args.batch_size, "lr": args.lr, "lr_decay": args.lr_decay, "grad_clip": args.grad_clip,
              "seed": args.seed, "hidden_size": 128}
    results = []
    if args.only in (None, "target"):
        train_size = args.train_size or len(dataset.train_images)
        test_size = args.test_size or len(dataset.test_images)
        data = (dataset.train_images[:train_size], dataset.train_labels[:train_size],
                dataset.test_images[:test_size], dataset.test_labels[:test_size])
        settings = dict(common, epochs=args.epochs, time_budget=args.time_budget)
        results.append(compare("target-lstm", "lstm", "default", data, settings, torch))
    if args.only in (None, "tutorial"):
        data = (dataset.train_images[:5000], dataset.train_labels[:5000],
                dataset.test_images[:1000], dataset.test_labels[:1000])
        settings = dict(common, epochs=10, time_budget=float("inf"), lr=1e-3, lr_decay=1.0)
        results.append(compare("tutorial-tanh", "rnn", "default", data, settings, torch))
        results.append(compare("tutorial-relu", "rnn_relu", "identity", data, settings, torch))
    print_table(results)

    report = {"benchmark": "fashion_mnist", "rnnlab_version": rnnlab.__version__, "numpy": np.__version__,
              "torch": None if torch is None else torch.__version__,
              "torch_threads": None if torch is None else torch.get_num_threads(), "blas": blas,
              "machine": platform.machine(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
              "results": results}
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    for result in results:  # JSON has no infinity: "no time limit" is null
        if result["settings"]["time_budget"] == float("inf"):
            result["settings"]["time_budget"] = None
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
