"""The processes of a data-parallel job and their collective operations, over MPI (``mpi4py``).

``init_process_group()`` joins the job that ``mpiexec -n N python ...`` started: it reads the
rank and world size from MPI and returns the :class:`ProcessGroup` (also the default group,
which ``DistributedDataParallel`` and ``DistributedSampler`` use). A plain ``python ...`` (no
``mpiexec``) is a job of one process, so the same program runs both ways.

Every collective of the group is **bounded in time**: it is started non-blocking (``Iallreduce``,
``Ibcast``, ``Ibarrier``) and polled against a deadline, ``timeout`` seconds (default 300, or
``$MINICNN_DIST_TIMEOUT``), so a process whose partner died or hangs raises
:class:`DistributedError` instead of waiting forever. And a process that fails should take the
others down at once: ``init_process_group`` installs an exception hook that prints the
traceback and calls ``MPI_Abort`` (which ends every process of the job), since a plain exit
would leave the others blocked. :meth:`ProcessGroup.abort` does the same by hand.

mpi4py is optional (the ``mpi`` extra: ``pip install -e '.[mpi]'``, mpi4py and the ``mpich`` wheel,
which brings ``mpiexec``); it is imported only when a group is made, with an error naming the
extra when it is missing. On the GPU, gradients go through NCCL instead (``nccl.py``).
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from .. import backend
from .nccl import NcclCommunicator

MPI_HINT = "install the MPI extra: pip install -e '.[mpi]' (mpi4py and the mpich wheel, which brings mpiexec)"
DEFAULT_TIMEOUT = 300.0
ABORT_GRACE_S = 0.5     # seconds between flushing the output and MPI_Abort (see ProcessGroup.abort)
_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_OPS = ("sum", "max", "min")


class DistributedError(RuntimeError):
    """A collective operation failed or timed out: another process died, hangs or disagrees."""


class RankFailed(DistributedError):
    """Raised on the other ranks when the work that one rank did for all of them failed there
    (:meth:`ProcessGroup.on_root`); that rank reports the error itself. ``exit_code``: its exit status."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


def _launcher_value(names):
    for name in names:
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def launcher_rank():
    """This process's rank as the MPI launcher (mpiexec / mpirun) set it in the environment, or None
    when no launcher started it. Needs no mpi4py (MPICH, Open MPI, PMIx and MVAPICH are recognised)."""
    return _launcher_value(_RANK_VARIABLES)


def launcher_world_size():
    """The number of processes the MPI launcher started, from the environment, or None."""
    return _launcher_value(_SIZE_VARIABLES)


def import_mpi():
    """The ``mpi4py.MPI`` module (importing it joins the MPI job), or an ImportError naming the extra."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"minicnn.distributed needs mpi4py: {MPI_HINT}") from exc
    return MPI


def default_timeout() -> float:
    """``$MINICNN_DIST_TIMEOUT`` seconds if set, else 300."""
    text = os.environ.get("MINICNN_DIST_TIMEOUT", "").strip()
    try:
        value = float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        raise ValueError(f"MINICNN_DIST_TIMEOUT must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"MINICNN_DIST_TIMEOUT must be > 0, got {text!r}")
    return value


def environment_error():
    """The message for a ``MINICNN_DIST_TIMEOUT`` that is not a number of seconds > 0, else None."""
    try:
        default_timeout()
    except ValueError as exc:
        return str(exc)
    return None


class Work:
    """Collectives started together (:meth:`ProcessGroup.all_reduce_start`): ``wait()`` waits for them
    within the group's time limit and returns the arrays, which hold the result from then on."""

    def __init__(self, group, what, arrays, requests, host, nccl_event):
        self.group, self.what, self.arrays = group, what, arrays
        self._requests, self._host, self._event, self._done = requests, host, nccl_event, False

    def is_completed(self) -> bool:
        """True once ``wait()`` has returned."""
        return self._done

    def poll(self) -> None:
        """Let MPI move the collectives on, without waiting (MPICH progresses them only inside MPI calls)."""
        self.test()

    def test(self) -> bool:
        """Move the collectives on (as :meth:`poll`); True when they are all done (``wait()`` is still needed)."""
        if self._done:
            return True
        mpi_done = not self._requests or self.group._MPI.Request.Testall(self._requests)
        return mpi_done and (self._event is None or self._event.done)

    def wait(self, timeout=...):
        """Wait for the collectives (``timeout``: seconds, the group's by default, None: no limit; then
        :class:`DistributedError`); copy the host-staged ones back. Returns the arrays."""
        if not self._done:
            group = self.group
            group.wait(self._requests, self.what, timeout)
            if self._event is not None:
                group._wait_nccl(self.what, timeout, self._event)
            for array, buf in self._host:
                if buf is not array:
                    array[...] = backend.get_array_module(array).asarray(buf)
            self._done = True
        return self.arrays


class ProcessGroup:
    """The processes of one job (an MPI communicator) and the collectives minicnn needs.

    ``rank``, ``world_size``; ``local_rank``, ``local_size`` (the processes on this machine).
    Collectives work in place on contiguous arrays: NumPy arrays go through MPI; CuPy arrays go
    through NCCL once :meth:`init_nccl` has run, else through MPI by way of a host copy.
    ``bytes_all_reduced`` and ``bytes_broadcast`` count the bytes this process has given to
    :meth:`all_reduce_` and :meth:`broadcast_`.
    """

    def __init__(self, comm, MPI, timeout=None):
        self.comm, self._MPI = comm, MPI
        self.rank, self.world_size = comm.Get_rank(), comm.Get_size()
        local = comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        self.timeout = default_timeout() if timeout is None else float(timeout)
        if not self.timeout > 0:
            raise ValueError(f"init_process_group: timeout must be > 0 seconds, got {timeout!r}")
        self.nccl = None
        self.bytes_all_reduced = self.bytes_broadcast = 0

    def __repr__(self):
        return (f"ProcessGroup(rank={self.rank}, world_size={self.world_size}, local_rank={self.local_rank}, "
                f"nccl={self.nccl is not None}, timeout={self.timeout:g})")

    # ------------------------------------------------------------------ waiting, bounded

    def wait(self, requests, what, timeout=...):
        """Wait for MPI requests, polling; raise :class:`DistributedError` after ``timeout`` seconds
        (the group's by default; None: no limit)."""
        timeout = self.timeout if timeout is ... else timeout
        start = time.monotonic()
        while not self._MPI.Request.Testall(requests):
            waited = time.monotonic() - start
            if timeout is not None and waited > timeout:
                raise self._timed_out(what, timeout)
            if waited > 0.02:          # spin for the first 20 ms (most collectives), then poll gently
                time.sleep(0.0005)

    def _wait_nccl(self, what, timeout=..., event=None):
        timeout = self.timeout if timeout is ... else timeout
        if not self.nccl.wait(timeout, event):
            raise self._timed_out(f"{what} (NCCL)", timeout)

    def _timed_out(self, what, timeout):
        return DistributedError(
            f"{what}: rank {self.rank} of {self.world_size} got no answer from the other processes within "
            f"{timeout:g} s: one of them died, hangs, or took another path (raise the limit with "
            "MINICNN_DIST_TIMEOUT if it is only slow)")

    # ------------------------------------------------------------------ collectives

    def all_reduce_(self, *arrays, op="sum", timeout=...):
        """Sum (or max, min) each array over every process, in place; the collectives of all the
        arrays are started first, then waited for together. Returns the arrays."""
        return self.all_reduce_start(*arrays, op=op).wait(timeout)

    def all_reduce_start(self, *arrays, op="sum"):
        """Start the in-place sum (max, min) of each array over every process and return at once: a
        :class:`Work` whose ``wait()`` finishes it (``MPI_Iallreduce``; NCCL on its own CUDA stream).
        Every process must start the same collectives in the same order. Until ``wait()`` returns, the
        arrays must not be read or written."""
        if op not in _OPS:
            raise ValueError(f"all_reduce_: op must be one of {', '.join(_OPS)}, got {op!r}")
        mpi_op = {"sum": self._MPI.SUM, "max": self._MPI.MAX, "min": self._MPI.MIN}[op]
        self.bytes_all_reduced += sum(a.nbytes for a in arrays)
        return self._start("all_reduce_", arrays, f"all_reduce of {len(arrays)} array(s)",
                           lambda buf: self.comm.Iallreduce(self._MPI.IN_PLACE, buf, op=mpi_op),
                           lambda array: self.nccl.all_reduce_(array, op))

    def broadcast_(self, *arrays, root=0, timeout=...):
        """Give every process ``root``'s values of the arrays, in place. Returns the arrays."""
        self.bytes_broadcast += sum(a.nbytes for a in arrays)
        return self._start("broadcast_", arrays, f"broadcast of {len(arrays)} array(s) from rank {root}",
                           lambda buf: self.comm.Ibcast(buf, root=root),
                           lambda array: self.nccl.broadcast_(array, root)).wait(timeout)

    def _start(self, name, arrays, what, start_mpi, start_nccl):
        """Start one collective per array (NCCL for CuPy arrays once :meth:`init_nccl` ran; else MPI, a
        CuPy array by way of a host copy); the :class:`Work` that waits for them."""
        host, requests, on_gpus = [], [], False
        for array in arrays:
            xp = backend.get_array_module(array)
            if not array.flags.c_contiguous:
                raise ValueError(f"{name}: the array must be C-contiguous (got strides {array.strides})")
            if xp is not np and self.nccl is not None:
                start_nccl(array)
                on_gpus = True
                continue
            buf = array if xp is np else backend.to_numpy(array)
            host.append((array, buf))
            requests.append(start_mpi(buf))
        return Work(self, what, arrays, requests, host, self.nccl.record() if on_gpus else None)

    def all_reduce_host(self, values, op="sum", timeout=...) -> np.ndarray:
        """``values`` (numbers) reduced over every process, as a float64 NumPy array (metrics, counts)."""
        array = np.array(values, dtype=np.float64).reshape(-1)
        self.all_reduce_(array, op=op, timeout=timeout)
        self.bytes_all_reduced -= array.nbytes       # bookkeeping, not gradients
        return array

    def broadcast_object(self, obj=None, root=0, timeout=...):
        """``root``'s ``obj`` on every process: numbers, strings, lists, dicts (sent as JSON, so tuples
        arrive as lists, and nothing is ever unpickled)."""
        if self.rank == root:
            data = np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8).copy()
            size = np.array([data.size], dtype=np.int64)
        else:
            size = np.zeros(1, dtype=np.int64)
        self.broadcast_(size, root=root, timeout=timeout)
        if self.rank != root:
            data = np.empty(int(size[0]), dtype=np.uint8)
        self.broadcast_(data, root=root, timeout=timeout)
        return json.loads(data.tobytes().decode()) if self.rank != root else json.loads(json.dumps(obj))

    def barrier(self, timeout=...):
        """Wait until every process has reached this call."""
        self.wait([self.comm.Ibarrier()], "barrier", timeout)

    def on_root(self, fn, root=0, timeout=None):
        """``fn()`` run by ``root`` alone, its result (JSON-able) handed to every process (work done
        first or once for all: checking a checkpoint, a download). If it fails there, ``root`` raises the error and the others
        :class:`RankFailed` (so that only one process reports it). ``timeout``: how long the others
        wait (default None: no limit, a download may take long; if ``root`` dies, the job ends)."""
        if self.rank == root:
            try:
                result = fn()
            except BaseException as exc:
                code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else \
                    130 if isinstance(exc, KeyboardInterrupt) else 1
                self.broadcast_object(("error", f"{type(exc).__name__}: {exc}", code), root, timeout)
                raise
            return self.broadcast_object(("ok", result, 0), root, timeout)[1]   # as the others get it
        kind, value, code = self.broadcast_object(None, root, timeout)
        if kind == "error":
            raise RankFailed(f"rank {root} failed: {value}", code)
        return value

    # ------------------------------------------------------------------ GPUs, failures

    def init_nccl(self):
        """Put this process on GPU ``local_rank`` (modulo the GPUs of the machine) and make the NCCL
        communicator that CuPy arrays then go through (the NCCL id is sent over MPI). Returns self."""
        if self.nccl is None:
            self.nccl = NcclCommunicator(self)
        return self

    def abort(self, code=1):
        """End every process of the job now with exit status ``code`` (``MPI_Abort``), after flushing
        this process's output. For a failure on one process: a plain exit would leave the others waiting."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        # The launcher forwards each process's output through pipes of its own, and MPI_Abort kills
        # the job at once: give it a moment to pass on the lines just written (the error, where to
        # resume), which were lost now and then (an empty stderr in 2 of some 60 test runs).
        time.sleep(ABORT_GRACE_S)
        self.comm.Abort(int(code))


# --------------------------------------------------------------------------- the default group

_group = None


def init_process_group(backend="mpi", timeout=None, abort_on_exception=True) -> ProcessGroup:
    """Join the job (``mpiexec -n N``; without it, a job of one process) and return its group.

    ``backend``: ``"mpi"`` (CPU; CuPy arrays by way of the host), or ``"nccl"`` (also puts this
    process on its GPU and makes the NCCL communicator: CuPy gradients are then all-reduced on the
    devices). ``timeout``: the limit of every collective in seconds (default ``$MINICNN_DIST_TIMEOUT``
    or 300). ``abort_on_exception``: an exception that nothing catches ends the whole job
    (``MPI_Abort``, after the traceback) instead of leaving the other processes waiting.
    A second call returns the same group.
    """
    global _group
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: backend must be 'mpi' or 'nccl', got {backend!r}")
    if _group is None:
        MPI = import_mpi()
        group = ProcessGroup(MPI.COMM_WORLD, MPI, timeout)
        if abort_on_exception:
            _install_excepthook(group)
        _group = group
    if backend == "nccl":
        _group.init_nccl()
    return _group


def _install_excepthook(group):
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        if group.world_size > 1:
            print(f"minicnn.distributed: rank {group.rank} of {group.world_size} failed ({kind.__name__}); "
                  "ending the job", file=sys.stderr)
            group.abort(130 if issubclass(kind, KeyboardInterrupt) else 1)
    sys.excepthook = hook


def is_initialized() -> bool:
    """True once ``init_process_group()`` has run (and ``destroy_process_group()`` has not)."""
    return _group is not None


def default_group() -> ProcessGroup:
    """The group of ``init_process_group()``; a RuntimeError before it."""
    if _group is None:
        raise RuntimeError("the default process group is not initialised: call "
                           "minicnn.distributed.init_process_group() first (and start the job with mpiexec)")
    return _group


def get_rank() -> int:
    """This process's rank in the default group."""
    return default_group().rank


def get_world_size() -> int:
    """The number of processes of the default group."""
    return default_group().world_size


def destroy_process_group() -> None:
    """Forget the default group (and free its NCCL communicator); MPI itself ends with the process."""
    global _group
    if _group is not None and _group.nccl is not None:
        _group.nccl.destroy()
    _group = None
