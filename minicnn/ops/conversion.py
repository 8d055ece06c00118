"""A tensor out to Python and NumPy: ``repr``, ``numpy()``, ``np.asarray(t)``, ``item()``, ``tolist()``,
``bool``/``float``/``int``, attached to ``Tensor`` (none of them records a graph)."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Tensor


def _repr(self):
    extra = "" if self.device == "cpu" else f", device='{self.device}'"
    if self.dtype != backend.DEFAULT_DTYPE:
        extra += f", dtype={self.dtype}"
    if self._ctx is not None:
        extra += f", grad_fn=<{self._ctx.name}>"
    elif self.requires_grad:
        extra += ", requires_grad=True"
    body = np.array2string(backend.to_numpy(self.data), separator=", ", prefix="tensor(")
    return f"tensor({body}{extra})"


def numpy(self) -> np.ndarray:
    """The data as a NumPy array (shares memory on the CPU, copies from a GPU)."""
    return backend.to_numpy(self.data)


def _array(self, dtype=None, copy=None):
    """``np.asarray(t)`` for a CPU tensor (shares memory). A GPU tensor refuses, as in PyTorch:
    copying to the host is always explicit (``t.numpy()`` or ``t.cpu()``)."""
    if self.device != "cpu":
        raise TypeError("can't convert a cuda tensor to a NumPy array implicitly: "
                        "use t.numpy() (copies to the host) or t.cpu()")
    return np.array(self.data, dtype=dtype, copy=True) if copy else np.asarray(self.data, dtype=dtype)


def item(self):
    if self.data.size != 1:
        raise ValueError(f"item(): only one-element tensors can be converted to a Python scalar, got shape {tuple(self.shape)}")
    return self.data.reshape(()).item()


def _bool(self):
    if self.data.size != 1:
        raise ValueError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
    return bool(self.data)


Tensor.__repr__ = _repr
Tensor.numpy = numpy
Tensor.__array__ = _array
Tensor.item = item
Tensor.tolist = lambda self: backend.to_numpy(self.data).tolist()
Tensor.__bool__ = _bool
Tensor.__float__ = lambda self: float(self.item())
Tensor.__int__ = lambda self: int(self.item())
