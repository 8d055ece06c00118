"""Host memory for the fast kernels: scratch buffers reused from call to call (``workspace``), and
glibc's malloc thresholds (``tune_malloc``)."""
from __future__ import annotations

import ctypes
import os
import sys
import threading

import numpy as np

def tune_malloc() -> bool:
    """Ask glibc's malloc to keep large freed blocks for reuse (Linux only); True when applied.

    NumPy code allocates many large temporaries. By default glibc serves every block over a
    (dynamic) threshold with a fresh ``mmap`` and returns it to the OS on ``free``, so each new
    temporary page-faults its way in again: measured here, about 12% of a batch-norm backward pass.
    Raising the mmap threshold to its maximum (32 MB) and the trim threshold to 2 GB keeps those
    blocks in the heap instead. It changes malloc for the whole process, so minicnn never does it
    on import: the training CLI and the benchmark call it, and your own scripts may.
    Set ``MINICNN_MALLOC_TUNING=0`` to leave malloc alone.
    """
    if os.environ.get("MINICNN_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):      # not glibc
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1))


# --------------------------------------------------------------------------- scratch buffers

WORKSPACE_MAX_BYTES = 64 << 20   # scratch buffers up to this size are kept for reuse
_workspaces = threading.local()


def workspace(xp, key: str, shape, dtype):
    """A scratch array for temporaries, reused from call to call (CPU only; contents undefined).

    Fresh multi-MB arrays are expensive on the CPU: the OS maps new zeroed pages on first touch.
    Each thread keeps one growing byte buffer per ``key``; never return a workspace array to a caller.
    On a GPU this is just ``xp.empty`` (CuPy's memory pool already recycles blocks).
    """
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if xp is not np or nbytes > WORKSPACE_MAX_BYTES:
        return xp.empty(shape, dtype=dtype)
    buffers = _workspaces.__dict__.setdefault("buffers", {})
    buf = buffers.get(key)
    if buf is None or buf.nbytes < nbytes:
        buf = buffers[key] = np.empty(max(nbytes, 64), dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)
