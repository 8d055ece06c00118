"""In-place operations, with PyTorch's rules: ``+= -= *= /=``, ``add_``, ``sub_``, ``mul_``, ``div_``,
``zero_``, ``fill_``, ``copy_``, ``clamp_`` and item assignment ``t[index] = value``.

* Under ``no_grad()``, or when nothing involved needs a gradient, the tensor's array changes in place
  (views of it see the change) and the tensor's version counter (``t._version``) goes up. A backward
  pass whose ``Function`` saved that tensor before the change then refuses to run (``minicnn.autograd``).
* On a leaf that requires grad, outside ``no_grad()``: PyTorch's error (update parameters under no_grad).
* On a tensor that is part of a graph (it, or the other operand, requires grad): the result is computed
  out of place by the differentiable op and becomes the tensor's value and history (its ``grad_fn``).
  Unlike PyTorch, the tensor's old array is left as it was, so other views of it do not change.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import grad_mode
from ..autograd import Function, Tensor
from ..backend import get_array_module
from .arithmetic import operand, unbroadcast
from .indexing import unwrap_index


class FillFunction(Function):
    """x filled with ``value``;  dx = 0."""

    def forward(self, x, value):
        return get_array_module(x).full_like(x, value)

    def backward(self, grad):
        return get_array_module(grad).zeros_like(grad)


class SetItemFunction(Function):
    """x with x[index] = v;  dx = g with zeros at index, dv = g[index] summed to v's shape."""

    def forward(self, x, v, index):
        self.index, self.shape = index, np.shape(v)
        out = x.copy()
        out[index] = v
        return out

    def backward(self, grad):
        gx = gv = None
        if self.needs_input_grad[0]:
            gx = grad.copy()
            gx[self.index] = 0
        if self.needs_input_grad[1]:
            gv = unbroadcast(grad[self.index], self.shape)
        return gx, gv


def _modify(t, op, others, tracked, write):
    """The in-place change of ``t``: ``tracked()`` gives the differentiable result, ``write(array)``
    changes the array in place."""
    if grad_mode.is_grad_enabled() and (t.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others)):
        if t.requires_grad and t._ctx is None:
            raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an in-place operation "
                               "(to update a parameter, do it under `with minicnn.no_grad():`)")
        result = tracked()
        if result.shape != t.shape:
            raise RuntimeError(f"{op}: output with shape {tuple(t.shape)} doesn't match the broadcast shape "
                               f"{tuple(result.shape)}")
        if not np.can_cast(result.dtype, t.dtype, "same_kind"):      # as the no-grad branch: NumPy's rule
            raise RuntimeError(f"{op}: the result can't be cast to the tensor's dtype {t.dtype} "
                               f"(result type {result.dtype})")
        result = result.to(t.dtype)
        t._data, t._ctx, t.requires_grad = result._data, result._ctx, True
        return t
    for o in others:
        if isinstance(o, Tensor) and o.device != t.device:
            raise RuntimeError(f"{op}: expected the other tensor on {t.device!r} like the tensor, got {o.device!r}")
    try:
        write(t._data)
    except TypeError as exc:            # NumPy's casting error: float into an integer tensor
        raise RuntimeError(f"{op}: the result can't be cast to the tensor's dtype {t.dtype} ({exc})") from None
    except ValueError as exc:
        raise RuntimeError(f"{op}: {exc} (tensor of shape {tuple(t.shape)})") from None
    t._version += 1
    return t


def _array(value):
    return value._data if isinstance(value, Tensor) else value


def _binary_(name, ufunc, method):
    """``add_``/``sub_`` (with ``alpha=``), ``mul_``, ``div_``."""
    with_alpha = name in ("add_", "sub_")

    def inplace(self, other, *, alpha=1):
        if alpha != 1 and not with_alpha:
            raise TypeError(f"{name}() got an unexpected keyword argument 'alpha'")
        other = operand(other, self.device)
        scaled = other if alpha == 1 else other * alpha
        return _modify(self, name, (other,), lambda: method(self, scaled),
                       lambda a: getattr(get_array_module(a), ufunc)(a, _array(scaled), out=a))
    inplace.__name__ = name
    return inplace


def zero_(self):
    return fill_(self, 0)


def fill_(self, value):
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} dimensions")
        value = value.item()
    if not isinstance(value, numbers.Number):
        raise TypeError(f"fill_: expected a number, got {type(value).__name__}")

    def write(a):
        a[...] = value
    return _modify(self, "fill_", (), lambda: FillFunction.apply(self, value), write)


def copy_(self, src):
    """Copy ``src`` (broadcast to this shape, cast to this dtype, from any device) into this tensor."""
    src = src if isinstance(src, Tensor) else Tensor(src)

    def write(a):
        a[...] = src.to(self.device)._data
    return _modify(self, "copy_", (src,),
                   lambda: SetItemFunction.apply(self, src.to(self.dtype), index=Ellipsis), write)


def clamp_(self, min=None, max=None):
    def write(a):
        xp = get_array_module(a)
        if min is None and max is None:
            raise ValueError("clamp_: at least one of min and max must be given")
        if min is not None:
            xp.maximum(a, _array(min), out=a)
        if max is not None:
            xp.minimum(a, _array(max), out=a)
    return _modify(self, "clamp_", (min, max), lambda: self.clamp(min, max), write)


def _setitem(self, index, value):
    index = unwrap_index(index, get_array_module(self._data))
    value = operand(value, self.device)

    def write(a):
        a[index] = _array(value)
    _modify(self, "setitem", (value,), lambda: SetItemFunction.apply(self, value, index=index), write)


for _name, _ufunc, _op in (("add_", "add", Tensor.__add__), ("sub_", "subtract", Tensor.__sub__),
                           ("mul_", "multiply", Tensor.__mul__), ("div_", "true_divide", Tensor.__truediv__)):
    setattr(Tensor, _name, _binary_(_name, _ufunc, _op))
Tensor.__iadd__, Tensor.__isub__ = Tensor.add_, Tensor.sub_
Tensor.__imul__, Tensor.__itruediv__ = Tensor.mul_, Tensor.div_
Tensor.zero_, Tensor.fill_, Tensor.copy_, Tensor.clamp_ = zero_, fill_, copy_, clamp_
Tensor.clip_ = clamp_
Tensor.__setitem__ = _setitem
