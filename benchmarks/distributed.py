"""Data-parallel training over MPI on this machine, and the scaling model for a cluster. One command::

    flock /tmp/rnnlab_bench.lock env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/distributed.py
    ... benchmarks/distributed.py --quick      # fewer steps, ~1 minute

Method:
- the step is ``rnnlab train``'s: CharRNN (LSTM 1x128, LSTM 2x512; vocabulary 65), global batch 32 x 64,
  mean cross-entropy, backward, the gradients and loss of all ranks summed by one in-place Allreduce
  (:class:`rnnlab.training.distributed.Distributed`), global-norm clip 5, Adam; each rank takes its
  contiguous 32 / P streams, state carried. Every configuration runs in fresh processes launched by
  mpiexec (also P = 1, so all pay the same), BLAS threads set through OPENBLAS/OMP_NUM_THREADS;
- three layouts: 1 rank x 2 BLAS threads, 1 rank x 1 thread, 2 ranks x 1 thread (the machine's 2 cores);
  characters/s = 32 x 64 / the median step time (rank 0's wall clock, after warm-up steps); the time
  in the Allreduce per step (rank 0's, waiting for the slower rank included), and the Allreduce of the
  same buffer alone, after a barrier (the transfer through shared memory);
- the per-rank compute time t(b) is measured at 1 thread for local batches b = 1 .. 32 and fitted as
  t(b) = t0 + k b; the cluster model puts beside it the ring allreduce of all gradients in float32,
  ``2 (P - 1) / P x bytes / bandwidth`` (10 and 100 Gbit/s; the latency term ``2 (P - 1) x alpha`` shown
  apart), giving the efficiency t / (t + allreduce) at P = 2, 8, 32, 128 nodes with a per-node batch of 32,
  and the smallest per-node batch, and so global batch, at which the allreduce takes no longer than the
  compute (efficiency >= 50%): below it adding nodes stops paying. Both for a node as fast as the core
  measured here and for one 16 times faster (a 16-core node, BLAS scaling perfectly).
The machine is shared (2 cores, other jobs): run it under the lock; figures move by some percent.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))

from rnnlab.bench import SUITE, BenchConfig, char_batches, rnnlab_model  # noqa: E402

MODELS = {config.name: config for config in SUITE if config.name in ("LSTM 1x128", "LSTM 2x512")}
STEPS = {"LSTM 1x128": 40, "LSTM 2x512": 8}       # measured steps per run (after WARMUP)
WARMUP = 2
LOCAL_BATCHES = (1, 2, 4, 8, 16, 32)
NODES = (2, 8, 32, 128)
BANDWIDTHS_GBIT = (10, 100)
# a node that computes this many times faster than the one core measured here (a 16-core node with BLAS
# scaling perfectly: the pessimistic case for scaling, since faster nodes leave the network more to hide)
NODE_SPEEDUPS = (1, 16)
# per-message latency of a ring step, for the note beside the bandwidth term: TCP on 10 Gbit Ethernet, RDMA on 100 Gbit
LATENCY_S = {10: 25e-6, 100: 3e-6}


# ------------------------------------------------------------------------------------------------
# one run: what each rank executes under mpiexec
# ------------------------------------------------------------------------------------------------
def worker(spec: dict) -> None:
    """Train ``spec['model']`` at global batch ``spec['batch']`` for WARMUP + ``spec['steps']`` steps; rank 0
    prints one JSON line: median step seconds, Allreduce seconds per step, gradient bytes."""
    from rnnlab import nn, optim
    from rnnlab.training import distributed
    from rnnlab.training.loop import GradientStep

    dist = distributed.context()
    config = BenchConfig(**{**MODELS[spec["model"]].__dict__, "batch_size": spec["batch"]})
    dist.check_divides(config.batch_size)
    model = rnnlab_model(config)
    dist.broadcast_parameters(model)
    model.train()
    optimizer = optim.Adam(list(model.parameters()), lr=2e-3)
    criterion = nn.CrossEntropyLoss()
    step = GradientStep(model, optimizer, 5.0, 5, 2e-3, REPO_ROOT, print, dist)
    batches = char_batches(config, WARMUP + spec["steps"])
    state, times, allreduce = None, [], []
    for index, (x, y) in enumerate(batches):
        x, y = dist.shard((x, y))
        before, reduced = time.perf_counter(), dist.allreduce_seconds
        logits, new_state = model(x, state)
        loss = float(criterion(logits.reshape(-1, config.vocab_size), y.reshape(-1)))
        step(loss, lambda: model.backward(criterion.backward().reshape(logits.shape)), index + 1,
             dist.weight(x.size, config.chars_per_step))
        state = new_state
        if index >= WARMUP:
            times.append(time.perf_counter() - before)
            allreduce.append(dist.allreduce_seconds - reduced)
    parameters = sum(p.data.size for p in model.parameters())
    transfer = 0.0
    if dist.size > 1:  # the Allreduce alone, the ranks lined up first: the transfer without the waiting
        buffer = np.zeros(parameters + 1 + len(list(model.parameters())), dtype=np.float32)
        samples = []
        for _ in range(10):
            dist.comm.Barrier()
            before = time.perf_counter()
            dist.comm.Allreduce(dist.MPI.IN_PLACE, buffer, op=dist.MPI.SUM)
            samples.append(time.perf_counter() - before)
        transfer = statistics.median(samples)
    if dist.is_root:
        print(json.dumps({"step_seconds": statistics.median(times),
                          "allreduce_seconds": statistics.median(allreduce) if dist.size > 1 else 0.0,
                          "allreduce_alone_seconds": transfer,
                          "parameters": parameters, "tensors": len(list(model.parameters()))}), flush=True)


def run(model: str, ranks: int, threads: int, batch: int, steps: int) -> dict:
    from rnnlab.training.distributed import mpiexec_command

    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PMI", "OMPI_", "PMIX_"))}
    environment.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    spec = json.dumps({"model": model, "batch": batch, "steps": steps})
    done = subprocess.run([*mpiexec_command(ranks), sys.executable, __file__, "--worker", spec], env=environment,
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{model}, {ranks} ranks x {threads} threads failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# the scaling model
# ------------------------------------------------------------------------------------------------
def ring_allreduce_seconds(nbytes: float, nodes: int, gbit_per_s: float) -> float:
    """A bandwidth-bound ring allreduce: every node sends and receives 2 (P - 1) / P of the buffer."""
    return 2 * (nodes - 1) / nodes * nbytes / (gbit_per_s * 1e9 / 8)


def fit_line(batches, seconds) -> tuple[float, float]:
    """t(b) = t0 + k b by least squares."""
    k, t0 = np.polyfit(np.asarray(batches, float), np.asarray(seconds, float), 1)
    return float(t0), float(k)


def scaling(model: str, sweep: dict, parameters: int, tensors: int, seq_len: int) -> dict:
    nbytes = 4 * (parameters + 1 + tensors)   # float32 gradients, the loss, one flag per tensor
    t0, k = fit_line(list(sweep), list(sweep.values()))
    rows = []
    for gbit in BANDWIDTHS_GBIT:
        for nodes in NODES:
            reduce_s = ring_allreduce_seconds(nbytes, nodes, gbit)
            row = {"gbit_per_s": gbit, "nodes": nodes, "allreduce_ms": 1e3 * reduce_s,
                   "latency_ms": 1e3 * 2 * (nodes - 1) * LATENCY_S[gbit]}
            for speedup in NODE_SPEEDUPS:
                compute = sweep[32] / speedup
                row[f"efficiency_b32_x{speedup}"] = compute / (compute + reduce_s)
                # the smallest per-node batch whose compute is at least the allreduce (efficiency >= 50%)
                needed = max(1.0, (speedup * reduce_s - t0) / k) if k > 0 else float("inf")
                row[f"break_even_batch_x{speedup}"] = needed
                row[f"break_even_global_batch_x{speedup}"] = needed * nodes
            rows.append(row)
    return {"model": model, "gradient_bytes_float32": nbytes, "fit_t0_ms": 1e3 * t0, "fit_ms_per_stream": 1e3 * k,
            "step_ms_by_local_batch": {b: 1e3 * s for b, s in sweep.items()}, "seq_len": seq_len, "rows": rows}


# ------------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a third of the steps")
    parser.add_argument("--json", default=str(REPO_ROOT / "benchmarks" / "results" / "distributed.json"))
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    factor = 3 if args.quick else 1
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "note": "shared 2-core machine; other jobs may run beside"},
               "layouts": [], "scaling": []}
    print(f"{'model':<11} {'layout':<18} {'chars/s':>9} {'step ms':>8} {'allreduce ms':>13} {'alone ms':>9}")
    for name, config in MODELS.items():
        steps = max(3, STEPS[name] // factor)
        measured = {}
        for ranks, threads in ((1, 2), (1, 1), (2, 1)):
            figures = run(name, ranks, threads, config.batch_size, steps)
            measured[(ranks, threads)] = figures
            rate = config.chars_per_step / figures["step_seconds"]
            results["layouts"].append({"model": name, "ranks": ranks, "threads": threads, "chars_per_s": rate,
                                       **figures})
            print(f"{name:<11} {f'{ranks} rank x {threads} thread':<18} {rate:>9,.0f} "
                  f"{1e3 * figures['step_seconds']:>8.1f} {1e3 * figures['allreduce_seconds']:>13.2f} "
                  f"{1e3 * figures['allreduce_alone_seconds']:>9.2f}", flush=True)
        sweep = {b: run(name, 1, 1, b, steps)["step_seconds"] for b in LOCAL_BATCHES if b != config.batch_size}
        sweep[config.batch_size] = measured[(1, 1)]["step_seconds"]
        sweep = dict(sorted(sweep.items()))
        results["scaling"].append(scaling(name, sweep, measured[(1, 1)]["parameters"], measured[(1, 1)]["tensors"],
                                          config.seq_len))
    for model in results["scaling"]:
        print(f"\n{model['model']}: {model['gradient_bytes_float32'] / 1e6:.2f} MB of float32 gradients per "
              f"allreduce; 1 thread per node: t(b) = {model['fit_t0_ms']:.1f} ms + {model['fit_ms_per_stream']:.2f} "
              f"ms x b (b streams x {model['seq_len']} characters)")
        print("  measured t(b) ms: " + ", ".join(f"b={b}: {ms:.1f}" for b, ms in model["step_ms_by_local_batch"].items()))
        print(f"  {'Gbit/s':>6} {'nodes':>5} {'ring ms':>8} {'+latency':>8} "
              + " ".join(f"{f'eff. b=32 x{s}':>13} {f'break-even b x{s}':>16} {f'global x{s}':>10}"
                         for s in NODE_SPEEDUPS))
        for row in model["rows"]:
            print(f"  {row['gbit_per_s']:>6} {row['nodes']:>5} {row['allreduce_ms']:>8.2f} {row['latency_ms']:>8.2f} "
                  + " ".join(f"{100 * row[f'efficiency_b32_x{s}']:>12.0f}% {row[f'break_even_batch_x{s}']:>16.1f} "
                             f"{row[f'break_even_global_batch_x{s}']:>10.0f}" for s in NODE_SPEEDUPS))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
