"""All-reduce and broadcast of CuPy arrays on the GPUs, through NCCL (``cupy.cuda.nccl``).

One communicator per process, one GPU per process: the process takes GPU ``local_rank`` (modulo
the GPUs the machine has), rank 0 makes the NCCL unique id, MPI carries it to the others, and
every process joins ``NcclCommunicator(world_size, id, rank)``. After that, gradients never
leave the devices: each bucket is one ``ncclAllReduce``, in place, on the communicator's own CUDA stream.

NCCL calls return at once and run on the communicator's own CUDA stream, which first waits for
the work already queued on the current stream (the gradients being copied into a bucket), so an
all-reduce overlaps the rest of the backward pass. :meth:`NcclCommunicator.record` marks the end
of what was started so far; :meth:`NcclCommunicator.wait` waits for such a mark with the group's
time limit (polling the CUDA event and NCCL's asynchronous error state; on a timeout it aborts the
communicator and the process group raises ``DistributedError``), then makes the current stream
wait for it too, so that the kernels queued after it see the result.

Needs CuPy with NCCL (``pip install nvidia-nccl-cu12`` next to ``cupy-cuda12x``, or CuPy's
``python -m cupyx.tools.install_library --library nccl``; ``backend.nccl_module()`` says so).
Recent NCCL versions refuse two ranks on one GPU ("Duplicate GPU detected"): give each process its own.
"""
from __future__ import annotations

import time

import numpy as np

from .. import backend


def nccl_dtype(nccl, dtype):
    """NCCL's code for a NumPy/CuPy dtype (a TypeError naming it when NCCL has none)."""
    codes = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64,
             "int32": nccl.NCCL_INT32, "int64": nccl.NCCL_INT64, "uint8": nccl.NCCL_UINT8, "int8": nccl.NCCL_INT8}
    name = np.dtype(dtype).name
    if name not in codes:
        raise TypeError(f"NCCL all-reduce: no NCCL type for dtype {name}")
    return codes[name]


class NcclCommunicator:
    """The NCCL communicator of one process of ``group`` (see the module's docstring)."""

    def __init__(self, group, nccl=None):
        cp = backend.cupy_module()
        self._cp, self._nccl, self.group = cp, nccl or backend.nccl_module(), group
        devices = cp.cuda.runtime.getDeviceCount()
        self.device = group.local_rank % devices
        cp.cuda.Device(self.device).use()
        uid = group.broadcast_object(list(self._nccl.get_unique_id()) if group.rank == 0 else None)
        self._comm = self._nccl.NcclCommunicator(group.world_size, tuple(uid), group.rank)
        self.stream = cp.cuda.Stream(non_blocking=True)      # the collectives' stream

    def _stream(self):
        """The collectives' stream, after it has been told to wait for the current stream's work so far."""
        ready = self._cp.cuda.Event(block=False, disable_timing=True)
        ready.record(self._cp.cuda.get_current_stream())
        self.stream.wait_event(ready)
        return self.stream

    def record(self):
        """A CUDA event marking the end of the collectives started so far."""
        event = self._cp.cuda.Event(block=False, disable_timing=True)
        event.record(self.stream)
        return event

    def all_reduce_(self, array, op="sum"):
        """Start the in-place sum (max, min) of ``array`` over the processes, on the collectives' stream."""
        ops = {"sum": self._nccl.NCCL_SUM, "max": self._nccl.NCCL_MAX, "min": self._nccl.NCCL_MIN}
        ptr = array.data.ptr
        self._comm.allReduce(ptr, ptr, array.size, nccl_dtype(self._nccl, array.dtype), ops[op], self._stream().ptr)

    def broadcast_(self, array, root=0):
        """Start the broadcast of ``root``'s ``array``, in place, on the collectives' stream."""
        ptr = array.data.ptr
        self._comm.broadcast(ptr, ptr, array.size, nccl_dtype(self._nccl, array.dtype), root, self._stream().ptr)

    def wait(self, timeout, event=None) -> bool:
        """Wait for ``event`` (:meth:`record`; None: everything started so far): True once it is done,
        and the current stream then waits for it too; False when ``timeout`` seconds (None: no limit)
        went by first, after aborting the communicator."""
        event = self.record() if event is None else event
        start = time.monotonic()
        while not event.done:
            self._comm.check_async_error()          # a peer that went away shows up here (NCCL >= 2.4)
            if timeout is not None and time.monotonic() - start > timeout:
                self._comm.abort()
                return False
            time.sleep(0.0002)
        self._cp.cuda.get_current_stream().wait_event(event)
        return True

    def destroy(self):
        self._comm.destroy()
