"""How fast rnnlab trains and samples on this machine, side by side with PyTorch: the benchmark harness.

``rnnlab bench`` (:mod:`rnnlab.cli.bench`, parsing and printing only) and ``benchmarks/speed.py`` (the whole
suite, min-char-rnn, peak memory, FLOP efficiency, JSON) both measure with the pieces defined here:

- :class:`BenchConfig` and :data:`SUITE`: the char-LM configurations (embedding -> recurrent stack ->
  linear decoder, batch 32 x 64 steps, vocabulary 65);
- :func:`rnnlab_trainer` / :func:`torch_trainer`: one realistic training step each (forward, mean
  cross-entropy, backward, global-norm clip 5, Adam), the recurrent state carried between batches;
- :func:`rnnlab_sampler` / :func:`torch_sampler`: per-character generation (one step of the model,
  softmax, one draw per stream);
- :data:`SEQ2SEQ`, :func:`seq2seq_setup`, :func:`rnnlab_seq2seq_trainer`: issue 12's ``Seq2Seq`` on the
  addition task and its teacher-forced training step (its PyTorch twin is ``benchmarks/torch_seq2seq.py``);
- :func:`interleaved_medians`: rnnlab and PyTorch repetitions alternated in one process, medians kept,
  so a noisy machine slows both alike;
- :func:`measure_suite`: the rows ``rnnlab bench`` reports.

PyTorch runs with as many threads as NumPy's BLAS (``torch.set_num_threads``). PyTorch is never a
dependency of rnnlab; without it rnnlab is measured alone.
"""
from __future__ import annotations

import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class BenchConfig:
    name: str
    cell: str            # "lstm", "gru", "rnn" (tanh)
    hidden_size: int
    num_layers: int
    batch_size: int = 32
    seq_len: int = 64
    vocab_size: int = 65
    embedding_size: int | None = None  # None: CharRNN's default, min(hidden_size, 128)

    @property
    def chars_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def embedding(self) -> int:
        return self.embedding_size or min(self.hidden_size, 128)


SUITE = [
    BenchConfig("LSTM 1x128", "lstm", 128, 1),
    BenchConfig("LSTM 2x512", "lstm", 512, 2),
    BenchConfig("GRU 2x256", "gru", 256, 2),
    BenchConfig("RNN tanh 1x100", "rnn", 100, 1),
]
QUICK = [SUITE[0], SUITE[1]]


# ------------------------------------------------------------------------------------------------
# machine
# ------------------------------------------------------------------------------------------------
def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (figures are recorded with it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> dict:
    """The BLAS library NumPy calls, its kernel and thread count (via threadpoolctl when installed)."""
    try:
        import threadpoolctl

        for entry in threadpoolctl.threadpool_info():
            if entry.get("user_api") == "blas":
                return {"library": entry.get("internal_api"), "kernel": entry.get("architecture"),
                        "threads": entry.get("num_threads"), "version": entry.get("version")}
    except ImportError:
        pass
    return {"library": "unknown", "kernel": "unknown", "threads": None, "version": None}


def set_blas_threads(threads: int | None):
    """Limit NumPy's BLAS to ``threads`` (returns the limiter, or None when nothing was changed)."""
    if threads is None:
        return None
    import threadpoolctl

    return threadpoolctl.threadpool_limits(limits=threads, user_api="blas")


def matmul_gflops(size: int = 1024, seconds: float = 1.0) -> float:
    """Best float32 ``size``-cubed matrix-product rate in GFLOP/s over about ``seconds``."""
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


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------
def char_batches(config: BenchConfig, count: int, text_ids=None, seed: int = 0):
    """``count`` (x, y) pairs of time-major ids ``(L, N)``: windows of ``text_ids`` when given, else
    ids drawn from a Zipf-like distribution over the vocabulary (like characters of text)."""
    rng = np.random.default_rng(seed)
    length, batch = config.seq_len, config.batch_size
    if text_ids is None:
        weights = 1.0 / np.arange(1, config.vocab_size + 1)
        text_ids = rng.choice(config.vocab_size, size=200_000, p=weights / weights.sum())
    text_ids = np.asarray(text_ids, dtype=np.intp)
    pairs = []
    for _ in range(count):
        starts = rng.integers(0, len(text_ids) - length - 1, size=batch)
        window = text_ids[starts[None, :] + np.arange(length + 1)[:, None]]  # (L + 1, N)
        pairs.append((window[:-1], window[1:]))
    return pairs


# ------------------------------------------------------------------------------------------------
# rnnlab
# ------------------------------------------------------------------------------------------------
def rnnlab_model(config: BenchConfig, seed: int = 0):
    import rnnlab
    from rnnlab.models import CharRNN

    rnnlab.manual_seed(seed)
    return CharRNN(config.vocab_size, hidden_size=config.hidden_size, num_layers=config.num_layers,
                   cell=config.cell, embedding_size=config.embedding)


def rnnlab_trainer(config: BenchConfig, seed: int = 0, grad_clip: float = 5.0, lr: float = 2e-3):
    """``step(x, y) -> loss``: one training step of rnnlab's CharRNN, as ``rnnlab train`` does it."""
    from rnnlab import nn, optim

    model = rnnlab_model(config, seed)
    model.train()
    params = list(model.parameters())
    optimizer = optim.Adam(params, lr=lr)
    criterion = nn.CrossEntropyLoss()
    carried = {"state": None}

    def step(x, y):
        logits, state = model(x, carried["state"])
        loss = criterion(logits.reshape(-1, config.vocab_size), y.reshape(-1))
        model.zero_grad()
        model.backward(criterion.backward().reshape(logits.shape))
        optim.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        carried["state"] = state
        return float(loss)

    return step


def rnnlab_sampler(config: BenchConfig, streams: int = 1, seed: int = 0):
    """``run(chars)``: generate ``chars`` characters per stream (softmax sampling, temperature 1).

    One stream on the fast path runs as :meth:`CharRNN.generate` does (compiled step and draw,
    :mod:`rnnlab.fast.sampler`); otherwise ``lean_step`` + ``sample_from_logits``."""
    from rnnlab.models.charrnn import sample_from_logits, use_compiled_sampling

    model = rnnlab_model(config, seed)
    model.eval()
    rng = np.random.default_rng(seed)
    if use_compiled_sampling(model, streams):
        from rnnlab.fast.sampler import CompiledSampler

        sampler = CompiledSampler(model)

        def run_compiled(chars):
            return list(sampler.generate_ids(chars, rng))[-1:]

        return run_compiled
    step = model.lean_step()

    def run(chars):
        ids, state = np.zeros(streams, dtype=np.intp), None
        for _ in range(chars):
            logits, state = step(ids, state)
            ids = sample_from_logits(logits, rng=rng)
        return ids

    return run


# ------------------------------------------------------------------------------------------------
# the seq2seq model (issue 12's Seq2Seq), as `rnnlab seq2seq train` trains it by default
# ------------------------------------------------------------------------------------------------
SEQ2SEQ = {"name": "Seq2Seq bi-LSTM 128 + attention", "task": "addition", "cell": "lstm", "hidden": 128,
           "layers": 1, "bidirectional": True, "attention": "general", "batch": 128, "lr": 3e-3, "grad_clip": 5.0,
           "seed": 1337}


def seq2seq_setup(count: int, settings: dict = SEQ2SEQ):
    """``(model, batches)``: a fresh :class:`~rnnlab.models.Seq2Seq` (embedding ``min(H, 64)``, float32) and
    ``count`` full batches (:class:`~rnnlab.data.pairs.PairBatch`, bucketed by source length as in training)
    of the task's pairs (:func:`rnnlab.data.tasks.generate`); the seed fixes the pairs, weights and order."""
    import rnnlab
    from rnnlab.data.pairs import PairBatches, SymbolVocabulary
    from rnnlab.data.tasks import generate
    from rnnlab.models import Seq2Seq

    pairs = generate(settings["task"], settings["batch"] * max(count, 50), seed=settings["seed"])
    source, target = SymbolVocabulary.build(s for s, _ in pairs), SymbolVocabulary.build(t for _, t in pairs)
    rnnlab.manual_seed(settings["seed"])
    model = Seq2Seq(source, target, hidden_size=settings["hidden"], num_layers=settings["layers"],
                    cell=settings["cell"], bidirectional=settings["bidirectional"], attention=settings["attention"])
    data = PairBatches([source.encode(s) for s, _ in pairs], [target.encode(t) for _, t in pairs],
                       batch_size=settings["batch"])
    order = data.order(np.random.default_rng(settings["seed"]))
    return model, [data.batch(order[k]) for k in range(count)]


def rnnlab_seq2seq_trainer(model, lr: float = 3e-3, grad_clip: float = 5.0):
    """``step(batch) -> loss``: one teacher-forced training step of ``model`` (mean cross-entropy over the
    targets, ``<pad>`` ignored; backward; global-norm clip; Adam), as ``rnnlab seq2seq train`` does it."""
    from rnnlab import nn, optim

    model.train()
    params = list(model.parameters())
    optimizer = optim.Adam(params, lr=lr)
    criterion = nn.CrossEntropyLoss(ignore_index=model.pad_id)

    def step(batch):
        logits = model(batch.source, batch.target_input, batch.source_lengths)       # (T, N, V)
        loss = criterion(logits.reshape(-1, logits.shape[-1]), batch.target_output.reshape(-1))
        model.zero_grad()
        model.backward(criterion.backward().reshape(logits.shape))
        optim.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        return float(loss)

    return step


# ------------------------------------------------------------------------------------------------
# PyTorch (the peer; imported only here)
# ------------------------------------------------------------------------------------------------
def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_model(config: BenchConfig, seed: int = 0):
    import torch

    torch.manual_seed(seed)
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[config.cell]

    class TorchCharRNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(config.vocab_size, config.embedding)
            self.rnn = layer(config.embedding, config.hidden_size, config.num_layers)
            self.decoder = torch.nn.Linear(config.hidden_size, config.vocab_size)

        def forward(self, ids, state=None):
            output, state = self.rnn(self.embedding(ids), state)
            return self.decoder(output), state

    return TorchCharRNN()


def torch_trainer(config: BenchConfig, seed: int = 0, grad_clip: float = 5.0, lr: float = 2e-3):
    """``step(x, y) -> loss``: the same training step in PyTorch (train mode, Adam, clip, state detached)."""
    import torch

    model = torch_model(config, seed)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    carried = {"state": None}

    def step(x, y):
        x, y = torch.from_numpy(np.asarray(x, dtype=np.int64)), torch.from_numpy(np.asarray(y, dtype=np.int64))
        optimizer.zero_grad(set_to_none=True)
        logits, state = model(x, carried["state"])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, config.vocab_size), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        carried["state"] = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        return loss.item()

    return step


def torch_sampler(config: BenchConfig, streams: int = 1, seed: int = 0):
    import torch

    model = torch_model(config, seed)
    model.eval()
    generator = torch.Generator().manual_seed(seed)

    def run(chars):
        with torch.inference_mode():
            ids, state = torch.zeros((1, streams), dtype=torch.long), None
            for _ in range(chars):
                logits, state = model(ids, state)
                probs = torch.softmax(logits[0], dim=-1)
                ids = torch.multinomial(probs, 1, generator=generator).reshape(1, streams)
        return ids

    return run


# ------------------------------------------------------------------------------------------------
# timing
# ------------------------------------------------------------------------------------------------
def interleaved_medians(workloads: dict, rounds: int = 5, warmup: int = 1, pause: float = 0.3) -> dict:
    """``workloads``: name -> (run(), units of work per run). Runs every workload once per round, in turn,
    after ``warmup`` untimed rounds; returns name -> median units per second.

    ``pause`` seconds of sleep before each timed run: after a burst of work, OpenBLAS's and OpenMP's
    worker threads keep spinning for up to ~0.1 s, and without the pause they would take a core from
    whichever framework runs next (measured: PyTorch's LSTM 1x128 step at half speed right after rnnlab's).
    """
    for _ in range(warmup):
        for run, _units in workloads.values():
            run()
    rates = {name: [] for name in workloads}
    for _ in range(rounds):
        for name, (run, units) in workloads.items():
            time.sleep(pause)
            start = time.perf_counter()
            run()
            rates[name].append(units / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def training_workload(trainer, batches):
    def run():
        for x, y in batches:
            trainer(x, y)
    return run


def measure_training(config: BenchConfig, with_torch: bool, rounds: int = 5, steps_per_round: int | None = None,
                     text_ids=None) -> dict:
    """chars/s of rnnlab (and PyTorch) training on ``config``; interleaved medians."""
    if steps_per_round is None:  # a few tenths of a second of work per round
        steps_per_round = max(2, min(10, int(2e9 // _training_flops(config))))
    batches = char_batches(config, steps_per_round, text_ids)
    workloads = {"rnnlab": (training_workload(rnnlab_trainer(config), batches),
                            steps_per_round * config.chars_per_step)}
    if with_torch:
        workloads["torch"] = (training_workload(torch_trainer(config), batches),
                              steps_per_round * config.chars_per_step)
    return interleaved_medians(workloads, rounds=rounds)


def _training_flops(config: BenchConfig) -> float:
    """Matrix-product FLOPs of one training step (forward + backward = 3x forward)."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[config.cell] * config.hidden_size
    forward = 0.0
    for layer in range(config.num_layers):
        inputs = config.embedding if layer == 0 else config.hidden_size
        forward += 2.0 * config.chars_per_step * (inputs + config.hidden_size) * gates
    forward += 2.0 * config.chars_per_step * config.hidden_size * config.vocab_size
    return 3.0 * forward


def measure_sampling(config: BenchConfig, with_torch: bool, streams: int = 1, chars: int | None = None,
                     rounds: int = 5) -> dict:
    """chars/s (summed over streams) of per-character generation."""
    if chars is None:
        chars = 200 if config.hidden_size <= 256 else 30
    workloads = {"rnnlab": ((lambda run=rnnlab_sampler(config, streams): run(chars)), chars * streams)}
    if with_torch:
        workloads["torch"] = ((lambda run=torch_sampler(config, streams): run(chars)), chars * streams)
    return interleaved_medians(workloads, rounds=rounds)


def kernels_in_use() -> str:
    """``"fast"`` when rnnlab's compiled path (:mod:`rnnlab.fast`) is on, else ``"reference"``."""
    from rnnlab import fast

    return "fast" if fast.enabled() else "reference"


# ------------------------------------------------------------------------------------------------
# the suite
# ------------------------------------------------------------------------------------------------
def measure_suite(configs, threads: int | None = None, rounds: int = 3, with_torch: bool = True) -> dict:
    """Training and sampling chars/s of each of ``configs`` (rnnlab, and PyTorch when ``with_torch`` and
    installed), with the machine's BLAS, kernels and matmul rate. ``threads`` limits BLAS and PyTorch."""
    limiter = set_blas_threads(threads)
    try:
        with_torch = with_torch and torch_available()
        if with_torch:
            import torch

            torch.set_num_threads(int(blas_info()["threads"] or 1))
        results = {"blas": blas_info(), "kernels": kernels_in_use(), "torch": with_torch,
                   "matmul_gflops": round(matmul_gflops(seconds=0.5), 1), "rows": []}
        for config in configs:
            train = measure_training(config, with_torch, rounds=rounds)
            sample = measure_sampling(config, with_torch, rounds=rounds)
            results["rows"].append({"config": asdict(config) | {"name": config.name},
                                    "train_chars_per_s": train, "sample_chars_per_s": sample})
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
    return results
