"""rnnlab against PyTorch (and min-char-rnn) on this CPU: training and sampling throughput, peak memory,
FLOP efficiency. One command runs the whole comparison, prints a table and writes JSON::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/speed.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/speed.py --quick   # ~1 minute

Method (see benchmarks/README.md):
- every ratio is rnnlab / peer from ONE process run, the two alternated round by round (medians of
  ``--rounds``), PyTorch with ``torch.set_num_threads`` = NumPy's BLAS threads;
- training: char-LM Embedding -> recurrent stack -> Linear, batch 32 x 64 steps, vocabulary 65 (the
  Shakespeare text when found, else Zipf-distributed ids), mean cross-entropy, backward, global-norm
  clip 5, Adam; the state carried between batches (truncated BPTT). Both sides: train mode;
- plain layers: the same char-LSTMs written with the layers as a PyTorch user writes them
  (``Embedding`` -> ``LSTM`` -> ``Linear`` -> ``CrossEntropyLoss``, each backward called by hand, ``Adam``),
  against the same PyTorch model: the speed may not live only in ``CharRNN``;
- classifier: ``SequenceClassifier`` LSTM 1 x 128 on Fashion-MNIST-shaped input (batch 64, 28 rows of 28
  features, 10 classes, the last state pooled), mean cross-entropy, clip 5, Adam, against
  ``torch.nn.LSTM(batch_first=True)`` + ``Linear`` on ``out[:, -1]``;
- seq2seq: issue 12's ``Seq2Seq`` as ``rnnlab seq2seq train`` builds it by default (bidirectional LSTM 128
  encoder bridged to an LSTM 128 decoder, general attention, embeddings 64, float32) on the addition task
  ("123+45" -> "168"), batch 128 bucketed by source length, teacher forcing, mean cross-entropy over the
  targets (``<pad>`` ignored), clip 5, Adam 3e-3; against its PyTorch twin (``torch_seq2seq.py``: packed
  encoder, the same weights, the same batches). Before timing, the losses of two training steps of both
  from the same weights must agree to 1e-4, so the row compares the same work;
- min-char-rnn: Karpathy's per-step NumPy code reimplemented as written (one-hot inputs, vanilla RNN
  100, seq 25, batch 1, Adagrad 0.1, element clip 5); rnnlab runs the same model (CharRNN 'rnn' 1 x 100,
  embedding 100 in place of the one-hot product) with Adagrad and clip_grad_value_;
- sampling: per-character generation (model step, softmax, one draw per stream), 1 and 64 streams;
- peak memory: each (configuration, framework) in a fresh subprocess; resident memory sampled every
  millisecond during 3 training steps, minus the resident memory just before the first step (model
  built, data ready, optimizer state not yet allocated: both frameworks allocate it lazily);
- FLOPs: the model's matrix-product FLOPs per training step (forward 2*rows*in*out per product,
  backward twice that) divided by the step time and by the best 2048^3 float32 matmul rate of NumPy
  measured in the same run (seq2seq: on each batch's padded shapes, averaged over the timed batches).

``--rows seq2seq`` (or any comma-separated choice of the row groups) runs only those rows (and their
memory probes); give ``--json`` elsewhere then, so results/speed.json keeps the full run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))

from rnnlab.bench import (SEQ2SEQ, SUITE, BenchConfig, blas_info, char_batches, cpu_name,  # noqa: E402
                          interleaved_medians, kernels_in_use, matmul_gflops, rnnlab_model, rnnlab_sampler,
                          rnnlab_seq2seq_trainer, rnnlab_trainer, seq2seq_setup, torch_available, torch_sampler,
                          torch_trainer, training_workload)

STEPS_PER_ROUND = {"LSTM 1x128": 10, "LSTM 2x512": 2, "GRU 2x256": 4, "RNN tanh 1x100": 12, SEQ2SEQ["name"]: 10}
ROW_GROUPS = ("charrnn", "plain", "classifier", "seq2seq", "minchar", "sampling")
SAMPLE_CHARS = {"LSTM 1x128": 400, "LSTM 2x512": 100}
MINCHAR = BenchConfig("min-char-rnn", "rnn", 100, 1, batch_size=1, seq_len=25, embedding_size=100)


# ------------------------------------------------------------------------------------------------
# data and machine
# ------------------------------------------------------------------------------------------------
def text_ids(vocab_size: int = 65):
    """The Shakespeare text as ids of its 64 most frequent characters (+1 for the rest), or None."""
    root = Path(os.environ.get("RNNLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    path = root / "text" / "shakespeare.txt"
    if not path.is_file():
        return None
    data = np.frombuffer(path.read_bytes()[:2_000_000], dtype=np.uint8)
    counts = np.bincount(data, minlength=256)
    ranked = np.argsort(-counts, kind="stable")
    table = np.full(256, vocab_size - 1, dtype=np.intp)
    table[ranked[: vocab_size - 1]] = np.arange(vocab_size - 1)
    return table[data]


def torch_matmul_gflops(size: int = 2048, seconds: float = 1.0) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size ** 3 / best / 1e9


def training_flops(config: BenchConfig) -> float:
    """Matrix-product FLOPs of one training step (forward + backward = 3x forward)."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[config.cell] * config.hidden_size
    rows = config.chars_per_step
    forward = 0.0
    for layer in range(config.num_layers):
        inputs = config.embedding if layer == 0 else config.hidden_size
        forward += 2.0 * rows * (inputs + config.hidden_size) * gates
    forward += 2.0 * rows * config.hidden_size * config.vocab_size  # decoder
    return 3.0 * forward


# ------------------------------------------------------------------------------------------------
# min-char-rnn, as Karpathy wrote it (https://gist.github.com/karpathy/d4dee566867f8291f086)
# ------------------------------------------------------------------------------------------------
def minchar_trainer(vocab_size: int, hidden_size: int = 100, seq_length: int = 25, learning_rate: float = 1e-1,
                    seed: int = 0):
    rng = np.random.default_rng(seed)
    Wxh = rng.standard_normal((hidden_size, vocab_size)) * 0.01
    Whh = rng.standard_normal((hidden_size, hidden_size)) * 0.01
    Why = rng.standard_normal((vocab_size, hidden_size)) * 0.01
    bh, by = np.zeros((hidden_size, 1)), np.zeros((vocab_size, 1))
    mWxh, mWhh, mWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    mbh, mby = np.zeros_like(bh), np.zeros_like(by)
    carried = {"hprev": np.zeros((hidden_size, 1))}

    def lossFun(inputs, targets, hprev):
        xs, hs, ys, ps = {}, {}, {}, {}
        hs[-1] = np.copy(hprev)
        loss = 0
        for t in range(len(inputs)):
            xs[t] = np.zeros((vocab_size, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
            ys[t] = np.dot(Why, hs[t]) + by
            ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))
            loss += -np.log(ps[t][targets[t], 0])
        dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
        dbh, dby = np.zeros_like(bh), np.zeros_like(by)
        dhnext = np.zeros_like(hs[0])
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1
            dWhy += np.dot(dy, hs[t].T)
            dby += dy
            dh = np.dot(Why.T, dy) + dhnext
            dhraw = (1 - hs[t] * hs[t]) * dh
            dbh += dhraw
            dWxh += np.dot(dhraw, xs[t].T)
            dWhh += np.dot(dhraw, hs[t - 1].T)
            dhnext = np.dot(Whh.T, dhraw)
        for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
            np.clip(dparam, -5, 5, out=dparam)
        return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]

    def step(x, y):
        loss, dWxh, dWhh, dWhy, dbh, dby, carried["hprev"] = lossFun(list(x[:, 0]), list(y[:, 0]),
                                                                      carried["hprev"])
        for param, dparam, mem in zip([Wxh, Whh, Why, bh, by], [dWxh, dWhh, dWhy, dbh, dby],
                                      [mWxh, mWhh, mWhy, mbh, mby]):
            mem += dparam * dparam
            param += -learning_rate * dparam / np.sqrt(mem + 1e-8)
        return loss

    return step


def rnnlab_minchar_trainer(config: BenchConfig, learning_rate: float = 1e-1):
    """rnnlab's CharRNN at min-char-rnn's setting: Adagrad, element-wise clip 5."""
    from rnnlab import nn, optim

    model = rnnlab_model(config)
    model.train()
    params = list(model.parameters())
    optimizer = optim.Adagrad(params, lr=learning_rate)
    criterion = nn.CrossEntropyLoss(reduction="sum")  # min-char-rnn sums the loss over the sequence
    carried = {"state": None}

    def step(x, y):
        logits, state = model(x, carried["state"])
        loss = criterion(logits.reshape(-1, config.vocab_size), y.reshape(-1))
        model.zero_grad()
        model.backward(criterion.backward().reshape(logits.shape))
        optim.clip_grad_value_(params, 5.0)
        optimizer.step()
        carried["state"] = state
        return float(loss)

    return step


# ------------------------------------------------------------------------------------------------
# the plain layers, as a PyTorch user writes the model; the row-wise image classifier
# ------------------------------------------------------------------------------------------------
PLAIN = [SUITE[0], SUITE[1]]  # LSTM 1x128, LSTM 2x512
CLASSIFIER = {"name": "classifier LSTM 1x128", "batch": 64, "steps": 28, "features": 28, "classes": 10,
              "hidden": 128}


def rnnlab_plain_trainer(config: BenchConfig, seed: int = 0, grad_clip: float = 5.0, lr: float = 2e-3):
    """Embedding -> LSTM -> Linear -> CrossEntropyLoss -> Adam, each layer's backward called in turn."""
    import rnnlab
    from rnnlab import nn, optim

    rnnlab.manual_seed(seed)
    embedding = nn.Embedding(config.vocab_size, config.embedding)
    rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[config.cell](config.embedding, config.hidden_size,
                                                                        config.num_layers)
    decoder = nn.Linear(config.hidden_size, config.vocab_size)
    criterion = nn.CrossEntropyLoss()
    layers = [embedding, rnn, decoder]
    params = [p for layer in layers for p in layer.parameters()]
    optimizer = optim.Adam(params, lr=lr)
    carried = {"state": None}

    def step(x, y):
        output, state = rnn(embedding(x), carried["state"])
        logits = decoder(output)
        loss = criterion(logits.reshape(-1, config.vocab_size), y.reshape(-1))
        for layer in layers:
            layer.zero_grad()
        grad_output, _ = rnn.backward(decoder.backward(criterion.backward().reshape(logits.shape)))
        embedding.backward(grad_output)
        optim.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        carried["state"] = state
        return float(loss)

    return step


def image_batches(count: int, seed: int = 0):
    """``count`` (images (N, 28, 28) float32 in [0, 1], labels (N,)) pairs of Fashion-MNIST's shape."""
    rng = np.random.default_rng(seed)
    shape = (CLASSIFIER["batch"], CLASSIFIER["steps"], CLASSIFIER["features"])
    return [(rng.random(shape, dtype=np.float32), rng.integers(0, CLASSIFIER["classes"], CLASSIFIER["batch"]))
            for _ in range(count)]


def rnnlab_classifier_trainer(seed: int = 0, grad_clip: float = 5.0, lr: float = 1e-3):
    import rnnlab
    from rnnlab import nn, optim
    from rnnlab.models import SequenceClassifier

    rnnlab.manual_seed(seed)
    model = SequenceClassifier(CLASSIFIER["features"], CLASSIFIER["classes"], hidden_size=CLASSIFIER["hidden"])
    model.train()
    params = list(model.parameters())
    optimizer = optim.Adam(params, lr=lr)
    criterion = nn.CrossEntropyLoss()

    def step(images, labels):
        loss = criterion(model(images), labels)
        model.zero_grad()
        model.backward(criterion.backward())
        optim.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        return float(loss)

    return step


def torch_classifier_trainer(seed: int = 0, grad_clip: float = 5.0, lr: float = 1e-3):
    import torch

    torch.manual_seed(seed)
    rnn = torch.nn.LSTM(CLASSIFIER["features"], CLASSIFIER["hidden"], batch_first=True)
    classifier = torch.nn.Linear(CLASSIFIER["hidden"], CLASSIFIER["classes"])
    params = [*rnn.parameters(), *classifier.parameters()]
    optimizer = torch.optim.Adam(params, lr=lr)

    def step(images, labels):
        images, labels = torch.from_numpy(images), torch.from_numpy(np.asarray(labels, dtype=np.int64))
        optimizer.zero_grad(set_to_none=True)
        output, _ = rnn(images)
        loss = torch.nn.functional.cross_entropy(classifier(output[:, -1]), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        return loss.item()

    return step


def classifier_flops() -> float:
    """Matrix-product FLOPs of one classifier step (forward + backward = 3x forward)."""
    rows = CLASSIFIER["batch"] * CLASSIFIER["steps"]
    gates = 4 * CLASSIFIER["hidden"]
    forward = 2.0 * rows * (CLASSIFIER["features"] + CLASSIFIER["hidden"]) * gates
    forward += 2.0 * CLASSIFIER["batch"] * CLASSIFIER["hidden"] * CLASSIFIER["classes"]
    return 3.0 * forward


# ------------------------------------------------------------------------------------------------
# the seq2seq model (rnnlab.bench.SEQ2SEQ) and its PyTorch twin (torch_seq2seq.py)
# ------------------------------------------------------------------------------------------------
def seq2seq_trainers(count: int, settings: dict = SEQ2SEQ, sides=("rnnlab", "torch")):
    """``(model, trainers, batches)``: side -> ``step(batch) -> loss``, each from the model's initial weights,
    and ``count`` batches (:func:`rnnlab.bench.seq2seq_setup`)."""
    model, batches = seq2seq_setup(count, settings)
    trainers = {}
    if "torch" in sides:
        from torch_seq2seq import TorchSeq2SeqTrainer

        trainers["torch"] = TorchSeq2SeqTrainer(model, lr=settings["lr"], grad_clip=settings["grad_clip"])
    if "rnnlab" in sides:  # after the twin's copy of the weights: rnnlab trains this model in place
        trainers["rnnlab"] = rnnlab_seq2seq_trainer(model, lr=settings["lr"], grad_clip=settings["grad_clip"])
    return model, trainers, batches


def seq2seq_flops(model, batches) -> float:
    """Matrix-product FLOPs of one seq2seq training step (forward + backward = 3x forward), on each batch's
    padded shapes (source ``S x N``, target ``T x N``), averaged over ``batches``: the encoder's ``D``
    directions and the decoder (input and recurrent products per layer), the bridges, the attention (the
    score's products, ``scores = Q K^T`` and ``context = weights V``), ``combine`` and the output projection."""
    H, E, L, V = model.hidden_size, model.embedding_size, model.num_layers, model.target_vocab_size
    D = 2 if model.bidirectional else 1
    gates = {"lstm": 4, "gru": 3}.get(model.cell, 1) * H
    total = 0.0
    for batch in batches:
        (S, N), T = batch.source.shape, batch.target_input.shape[0]
        forward = 0.0
        for layer in range(L):
            forward += D * 2.0 * S * N * ((E if layer == 0 else D * H) + H) * gates
            forward += 2.0 * T * N * ((E if layer == 0 else H) + H) * gates
        if model.bidirectional:
            forward += (2 if model.cell == "lstm" else 1) * 2.0 * L * N * D * H * H
        if model.attention_score is not None:
            K = D * H
            if model.attention_score == "general":
                forward += 2.0 * T * N * H * K
            elif model.attention_score == "additive":
                A = model.attention_size
                forward += 2.0 * T * N * H * A + 2.0 * S * N * K * A + 2.0 * T * S * N * A
            forward += 2 * 2.0 * N * T * S * K + 2.0 * T * N * (K + H) * H
        forward += 2.0 * T * N * H * V
        total += 3.0 * forward
    return total / len(batches)


def check_seq2seq_losses(settings: dict = SEQ2SEQ, steps: int = 2, tolerance: float = 1e-4) -> float:
    """The largest difference between rnnlab's and PyTorch's losses over the first ``steps`` training steps
    from the same weights on the same batches; a RuntimeError when above ``tolerance`` (not the same work)."""
    from torch_seq2seq import first_losses

    losses = first_losses(settings, steps)
    print(f"seq2seq loss check, {steps} steps from the same weights: rnnlab "
          f"{', '.join(f'{v:.7f}' for v in losses['rnnlab'])}; PyTorch "
          f"{', '.join(f'{v:.7f}' for v in losses['torch'])} (largest difference {losses['max_abs_difference']:.1e})")
    if not losses["max_abs_difference"] <= tolerance:
        raise RuntimeError(f"the seq2seq row would not compare the same work: losses differ by "
                           f"{losses['max_abs_difference']:.3g} > {tolerance}: {losses}")
    return losses["max_abs_difference"]


# ------------------------------------------------------------------------------------------------
# peak memory (in a subprocess per measurement)
# ------------------------------------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_probe(config_name: str, side: str) -> dict:
    """Run in a fresh process: peak resident-memory increase over 3 training steps (and, for rnnlab,
    tracemalloc's peak of NumPy allocations)."""
    if side == "torch":
        import torch

        torch.set_num_threads(int(blas_info()["threads"] or 1))
    if config_name == CLASSIFIER["name"]:
        make_trainer = torch_classifier_trainer if side == "torch" else rnnlab_classifier_trainer
        make_trainer()(*image_batches(1, seed=1)[0])  # one-time costs first (see below)
        trainer, batches = make_trainer(), image_batches(3)
    elif config_name == SEQ2SEQ["name"]:
        _, tiny, (batch,) = seq2seq_trainers(1, dict(SEQ2SEQ, hidden=8, batch=4), sides=(side,))
        tiny[side](batch)  # one-time costs first (see below)
        _, trainers, batches = seq2seq_trainers(3, sides=(side,))
        trainer, batches = trainers[side], [(batch,) for batch in batches]
    else:
        plain = config_name.startswith("plain ")
        config = next(c for c in SUITE if c.name == config_name.removeprefix("plain "))
        make_trainer = torch_trainer if side == "torch" else (rnnlab_plain_trainer if plain else rnnlab_trainer)
        # One step of a tiny model of the same cell first: one-time costs (numba's compiled kernels,
        # PyTorch's lazy initialisation) are not the training step's memory.
        tiny = BenchConfig("tiny", config.cell, 8, config.num_layers, batch_size=2, seq_len=3)
        make_trainer(tiny)(*char_batches(tiny, 1)[0])
        trainer = make_trainer(config)
        batches = char_batches(config, 3)
    import tracemalloc

    peak = {"rss": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], _rss_bytes())
            time.sleep(0.001)

    baseline = _rss_bytes()
    if side == "rnnlab":
        tracemalloc.start()
    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    for step_inputs in batches:
        trainer(*step_inputs)
    stop.set()
    watcher.join()
    peak["rss"] = max(peak["rss"], _rss_bytes())
    result = {"rss_peak_increase_mb": (peak["rss"] - baseline) / 2 ** 20}
    if side == "rnnlab":
        result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    return result


def measure_memory(name: str, with_torch: bool) -> dict:
    """``name``: a SUITE configuration, ``"plain <configuration>"``, the classifier's or the seq2seq's name."""
    results = {}
    for side in (["rnnlab", "torch"] if with_torch else ["rnnlab"]):
        completed = subprocess.run([sys.executable, __file__, "--memory-probe", name, side],
                                   capture_output=True, text=True, timeout=600)
        if completed.returncode != 0:
            raise RuntimeError(f"memory probe {name} {side} failed:\n{completed.stderr}")
        results[side] = json.loads(completed.stdout.strip().splitlines()[-1])
    return results


# ------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------
def training_row(work: str, rates: dict, flops: float, units_per_step: int, peak: float, with_torch: bool,
                 **extra) -> dict:
    """A table row for a training workload: rates in units/s, FLOPs per step, shares of the matmul peak."""
    row = {"work": work, **extra, "rnnlab": rates["rnnlab"], "peer": rates.get("torch"), "peer_name": "PyTorch",
           "ratio": rates["rnnlab"] / rates["torch"] if with_torch else None, "flops_per_step": flops}
    for side in (["rnnlab", "torch"] if with_torch else ["rnnlab"]):
        row[f"{side}_fraction_of_matmul_peak"] = flops * rates[side] / units_per_step / 1e9 / peak
    note = f"{flops / 1e9:.1f} GFLOP/step, {100 * row['rnnlab_fraction_of_matmul_peak']:.0f}% of matmul peak"
    if with_torch:
        note += f" (PyTorch {100 * row['torch_fraction_of_matmul_peak']:.0f}%)"
    row["note"] = note
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternated repetitions per measurement (default 5)")
    parser.add_argument("--quick", action="store_true", help="2 rounds, no memory probes: a check that it runs")
    parser.add_argument("--no-torch", action="store_true", help="rnnlab (and min-char-rnn) only")
    parser.add_argument("--rows", default=",".join(ROW_GROUPS),
                        help=f"comma-separated row groups to run, of {', '.join(ROW_GROUPS)} (default: all)")
    parser.add_argument("--json", default=str(REPO_ROOT / "benchmarks" / "results" / "speed.json"),
                        help="where to write the results (default benchmarks/results/speed.json)")
    parser.add_argument("--memory-probe", nargs=2, metavar=("CONFIG", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(json.dumps(memory_probe(*args.memory_probe)))
        return 0

    groups = [g.strip() for g in args.rows.split(",") if g.strip()]
    unknown = [g for g in groups if g not in ROW_GROUPS]
    if unknown or not groups:
        parser.error(f"--rows: unknown group {unknown[0] if unknown else args.rows!r}; "
                     f"choose from {', '.join(ROW_GROUPS)}")
    rounds = 2 if args.quick else args.rounds
    with_torch = not args.no_torch and torch_available()
    threads = int(blas_info()["threads"] or 1)
    machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
               "numpy": np.__version__, "blas": blas_info(), "rnnlab_kernels": kernels_in_use(),
               "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")},
               "numpy_matmul_2048_gflops": matmul_gflops(2048, seconds=2.0)}
    if with_torch:
        import torch

        torch.set_num_threads(threads)
        machine.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                       torch_matmul_2048_gflops=torch_matmul_gflops())
    peak = machine["numpy_matmul_2048_gflops"]
    print(f"{machine['cpu']}, {machine['cores']} cores; NumPy {np.__version__} BLAS "
          f"{machine['blas']['library']} {machine['blas']['version']} ({machine['blas']['kernel']} kernel, "
          f"{threads} threads); rnnlab kernels: {machine['rnnlab_kernels']}")
    print(f"float32 2048^3 matmul: NumPy {peak:.0f} GFLOP/s"
          + (f", PyTorch {machine['torch_matmul_2048_gflops']:.0f} GFLOP/s ({machine['torch_threads']} threads)"
             if with_torch else ""))
    ids = text_ids()
    rows = []

    def report(row):
        rows.append(row)
        ratio = f"{row['ratio']:.2f}x" if row.get("ratio") else ""
        peer = f"{row['peer']:,.0f}" if row.get("peer") else "-"
        extra = f"  {row['note']}" if row.get("note") else ""
        print(f"{row['work']:<44} {row['rnnlab']:>12,.0f} {peer:>12} {ratio:>7}{extra}", flush=True)

    print(f"\n{'work (characters per second)':<44} {'rnnlab':>12} {'peer':>12} {'ratio':>7}")
    # CharRNN, then the same char-LSTMs written with the plain layers
    for group, configs, make_trainer, label in (("charrnn", SUITE, rnnlab_trainer, ", batch 32 x 64, Adam"),
                                                ("plain", PLAIN, rnnlab_plain_trainer, " as plain layers, Adam")):
        if group not in groups:
            continue
        for config in configs:
            steps = STEPS_PER_ROUND[config.name]
            batches = char_batches(config, steps, ids)
            chars = steps * config.chars_per_step
            workloads = {"rnnlab": (training_workload(make_trainer(config), batches), chars)}
            if with_torch:
                workloads["torch"] = (training_workload(torch_trainer(config), batches), chars)
            rates = interleaved_medians(workloads, rounds=rounds)
            report(training_row(f"train {config.name}{label}", rates, training_flops(config),
                                config.chars_per_step, peak, with_torch, config=asdict(config)))

    if "classifier" in groups:
        # the row-wise image classifier (units: images per second)
        steps = 8
        batches = image_batches(steps)
        workloads = {"rnnlab": (training_workload(rnnlab_classifier_trainer(), batches), steps * CLASSIFIER["batch"])}
        if with_torch:
            workloads["torch"] = (training_workload(torch_classifier_trainer(), batches), steps * CLASSIFIER["batch"])
        rates = interleaved_medians(workloads, rounds=rounds)
        report(training_row(f"train {CLASSIFIER['name']}, batch 64 x 28 (images/s)", rates, classifier_flops(),
                            CLASSIFIER["batch"], peak, with_torch, config=dict(CLASSIFIER)))

    if "seq2seq" in groups:
        # the seq2seq model (units: pairs per second); the losses checked first (the same work on both sides)
        steps = STEPS_PER_ROUND[SEQ2SEQ["name"]]
        model, trainers, batches = seq2seq_trainers(steps, sides=("rnnlab", "torch") if with_torch else ("rnnlab",))
        check = f", loss check {check_seq2seq_losses():.0e}" if with_torch else ""
        workloads = {side: ((lambda step=step: [step(batch) for batch in batches]), steps * SEQ2SEQ["batch"])
                     for side, step in trainers.items()}
        rates = interleaved_medians(workloads, rounds=rounds)
        row = training_row(f"train {SEQ2SEQ['name']}, batch {SEQ2SEQ['batch']} (pairs/s)", rates,
                           seq2seq_flops(model, batches), SEQ2SEQ["batch"], peak, with_torch, config=dict(SEQ2SEQ))
        row["note"] += check
        report(row)

    if "minchar" in groups:
        # min-char-rnn at its own setting
        steps = 40
        batches = char_batches(MINCHAR, steps, ids)
        rates = interleaved_medians({
            "rnnlab": (training_workload(rnnlab_minchar_trainer(MINCHAR), batches), steps * MINCHAR.chars_per_step),
            "minchar": (training_workload(minchar_trainer(MINCHAR.vocab_size), batches),
                        steps * MINCHAR.chars_per_step),
        }, rounds=rounds)
        report({"work": "train RNN 1x100, seq 25, batch 1, Adagrad", "rnnlab": rates["rnnlab"],
                "peer": rates["minchar"], "peer_name": "min-char-rnn", "ratio": rates["rnnlab"] / rates["minchar"],
                "note": "peer: min-char-rnn"})
        batched = BenchConfig("min-char-rnn batch 32", "rnn", 100, 1, batch_size=32, seq_len=25, embedding_size=100)
        batches32 = char_batches(batched, 10, ids)
        rates32 = interleaved_medians({"rnnlab": (training_workload(rnnlab_minchar_trainer(batched), batches32),
                                                  10 * batched.chars_per_step)}, rounds=rounds)
        report({"work": "train RNN 1x100, seq 25, batch 32, Adagrad", "rnnlab": rates32["rnnlab"],
                "peer": rates["minchar"], "peer_name": "min-char-rnn (batch 1)",
                "ratio": rates32["rnnlab"] / rates["minchar"], "note": "peer: min-char-rnn at its batch 1"})

    if "sampling" in groups:
        # sampling
        for config in (SUITE[0], SUITE[1]):
            for streams in (1, 64):
                chars = SAMPLE_CHARS[config.name] // (4 if streams > 1 else 1)
                workloads = {"rnnlab": ((lambda run=rnnlab_sampler(config, streams), n=chars: run(n)), chars * streams)}
                if with_torch:
                    workloads["torch"] = ((lambda run=torch_sampler(config, streams), n=chars: run(n)), chars * streams)
                rates = interleaved_medians(workloads, rounds=rounds)
                report({"work": f"sample {config.name}, {streams} stream{'s' if streams > 1 else ''}",
                        "config": asdict(config), "streams": streams, "rnnlab": rates["rnnlab"],
                        "peer": rates.get("torch"), "peer_name": "PyTorch",
                        "ratio": rates["rnnlab"] / rates["torch"] if with_torch else None})

    memory = {}
    if not args.quick:
        print(f"\n{'peak memory of training (MB, RSS increase)':<44} {'rnnlab':>12} {'PyTorch':>12} {'ratio':>7}")
        names = ([c.name for c in SUITE] * ("charrnn" in groups)
                 + [f"plain {c.name}" for c in PLAIN] * ("plain" in groups)
                 + [CLASSIFIER["name"]] * ("classifier" in groups) + [SEQ2SEQ["name"]] * ("seq2seq" in groups))
        for name in names:
            memory[name] = measure_memory(name, with_torch)
            got = memory[name]
            line = f"{name:<44} {got['rnnlab']['rss_peak_increase_mb']:>12.1f}"
            if with_torch:
                line += (f" {got['torch']['rss_peak_increase_mb']:>12.1f} "
                         f"{got['rnnlab']['rss_peak_increase_mb'] / max(got['torch']['rss_peak_increase_mb'], 1e-9):>6.2f}x")
            line += f"  (rnnlab tracemalloc peak {got['rnnlab']['tracemalloc_peak_mb']:.1f} MB)"
            print(line, flush=True)

    results = {"machine": machine, "command": " ".join([Path(sys.executable).name, *sys.argv]), "rounds": rounds,
               "data": "shakespeare.txt" if ids is not None else "zipf ids", "rows": rows, "memory": memory,
               "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
