"""Reductions: ``sum``, ``mean``, ``max``, ``min``, ``amax``, ``amin`` (differentiable) and ``argmax``,
``argmin``, ``any``, ``all`` (not), over all axes or some, with NumPy's ``axis``/``keepdims`` or PyTorch's
``dim``/``keepdim``. ``max(dim)``/``min(dim)`` return ``(values, indices)`` as PyTorch's named tuples.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..checks import check_dim
from .arithmetic import maximum, minimum


def reduce_args(op, axis, keepdims, dim, keepdim, ndim):
    """Normalise reduction arguments to (sorted tuple of non-negative axes, or None; keepdims)."""
    if dim is not None:
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    if axis is None:
        return None, bool(keepdims)
    axes = (axis,) if not isinstance(axis, (tuple, list)) else tuple(axis)
    axes = tuple(sorted(check_dim(op, a, ndim) for a in axes))
    return (axes if ndim else None), bool(keepdims)      # a 0-d tensor takes dim 0 or -1: itself


def _keep(grad, shape, axis, keepdims):
    """Reshape a reduced gradient so it broadcasts against the input of ``shape``."""
    if axis is None:
        return grad.reshape((1,) * len(shape))
    if keepdims:
        return grad
    return grad.reshape(tuple(1 if i in axis else n for i, n in enumerate(shape)))


def _spread(grad, shape):
    """A fresh (writable) array of ``shape`` filled with the broadcast ``grad``."""
    out = get_array_module(grad).empty(shape, dtype=grad.dtype)
    out[...] = grad
    return out


class SumFunction(Function):
    """sum over ``axis``;  dx = g broadcast back to x's shape."""

    def forward(self, x, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, grad):
        return _spread(_keep(grad, self.shape, self.axis, self.keepdims), self.shape)


class MeanFunction(Function):
    """mean over ``axis``;  dx = g/n broadcast back (n = number of averaged elements)."""

    def forward(self, x, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        self.count = x.size if axis is None else int(np.prod([x.shape[a] for a in axis]))
        return x.mean(axis=axis, keepdims=keepdims)

    def backward(self, grad):
        return _spread(_keep(grad, self.shape, self.axis, self.keepdims) / self.count, self.shape)


def _arg_extremum(x, axis, keepdims, which):
    """argmax/argmin over several axes: the flat index within the reduced axes (first on ties)."""
    if axis is None:
        idx = getattr(x.reshape(-1), which)()
        return idx.reshape((1,) * x.ndim) if keepdims else idx
    if len(axis) == 1:
        return getattr(x, which)(axis=axis[0], keepdims=keepdims)
    kept = [a for a in range(x.ndim) if a not in axis]
    moved = x.transpose(kept + list(axis)).reshape([x.shape[a] for a in kept] + [-1])
    idx = getattr(moved, which)(axis=-1)
    return idx.reshape(_keep(idx, x.shape, axis, False).shape) if keepdims else idx


class _Extremum(Function):
    """max/min over ``axis``; the gradient goes to the FIRST arg-extremum of each reduced group.

    (PyTorch's ``max(dim)`` routes to its returned index too; its full ``max()`` splits the
    gradient evenly among ties, which we do not.)
    """

    which = "argmax"

    def forward(self, x, axis=None, keepdims=False):
        if x.size == 0:
            raise ValueError(f"{self.which[3:]}: reduction of an empty tensor of shape {tuple(x.shape)}")
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        self.index = _arg_extremum(x, axis, False, self.which)
        reduce = x.max if self.which == "argmax" else x.min
        return reduce(axis=axis, keepdims=keepdims)

    def backward(self, grad):
        xp = get_array_module(grad)
        shape, axis = self.shape, self.axis
        if axis is None:   # (index stays an array: int() would wait for a GPU)
            out = xp.zeros(int(np.prod(shape)), dtype=grad.dtype)
            out[self.index.reshape(1)] = grad.reshape(1)
            return out.reshape(shape)
        kept = [a for a in range(len(shape)) if a not in axis]
        flat = xp.zeros([shape[a] for a in kept] + [int(np.prod([shape[a] for a in axis]))], dtype=grad.dtype)
        g = grad.reshape([shape[a] for a in kept])
        xp.put_along_axis(flat, self.index[..., None], g[..., None], axis=-1)
        moved = flat.reshape([shape[a] for a in kept] + [shape[a] for a in axis])
        inverse = np.argsort(kept + list(axis))
        return xp.ascontiguousarray(moved.transpose(inverse))


class MaxFunction(_Extremum):
    which = "argmax"


class MinFunction(_Extremum):
    which = "argmin"




# --------------------------------------------------------------------------- Tensor methods

def _reduction(fn, op):
    def method(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return fn.apply(self, *reduce_args(op, axis, keepdims, dim, keepdim, self.ndim))
    method.__name__ = op
    return method


Tensor.sum = _reduction(SumFunction, "sum")
Tensor.mean = _reduction(MeanFunction, "mean")
Tensor.amax = _reduction(MaxFunction, "amax")   # (PyTorch's amax splits the gradient among ties; here: the first)
Tensor.amin = _reduction(MinFunction, "amin")

#: What ``max(dim)`` and ``min(dim)`` return, as ``torch.return_types.max``/``min``: ``values, indices = x.max(1)``.
return_types = {"max": namedtuple("max", ["values", "indices"]), "min": namedtuple("min", ["values", "indices"])}


def _extremum(fn, op, elementwise):
    def method(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """``x.max()``: the largest value; ``x.max(dim, keepdim=False)``: ``(values, indices)`` along ``dim``
        (a named tuple; the gradient goes to the returned index); ``x.max(other)``: elementwise."""
        if isinstance(dim, Tensor):
            return elementwise(self, dim)
        dim = axis if dim is None else dim
        keepdim = bool(keepdim if keepdims is None else keepdims)
        if dim is None:
            return fn.apply(self, None, keepdim)
        if isinstance(dim, (tuple, list)):
            raise TypeError(f"{op}: dim must be an int, got {dim!r} (a{op} reduces several dims at once)")
        axes, _ = reduce_args(op, dim, keepdim, None, None, self.ndim)
        return return_types[op](fn.apply(self, axes, keepdim),
                                Tensor._wrap(_arg_extremum(self.data, axes, keepdim, "arg" + op)))
    method.__name__ = op
    return method


Tensor.max = _extremum(MaxFunction, "max", lambda a, b: maximum(a, b))
Tensor.min = _extremum(MinFunction, "min", lambda a, b: minimum(a, b))


def _not_differentiable(op):
    """argmax/argmin/any/all: plain results, no gradient. ``out`` is there for ``np.any(tensor)``,
    which passes ``out=None``."""
    def method(self, axis=None, keepdims=False, *, dim=None, keepdim=None, out=None):
        if out is not None:
            raise TypeError(f"Tensor.{op}: out= is not supported")
        axis, keepdims = reduce_args(op, axis, keepdims, dim, keepdim, self.ndim)
        if op in ("argmax", "argmin"):
            return Tensor._wrap(_arg_extremum(self.data, axis, keepdims, op))
        reduce = getattr(self.data, op)
        return Tensor._wrap(get_array_module(self.data).asarray(reduce(axis=axis, keepdims=keepdims)))
    method.__name__ = op
    return method


for _op in ("argmax", "argmin", "any", "all"):
    setattr(Tensor, _op, _not_differentiable(_op))
