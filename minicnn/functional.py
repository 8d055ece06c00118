"""Differentiable neural-network ops, named and called like ``torch.nn.functional``.

Each op is a ``Function`` with its forward and backward side by side; the heavy ones
(convolution, pooling, normalisation, dropout) call the plain-array kernels in
``minicnn.kernels``, so that the maths lives in one place and runs on NumPy or CuPy.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import backend
from .autograd import Function, Tensor, ReLU, Sigmoid, Tanh
from .backend import get_array_module

# --------------------------------------------------------------------------- activations


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return ReLU.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    return Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    """tanh(x)."""
    return Tanh.apply(x)


class ScaledTanh(Function):
    """a * tanh(b * x) (LeCun's 1.7159 * tanh(2x/3));  dx = g * a*b*(1 - tanh(bx)^2)."""

    def forward(self, x, a, b):
        xp = get_array_module(x)
        self.t, self.ab = xp.tanh(x * b), a * b
        return self.t * a

    def backward(self, grad):
        return grad * (self.ab * (1 - self.t * self.t))


def scaled_tanh(x: Tensor, a: float = 1.7159, b: float = 2.0 / 3.0) -> Tensor:
    """LeCun's scaled hyperbolic tangent ``a * tanh(b * x)`` (no PyTorch equivalent)."""
    return ScaledTanh.apply(x, float(a), float(b))


# --------------------------------------------------------------------------- softmax family

def _dim(dim, ndim, op):
    if dim is None:
        raise TypeError(f"{op}: the dimension `dim` must be given (PyTorch's implicit choice is deprecated)")
    if not -ndim <= dim < ndim:
        raise ValueError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % ndim


class Softmax(Function):
    """y = exp(x - max) / sum(exp(x - max)) along ``dim``;  dx = y * (g - sum(g*y))."""

    def forward(self, x, dim):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        e /= e.sum(axis=dim, keepdims=True)
        self.out, self.dim = e, dim
        return e

    def backward(self, grad):
        y = self.out
        return y * (grad - (grad * y).sum(axis=self.dim, keepdims=True))


class LogSoftmax(Function):
    """y = x - max - log(sum(exp(x - max))) along ``dim``;  dx = g - softmax(x) * sum(g)."""

    def forward(self, x, dim):
        xp = get_array_module(x)
        shifted = x - x.max(axis=dim, keepdims=True)
        shifted -= xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.out, self.dim = shifted, dim
        return shifted

    def backward(self, grad):
        xp = get_array_module(grad)
        return grad - xp.exp(self.out) * grad.sum(axis=self.dim, keepdims=True)


def softmax(x: Tensor, dim=None) -> Tensor:
    """Numerically stable softmax along ``dim``."""
    return Softmax.apply(x, _dim(dim, x.ndim, "softmax"))


def log_softmax(x: Tensor, dim=None) -> Tensor:
    """Numerically stable log-softmax along ``dim``."""
    return LogSoftmax.apply(x, _dim(dim, x.ndim, "log_softmax"))


# --------------------------------------------------------------------------- losses

_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """Softmax cross-entropy of logits (N, C) against integer targets (N,), fused for stability.

    With label smoothing e the target distribution is q = (1-e)*onehot(t) + e/C, and
    loss_i = -sum_j q_ij * log_softmax(x)_ij;  dx_i = (softmax(x_i) - q_i) * g_i.
    """

    def forward(self, logits, target, reduction, label_smoothing):
        xp = get_array_module(logits)
        n, c = logits.shape
        logp = logits - logits.max(axis=1, keepdims=True)
        logp -= xp.log(xp.exp(logp).sum(axis=1, keepdims=True))
        rows = xp.arange(n)
        loss = -logp[rows, target]
        if label_smoothing:
            loss = (1 - label_smoothing) * loss - (label_smoothing / c) * logp.sum(axis=1)
        self.logp, self.target, self.reduction, self.smoothing = logp, target, reduction, label_smoothing
        if reduction == "none":
            return loss
        total = loss.sum()
        return total / n if reduction == "mean" else total

    def backward(self, grad):
        xp = get_array_module(grad)
        logp, target, eps = self.logp, self.target, self.smoothing
        n, c = logp.shape
        dx = xp.exp(logp)                                   # softmax
        dx[xp.arange(n), target] -= 1 - eps
        if eps:
            dx -= eps / c
        if self.reduction == "none":
            dx *= grad[:, None]
        else:
            dx *= grad / n if self.reduction == "mean" else grad
        return dx, None


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def cross_entropy(input: Tensor, target, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:  # noqa: A002
    """Softmax cross-entropy between logits ``input`` (N, C) and class indices ``target`` (N,).

    Same as ``torch.nn.functional.cross_entropy`` for integer targets (``weight`` and
    ``ignore_index`` are not supported; K-dimensional inputs (N, C, d1, ...) are).
    """
    _check_reduction(reduction, "cross_entropy")
    target = target.data if isinstance(target, Tensor) else target
    xp = get_array_module(input.data)
    target = xp.asarray(target)
    if input.ndim > 2:   # (N, C, d1, ...) -> (N*d1*..., C)
        c = input.shape[1]
        perm = (0,) + tuple(range(2, input.ndim)) + (1,)
        loss = cross_entropy(input.permute(*perm).reshape(-1, c), target.reshape(-1), reduction, label_smoothing)
        return loss.reshape(target.shape) if reduction == "none" else loss
    if input.ndim != 2:
        raise ValueError(f"cross_entropy: expected logits of shape (N, C), got {tuple(input.shape)}")
    if target.ndim != 1 or target.shape[0] != input.shape[0]:
        raise ValueError(f"cross_entropy: expected a target of shape ({input.shape[0]},) for logits of shape "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold integer class indices, got dtype {target.dtype}")
    if target.size and (int(target.min()) < 0 or int(target.max()) >= input.shape[1]):
        raise ValueError(f"cross_entropy: target values must be in [0, {input.shape[1]}), "
                         f"got min {int(target.min())} and max {int(target.max())}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    return CrossEntropy.apply(input, target, reduction, float(label_smoothing))


def nll_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Negative log-likelihood of log-probabilities ``input`` (N, C) at integer ``target`` (N,)."""
    _check_reduction(reduction, "nll_loss")
    target = target.data if isinstance(target, Tensor) else target
    xp = get_array_module(input.data)
    picked = -input[xp.arange(input.shape[0]), xp.asarray(target)]
    return picked if reduction == "none" else (picked.sum() if reduction == "sum" else picked.mean())


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error ``(input - target)^2`` reduced by ``reduction``."""
    _check_reduction(reduction, "mse_loss")
    if isinstance(target, Tensor) and target.shape != input.shape:
        raise ValueError(f"mse_loss: input shape {tuple(input.shape)} and target shape "
                         f"{tuple(target.shape)} differ")
    diff = input - target
    sq = diff * diff
    return sq if reduction == "none" else (sq.sum() if reduction == "sum" else sq.mean())


# --------------------------------------------------------------------------- padding

class Pad(Function):
    """Zero (or constant) padding, asymmetric allowed;  dx = g with the border cut off.

    ``widths`` is ``((before, after), ...)`` for every dimension of x.
    """

    def forward(self, x, widths, value):
        xp = get_array_module(x)
        out = xp.full(tuple(n + a + b for n, (a, b) in zip(x.shape, widths)), value, dtype=x.dtype)
        self.inner = tuple(slice(a, a + n) for n, (a, _) in zip(x.shape, widths))
        out[self.inner] = x
        return out

    def backward(self, grad):
        return grad[self.inner]


def pad(input: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:  # noqa: A002
    """Pad the last ``len(pad)//2`` dimensions, PyTorch order: ``(left, right, top, bottom, ...)``.

    Only ``mode='constant'`` is supported; widths must be non-negative.
    """
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: expected an even number of widths, at most 2 per dimension "
                         f"({2 * input.ndim} for shape {tuple(input.shape)}), got {pad}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: widths must be non-negative, got {pad}")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Pad.apply(input, tuple(widths), value)


# --------------------------------------------------------------------------- kernels: conv, pooling, norms
# (wired to minicnn.kernels below)
