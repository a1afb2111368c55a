"""The other recurrent patterns against their targets: seq2seq (addition, dates), tagging (spacing), PyTorch.

Tasks (each a separate ``--task``, so the pieces can run one at a time; each writes
``benchmarks/results/patterns-<task>.json``):

- ``addition``: Keras' ``addition_rnn`` data ("123+45" -> "168", numbers of 1 to 3 digits), 50,000
  training pairs, 1,000 validation pairs (the best weights), 5,000 held-out test pairs, all distinct.
  Target: exact match >= 99% on the test pairs within ``--budget`` (300) seconds of training.
- ``dates``: human-written dates to ISO ("Thursday, June 25, 2009" -> "2009-06-25"), same sizes, with
  attention. Target: exact match >= 99.5%.
- ``reverse``: strings of 1 to 12 letters reversed, no target: beam against greedy on a short budget.
- ``spacing``: restoring the spaces of shakespeare.txt (the last 5% of the lines held out). Target: F1 of
  the predicted spaces >= 0.95.
- ``torch-addition`` / ``torch-dates``: the same Seq2Seq configuration in PyTorch (the same initial weights
  copied by parameter name, the same batches in the same order, Adam with the same settings, the same
  clip, the same step schedule of the learning rate, the same training time); its exact match beside rnnlab's, and the
  ratio of the step times.

NumPy's BLAS and PyTorch get ``--threads`` threads (default 1): on a CPU shared with other work, OpenBLAS
with more threads than free cores spins and runs many times slower (measured here: 2.6 s a step with 2
threads against 0.22 s with 1, while other processes ran). The seq2seq tasks decode the test pairs greedily and with beam 5 (length penalty 0.6). Training is
what ``rnnlab seq2seq train`` / ``rnnlab tag train`` do with their default settings unless a flag says
otherwise; validations are not counted in the budget. Run it alone, with the OpenBLAS overrides unset::

    flock /tmp/rnnlab_bench.lock env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        .venv/bin/python benchmarks/patterns.py --task addition
    .venv/bin/python benchmarks/patterns.py --report          # the table from the JSON files

``--budget 20 --count 5000`` is a quick check that everything works.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))

from rnnlab import backend  # noqa: E402
from rnnlab.bench import blas_info, set_blas_threads  # noqa: E402
from rnnlab.data.pair_files import format_pairs  # noqa: E402
from rnnlab.data.pairs import PairBatches  # noqa: E402
from rnnlab.data.tasks import generate  # noqa: E402
from rnnlab.training.seq2seq import Seq2SeqConfig, build_model, load_pair_data, load_seq2seq  # noqa: E402
from rnnlab.training.seq2seq import train as train_seq2seq  # noqa: E402
from rnnlab.training.seq2seq_eval import score_translations, translate_pairs  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results"
TARGETS = {"addition": 0.99, "dates": 0.995, "spacing": 0.95, "reverse": None}
DATA_SEED = 2026


def shared_data() -> Path:
    return Path(os.environ.get("RNNLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def write_task_files(task: str, count: int, folder: Path) -> tuple[Path, Path, list]:
    """Train / validation files and the test pairs, disjoint, from one draw of distinct pairs."""
    pairs = generate(task, count + 1000 + 5000, seed=DATA_SEED)
    train, val, test = pairs[:count], pairs[count:count + 1000], pairs[count + 1000:]
    (folder / "train.tsv").write_text(format_pairs(train), encoding="utf-8")
    (folder / "val.tsv").write_text(format_pairs(val), encoding="utf-8")
    return folder / "train.tsv", folder / "val.tsv", test


def seq2seq_config(args, train_file, val_file) -> Seq2SeqConfig:
    values = {"pairs_file": str(train_file), "val_file": str(val_file), "time_budget": args.budget}
    for name in ("hidden_size", "batch_size", "lr", "lr_decay", "bidirectional", "attention", "eval_every"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return Seq2SeqConfig(**values)


def run_seq2seq(args, task: str) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        train_file, val_file, test = write_task_files(task, args.count, folder)
        config = seq2seq_config(args, train_file, val_file)
        log = io.StringIO() if args.quiet else sys.stderr
        result = train_seq2seq(config, folder / "run", stream=log, progress_bar=not args.quiet)
        model, _, checkpoint = load_seq2seq(folder / "run")
        _, greedy = translate_pairs(model, test, beam=1)
        _, beam = translate_pairs(model, test, beam=5)
        latest_model, _, _ = load_seq2seq(folder / "run", "latest")
        _, latest = translate_pairs(latest_model, test, beam=1)
        steps = result.step
    return {"task": task, "config": config.to_dict(), "train_pairs": args.count, "test_pairs": len(test),
            "steps": steps, "epochs": result.epoch, "train_seconds": round(result.train_seconds, 1),
            "step_seconds": result.train_seconds / max(steps, 1), "checkpoint": checkpoint,
            "greedy": greedy.to_dict(), "beam5": beam.to_dict(), "latest_greedy": latest.to_dict(),
            "target": TARGETS[task],
            "history": result.history}


def run_spacing(args) -> dict:
    from rnnlab.training.tagging import TagConfig
    from rnnlab.training.tagging import train as train_tagger

    text = shared_data() / "text" / "shakespeare.txt"
    values = {"text_file": str(text), "time_budget": args.budget}
    for name in ("hidden_size", "batch_size", "lr", "lr_decay", "eval_every"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    config = TagConfig(**values)
    with tempfile.TemporaryDirectory() as folder:
        log = io.StringIO() if args.quiet else sys.stderr
        result = train_tagger(config, Path(folder) / "run", stream=log, progress_bar=not args.quiet)
    return {"task": "spacing", "config": config.to_dict(), "steps": result.step, "epochs": result.epoch,
            "train_seconds": round(result.train_seconds, 1), "step_seconds": result.train_seconds / max(result.step, 1),
            "test": result.test.to_dict(), "target": TARGETS["spacing"], "history": result.history}


# ---------------------------------------------------------------------------------------------------
# the same model in PyTorch (the twin: benchmarks/torch_seq2seq.py, shared with speed.py)
# ---------------------------------------------------------------------------------------------------

def torch_greedy(model, twin, pairs, source_vocabulary, target_vocabulary, batch_size=256):
    import torch
    from torch_seq2seq import encode, features

    from rnnlab.data.pairs import pad_sequences

    outputs = []
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            encoded = [source_vocabulary.encode(s) for s, _ in pairs[start:start + batch_size]]
            ids, lengths = pad_sequences(encoded)
            source, lengths = torch.from_numpy(ids), torch.from_numpy(lengths)
            enc_out, state, padding = encode(model, twin, source, lengths)
            previous = torch.full((1, source.shape[1]), model.bos_id, dtype=torch.long)
            columns = []
            for _ in range(2 * source.shape[0] + 10):
                dec_out, state = twin.decoder(twin.target_embedding(previous), state)
                logits = twin.output_projection(features(model, twin, dec_out, enc_out, padding))
                previous = logits.argmax(-1)
                columns.append(previous[0].numpy())
                if (np.stack(columns) == model.eos_id).any(axis=0).all():
                    break
            for row in np.stack(columns, axis=1):
                outputs.append(target_vocabulary.decode(row))
    return outputs


def run_torch(args, task: str) -> dict:
    import torch
    from torch_seq2seq import TorchSeq2SeqTrainer

    threads = blas_info().get("threads") or 1
    torch.set_num_threads(int(threads))
    with tempfile.TemporaryDirectory() as folder:
        train_file, val_file, test = write_task_files(task, args.count, Path(folder))
        config = seq2seq_config(args, train_file, val_file)
        data = load_pair_data(config)
    backend.manual_seed(config.seed)                  # as rnnlab's loop: the model, then the orders
    model = build_model(config, data)
    trainer = TorchSeq2SeqTrainer(model, lr=config.lr, grad_clip=config.grad_clip)
    batches = PairBatches(*data.encoded(data.train), batch_size=config.batch_size)
    train_seconds, steps, epoch = 0.0, 0, 0
    while train_seconds < config.time_budget:
        for indices in batches.order(backend.generator()):
            started = time.perf_counter()
            for group in trainer.optimizer.param_groups:   # rnnlab's step schedule (training/schedule.py)
                group["lr"] = max(min(config.min_lr, config.lr), config.lr * config.lr_decay ** (steps // config.lr_decay_every))
            trainer(batches.batch(indices))
            steps += 1
            train_seconds += time.perf_counter() - started
            if train_seconds >= config.time_budget:
                break
        else:
            epoch += 1
    twin = trainer.twin
    twin.eval()
    predictions = torch_greedy(model, twin, test, data.source_vocabulary, data.target_vocabulary)
    score = score_translations(predictions, [t for _, t in test])
    return {"task": f"torch-{task}", "config": config.to_dict(), "torch": torch.__version__, "threads": threads,
            "steps": steps, "epochs": epoch, "train_seconds": round(train_seconds, 1),
            "step_seconds": train_seconds / max(steps, 1), "greedy": score.to_dict(),
            "note": "final weights (rnnlab reports its best-by-validation weights)"}


# ---------------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------------

def load_results() -> dict:
    found = {}
    for path in sorted(RESULTS.glob("patterns-*.json")):
        record = json.loads(path.read_text())
        found[record["task"]] = record
    return found


def report(found: dict) -> str:
    lines = ["| task | metric | rnnlab greedy | rnnlab beam 5 | target | training | steps (epochs) | step time |",
             "|---|---|---|---|---|---|---|---|"]
    for task in sorted(found, key=lambda t: (t.split("-")[0] not in ("addition", "dates", "reverse"), t)):
        r = found[task]
        if "beam5" not in r:
            continue
        target = "-" if r.get("target") is None else f"{100 * r['target']:.1f}%"
        name = task + ("" if task.split("-")[0] == task else f" (lr x{r['config']['lr_decay']} every "
                                                             f"{r['config']['lr_decay_every']} steps)")
        lines.append(f"| {name} | exact match ({r['test_pairs']:,} held out) | {100 * r['greedy']['exact_match']:.2f}% "
                     f"| {100 * r['beam5']['exact_match']:.2f}% | {target} | "
                     f"{r['train_seconds']:.0f} s | {r['steps']:,} ({r['epochs']}) | {1000 * r['step_seconds']:.1f} ms |")
    if "spacing" in found:
        r = found["spacing"]
        t = r["test"]
        lines.append(f"| spacing | F1 of spaces ({t['lines']:,} held-out lines; P {t['precision']:.4f}, "
                     f"R {t['recall']:.4f}) | {t['f1']:.4f} | - | {r['target']} | {r['train_seconds']:.0f} s | "
                     f"{r['steps']:,} ({r['epochs']}) | {1000 * r['step_seconds']:.1f} ms |")
    for task in ("addition", "dates"):
        if f"torch-{task}" in found and task in found:
            ours, theirs = found[task], found[f"torch-{task}"]
            lines.append("")
            lines.append(f"PyTorch {theirs['torch']} ({theirs['threads']} threads), {task}, same configuration and "
                         f"time: exact match {100 * theirs['greedy']['exact_match']:.2f}% (greedy, final weights) vs "
                         f"rnnlab {100 * ours['latest_greedy']['exact_match']:.2f}% (final weights; best "
                         f"{100 * ours['greedy']['exact_match']:.2f}%); {theirs['steps']:,} steps vs "
                         f"{ours['steps']:,}; step time rnnlab / PyTorch = "
                         f"{ours['step_seconds'] / theirs['step_seconds']:.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=("addition", "dates", "reverse", "spacing", "torch-addition", "torch-dates"))
    parser.add_argument("--report", action="store_true", help="print the table from benchmarks/results/patterns-*.json")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of training (default: 300)")
    parser.add_argument("--count", type=int, default=50_000, help="training pairs (default: 50,000)")
    parser.add_argument("--hidden-size", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--lr-decay", type=float)
    parser.add_argument("--bidirectional", action="store_const", const=True, default=None)
    parser.add_argument("--attention")
    parser.add_argument("--eval-every", type=int)
    parser.add_argument("--threads", type=int, default=1, help="BLAS (and PyTorch) threads (default: 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress line, no per-validation lines")
    parser.add_argument("--json", type=Path, help="where to write (default: benchmarks/results/patterns-<task>.json)")
    args = parser.parse_args(argv)
    if args.report or args.task is None:
        print(report(load_results()))
        return 0
    limiter = set_blas_threads(args.threads)  # noqa: F841  (kept alive for the whole run)
    started = time.time()
    if args.task == "spacing":
        record = run_spacing(args)
    elif args.task.startswith("torch-"):
        record = run_torch(args, args.task[len("torch-"):])
    else:
        record = run_seq2seq(args, args.task)
    record.update(wall_seconds=round(time.time() - started, 1), blas=blas_info(), python=platform.python_version(),
                  machine=platform.machine(), cpus=os.cpu_count(),
                  load_average=[round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None)
    out = args.json or RESULTS / f"patterns-{args.task}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=lambda x: None if isinstance(x, float) and math.isnan(x) else x)
                   + "\n")
    summary = {k: record[k] for k in ("task", "steps", "train_seconds") if k in record}
    for key in ("greedy", "beam5", "test"):
        if key in record:
            summary[key] = {k: record[key][k] for k in ("exact_match", "f1", "precision", "recall") if k in record[key]}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
