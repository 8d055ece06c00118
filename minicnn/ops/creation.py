"""Making tensors: ``tensor`` (a copy), ``as_tensor``/``from_numpy`` (shared memory), ``zeros``,
``ones``, ``full``, ``*_like``, ``randn``, ``rand``, ``arange``; and the in-place fills ``zero_``,
``fill_``, ``copy_`` (outside the graph: for initialising leaves).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..autograd import Tensor


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of ``data``: a list, scalar, NumPy or CuPy array, or Tensor (``torch.tensor``).

    Python floats become float32 (the default dtype); arrays keep their dtype. The result never
    shares memory with ``data`` (``as_tensor`` and ``from_numpy`` do, where they can).
    """
    if isinstance(data, Tensor):
        data = data.data
    t = Tensor(data, requires_grad=False, dtype=dtype, device=device)
    if t.data is data or t.data.base is not None:       # no conversion happened: still data's memory
        t.data = t.data.copy()
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """A tensor sharing ``data``'s memory when it is already an array of that dtype on that device
    (``torch.as_tensor``); otherwise a converted copy."""
    if isinstance(data, Tensor):
        data = data.data
    return Tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor sharing the NumPy array's memory (``torch.from_numpy``): writes to one show in the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = backend.array_module(device)
    return Tensor(xp.zeros(_shape_arg(shape), dtype=backend.as_dtype(dtype)), requires_grad=requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = backend.array_module(device)
    return Tensor(xp.ones(_shape_arg(shape), dtype=backend.as_dtype(dtype)), requires_grad=requires_grad)


def _scalar_dtype(value):
    """PyTorch's dtype for a Python scalar: bool, int64, or the default float32."""
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(bool)
    return np.dtype(np.int64) if isinstance(value, numbers.Integral) else backend.DEFAULT_DTYPE


def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value as in PyTorch (int64, bool, float32)."""
    xp = backend.array_module(device)
    dtype = _scalar_dtype(fill_value) if dtype is None else np.dtype(dtype)
    return Tensor(xp.full(tuple(shape), fill_value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included (``torch.linspace``; float32)."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    xp = backend.array_module(device)
    data = xp.linspace(float(start), float(end), int(steps)).astype(backend.as_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples from the device's default generator (see ``minicnn.manual_seed``)."""
    dtype = backend.as_dtype(dtype)
    data = backend.generator(device).standard_normal(_shape_arg(shape), dtype=dtype)
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1)."""
    dtype = backend.as_dtype(dtype)
    data = backend.generator(device).random(_shape_arg(shape), dtype=dtype)
    return Tensor(data, requires_grad=requires_grad)


def arange(*args, dtype=None, device=None) -> Tensor:
    """Evenly spaced values (``torch.arange``): int64 for integer arguments, else float32."""
    xp = backend.array_module(device)
    if dtype is None:
        dtype = np.int64 if all(isinstance(a, numbers.Integral) for a in args) else backend.DEFAULT_DTYPE
    return Tensor(xp.arange(*args, dtype=dtype))




# --------------------------------------------------------------------------- in-place fills (on .data)

def zero_(self):
    self.data[...] = 0
    return self


def fill_(self, value):
    self.data[...] = value
    return self


def copy_(self, other):
    src = other.data if isinstance(other, Tensor) else other
    self.data[...] = backend.to_device(src, self.device) if hasattr(src, "shape") else src
    return self


Tensor.zero_, Tensor.fill_, Tensor.copy_ = zero_, fill_, copy_
