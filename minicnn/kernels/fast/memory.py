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
POOL_MAX_ENTRIES = 1024       # buffers tracked at most (a ResNet-50 train step uses about 160): past this,
                              # e.g. while a caller keeps thousands of outputs, new arrays are plain np.empty,
                              # which bounds the cost of a miss (it looks at every buffer)


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
        entry = _free_entry(nbytes) or _best_fit(nbytes)
        if entry is None:
            if pool_entries() < POOL_MAX_ENTRIES or _pool_state["clock"] % 256 == 0:
                _make_room(nbytes)
            if pool_entries() >= POOL_MAX_ENTRIES:
                return np.empty(shape, dtype=dtype)
            raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)     # the owner: its views count as its references
            entry = [raw, -raw.ctypes.data % ALIGNMENT, 0]
            _pool.setdefault(nbytes, []).append(entry)
            _pool_state["bytes"] += nbytes
        entry[2] = _pool_state["clock"]
        buffer, start = entry[0], entry[1]
        return buffer[start:start + nbytes].view(dtype).reshape(shape)


def _free_entry(size):
    """A free buffer of exactly ``size`` bytes, or None."""
    entries = _pool.get(size, ())
    for i in range(len(entries)):
        if _refs(entries, i) == _FREE_REFS:
            return entries[i]
    return None


BEST_FIT_RATIO = 2   # a request takes a free buffer up to this many times its size when none has its own size


def _best_fit(nbytes):
    """The smallest free buffer of nbytes to BEST_FIT_RATIO * nbytes bytes, or None: so a forward pass
    under ``no_grad``, whose layers free outputs of sizes that rarely repeat, reuses memory as malloc
    would instead of growing the pool."""
    for size in sorted(s for s in _pool if nbytes < s <= BEST_FIT_RATIO * nbytes):
        entry = _free_entry(size)
        if entry is not None:
            return entry
    return None


def empty_like(a):
    """``empty`` of ``a``'s shape and dtype (C order)."""
    return empty(get_array_module(a), a.shape, a.dtype)


STALE_AFTER = 4             # a free buffer is given back after (this) x (the pool's buffer count) requests without use
FREE_MAX_BYTES = 256 << 20  # and the least recently used free buffers beyond this many bytes, at a miss


def _make_room(nbytes):
    """On a miss (a new buffer of ``nbytes`` is needed): give back to malloc the free buffers that
    were not used for a long time (a shape seen in the past, e.g. the last, smaller batch of an
    epoch), and the least recently used ones beyond ``FREE_MAX_BYTES`` of free memory with the new
    one. A training step asks for the same sizes every time, so once the pool holds them there are
    no misses; a forward pass under ``no_grad`` frees each layer's output as the next one comes,
    in sizes that rarely repeat within the pass, and this keeps its free memory (which malloc would
    have reused for other sizes) bounded. Called with the lock held."""
    count = pool_entries()
    oldest = _pool_state["clock"] - STALE_AFTER * max(count, 64)
    free = sorted(((entry[2], size, id(entry)) for size, entries in _pool.items()
                   for i, entry in enumerate(entries) if _refs(entries, i) == _FREE_REFS))
    total = sum(size for _, size, _ in free)
    dropped = set()
    for last_use, size, key in free:            # least recently used first
        if last_use >= oldest and total + nbytes <= FREE_MAX_BYTES:
            break
        dropped.add(key)
        total -= size
        _pool_state["bytes"] -= size
    if dropped:
        for size, entries in list(_pool.items()):
            entries[:] = [entry for entry in entries if id(entry) not in dropped]
            if not entries:
                del _pool[size]


def release_memory() -> int:
    """Give every free recycled buffer back to malloc (and so, for large ones, to the OS); returns the
    bytes released. Buffers still in use stay in the pool and are recycled once free.

    ``minicnn.release_memory()``: the fast kernels keep the large arrays of the last steps for the
    next ones (up to 256 MB of free ones at a miss, more while a step's sizes repeat), as CuPy's
    pool does on a GPU (``cupy.get_default_memory_pool().free_all_blocks()`` is its twin there).
    ``training.fit`` calls it when it returns; call it after your own loop to hand memory back."""
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


def pool_entries() -> int:
    """How many buffers the pool tracks (in use or free): a few per size, and few sizes."""
    return sum(len(entries) for entries in _pool.values())


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
