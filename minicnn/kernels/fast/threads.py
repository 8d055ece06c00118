"""minicnn's CPU threads: the fast kernels cut their work into slices (of the batch, the channels or
the parameters) and run one slice per thread.

NumPy releases the GIL inside copies, ufuncs and BLAS calls, so the slices really run at once.
``set_num_threads``/``get_num_threads`` (exported as ``minicnn.set_num_threads``, as in PyTorch) set
how many; ``batch_slices``/``balanced_slices`` cut the work; ``parallel_map`` runs the slices;
``elementwise`` cuts an element-wise pass. While minicnn runs more than one thread it holds the
BLAS library at one thread (two thread pools on the same cores fight). Only the fast kernels use
this module; the textbook kernels run in the calling thread.
"""
from __future__ import annotations

import contextlib
import os
import queue
import threading

import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_limits

from ...backend import get_array_module

_num_threads = None    # minicnn's CPU threads (None: not decided yet, see get_num_threads)
_workers = []          # the started worker threads (the calling thread is always one more)
_jobs = queue.SimpleQueue()
_blas = None           # threadpoolctl's view of the BLAS libraries loaded (made on first use)
_blas_hold = None      # the limit holding BLAS at one thread while minicnn runs its own threads
_blas_lock = threading.Lock()
_in_worker = threading.local()


def environment_error():
    """The message for a ``MINICNN_NUM_THREADS`` that is not a whole number >= 1, else None.
    (``OMP_NUM_THREADS`` is other libraries' too, and may hold forms minicnn does not read: a value
    minicnn cannot use there is passed over.)"""
    value = os.environ.get("MINICNN_NUM_THREADS", "").strip()
    if value and not (value.isdigit() and int(value) > 0):
        return f"MINICNN_NUM_THREADS must be a whole number >= 1, got {os.environ['MINICNN_NUM_THREADS']!r}"
    return None


def _default_num_threads() -> int:
    if environment_error():
        raise ValueError(environment_error())
    for var in ("MINICNN_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                 # not Linux
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """How many CPU threads minicnn's kernels use (``torch.get_num_threads``).

    Default: ``$MINICNN_NUM_THREADS``, else ``$OMP_NUM_THREADS``, else the CPUs this process may run on.
    """
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_num_threads()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` CPU threads in minicnn's kernels (``torch.set_num_threads``).

    minicnn splits its heavy kernels (convolution, pooling, batch-norm, linear layers, ReLU, the
    optimizer step) into ``n`` slices, of the batch, the channels or the parameters, and runs one
    slice per thread: NumPy releases the GIL in its copies,
    ufuncs and BLAS calls, so the threads really run at once. Two thread pools on the same cores
    fight (a BLAS library's idle threads spin for a while after each call), so while ``n > 1``
    minicnn holds the BLAS library (OpenBLAS, MKL, ...) at one thread, in the whole process, from
    the first parallel kernel on; ``set_num_threads(1)`` gives BLAS its own threads back.
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    if n == 1:
        _release_blas()
    _num_threads = n      # surplus workers, if n shrinks, just stay idle


def _blas_libraries():
    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    return _blas


def _hold_blas():
    """Hold the BLAS libraries at one thread (until ``_release_blas``)."""
    global _blas_hold
    if _blas_hold is None:
        with _blas_lock:                 # (two user threads may start their first kernels at once)
            if _blas_hold is None:
                _blas_hold = _blas_libraries().limit(limits=1, user_api="blas")


def _release_blas():
    global _blas_hold
    with _blas_lock:
        if _blas_hold is not None:
            _blas_hold.restore_original_limits()
            _blas_hold = None


def batch_slices(n: int, xp=np, min_size: int = 1) -> list:
    """Cut ``range(n)`` into at most ``get_num_threads()`` contiguous slices ``(start, stop)`` of
    nearly equal size, none smaller than ``min_size`` (one slice on a GPU, or inside a worker)."""
    parts = get_num_threads() if xp is np and not getattr(_in_worker, "active", False) else 1
    parts = max(1, min(parts, n // max(1, min_size)))
    return [(n * k // parts, n * (k + 1) // parts) for k in range(parts)]


MIN_ELEMENTWISE_VALUES = 1 << 18   # an element-wise pass is cut for the threads only above this many values


def elementwise(fn, *arrays):
    """``fn(*arrays)`` for a pass that treats every element alike, on matching slices of the arrays'
    first axis, one slice per CPU thread. The arrays (inputs and outputs) must share their shape;
    ``fn`` writes its results through ``out=`` into the output slices it is given.
    """
    if arrays[0].ndim == 0:
        arrays = tuple(a.reshape(1) for a in arrays)
    n = len(arrays[0])
    per_row = max(1, arrays[0].size // max(n, 1))
    slices = batch_slices(n, get_array_module(arrays[0]), min_size=-(-MIN_ELEMENTWISE_VALUES // per_row))
    parallel_map(lambda a, b: fn(*(array[a:b] for array in arrays)), slices)


def balanced_slices(sizes, min_total: int = 1 << 16) -> list:
    """Cut a list of work items with these ``sizes`` into at most ``get_num_threads()`` contiguous
    slices ``(start, stop)`` of nearly equal total size (one slice if the total is below ``min_total``)."""
    total, parts = sum(sizes), get_num_threads()
    if parts <= 1 or total < min_total or getattr(_in_worker, "active", False):
        return [(0, len(sizes))]
    slices, start, done, target = [], 0, 0, total / parts
    for i, size in enumerate(sizes):
        done += size
        if done >= target and i + 1 < len(sizes) and len(slices) < parts - 1:
            slices.append((start, i + 1))
            start = i + 1
            target = done + (total - done) / (parts - len(slices))    # share out what is left
    slices.append((start, len(sizes)))
    return slices


def parallel_map(fn, slices, heavy: bool = False) -> list:
    """``[fn(start, stop) for (start, stop) in slices]``, the slices run at once on minicnn's threads.

    The calling thread takes the last slice itself and returns (or raises) only once every slice
    is finished. Results come back in the order of ``slices`` (so a sum of them is the same from
    run to run); if slices fail, the first failure in that order is raised. Handing a slice to a
    worker and getting it back costs some 10 to 70 microseconds (waking a sleeping thread), so
    callers only cut work that takes much longer than that. Inside a slice, or with one thread,
    everything runs in the calling thread. ``heavy``: if there is a single slice (a batch of
    one image), let the BLAS library use minicnn's threads inside it.
    """
    if getattr(_in_worker, "active", False) or get_num_threads() == 1 or len(slices) <= 1:
        if get_num_threads() > 1:
            _hold_blas()       # from the first kernel on, whether cut or not: the same BLAS, the same sums
        if heavy and len(slices) == 1 and _blas_hold is not None and not getattr(_in_worker, "active", False):
            with _blas_libraries().limit(limits=get_num_threads(), user_api="blas"):
                return [fn(*slices[0])]
        return [fn(*s) for s in slices]
    _hold_blas()
    while len(_workers) < len(slices) - 1:
        worker = threading.Thread(target=_worker_loop, name=f"minicnn-{len(_workers) + 1}", daemon=True)
        worker.start()
        _workers.append(worker)
    handed = []
    for s in slices[:-1]:
        done, box = threading.Lock(), []
        done.acquire()                   # released by the worker when the slice is finished
        _jobs.put((fn, s, done, box))
        handed.append((done, box))
    try:
        last = _run_marked(fn, slices[-1])
    finally:
        for done, _ in handed:           # never leave while a worker may still write
            done.acquire()
    for _, box in handed:
        if box[0] is _FAILED:
            raise box[1]
    return [box[0] for _, box in handed] + [last]


_FAILED = object()


def _worker_loop():
    while True:
        fn, s, done, box = _jobs.get()
        try:
            box.append(_run_marked(fn, s))
        except BaseException as exc:     # handed back to the caller, which raises it
            box.extend((_FAILED, exc))
        finally:
            done.release()
            # Drop the job while waiting for the next: its closure holds the kernel's arrays, which
            # would otherwise stay alive (and their memory unrecyclable) until the next parallel kernel.
            del fn, s, done, box


def _run_marked(fn, s):
    """fn(*s) marked as running inside a parallel kernel: kernels it calls run whole (no nested split)."""
    outer = getattr(_in_worker, "active", False)
    _in_worker.active = True
    try:
        return fn(*s)
    finally:
        _in_worker.active = outer


def _forget_workers_after_fork():
    global _jobs
    _workers.clear()                     # the worker threads do not exist in a forked child
    _jobs = queue.SimpleQueue()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers_after_fork)


@contextlib.contextmanager
def using(n):
    """Run minicnn's kernels on ``n`` CPU threads inside the block (no-op for ``None``).

    ``set_num_threads(n)``, put back afterwards. With one thread the BLAS library is held
    at one thread too, so that ``--threads 1`` means one core.
    """
    if n is None:
        yield
        return
    before = get_num_threads()
    set_num_threads(n)
    try:
        if n == 1:
            with threadpool_limits(limits=1, user_api="blas"):
                yield
        else:
            yield
    finally:
        set_num_threads(before)
