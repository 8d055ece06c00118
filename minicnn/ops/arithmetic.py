"""Arithmetic: ``+ - * / ** @``, ``maximum``/``minimum``/``where``, and the unary maths
(``-x``, ``exp``, ``log``, ``sqrt``, ``abs``, ``clamp``), each a ``Function`` with its one-line derivative.

Binary ops follow NumPy broadcasting; their backward sums the gradient over the broadcast axes
(``unbroadcast``). At the end of the file the ``Tensor`` operators and methods are attached.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd import Function, Tensor
from ..backend import get_array_module


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes along which an input of ``shape`` was broadcast."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes).reshape(shape) if axes else grad.reshape(shape)


def scalar_operand(value):
    """A Python scalar stays a (weakly typed) Python scalar so float32 stays float32 (NumPy 2 rules)."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


def operand(other, device):
    """The other operand of a Tensor operator: tensors stay, scalars stay Python scalars,
    arrays and lists become tensors on ``device``."""
    if isinstance(other, Tensor):
        return other
    other = scalar_operand(other)
    return other if isinstance(other, numbers.Number) else Tensor(other, device=device)


# --------------------------------------------------------------------------- binary

class _Binary(Function):
    """Elementwise op of two operands with NumPy broadcasting; backward sums over broadcast axes.

    Only the ops whose gradient needs the operands' values keep them (``keeps_operands``): a
    residual ``out + identity`` must not keep ``out`` alive until the backward pass.
    """

    keeps_operands = True

    def forward(self, a, b):
        self.shapes = (np.shape(a), np.shape(b))
        if self.keeps_operands:
            self.a, self.b = a, b
        try:
            return self.compute(a, b)
        except ValueError as exc:
            if "broadcast" not in str(exc):
                raise
            raise ValueError(f"{self.name.removesuffix('Function').lower()}: shapes {self.shapes[0]} and {self.shapes[1]} "
                             f"do not broadcast") from None

    def backward(self, grad):
        ga, gb = self.grads(grad)
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(ga, self.shapes[0]) if need_a else None,
                unbroadcast(gb, self.shapes[1]) if need_b else None)


class AddFunction(_Binary):
    """a + b;  da = g, db = g."""

    keeps_operands = False

    def compute(self, a, b):
        return a + b

    def grads(self, g):
        return g, g


class SubFunction(_Binary):
    """a - b;  da = g, db = -g."""

    keeps_operands = False

    def compute(self, a, b):
        return a - b

    def grads(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class MulFunction(_Binary):
    """a * b;  da = g*b, db = g*a."""

    def compute(self, a, b):
        return a * b

    def grads(self, g):
        return (g * self.b if self.needs_input_grad[0] else None,
                g * self.a if self.needs_input_grad[1] else None)


class DivFunction(_Binary):
    """a / b;  da = g/b, db = -g*a/b^2."""

    def compute(self, a, b):
        return a / b

    def grads(self, g):
        a, b = self.a, self.b
        ga = g / b if self.needs_input_grad[0] else None
        gb = -g * a / (b * b) if self.needs_input_grad[1] else None
        return ga, gb


class PowFunction(_Binary):
    """a ** b;  da = g*b*a^(b-1), db = g*a^b*log(a)."""

    def compute(self, a, b):
        self.out = a ** b
        return self.out

    def grads(self, g):
        a, b = self.a, self.b
        ga = g * b * a ** (b - 1) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            log_a = math.log(a) if isinstance(a, numbers.Number) else get_array_module(a).log(a)
            gb = g * self.out * log_a
        return ga, gb


class MaximumFunction(_Binary):
    """max(a, b) elementwise; the gradient goes to ``a`` where a >= b (ties to the first operand)."""

    def compute(self, a, b):
        return get_array_module(a, b).maximum(a, b)

    def grads(self, g):
        first = self.a >= self.b
        return g * first, g * ~first


class MinimumFunction(_Binary):
    """min(a, b) elementwise; the gradient goes to ``a`` where a <= b (ties to the first operand)."""

    def compute(self, a, b):
        return get_array_module(a, b).minimum(a, b)

    def grads(self, g):
        first = self.a <= self.b
        return g * first, g * ~first


class MatMulFunction(Function):
    """a @ b with NumPy semantics (1-D operands, batched broadcasting);
    da = g @ b^T, db = a^T @ g (summed over broadcast batch dims)."""

    def forward(self, a, b):
        a, b = _as_array_like(a, b), _as_array_like(b, a)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands must have at least one dimension, "
                             f"got shapes {tuple(a.shape)} and {tuple(b.shape)}")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not aligned "
                             f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})")
        self.a, self.b = a, b
        try:
            return a @ b
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of {tuple(a.shape)} and {tuple(b.shape)} "
                             "do not broadcast") from None

    def backward(self, grad):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a              # (n,) -> (1, n)
        b2 = b[:, None] if b.ndim == 1 else b              # (n,) -> (n, 1)
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        g2 = grad.reshape(batch + (a2.shape[-2], b2.shape[-1]))   # as if neither operand were 1-D
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


def _as_array_like(value, like):
    """A Python scalar operand as an array of ``like``'s dtype (only matmul needs this)."""
    if isinstance(value, numbers.Number):
        return get_array_module(like).asarray(value, dtype=like.dtype)
    return value



# --------------------------------------------------------------------------- unary

class NegFunction(Function):
    """-x;  dx = -g."""

    def forward(self, x):
        return -x

    def backward(self, grad):
        return -grad


class ExpFunction(Function):
    """exp(x);  dx = g*exp(x)."""

    def forward(self, x):
        self.out = get_array_module(x).exp(x)
        return self.out

    def backward(self, grad):
        return grad * self.out


class LogFunction(Function):
    """log(x);  dx = g/x."""

    def forward(self, x):
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, grad):
        return grad / self.x


class SqrtFunction(Function):
    """sqrt(x);  dx = g/(2*sqrt(x))."""

    def forward(self, x):
        self.out = get_array_module(x).sqrt(x)
        return self.out

    def backward(self, grad):
        return grad / (2 * self.out)


class AbsFunction(Function):
    """|x|;  dx = g*sign(x) (0 at x = 0)."""

    def forward(self, x):
        self.x = x
        return abs(x)

    def backward(self, grad):
        return grad * get_array_module(self.x).sign(self.x)


class ClampFunction(Function):
    """clamp(x, lo, hi) = min(max(x, lo), hi);  dx = g where lo <= x <= hi, dlo = g where x < lo (and
    lo < hi), dhi = g where x > hi (or hi < lo: then the output is hi), each summed to its bound's shape,
    as in PyTorch."""

    def forward(self, x, lo=None, hi=None):
        if lo is None and hi is None:
            raise ValueError("clamp: at least one of min and max must be given")
        xp = get_array_module(x)
        self.inside = xp.ones(x.shape, dtype=bool)
        self.shapes = (np.shape(lo), np.shape(hi))
        out = x
        if lo is not None:
            self.inside &= x >= lo
            self.below = (x < lo) if hi is None else (x < lo) & (lo < hi)
            out = xp.maximum(out, lo)
        if hi is not None:
            self.inside &= x <= hi
            self.above = (x > hi) if lo is None else (x > hi) | (hi < lo)
            out = xp.minimum(out, hi)
        return out.astype(x.dtype, copy=False)

    def backward(self, grad):
        need = self.needs_input_grad + (False, False)
        return (grad * self.inside if need[0] else None,
                unbroadcast(grad * self.below, self.shapes[0]) if need[1] else None,
                unbroadcast(grad * self.above, self.shapes[1]) if need[2] else None)


class WhereFunction(Function):
    """where(cond, a, b);  da = g where cond, db = g elsewhere (cond carries no gradient)."""

    def forward(self, cond, a, b):
        xp = get_array_module(cond, a, b)
        self.cond, self.shapes = cond, (np.shape(a), np.shape(b))
        return xp.where(cond, a, b)

    def backward(self, grad):
        xp = get_array_module(grad)
        zero = xp.zeros((), dtype=grad.dtype)
        ga = unbroadcast(xp.where(self.cond, grad, zero), self.shapes[0]) if self.needs_input_grad[1] else None
        gb = unbroadcast(xp.where(self.cond, zero, grad), self.shapes[1]) if self.needs_input_grad[2] else None
        return None, ga, gb



# --------------------------------------------------------------------------- free functions

def _operands(a, b):
    """Tensors stay; NumPy scalars and 0-d arrays become (weakly typed) Python scalars, so float32 stays float32."""
    return (a if isinstance(a, Tensor) else scalar_operand(a)), (b if isinstance(b, Tensor) else scalar_operand(b))


def where(condition, a, b) -> Tensor:
    """Elementwise ``a if condition else b`` (``torch.where``); differentiable in ``a`` and ``b``."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    return WhereFunction.apply(cond, *_operands(a, b))


def maximum(a, b) -> Tensor:
    """Elementwise maximum of two tensors.

    On ties the whole gradient goes to ``a`` (``torch.maximum`` splits it, half to each).
    """
    return MaximumFunction.apply(*_operands(a, b))


def minimum(a, b) -> Tensor:
    """Elementwise minimum of two tensors; on ties the whole gradient goes to ``a`` (PyTorch splits it)."""
    return MinimumFunction.apply(*_operands(a, b))



# --------------------------------------------------------------------------- Tensor operators and methods

def _binary(fn, reflected=False):
    if reflected:
        return lambda self, other: fn.apply(operand(other, self.device), self)
    return lambda self, other: fn.apply(self, operand(other, self.device))


for _name, _fn in (("add", AddFunction), ("sub", SubFunction), ("mul", MulFunction), ("truediv", DivFunction),
                   ("pow", PowFunction), ("matmul", MatMulFunction)):
    setattr(Tensor, f"__{_name}__", _binary(_fn))
    setattr(Tensor, f"__r{_name}__", _binary(_fn, reflected=True))
Tensor.__neg__ = lambda self: NegFunction.apply(self)
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = Tensor.abs = lambda self: AbsFunction.apply(self)
Tensor.exp = lambda self: ExpFunction.apply(self)
Tensor.log = lambda self: LogFunction.apply(self)
Tensor.sqrt = lambda self: SqrtFunction.apply(self)
Tensor.clamp = Tensor.clip = lambda self, min=None, max=None: ClampFunction.apply(self, min, max)  # PyTorch's names


def add(input, other, *, alpha=1) -> Tensor:
    """``input + alpha * other`` (``torch.add``)."""
    return AddFunction.apply(*_operands(input, other if alpha == 1 else other * alpha))


def sub(input, other, *, alpha=1) -> Tensor:
    """``input - alpha * other`` (``torch.sub``)."""
    return SubFunction.apply(*_operands(input, other if alpha == 1 else other * alpha))


Tensor.add, Tensor.sub = add, sub
Tensor.mul, Tensor.div = Tensor.__mul__, Tensor.__truediv__


def _compare(op):
    """A comparison operator: a boolean tensor, no gradient."""
    def compare(self, other):
        other = other.data if isinstance(other, Tensor) else scalar_operand(other)
        return Tensor._wrap(op(self.data, other))
    return compare


Tensor.__lt__ = _compare(lambda a, b: a < b)
Tensor.__le__ = _compare(lambda a, b: a <= b)
Tensor.__gt__ = _compare(lambda a, b: a > b)
Tensor.__ge__ = _compare(lambda a, b: a >= b)
Tensor.__eq__ = _compare(lambda a, b: a == b)
Tensor.__ne__ = _compare(lambda a, b: a != b)
