"""Host memory for the fast kernels: arrays recycled from step to step (``empty``), scratch buffers
reused from call to call (``workspace``), and glibc's malloc thresholds (``tune_malloc``).

Why recycle.  A training step allocates the same large arrays every time (activations, their
gradients, weight gradients). glibc serves a block above its mmap threshold with a fresh ``mmap``
and gives it back on ``free`` (and trims the top of its heaps), so each step page-faults those
arrays in again: the kernel zeroes every new page, 10 to 20 % of a small network's step here.
``empty`` keeps the memory of the large arrays it hands out and gives it out again, once nothing
uses it any more, to the next request of the same size: after the first step no page is faulted
in again, without changing how the process's malloc behaves (``tune_malloc`` changes that for the
whole process instead, and only the training CLI and the benchmark call it).
"""
from __future__ import annotations

import ctypes
import math
import os
import sys
import threading

import numpy as np

from ...backend import get_array_module


def tune_malloc() -> bool:
    """Ask glibc's malloc to keep large freed blocks for reuse (Linux only); True when applied.

    NumPy code allocates many large temporaries. By default glibc serves every block over a
    (dynamic) threshold with a fresh ``mmap`` and returns it to the OS on ``free``, so each new
    temporary page-faults its way in again. Raising the mmap threshold to its maximum (32 MB) and the
    trim threshold to 2 GB keeps those blocks in the heap instead. It changes malloc for the whole
    process, so minicnn never does it on import: the training CLI and the benchmark call it, and
    your own scripts may. The fast kernels' own large arrays do not need it (``empty`` recycles
    them); it still helps the temporaries of NumPy expressions outside them.
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


# --------------------------------------------------------------------------- recycled arrays

POOL_MIN_BYTES = 128 << 10    # smaller arrays come from np.empty (glibc's heap serves them well)
ALIGNMENT = 64                # bytes: a cache line, and the width of an AVX-512 register
_pool_lock = threading.Lock()
_pool = {}                    # nbytes -> list of [buffer, offset, last use]; a buffer is free when only the pool holds it
_pool_state = {"clock": 0, "bytes": 0}


def _refs(entries, i):
    return sys.getrefcount(entries[i][0])


_FREE_REFS = _refs([[np.empty(1), 0, 0]], 0)   # the count of a buffer only the pool holds (calibrated, not assumed)


def empty(xp, shape, dtype):
    """``xp.empty(shape, dtype)``, from recycled memory on the CPU (see the module docstring).

    The array is an ordinary NumPy array (a view of a pooled byte buffer, 64-byte aligned): the
    buffer goes back to the pool when the array and every view of it are gone, and is handed out
    again to the next request of the same size. Small arrays, and arrays on a GPU (CuPy's pool
    already recycles), are plain ``xp.empty``. ``release_memory()`` gives the free buffers back.
    """
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = dtype.itemsize
    for s in shape:
        nbytes *= s
    if xp is not np or nbytes < POOL_MIN_BYTES:
        return xp.empty(shape, dtype=dtype)
    with _pool_lock:
        _pool_state["clock"] += 1
        entries = _pool.get(nbytes, ())
        for i in range(len(entries)):
            if _refs(entries, i) == _FREE_REFS:
                entry = entries[i]
                entry[2] = _pool_state["clock"]
                break
        else:
            raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)     # the owner: its views count as its references
            entry = [raw, -raw.ctypes.data % ALIGNMENT, _pool_state["clock"]]
            _forget_stale()
            _pool.setdefault(nbytes, []).append(entry)
            _pool_state["bytes"] += nbytes
        buffer, start = entry[0], entry[1]
        return buffer[start:start + nbytes].view(dtype).reshape(shape)


def empty_like(a):
    """``empty`` of ``a``'s shape and dtype (C order)."""
    return empty(get_array_module(a), a.shape, a.dtype)


STALE_AFTER = 4   # a free buffer is given back after (this) x (the pool's buffer count) requests without use


def _forget_stale():
    """On a miss (a new buffer is needed): give back the free buffers that have not been used for a
    long time (a shape seen in the past, e.g. the last, smaller batch of an epoch), so the pool
    follows the sizes the program uses now. Called with the lock held."""
    count = sum(len(entries) for entries in _pool.values())
    oldest = _pool_state["clock"] - STALE_AFTER * max(count, 64)
    for nbytes, entries in list(_pool.items()):
        keep = [entries[i] for i in range(len(entries)) if entries[i][2] >= oldest or _refs(entries, i) != _FREE_REFS]
        _pool_state["bytes"] -= nbytes * (len(entries) - len(keep))
        if keep:
            entries[:] = keep
        else:
            del _pool[nbytes]


def release_memory() -> int:
    """Give every free recycled buffer back to malloc (and so, for large ones, to the OS); returns the
    bytes released. Buffers still in use stay in the pool and are recycled once free."""
    released = 0
    with _pool_lock:
        for nbytes, entries in list(_pool.items()):
            keep = [entries[i] for i in range(len(entries)) if _refs(entries, i) != _FREE_REFS]
            released += nbytes * (len(entries) - len(keep))
            if keep:
                entries[:] = keep
            else:
                del _pool[nbytes]
        _pool_state["bytes"] -= released
    return released


def pool_bytes() -> int:
    """Bytes of the recycled buffers the pool holds (in use or free)."""
    return _pool_state["bytes"]


# --------------------------------------------------------------------------- scratch buffers

WORKSPACE_MAX_BYTES = 64 << 20   # scratch buffers up to this size are kept for reuse
_workspaces = threading.local()


def workspace(xp, key: str, shape, dtype):
    """A scratch array for temporaries, reused from call to call (CPU only; contents undefined).

    Fresh multi-MB arrays are expensive on the CPU: the OS maps new zeroed pages on first touch.
    Each thread keeps one growing byte buffer per ``key``; never return a workspace array to a caller.
    On a GPU this is just ``xp.empty`` (CuPy's memory pool already recycles blocks).
    """
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize      # (np.prod of a tuple costs microseconds)
    if xp is not np or nbytes > WORKSPACE_MAX_BYTES:
        return xp.empty(shape, dtype=dtype)
    buffers = _workspaces.__dict__.setdefault("buffers", {})
    buf = buffers.get(key)
    if buf is None or buf.nbytes < nbytes:
        buf = buffers[key] = np.empty(max(nbytes, 64), dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)
