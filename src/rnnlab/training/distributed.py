"""Synchronous data-parallel training over MPI: ``mpiexec -n P rnnlab train ...``.

Every rank holds the whole model and takes ``B / P`` of the global batch's ``B`` rows (the char-LM's
contiguous streams, the classifier's images), so one step on P ranks computes what one step on one rank
computes, up to the order of floating-point sums. With rank ``r``'s share ``n_r`` of ``N = sum n_r`` rows
and its mean loss ``l_r`` (gradient ``g_r``), the global batch's mean loss and gradient are::

    loss = sum_r (n_r / N) l_r          grad = sum_r (n_r / N) g_r

so each rank packs ``(n_r / N) g_r`` for ALL parameters, and ``(n_r / N) l_r`` after them, into one flat
buffer, and a single in-place ``Allreduce(SUM)`` leaves the global loss and gradient on every rank; every
rank then clips and steps identically, and the weights stay equal without being sent again. Rank 0's
initial weights (and, on resume, its training state) are broadcast at the start (then each rank's random
generator jumps to a stream of its own, so dropout masks differ between ranks); rank 0 alone reads and
writes the run directory; evaluation is split across ranks and its sums reduced; a stop (step limit, time
budget, Ctrl-C / SIGTERM forwarded by the launcher to every rank) is agreed by a small allreduce at each
step boundary, so all ranks save (rank 0 writes) and leave at the same step.

Faults (:func:`run_guarded`): an exception on one rank prints one line naming the rank and the cause and
calls ``MPI_Abort``, so no rank waits forever in a collective; an error every rank meets alike (a bad
flag, a batch that P does not divide) is printed once, by rank 0, and the job exits 1.

Nothing here imports :mod:`mpi4py` unless the process was started by an MPI launcher with more than one
rank (:func:`launch_size`); a single-process run gets :class:`SingleProcess`, whose methods do nothing.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from ..errors import RnnlabError

# (variable holding the world size, variable holding this process's rank), per launcher
LAUNCH_VARIABLES = (
    ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),   # Open MPI's mpirun / mpiexec
    ("PMI_SIZE", "PMI_RANK"),                           # MPICH / Intel MPI (Hydra), Slurm with PMI-2
    ("PMIX_SIZE", "PMIX_RANK"),                         # some PMIx launchers
    ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID"),           # Slurm's srun (a job step, not the batch script)
)
# the order of precedence when ranks disagree on why to stop: any rank's reason stops all
STOP_REASONS = (None, "time", "interrupted", "epochs", "steps")
# how long a failed rank waits for the others to fail alike before it ends the job on its own
AGREE_SECONDS = 3.0
ABORT_GRACE_SECONDS = 0.5  # abort(): time for this rank's last line to reach the launcher


def launch_size() -> tuple[int, int, str | None]:
    """``(size, rank, variable)`` from the launcher's environment, ``(1, 0, None)`` outside one.

    >>> launch_size() if not any(v in os.environ for v, _ in LAUNCH_VARIABLES) else (1, 0, None)
    (1, 0, None)
    """
    for size_variable, rank_variable in LAUNCH_VARIABLES:
        value = os.environ.get(size_variable)
        if value is None:
            continue
        if size_variable == "SLURM_STEP_NUM_TASKS" and not os.environ.get("SLURM_STEP_ID", "").isdigit():
            continue  # the batch script itself (step "batch"/"extern"), not an srun task
        try:
            return int(value), int(os.environ.get(rank_variable, "0")), size_variable
        except ValueError:
            continue
    return 1, 0, None


class EveryRankError(RnnlabError):
    """An error raised alike on every rank (where all ranks are in step, or before MPI starts): rank 0
    prints it, the others exit quietly, and nobody needs to abort."""


class SingleProcess:
    """The one-process stand-in: rank 0 of 1; every method returns its input (the loops call them
    unconditionally, so they read as single-process loops)."""
    rank, size, is_root = 0, 1, True
    allreduce_seconds, allreduce_calls = 0.0, 0

    def describe(self) -> str:
        return ""

    def check_divides(self, batch_size: int, flag: str = "--batch-size") -> None:
        pass

    def shard(self, items, axis: int = 1):
        return items

    def bounds(self, count: int) -> tuple[int, int]:
        return 0, count

    def gather_all(self, value) -> list:
        return [value]

    def weight(self, local_count: int, global_count: int) -> float:
        return 1.0

    def sum_gradients(self, params, loss: float, weight: float = 1.0) -> float:
        return loss

    def sum(self, value):
        return value

    def agree_stop(self, reason):
        return reason

    def agree_any(self, *flags) -> tuple:
        return tuple(bool(flag) for flag in flags)

    def broadcast(self, value):
        return value

    def broadcast_parameters(self, model) -> None:
        pass

    def own_random_stream(self) -> None:
        pass

    def share_training_state(self, model, optimizer) -> None:
        pass

    def on_root(self, function, *args, **kwargs):
        return function(*args, **kwargs)

    def gather_streams(self, state):
        return state

    def streams_of(self, state):
        return state

    def stream(self, stream):
        return stream

    def lock(self, run):
        return run.lock()


class Distributed(SingleProcess):
    """Rank ``comm.rank`` of ``comm.size`` (more than one) in ``comm`` (an ``mpi4py`` communicator).

    Attributes: ``allreduce_seconds`` / ``allreduce_calls``, the time spent in the gradient allreduce
    (waiting for the slowest rank included) and how many were made.
    """

    def __init__(self, comm, mpi):
        self.comm, self.MPI = comm, mpi
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.is_root = self.rank == 0
        self.allreduce_seconds, self.allreduce_calls = 0.0, 0
        self._buffer = None
        self._devnull = None
        # errors are agreed on a communicator of their own: a rank failing while the others wait in a
        # collective of the training must not match theirs
        self.errors = comm.Dup()

    def all_failed(self) -> bool:
        """Whether every rank has failed too (each calls this in its error handler): a non-blocking barrier on
        the errors' communicator, given :data:`AGREE_SECONDS` to complete. False: the failure is this rank's
        alone (the others are still training, or stuck in a collective waiting for this one)."""
        request = self.errors.Ibarrier()
        deadline = time.monotonic() + AGREE_SECONDS
        while not request.Test():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def describe(self) -> str:
        """``"data-parallel over P MPI ranks (MPICH 5.0.2): rank 0 = pid 123 on host, ..."``: which process is
        which rank, so a launcher's report of a dead process id names its rank."""
        places = self.comm.gather((os.getpid(), socket.gethostname()), root=0)
        if not self.is_root:
            return ""
        library = self.MPI.Get_library_version().strip().splitlines()[0]
        ranks = ", ".join(f"rank {r} = pid {pid} on {host}" for r, (pid, host) in enumerate(places))
        return f"data-parallel over {self.size} MPI ranks ({' '.join(library.split())}): {ranks}"

    # --- sharding the batch -------------------------------------------------------------------------

    def check_divides(self, batch_size: int, flag: str = "--batch-size") -> None:
        """EveryRankError unless the global batch splits evenly over the ranks."""
        if batch_size % self.size:
            raise EveryRankError(
                f"{flag} {batch_size} does not split over {self.size} MPI ranks: the batch is global and each "
                f"rank takes {flag} / ranks of it; use a multiple of {self.size} (e.g. "
                f"{max(self.size, batch_size - batch_size % self.size)}) or another number of ranks")

    def bounds(self, count: int) -> tuple[int, int]:
        """``(start, stop)`` of this rank's contiguous piece of ``count`` items; the first ``count % size``
        ranks take one more (uneven only for an epoch's last, short batch, and in evaluation)."""
        base, extra = divmod(count, self.size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)

    def shard(self, items, axis: int = 1):
        """This rank's contiguous piece of ``items`` along the batch ``axis``: 1 for a time-major ``(T, B)``
        batch or an ``(L, B, H)`` state (or a tuple of them), 0 for images ``(N, rows, cols)``; a 1-D array
        (the classifier's image indices) along its only axis."""
        if isinstance(items, tuple):
            return tuple(self.shard(item, axis) for item in items)
        items = np.asarray(items)
        axis = 0 if items.ndim == 1 else axis
        start, stop = self.bounds(items.shape[axis])
        return np.ascontiguousarray(items[:, start:stop] if axis == 1 else items[start:stop])

    def gather_all(self, value) -> list:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        return self.comm.allgather(value)

    def weight(self, local_count: int, global_count: int) -> float:
        """This rank's share of the global batch's mean: ``n_r / N``."""
        return local_count / global_count

    # --- the step -------------------------------------------------------------------------------------

    def sum_gradients(self, params, loss: float, weight: float = 1.0) -> float:
        """Replace every ``param.grad`` by the global batch's gradient and return the global mean loss.

        ``weight`` is ``n_r / N`` (:meth:`weight`); a parameter without a gradient (no backward ran:
        this rank's loss was not finite) contributes zeros, and its loss makes the sum non-finite, so
        every rank skips the step alike. One flat buffer, one in-place ``Allreduce``.
        """
        params = [p for p in params if p.requires_grad]
        dtype = np.result_type(*[p.data.dtype for p in params])
        # the gradients, the loss, and for each parameter whether this rank has a gradient for it (so a
        # parameter no rank has a gradient for stays without one, as it would in one process)
        total = sum(p.data.size for p in params) + 1 + len(params)
        if self._buffer is None or self._buffer.size != total or self._buffer.dtype != dtype:
            self._buffer = np.empty(total, dtype=dtype)
        buffer, offset = self._buffer, 0
        for p in params:
            n = p.data.size
            if p.grad is None:
                buffer[offset:offset + n] = 0
            else:
                np.multiply(np.asarray(p.grad).reshape(-1), weight, out=buffer[offset:offset + n])
            offset += n
        buffer[offset] = loss * weight
        has_grad = buffer[offset + 1:]
        has_grad[:] = [p.grad is not None for p in params]
        started = time.perf_counter()
        self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        self.allreduce_seconds += time.perf_counter() - started
        self.allreduce_calls += 1
        offset = 0
        for p, anyone in zip(params, has_grad):
            n = p.data.size
            if p.grad is not None:
                p.grad[...] = buffer[offset:offset + n].reshape(p.data.shape)
            elif anyone:  # this rank had no rows (a last batch smaller than the ranks): the others' sum
                p.grad = buffer[offset:offset + n].reshape(p.data.shape).copy()
            offset += n
        return float(buffer[offset])

    def sum(self, value):
        """The sum over ranks of a number or a small array (float64 for floats)."""
        array = np.array(value, dtype=np.float64 if isinstance(value, float) or np.asarray(value).dtype.kind == "f"
                         else np.int64)
        self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        return array.item() if array.ndim == 0 else array

    def agree_stop(self, reason):
        """The reason to stop that every rank takes: any rank's reason (a time budget or a signal seen by
        one rank stops all, at the same step); None when no rank has one."""
        known = reason in STOP_REASONS
        code = np.array(STOP_REASONS.index(reason) if known else len(STOP_REASONS), dtype=np.int64)
        self.comm.Allreduce(self.MPI.IN_PLACE, code, op=self.MPI.MAX)
        if int(code) < len(STOP_REASONS):
            return STOP_REASONS[int(code)]
        # a reason this module does not know: the lowest rank's (every rank learns it)
        return next(r for r in self.comm.allgather(reason) if r is not None and r not in STOP_REASONS)

    def agree_any(self, *flags) -> tuple:
        """Each flag True on every rank when it is True on any (one small allreduce): decisions from a rank's
        own clock (evaluate or checkpoint every N seconds) must be the same on all, or their collectives
        would not match."""
        values = np.array([bool(flag) for flag in flags], dtype=np.int64)
        self.comm.Allreduce(self.MPI.IN_PLACE, values, op=self.MPI.MAX)
        return tuple(bool(value) for value in values)

    # --- the start and resume -------------------------------------------------------------------------

    def broadcast(self, value):
        """Rank 0's ``value`` (any picklable object) on every rank."""
        return self.comm.bcast(value, root=0)

    def broadcast_parameters(self, model) -> None:
        """Every rank starts from rank 0's weights; then each rank's random stream is its own
        (:meth:`own_random_stream`)."""
        for p in model.parameters():
            data = np.ascontiguousarray(p.data)
            self.comm.Bcast(data, root=0)
            if data is not p.data:
                p.data[...] = data
        self.own_random_stream()

    def own_random_stream(self) -> None:
        """Rank r's generator jumps ``r x 2^127`` draws ahead of rank 0's (PCG64's ``jumped``), so dropout
        masks differ between ranks instead of repeating; a rank-0 state saved and broadcast again gives
        every rank back its own stream (when the ranks drew alike since, as in equal shards)."""
        if self.rank:
            from .. import backend

            backend.set_rng_state(backend.generator().bit_generator.jumped(self.rank).state)

    def share_training_state(self, model, optimizer) -> None:
        """Rank 0's weights, optimizer state and random state (restored from a checkpoint) on every rank
        (and then each rank's own random stream, :meth:`own_random_stream`)."""
        from .. import backend

        state = self.broadcast((optimizer.state_dict(), backend.get_rng_state()) if self.is_root else None)
        if not self.is_root:
            optimizer.load_state_dict(state[0])
            backend.set_rng_state(state[1])
        self.broadcast_parameters(model)

    def on_root(self, function, *args, **kwargs):
        """``function(*args, **kwargs)`` on rank 0 (which alone reads the run directory), its result on
        every rank; a RnnlabError it raises is raised on every rank (printed once)."""
        result, error = None, None
        if self.is_root:
            try:
                result = function(*args, **kwargs)
            except RnnlabError as raised:
                error = str(raised)
        result, error = self.broadcast((result, error))
        if error is not None:
            raise EveryRankError(error)
        return result

    # --- the carried state of the streams --------------------------------------------------------------

    def gather_streams(self, state):
        """The hidden state of ALL ``B`` streams on rank 0 (each rank holds ``(L, B / P, H)`` arrays, joined
        along axis 1), None elsewhere; so a checkpoint holds the global state and resumes on any P'."""
        parts = self.comm.gather(state, root=0)
        if not self.is_root or parts[0] is None:
            return None
        if isinstance(parts[0], tuple):
            return tuple(np.concatenate([part[i] for part in parts], axis=1) for i in range(len(parts[0])))
        return np.concatenate(parts, axis=1)

    def streams_of(self, state):
        """This rank's streams of a global hidden state ``(L, B, H)`` (or a tuple of them; None stays None)."""
        return None if state is None else self.shard(state)

    def lock(self, run):
        """The run directory's lock (:meth:`rnnlab.training.rundir.RunDirectory.lock`), held by rank 0: the
        one process that writes there."""
        return run.lock() if self.is_root else contextlib.nullcontext()

    def stream(self, stream):
        """Where this rank's progress and messages go: ``stream`` on rank 0, nowhere elsewhere."""
        if self.is_root:
            return stream
        if self._devnull is None:
            self._devnull = open(os.devnull, "w")
        return self._devnull


_CONTEXT = None


def context():
    """The process's :class:`Distributed` (launched by mpiexec/srun with P > 1 ranks) or
    :class:`SingleProcess`, made once; mpi4py is imported only in the first case."""
    global _CONTEXT
    if _CONTEXT is not None:
        return _CONTEXT
    size, rank, variable = launch_size()
    if size <= 1:
        _CONTEXT = SingleProcess()
        return _CONTEXT
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise EveryRankError(
            f"started as rank {rank} of {size} by an MPI launcher ({variable}={size}) but mpi4py is not "
            f"installed ({error}); pip install 'rnnlab[mpi]', or run without mpiexec") from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() != size:
        raise EveryRankError(
            f"the launcher started {size} ranks ({variable}={size}) but mpi4py's MPI library "
            f"({MPI.Get_library_version().splitlines()[0].strip()}) sees {comm.Get_size()}: mpiexec and "
            f"mpi4py come from different MPI implementations; launch with the mpiexec that belongs to "
            f"mpi4py's library (python -m mpi4py --mpi-lib-version)")
    from .signals import stop_between_steps_only

    stop_between_steps_only()  # a signal stops every rank at the same step boundary, not mid-evaluation
    _CONTEXT = Distributed(comm, MPI)
    return _CONTEXT


def run_guarded(function, *args, stream=None):
    """``function(*args)``, so that a failure on one rank ends the whole job at once.

    Outside a multi-rank launch this is a plain call. Under one, a :class:`RnnlabError` that every rank
    meets (a bad flag, a batch the ranks do not divide, a run directory rank 0 cannot use: the ranks
    agree on it within :data:`AGREE_SECONDS`, :meth:`Distributed.all_failed`) is printed once, by rank 0,
    and every rank returns 1. Anything else (an error on this rank alone, a second Ctrl-C, a bug) prints
    ``rnnlab: error: rank R of P (pid N on HOST): cause`` (a bug's traceback before it) and calls
    ``MPI_Abort``, which ends every rank, even those waiting in a collective.
    """
    size, rank, _ = launch_size()
    if size <= 1:
        return function(*args)
    stream = sys.stderr if stream is None else stream
    try:
        return function(*args)
    except RnnlabError as error:
        if isinstance(error, EveryRankError) or every_rank_failed():
            if rank == 0:
                print(f"rnnlab: error: {error}", file=stream, flush=True)
            return 1
        abort(rank, size, str(error), stream)
    except BaseException as error:  # noqa: B036 - whatever it is, the other ranks must not hang
        if isinstance(error, SystemExit) and not error.code:
            raise
        if not isinstance(error, (KeyboardInterrupt, SystemExit)):
            traceback.print_exc(file=stream)
        abort(rank, size, "interrupted" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}",
              stream)


def every_rank_failed() -> bool:
    """In an error handler: whether the other ranks failed as well (:meth:`Distributed.all_failed`)."""
    try:
        dist = context()
    except RnnlabError:
        return True  # MPI cannot start (no mpi4py): every rank got as far, and no rank can be waiting
    return isinstance(dist, Distributed) and dist.all_failed()


def abort(rank: int, size: int, cause: str, stream) -> None:
    """One line naming this rank and ``cause``, then ``MPI_Abort``: the launcher ends every rank."""
    print(f"rnnlab: error: rank {rank} of {size} (pid {os.getpid()} on {socket.gethostname()}): {cause}; "
          f"stopping every rank", file=stream, flush=True)
    # MPI_Abort makes the launcher kill every process at once, and a line still in the pipe to the launcher
    # is lost with them (seen with MPICH under load): give it a moment to be forwarded first
    time.sleep(ABORT_GRACE_SECONDS)
    try:
        from mpi4py import MPI
        MPI.COMM_WORLD.Abort(1)
    finally:
        os._exit(1)


# ---------------------------------------------------------------------------------------------------
# launching (for tests, benchmarks and the docs' examples)
# ---------------------------------------------------------------------------------------------------

def find_mpiexec() -> str | None:
    """The ``mpiexec`` beside this Python (the ``mpich`` wheel puts one in the environment's bin/), else
    the one on PATH, else None."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.is_file() else shutil.which("mpiexec")


def mpiexec_command(processes: int, mpiexec: str | None = None) -> list[str]:
    """``[mpiexec, -n, P, ...]`` with what the implementation needs here: Open MPI wants
    ``--oversubscribe`` for more ranks than cores and ``--allow-run-as-root`` as root; MPICH neither."""
    mpiexec = mpiexec or find_mpiexec()
    if mpiexec is None:
        raise RnnlabError("no mpiexec found beside this Python or on PATH; pip install 'rnnlab[mpi]'")
    command = [mpiexec, "-n", str(processes)]
    version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30)
    text = (version.stdout + version.stderr).lower()
    if "open mpi" in text or "openrte" in text or "open-mpi" in text:  # "mpirun (Open MPI) 5.0", "(OpenRTE) 4.0"
        command.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-run-as-root")
    return command


class NoMetrics:
    """What a rank other than 0 writes its metrics to: nothing (every method does nothing)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


NO_METRICS = NoMetrics()
