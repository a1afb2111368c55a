"""The defaults of ``rnnlab train``, by measurement: validation bits/char after a fixed training time.

Each candidate (cell, layers x hidden, sequence length, batch, learning rate) trains for ``--budget``
seconds (default 300, the default ``rnnlab train`` budget) on each corpus -- the default corpus (Python's
standard library sources) and ``shakespeare.txt`` -- through ``rnnlab.training.charlm.train``, exactly as
``rnnlab train`` runs, with evaluations only at the end (so every candidate spends the whole budget
training) and the same validation characters for all. Printed: one table per corpus, best first.

Two clocks. ``--clock wall`` (the default, for a quiet machine) trains each candidate for ``--budget``
seconds of wall-clock time, as ``rnnlab train --time-budget`` does. ``--clock cpu`` is for a machine other
work shares: wall-clock budgets then measure the other load as much as the candidates. Each candidate
runs with one BLAS thread; a probe of 30 training steps (after 5 to warm up) measures its CPU seconds
per step, and it then trains ``budget / (CPU s per step)`` steps (``rnnlab train --steps``): the steps
one core gives it in ``--budget`` seconds, whatever else runs. That ranks candidates fairly under load;
on a quiet 2-core machine a candidate's wall-clock figure also depends on how well it uses the second
core (larger matrices gain more), which the full ``--clock wall`` sweep measures.

Incremental and resumable: each (corpus, candidate, budget) result is a JSON file under ``--results``
(default ``benchmarks/results/defaults_sweep/``); a result already there is not measured again, so an
interrupted sweep continues where it stopped, and ``--only`` / ``--corpus`` pick a subset. Each
candidate runs in its own process (fresh memory, the same start for all).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE flock /tmp/rnnlab_bench.lock \\
        .venv/bin/python benchmarks/defaults_sweep.py                              # every candidate, 300 s each
    ... benchmarks/defaults_sweep.py --budget 60 --corpus default --clock cpu --only 2x128-t64-b32-lr0.002,2x256-t64-b32-lr0.002
    ... benchmarks/defaults_sweep.py --table                                       # print what is measured

On a shared machine the figures move with the other load: compare candidates measured side by side.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))

from rnnlab import bench  # noqa: E402  (cpu_name)

LN2 = math.log(2.0)
EVAL_CHARS = 100_000  # validation characters scored at the end (the first 100,000 of the validation split)


def candidate(cell, layers, hidden, seq_len, batch, lr) -> dict:
    return {"name": f"{layers}x{hidden}-t{seq_len}-b{batch}-lr{lr:g}" + ("" if cell == "lstm" else f"-{cell}"),
            "model": cell, "num_layers": layers, "hidden_size": hidden, "seq_len": seq_len, "batch_size": batch,
            "lr": lr}


CANDIDATES = [
    candidate("lstm", 2, 256, 64, 32, 2e-3),    # the defaults before this sweep
    candidate("lstm", 2, 128, 64, 32, 2e-3),
    candidate("lstm", 2, 128, 64, 32, 4e-3),
    candidate("lstm", 2, 128, 128, 32, 3e-3),
    candidate("lstm", 2, 128, 64, 64, 4e-3),
    candidate("lstm", 1, 256, 64, 32, 3e-3),
    candidate("lstm", 2, 192, 64, 32, 3e-3),
    candidate("lstm", 3, 128, 64, 32, 3e-3),
    candidate("lstm", 2, 128, 64, 16, 3e-3),
    candidate("gru", 2, 128, 64, 32, 3e-3),
    candidate("lstm", 2, 256, 64, 32, 3e-3),
    candidate("lstm", 1, 512, 64, 32, 2e-3),
    candidate("lstm", 2, 128, 64, 32, 3e-3),
    candidate("lstm", 1, 256, 64, 32, 5e-3),
    candidate("lstm", 1, 256, 64, 32, 2e-3),
]
BY_NAME = {c["name"]: c for c in CANDIDATES}


def corpus_file(name: str) -> str | None:
    """``default`` -> None (the standard library corpus); ``shakespeare`` -> the shared file; else a path."""
    if name == "default":
        return None
    if name == "shakespeare":
        folder = Path(os.environ.get("RNNLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
        return str(folder / "text" / "shakespeare.txt")
    return name


def compiled_path() -> str:
    """Whether training ran the compiled (numba) kernels: "on", "off" or "unknown"."""
    from rnnlab import fast

    return "on" if fast.enabled() else "off"


def result_path(results: Path, corpus: str, name: str, budget: float, clock: str = "wall") -> Path:
    corpus_name = Path(corpus).stem if corpus not in ("default", "shakespeare") else corpus
    return results / f"{corpus_name}-{name}-{budget:g}s{'-cpu' if clock == 'cpu' else ''}.json"


# ---------------------------------------------------------------------------------------------------
# one measurement, in a process of its own
# ---------------------------------------------------------------------------------------------------

def cpu_seconds_per_step(config, probe_steps: int = 30, warmup_steps: int = 5) -> float:
    """CPU seconds of one training step of ``config`` (forward, loss, backward, clip, Adam: what
    ``rnnlab train`` does), measured over ``probe_steps`` steps on real batches after ``warmup_steps``."""
    import numpy as np

    from rnnlab import backend
    from rnnlab.data import BatchStreams
    from rnnlab.nn import CrossEntropyLoss
    from rnnlab.optim import clip_grad_norm_
    from rnnlab.training.charlm import build_model, build_optimizer, load_corpus

    corpus = load_corpus(config)
    streams = BatchStreams(corpus.train, config.batch_size, config.seq_len)
    backend.manual_seed(config.seed)
    model = build_model(config, corpus.vocab)
    optimizer = build_optimizer(config, model.parameters())
    criterion, params, hidden = CrossEntropyLoss(), list(model.parameters()), None
    model.train()
    for index in range(warmup_steps + probe_steps):
        if index == warmup_steps:
            started = time.process_time()
        x, y = (part.astype(np.intp) for part in streams.batch(index % len(streams)))
        logits, hidden = model(x, hidden)
        criterion(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        model.zero_grad()
        model.backward(criterion.backward().reshape(logits.shape))
        clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
    return (time.process_time() - started) / probe_steps


def measure_one(settings: dict, corpus: str, budget: float, seed: int, clock: str = "wall") -> dict:
    import contextlib
    import io

    from rnnlab.training.charlm import train
    from rnnlab.training.config import TrainConfig

    values = {key: settings[key] for key in ("model", "num_layers", "hidden_size", "seq_len", "batch_size", "lr")}
    values.update(text_file=corpus_file(corpus), time_budget=budget, eval_every=0, eval_chars=EVAL_CHARS,
                  sample_length=0, seed=seed)
    threads, per_step = contextlib.nullcontext(), None
    if clock == "cpu":
        from threadpoolctl import threadpool_limits

        threads = threadpool_limits(limits=1, user_api="blas")
    with threads:
        if clock == "cpu":
            per_step = cpu_seconds_per_step(TrainConfig.from_dict(values))
            values.update(time_budget=None, steps=max(1, int(budget / per_step)))
        config = TrainConfig.from_dict(values)
        log = io.StringIO()
        with tempfile.TemporaryDirectory(prefix="rnnlab-sweep-") as out:
            started = time.perf_counter()
            result = train(config, Path(out) / "run", stream=log)
            wall = time.perf_counter() - started
    steps = result.step
    val_bpc = None if result.val_loss is None else result.val_loss / LN2
    seconds = budget if clock == "wall" else steps * per_step
    return {"name": settings["name"], "settings": settings, "corpus": corpus, "budget_s": budget, "seed": seed,
            "clock": clock, "cpu_s_per_step": per_step,
            "steps": steps, "chars_per_s": steps * settings["batch_size"] * settings["seq_len"] / seconds,
            "val_bpc": val_bpc, "test_bpc": None if result.test_loss is None else result.test_loss / LN2,
            "wall_s": wall, "first_line": log.getvalue().splitlines()[0] if log.getvalue() else "",
            "compiled": compiled_path(), "cpu": bench.cpu_name(), "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


# ---------------------------------------------------------------------------------------------------
# the sweep and its table
# ---------------------------------------------------------------------------------------------------

def table(results: Path, budget: float | None = None) -> str:
    rows = []
    for path in sorted(results.glob("*.json")):
        try:
            rows.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    if budget is not None:
        rows = [r for r in rows if r.get("budget_s") == budget]
    lines = []
    for corpus, clock in sorted({(r["corpus"], r.get("clock", "wall")) for r in rows}):
        chosen = sorted((r for r in rows if r["corpus"] == corpus and r.get("clock", "wall") == clock),
                        key=lambda r: (r["budget_s"], math.inf if r["val_bpc"] is None else r["val_bpc"]))
        lines.append(f"\ncorpus: {corpus}   clock: {clock}   CPU: {chosen[0]['cpu']} ({chosen[0]['cpus']} cores)")
        lines.append("| candidate | budget (s) | steps | chars/s | val bits/char |")
        lines.append("|---|---:|---:|---:|---:|")
        for r in chosen:
            bpc = "—" if r["val_bpc"] is None else f"{r['val_bpc']:.3f}"
            lines.append(f"| {r['name']} | {r['budget_s']:g} | {r['steps']:,} | {r['chars_per_s']:,.0f} | {bpc} |")
    return "\n".join(lines) if lines else "(no results yet)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per candidate (default 300)")
    parser.add_argument("--corpus", action="append", default=None,
                        help="default, shakespeare or a text file; repeat for several (default: default and "
                             "shakespeare)")
    parser.add_argument("--only", default=None, help="comma-separated candidate names (default: all): "
                                                     + ", ".join(BY_NAME))
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: --budget seconds of wall-clock time (a quiet machine); cpu: the steps one core "
                             "gives in --budget seconds (a shared machine; see above)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "defaults_sweep")
    parser.add_argument("--table", action="store_true", help="print the table of what is measured and stop")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one measurement as JSON
    args = parser.parse_args(argv)

    if args.one is not None:
        settings, corpus = json.loads(args.one)
        print(json.dumps(measure_one(settings, corpus, args.budget, args.seed, args.clock)))
        return 0
    if args.table:
        print(table(args.results))
        return 0
    names = args.only.split(",") if args.only else list(BY_NAME)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown candidates {unknown}; known: {', '.join(BY_NAME)}")
    args.results.mkdir(parents=True, exist_ok=True)
    for corpus in args.corpus or ["default", "shakespeare"]:
        for name in names:
            target = result_path(args.results, corpus, name, args.budget, args.clock)
            if target.exists():
                print(f"{corpus} {name}: measured already ({target.name})", file=sys.stderr)
                continue
            print(f"{corpus} {name}: training {args.budget:g} s ...", file=sys.stderr, flush=True)
            command = [sys.executable, __file__, "--budget", str(args.budget), "--seed", str(args.seed),
                       "--clock", args.clock,
                       "--one", json.dumps([BY_NAME[name], corpus])]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{corpus} {name}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            record = json.loads(done.stdout.strip().splitlines()[-1])
            temporary = target.with_suffix(".tmp")
            temporary.write_text(json.dumps(record, indent=2) + "\n")
            os.replace(temporary, target)
            bpc = "—" if record["val_bpc"] is None else f"{record['val_bpc']:.3f}"
            print(f"{corpus} {name}: {record['steps']} steps, val {bpc} bits/char", file=sys.stderr, flush=True)
    print(table(args.results, args.budget))
    return 0


if __name__ == "__main__":
    sys.exit(main())
