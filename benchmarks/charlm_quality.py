"""Quality at equal wall-clock time: rnnlab's char-LSTM against the same model in PyTorch.

Both train the same configuration -- Embedding -> 2-layer LSTM (hidden 512) -> Linear, batch 32 x seq 64,
Adam 2e-3, global-norm clip 5 -- from the same initial weights (rnnlab's seeded init, copied into PyTorch by
parameter name), on the same batches of the same split of ``shakespeare.txt``, for the same wall-clock
budget. Then both are scored on the same validation characters. Printed: a table of steps, speed and
validation bits per character at the budget, and PyTorch's at rnnlab's step count (same number of steps).

Targets: rnnlab within 0.05 bpc of PyTorch at the same budget (5 minutes), and no worse at the same number
of steps. PyTorch runs with as many threads as NumPy's BLAS uses; the BLAS kernel is recorded.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/charlm_quality.py --budget 300
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/charlm_quality.py --budget 20 --eval-chars 5000

Evaluation time is not counted in the budget. Results also go to ``benchmarks/results/charlm_quality.json``.
"""
from __future__ import annotations

import argparse
import json
import math
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
from rnnlab.data import BatchStreams, encode_corpus, split_ids  # noqa: E402
from rnnlab.models import CharRNN  # noqa: E402
from rnnlab.training.charlm import evaluate  # noqa: E402

LN2 = math.log(2.0)
EVAL_STREAMS, EVAL_SEQ_LEN = 64, 128  # the evaluation layout of rnnlab.training.charlm, used for both


def shared_text(name: str) -> Path:
    folder = Path(os.environ.get("RNNLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return folder / "text" / name


# ---------------------------------------------------------------------------------------------------
# the two trainers: the same loop, step for step
# ---------------------------------------------------------------------------------------------------

def train_rnnlab(model, streams, args, on_step=None):
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    criterion = nn.CrossEntropyLoss()
    params = list(model.parameters())
    losses, state, step, train_time = [], None, 0, 0.0
    while train_time < args.budget and (args.max_steps is None or step < args.max_steps):
        started = time.perf_counter()
        position = step % len(streams)
        if position == 0:
            state = None
        x, y = streams.batch(position)
        logits, state = model(x, state)
        loss = criterion(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        optimizer.zero_grad()
        model.backward(criterion.backward().reshape(logits.shape))
        optim.clip_grad_norm_(params, args.clip)
        optimizer.step()
        train_time += time.perf_counter() - started
        step += 1
        losses.append(float(loss))
        if on_step:
            on_step(step, train_time, losses[-1])
    return {"steps": step, "train_seconds": train_time, "losses": losses}


def torch_model(torch, model):
    """Embedding -> LSTM -> Linear in PyTorch with rnnlab's weights, copied by name."""

    class TorchCharLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(model.vocab_size, model.embedding_size)
            self.rnn = torch.nn.LSTM(model.embedding_size, model.hidden_size, model.num_layers)
            self.decoder = torch.nn.Linear(model.hidden_size, model.vocab_size)

        def forward(self, ids, state=None):
            output, state = self.rnn(self.embedding(ids), state)
            return self.decoder(output), state

    twin = TorchCharLSTM()
    twin.load_state_dict({name: torch.from_numpy(value.copy()) for name, value in model.state_dict().items()})
    return twin


def train_torch(torch, twin, streams, args, stop_at_steps=None, at_step=None):
    optimizer = torch.optim.Adam(twin.parameters(), lr=args.lr)
    criterion = torch.nn.CrossEntropyLoss()
    losses, state, step, train_time = [], None, 0, 0.0
    while train_time < args.budget and (args.max_steps is None or step < args.max_steps):
        started = time.perf_counter()
        position = step % len(streams)
        if position == 0:
            state = None
        x, y = streams.batch(position)
        logits, state = twin(torch.from_numpy(x), state)
        state = tuple(s.detach() for s in state)  # truncated BPTT: the state carries, its gradient does not
        loss = criterion(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), args.clip)
        optimizer.step()
        train_time += time.perf_counter() - started
        step += 1
        losses.append(loss.item())
        if at_step is not None and step == stop_at_steps:
            at_step(step)
    return {"steps": step, "train_seconds": train_time, "losses": losses}


def evaluate_torch(torch, twin, ids):
    """rnnlab.training.charlm.evaluate's layout and formula, in PyTorch."""
    predictions = len(ids) - 1
    streams = max(1, min(EVAL_STREAMS, predictions // EVAL_SEQ_LEN))
    per_stream = predictions // streams
    used = streams * per_stream
    inputs = np.ascontiguousarray(ids[:used].reshape(streams, per_stream).T.astype(np.int64))
    targets = np.ascontiguousarray(ids[1:used + 1].reshape(streams, per_stream).T.astype(np.int64))
    total, state = 0.0, None
    twin.eval()
    with torch.no_grad():
        for start in range(0, per_stream, EVAL_SEQ_LEN):
            logits, state = twin(torch.from_numpy(inputs[start:start + EVAL_SEQ_LEN]), state)
            log_probs = torch.log_softmax(logits.double(), dim=-1)
            picked = log_probs.gather(-1, torch.from_numpy(targets[start:start + EVAL_SEQ_LEN])[..., None])
            total -= float(picked.sum())
    twin.train()
    return total / used


def table_cell(value) -> str:
    if value is None:
        return f"{'n/a':>12s}"
    if isinstance(value, int):
        return f"{value:12,d}"
    return f"{value:12,.0f}" if abs(value) >= 100 else f"{value:12.4f}"


# ---------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default=str(shared_text("shakespeare.txt")),
                        help="text file (default: the shared shakespeare.txt)")
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds for each (default: 300)")
    parser.add_argument("--max-steps", type=int, default=None, help="also stop each at this many steps")
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--embedding-size", type=int, default=None, help="(default: CharRNN's, min(hidden, 128))")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--clip", type=float, default=5.0, help="global gradient-norm clip (default: 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-chars", type=int, default=100_000,
                        help="validation characters scored (default: 100,000; the split has ~235,000)")
    parser.add_argument("--json", default=str(REPO_ROOT / "benchmarks" / "results" / "charlm_quality.json"),
                        help="where to write the results")
    args = parser.parse_args(argv)

    import torch

    blas = blas_info()
    threads = int(blas.get("threads") or os.cpu_count() or 1)
    torch.set_num_threads(threads)
    ids, vocab = encode_corpus(args.text)
    train_ids, val_ids, _ = split_ids(ids)
    val_ids = val_ids[:args.eval_chars + 1]
    streams = BatchStreams(train_ids, args.batch_size, args.seq_len)
    print(f"{args.text}: {len(ids):,} characters, vocabulary {len(vocab)}; {len(streams)} batches per epoch; "
          f"budget {args.budget:g} s each; BLAS {blas.get('library')} {blas.get('version', '')} "
          f"kernel {blas.get('kernel')} x{threads} threads; torch {torch.__version__} x{torch.get_num_threads()}",
          flush=True)

    rnnlab.manual_seed(args.seed)
    model = CharRNN(vocab, hidden_size=args.hidden_size, num_layers=args.num_layers, cell="lstm",
                    embedding_size=args.embedding_size)
    twin = torch_model(torch, model)  # copied before rnnlab trains: the same starting point

    def report(name):
        def on_step(step, seconds, loss):
            if step % 50 == 0:
                print(f"  {name} step {step:5d}  loss {loss:.4f}  {seconds:6.1f} s", flush=True)
        return on_step

    print("rnnlab training ...", flush=True)
    ours = train_rnnlab(model, streams, args, on_step=report("rnnlab"))
    ours["val_loss"] = evaluate(model, val_ids, batch_size=EVAL_STREAMS, seq_len=EVAL_SEQ_LEN)[0]

    print("PyTorch training ...", flush=True)
    theirs_at_our_steps = {}

    def at_our_steps(step):
        theirs_at_our_steps["val_loss"] = evaluate_torch(torch, twin, val_ids)

    theirs = train_torch(torch, twin, streams, args, stop_at_steps=ours["steps"], at_step=at_our_steps)
    theirs["val_loss"] = evaluate_torch(torch, twin, val_ids)
    if "val_loss" not in theirs_at_our_steps:  # PyTorch made fewer steps than rnnlab in the budget
        theirs_at_our_steps["val_loss"] = None

    def bpc(loss):
        return None if loss is None else loss / LN2

    gap_at_budget = bpc(ours["val_loss"]) - bpc(theirs["val_loss"])
    gap_at_steps = (None if theirs_at_our_steps["val_loss"] is None
                    else bpc(ours["val_loss"]) - bpc(theirs_at_our_steps["val_loss"]))
    chars_per_step = args.batch_size * args.seq_len
    rows = [("steps in budget", ours["steps"], theirs["steps"]),
            ("characters / s", ours["steps"] * chars_per_step / ours["train_seconds"],
             theirs["steps"] * chars_per_step / theirs["train_seconds"]),
            ("first-step loss", ours["losses"][0], theirs["losses"][0]),
            ("val bpc at budget", bpc(ours["val_loss"]), bpc(theirs["val_loss"])),
            (f"val bpc at step {ours['steps']}", bpc(ours["val_loss"]), bpc(theirs_at_our_steps["val_loss"]))]
    print(f"\n| {'':28s} | {'rnnlab':>12s} | {'PyTorch':>12s} |\n|{'-' * 30}|{'-' * 14}|{'-' * 14}|")
    for label, a, b in rows:
        print(f"| {label:28s} | {table_cell(a)} | {table_cell(b)} |")
    within = gap_at_budget <= 0.05
    no_worse = gap_at_steps is None or gap_at_steps <= 0.01  # 0.01: float32 rounding drifts apart over steps
    print(f"\nat the same budget: rnnlab - PyTorch = {gap_at_budget:+.4f} bpc "
          f"({'within' if within else 'NOT within'} 0.05)")
    verdict = "no worse" if no_worse else "WORSE"
    print("at the same steps:  " + ("PyTorch made fewer steps; not compared" if gap_at_steps is None else
                                   f"rnnlab - PyTorch = {gap_at_steps:+.4f} bpc ({verdict})"))

    results = {
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "text": {"path": str(args.text), "characters": int(len(ids)), "vocabulary": len(vocab),
                 "val_characters_scored": int(len(val_ids) - 1)},
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "numpy": np.__version__,
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "blas": blas,
                    "cpu_count": os.cpu_count(), "openblas_env": {k: v for k, v in os.environ.items()
                                                                  if k.startswith("OPENBLAS")}},
        "rnnlab": {"steps": ours["steps"], "train_seconds": ours["train_seconds"], "val_loss": ours["val_loss"],
                   "val_bpc": bpc(ours["val_loss"]), "first_losses": ours["losses"][:5],
                   "last_loss": ours["losses"][-1]},
        "pytorch": {"steps": theirs["steps"], "train_seconds": theirs["train_seconds"],
                    "val_loss": theirs["val_loss"], "val_bpc": bpc(theirs["val_loss"]),
                    "val_bpc_at_rnnlab_steps": bpc(theirs_at_our_steps["val_loss"]),
                    "first_losses": theirs["losses"][:5], "last_loss": theirs["losses"][-1]},
        "gap_bpc_at_budget": gap_at_budget, "gap_bpc_at_same_steps": gap_at_steps,
        "within_0.05_at_budget": within, "no_worse_at_same_steps": no_worse,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(temporary, out)
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
