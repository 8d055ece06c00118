"""Shapes and copies: ``reshape``/``view``, ``permute``/``transpose``, ``expand``, ``cat``, ``stack``,
and the conversions ``to`` (dtype or device) and ``clone``; each a ``Function`` with its derivative
(which only moves the gradient back into the input's shape, device or dtype).
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..checks import check_dim
from .arithmetic import unbroadcast


class ReshapeFunction(Function):
    """x.reshape(shape) (a view when possible);  dx = g.reshape(x.shape)."""

    def forward(self, x, shape):
        self.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} "
                             f"({x.size} elements) into shape {tuple(shape)}") from None

    def backward(self, grad):
        return grad.reshape(self.shape)


class PermuteFunction(Function):
    """x.transpose(axes);  dx = g.transpose(inverse axes)."""

    def forward(self, x, axes):
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of the {x.ndim} dimensions of shape {tuple(x.shape)}")
        self.axes = axes
        return x.transpose(axes)

    def backward(self, grad):
        return grad.transpose(np.argsort(self.axes))


class BroadcastToFunction(Function):
    """broadcast x to ``shape`` (a read-only view);  dx = g summed over the broadcast axes."""

    def forward(self, x, shape):
        self.shape = x.shape
        return get_array_module(x).broadcast_to(x, shape)

    def backward(self, grad):
        return unbroadcast(grad, self.shape)


class CatFunction(Function):
    """concatenate along ``dim``;  each input gets its slice of g."""

    def forward(self, *arrays, dim=0):
        xp = get_array_module(*arrays)
        self.dim = dim
        self.sizes = [a.shape[dim] for a in arrays]
        try:
            return xp.concatenate(arrays, axis=dim)
        except ValueError:
            shapes = ", ".join(str(tuple(a.shape)) for a in arrays)
            raise ValueError(f"cat: shapes must match except in dimension {dim}, got {shapes}") from None

    def backward(self, grad):
        bounds = np.cumsum([0] + self.sizes)
        index = [slice(None)] * grad.ndim
        grads = []
        for i, need in enumerate(self.needs_input_grad):
            index[self.dim] = slice(bounds[i], bounds[i + 1])
            grads.append(grad[tuple(index)] if need else None)
        return tuple(grads)


class StackFunction(Function):
    """stack along a new ``dim``;  each input gets its slice of g."""

    def forward(self, *arrays, dim=0):
        xp = get_array_module(*arrays)
        self.dim = dim
        try:
            return xp.stack(arrays, axis=dim)
        except ValueError:
            shapes = ", ".join(str(tuple(a.shape)) for a in arrays)
            raise ValueError(f"stack: all tensors must have the same shape, got {shapes}") from None

    def backward(self, grad):
        return tuple(grad.take(i, axis=self.dim) if need else None
                     for i, need in enumerate(self.needs_input_grad))


class CastFunction(Function):
    """x.astype(dtype);  dx = g cast back to x's dtype."""

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, grad):
        return grad.astype(self.dtype)


class ToDeviceFunction(Function):
    """Copy to another device;  dx = g copied back."""

    def forward(self, x, device):
        self.device = backend.device_of(x)
        return backend.to_device(x, device)

    def backward(self, grad):
        return backend.to_device(grad, self.device)


class CloneFunction(Function):
    """A copy of x;  dx = g."""

    def forward(self, x):
        return x.copy()

    def backward(self, grad):
        return grad



def cat(tensors, dim=0) -> Tensor:
    """Concatenate tensors along an existing dimension (``torch.cat``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    dim = check_dim("cat", dim, tensors[0].ndim)
    return CatFunction.apply(*tensors, dim=dim)


def stack(tensors, dim=0) -> Tensor:
    """Stack same-shape tensors along a new dimension (``torch.stack``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    dim = check_dim("stack", dim, tensors[0].ndim + 1)
    return StackFunction.apply(*tensors, dim=dim)




# --------------------------------------------------------------------------- Tensor methods

def _shape_args(args):
    """``t.reshape(2, 3)`` and ``t.reshape((2, 3))`` alike."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


def reshape(self, *shape):
    return ReshapeFunction.apply(self, _shape_args(shape))


def flatten(self, start_dim=0, end_dim=-1):
    """Merge dims ``start_dim..end_dim`` into one (``torch.flatten``)."""
    if self.ndim == 0:
        return self.reshape(1)
    start, end = check_dim("flatten", start_dim, self.ndim), check_dim("flatten", end_dim, self.ndim)
    merged = math.prod(self.shape[start:end + 1])            # not -1: reshape cannot resolve it for N = 0
    return ReshapeFunction.apply(self, self.shape[:start] + (merged,) + self.shape[end + 1:])


def transpose(self, dim0, dim1):
    """Swap two dimensions (``torch.transpose``)."""
    axes = list(range(self.ndim))
    dim0, dim1 = check_dim("transpose", dim0, self.ndim), check_dim("transpose", dim1, self.ndim)
    if self.ndim == 0:              # a 0-d tensor takes dims 0 and -1: itself
        return PermuteFunction.apply(self, ())
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return PermuteFunction.apply(self, tuple(axes))


def permute(self, *dims):
    return PermuteFunction.apply(self, tuple(check_dim("permute", d, self.ndim) for d in _shape_args(dims)))


def squeeze(self, dim=None):
    if dim is None:
        return ReshapeFunction.apply(self, tuple(n for n in self.shape if n != 1))
    dim = check_dim("squeeze", dim, self.ndim)
    if self.ndim == 0:
        return ReshapeFunction.apply(self, ())
    return ReshapeFunction.apply(self, self.shape[:dim] + self.shape[dim + 1:] if self.shape[dim] == 1 else self.shape)


def unsqueeze(self, dim):
    dim = check_dim("unsqueeze", dim, self.ndim + 1)
    return ReshapeFunction.apply(self, self.shape[:dim] + (1,) + self.shape[dim:])


def expand(self, *shape):
    shape = _shape_args(shape)
    shape = tuple(s if n == -1 else n for n, s in zip(shape, (None,) * (len(shape) - self.ndim) + self.shape))
    return BroadcastToFunction.apply(self, shape)


def _is_dtype_name(name):
    try:
        np.dtype(name)
        return True
    except TypeError:
        return False


def to(self, device=None, dtype=None):
    """Move to a device (``"cpu"``/``"cuda"``) and/or cast (``minicnn.float64``...). Differentiable."""
    if isinstance(device, (np.dtype, type)) or (isinstance(device, str) and _is_dtype_name(device)):
        device, dtype = None, device
    out = self
    if dtype is not None and np.dtype(dtype) != self.dtype:
        out = CastFunction.apply(out, np.dtype(dtype))
    if device is not None and backend.normalize_device(device) != self.device:
        out = ToDeviceFunction.apply(out, backend.normalize_device(device))
    return out


def __len__(self):
    if self.ndim == 0:
        raise TypeError("len() of a 0-d tensor")
    return self.shape[0]


for _f in (reshape, flatten, transpose, permute, squeeze, unsqueeze, expand, to, __len__):
    setattr(Tensor, _f.__name__, _f)
Tensor.view = reshape
Tensor.T = property(lambda self: self.permute(*reversed(range(self.ndim))))
Tensor.size = lambda self, dim=None: self.shape if dim is None else self.shape[dim]
Tensor.numel = lambda self: int(self.data.size)
Tensor.dim = lambda self: self.ndim
Tensor.contiguous = lambda self: self
Tensor.cpu = lambda self: self.to("cpu")
Tensor.cuda = lambda self: self.to("cuda")
Tensor.float = lambda self: self.to(dtype=np.float32)
Tensor.double = lambda self: self.to(dtype=np.float64)
Tensor.long = lambda self: Tensor._wrap(self.data.astype(np.int64))
Tensor.clone = lambda self: CloneFunction.apply(self)
