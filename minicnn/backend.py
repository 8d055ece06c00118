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

import sys

import numpy as np

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
        import cupy
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


def nccl_module():
    """CuPy's NCCL bindings (``cupy.cuda.nccl``, for ``minicnn.distributed`` on GPUs), or a
    ``RuntimeError`` saying how to get them."""
    cupy_module()
    try:
        from cupy.cuda import nccl
    except ImportError as exc:
        raise RuntimeError("CuPy's NCCL bindings (cupy.cuda.nccl) are missing: pip install nvidia-nccl-cu12 "
                           "(CUDA 12), or python -m cupyx.tools.install_library --library nccl --cuda 12.x") from exc
    return nccl


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
    raise ValueError(f"device {device!r} is not supported: minicnn runs on 'cpu' and 'cuda'")


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


_batch_shard = None       # (rank, world) while a data-parallel forward pass runs


class batch_shard:
    """``with batch_shard(rank, world):`` the batches inside are rows ``rank, rank + world, ...`` of a
    global batch ``world`` times larger (the layout of ``DistributedSampler``'s shards, which
    ``DistributedDataParallel`` sets around its forward pass). :func:`row_generator` then draws for
    the whole global batch and keeps this rank's rows, so that a data-parallel job's dropout masks
    are the ones one process draws for the global batch."""

    def __init__(self, rank, world):
        self.shard = (int(rank), int(world))

    def __enter__(self):
        global _batch_shard
        self._previous, _batch_shard = _batch_shard, self.shard

    def __exit__(self, *exc):
        global _batch_shard
        _batch_shard = self._previous
        return False


class _ShardRows:
    """A generator whose ``random(shape)`` draws ``world`` times the rows and keeps rows ``rank::world``."""

    def __init__(self, gen, rank, world):
        self.gen, self.rank, self.world = gen, rank, world

    def random(self, shape, dtype=np.float64):
        if not shape:
            return self.gen.random(shape, dtype=dtype)
        full = self.gen.random((shape[0] * self.world,) + tuple(shape[1:]), dtype=dtype)
        return full[self.rank::self.world]


def row_generator(device="cpu"):
    """The device's :func:`generator`, for random numbers drawn per row of a batch (dropout: only
    ``random``); inside :class:`batch_shard`, the rows of this rank of the global batch's draw."""
    gen = generator(device)
    return gen if _batch_shard is None or _batch_shard[1] == 1 else _ShardRows(gen, *_batch_shard)


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
