"""Array backends: the one place that chooses NumPy (``"cpu"``) or CuPy (``"cuda"``).

Everything else in minicnn asks this module for its array library (``xp``):

* ``get_array_module(*arrays)`` gives ``numpy`` or ``cupy`` for the arrays at hand,
  so a kernel written against ``xp`` runs unchanged on either device;
* ``array_module(device)`` gives the library for a device name;
* ``to_device(array, device)`` moves an array between host and GPU (an explicit,
  visible copy: nothing else in minicnn copies between devices behind your back).

CuPy is optional. It is imported lazily the first time a CUDA device is asked for, and
asking for ``"cuda"`` without CuPy or without a GPU raises a ``RuntimeError`` that says
how to install the ``gpu`` extra.
"""
from __future__ import annotations

import ctypes
import os
import sys
import queue
import threading

import numpy as np
from threadpoolctl import ThreadpoolController

DEFAULT_DTYPE = np.dtype(np.float32)
"""Default floating dtype of new tensors and parameters (as in PyTorch)."""

_CUPY_INSTALL_HINT = (
    "Install the GPU extra on a machine with an NVIDIA GPU: `pip install -e .[gpu]` (CuPy for a "
    "CUDA 12 driver) or `pip install -e .[gpu-cuda13]` (CUDA 13)."
)

_cupy = None          # the cupy module once imported successfully
_cupy_error = None    # why importing / initialising cupy failed, if it did


def _load_cupy():
    """Import CuPy once; remember the failure reason instead of raising."""
    global _cupy, _cupy_error
    if _cupy is not None or _cupy_error is not None:
        return _cupy
    try:
        import cupy  # noqa: PLC0415  (optional dependency: imported only on demand)
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("CuPy found no CUDA device")
        _cupy = cupy
    except Exception as exc:  # ImportError, CUDARuntimeError, ...
        _cupy_error = exc
    return _cupy


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    return _load_cupy() is not None


def cupy_module():
    """The ``cupy`` module, or a clear ``RuntimeError`` when it cannot be used."""
    cp = _load_cupy()
    if cp is None:
        raise RuntimeError(f"device 'cuda' is not available ({_cupy_error}). {_CUPY_INSTALL_HINT}")
    return cp


# --------------------------------------------------------------------------- devices

def normalize_device(device) -> str:
    """Map a device spec (``None``, ``"cpu"``, ``"cuda"``, ``"cuda:0"``, ``"gpu"``) to ``"cpu"`` or ``"cuda"``.

    minicnn uses the current CUDA device; ``"cuda:N"`` with N > 0 is accepted only when
    it names the current device (multi-GPU placement is not supported).
    """
    if device is None:
        return "cpu"
    if not isinstance(device, str):
        device = str(device)
    name = device.lower()
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "gpu") or name.startswith("cuda:"):
        cp = cupy_module()
        if name.startswith("cuda:"):
            index = int(name.split(":", 1)[1])
            if index != cp.cuda.runtime.getDevice():
                raise ValueError(f"device {device!r}: minicnn only uses the current CUDA device "
                                 f"(cuda:{cp.cuda.runtime.getDevice()})")
        return "cuda"
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def array_module(device):
    """The array library (``numpy`` or ``cupy``) for a device name."""
    return np if normalize_device(device) == "cpu" else cupy_module()


def get_array_module(*arrays):
    """``numpy`` or ``cupy``, whichever holds the given arrays (NumPy for scalars / None).

    Kernels call this on their inputs instead of importing an array library, so that
    they run unchanged on both devices.
    """
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
        return np
    cupy = sys.modules.get("cupy")     # the caller imported CuPy before minicnn needed it
    if cupy is not None and any(isinstance(a, cupy.ndarray) for a in arrays):
        return cupy_module()
    return np


def device_of(array) -> str:
    """``"cuda"`` for a CuPy array, ``"cpu"`` otherwise."""
    return "cuda" if get_array_module(array) is not np else "cpu"


def to_device(array, device):
    """Return ``array`` on ``device``; the same object when it is already there."""
    device = normalize_device(device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return _cupy.asnumpy(array)
    return cupy_module().asarray(array)


def to_numpy(array) -> np.ndarray:
    """A NumPy view or copy of any array (copies from the GPU)."""
    if get_array_module(array) is not np:
        return _cupy.asnumpy(array)
    return np.asarray(array)


# --------------------------------------------------------------------------- dtypes

def as_dtype(dtype) -> np.dtype:
    """Normalise a dtype spec (``None`` -> the default float32, ``"float64"``, ``np.float64``...)."""
    return DEFAULT_DTYPE if dtype is None else np.dtype(dtype)


def is_floating(dtype) -> bool:
    """True for floating-point dtypes (only these carry gradients)."""
    return np.dtype(dtype).kind == "f"


# --------------------------------------------------------------------------- random numbers

_generators: dict = {}


def manual_seed(seed: int) -> None:
    """Seed every random generator minicnn uses (parameter init, ``randn``, dropout), on every device."""
    _generators.clear()
    _generators["cpu"] = np.random.default_rng(seed)
    if _cupy is not None:
        _generators["cuda"] = _cupy.random.default_rng(seed)
    _generators["seed"] = seed


def generator(device="cpu"):
    """The default random ``Generator`` of a device (NumPy's or CuPy's), seeded by ``manual_seed``.

    Without a call to ``manual_seed`` the generators start from fresh OS entropy, as PyTorch's do.
    """
    device = normalize_device(device)
    if device not in _generators:
        seed = _generators.get("seed")
        _generators[device] = (np.random.default_rng(seed) if device == "cpu"
                               else cupy_module().random.default_rng(seed))
    return _generators[device]


# --------------------------------------------------------------------------- host memory

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


# --------------------------------------------------------------------------- CPU threads

_num_threads = None    # minicnn's CPU threads (None: not decided yet, see get_num_threads)
_workers = []          # the started worker threads (the calling thread is always one more)
_jobs = queue.SimpleQueue()
_blas = None           # threadpoolctl's view of the BLAS libraries loaded (made on first use)
_blas_hold = None      # the limit holding BLAS at one thread while minicnn runs its own threads
_blas_lock = threading.Lock()
_in_worker = threading.local()


def _default_num_threads() -> int:
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
