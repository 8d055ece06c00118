"""Differentiable neural-network ops, named and called like ``torch.nn.functional``.

Each op is a ``Function`` with its forward and backward side by side; the heavy ones
(convolution, pooling, normalisation, dropout) call the plain-array kernels in
``minicnn.kernels``, so that the maths lives in one place and runs on NumPy or CuPy.
Here: activations, softmax, padding, convolution, linear, normalisation, dropout;
``losses.py``: cross-entropy, NLL, MSE; ``pooling.py``: max (and unpooling), average, adaptive, subsampling.
"""
from __future__ import annotations


import numpy as np

from .. import backend
from .. import kernels as K
from ..autograd import Function, Tensor
from ..ops.activations import ReLUFunction, SigmoidFunction, TanhFunction
from ..backend import get_array_module
from ..checks import check_dim

from .losses import cross_entropy, mse_loss, nll_loss
from .pooling import adaptive_avg_pool2d, avg_pool2d, batched, max_pool2d, max_unpool2d, subsample

__all__ = [  # the functions, as torch.nn.functional has them (plus LeNet's scaled_tanh and subsample)
    "relu", "sigmoid", "tanh", "scaled_tanh", "softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss",
    "pad", "conv2d", "linear", "max_pool2d", "max_unpool2d", "avg_pool2d", "adaptive_avg_pool2d", "subsample",
    "batch_norm", "local_response_norm", "dropout",
]

# --------------------------------------------------------------------------- activations


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return ReLUFunction.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    return SigmoidFunction.apply(x)


def tanh(x: Tensor) -> Tensor:
    """tanh(x)."""
    return TanhFunction.apply(x)


class ScaledTanhFunction(Function):
    """a * tanh(b * x) (LeCun's 1.7159 * tanh(2x/3));  dx = g * a*b*(1 - tanh(bx)^2)."""

    def forward(self, x, a, b):
        out, self.cache = K.scaled_tanh_forward(x, a, b)
        return out

    def backward(self, grad):
        return K.scaled_tanh_backward(grad, self.cache)


def scaled_tanh(x: Tensor, a: float = 1.7159, b: float = 2.0 / 3.0) -> Tensor:
    """LeCun's scaled hyperbolic tangent ``a * tanh(b * x)`` (no PyTorch equivalent)."""
    return ScaledTanhFunction.apply(x, float(a), float(b))


# --------------------------------------------------------------------------- softmax family

def _dim(dim, ndim, op):
    if dim is None:
        raise TypeError(f"{op}: the dimension `dim` must be given (PyTorch's implicit choice is deprecated)")
    return check_dim(op, dim, ndim)


class SoftmaxFunction(Function):
    """y = exp(x - max) / sum(exp(x - max)) along ``dim``;  dx = y * (g - sum(g*y))."""

    def forward(self, x, dim):
        xp = get_array_module(x)
        self.dim = dim
        if x.size == 0:                     # an empty tensor (a dimension of size 0): empty, as PyTorch
            self.out = x.copy()
            return self.out
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        e /= e.sum(axis=dim, keepdims=True)
        self.out, self.dim = e, dim
        return e

    def backward(self, grad):
        y = self.out
        return y * (grad - (grad * y).sum(axis=self.dim, keepdims=True))


class LogSoftmaxFunction(Function):
    """y = x - max - log(sum(exp(x - max))) along ``dim``;  dx = g - softmax(x) * sum(g)."""

    def forward(self, x, dim):
        xp = get_array_module(x)
        self.dim = dim
        if x.size == 0:                     # an empty tensor (a dimension of size 0): empty, as PyTorch
            self.out = x.copy()
            return self.out
        shifted = x - x.max(axis=dim, keepdims=True)
        shifted -= xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.out, self.dim = shifted, dim
        return shifted

    def backward(self, grad):
        xp = get_array_module(grad)
        return grad - xp.exp(self.out) * grad.sum(axis=self.dim, keepdims=True)


def softmax(x: Tensor, dim=None, dtype=None) -> Tensor:
    """Numerically stable softmax along ``dim`` (of ``x`` cast to ``dtype`` first, when given)."""
    dim = _dim(dim, x.ndim, "softmax")
    return SoftmaxFunction.apply(x if dtype is None else x.to(dtype=dtype), dim)


def log_softmax(x: Tensor, dim=None, dtype=None) -> Tensor:
    """Numerically stable log-softmax along ``dim`` (of ``x`` cast to ``dtype`` first, when given)."""
    dim = _dim(dim, x.ndim, "log_softmax")
    return LogSoftmaxFunction.apply(x if dtype is None else x.to(dtype=dtype), dim)


# --------------------------------------------------------------------------- padding

class PadFunction(Function):
    """Constant padding, asymmetric allowed, a negative width crops;  dx = g with the border cut off
    (zero where the input was cropped).

    ``widths`` is ``((before, after), ...)`` for every dimension of x.
    """

    def forward(self, x, widths, value):
        xp = get_array_module(x)
        out = xp.full(tuple(n + a + b for n, (a, b) in zip(x.shape, widths)), value, dtype=x.dtype)
        self.kept = tuple(slice(max(-a, 0), n - max(-b, 0)) for n, (a, b) in zip(x.shape, widths))
        self.inner = tuple(slice(max(a, 0), max(a, 0) + k.stop - k.start) for a, k in
                           zip((a for a, _ in widths), self.kept))
        self.cropped = x.shape if any(a < 0 or b < 0 for a, b in widths) else None
        out[self.inner] = x[self.kept]
        return out

    def backward(self, grad):
        if self.cropped is None:
            return grad[self.inner]
        dx = get_array_module(grad).zeros(self.cropped, dtype=grad.dtype)
        dx[self.kept] = grad[self.inner]
        return dx


def pad(input: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last ``len(pad)//2`` dimensions, PyTorch order: ``(left, right, top, bottom, ...)``.

    A negative width crops, as in PyTorch. Only ``mode='constant'`` is supported.
    """
    if mode != "constant":
        raise ValueError(f"pad: mode={mode!r} is not supported (only 'constant')")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: expected an even number of widths, at most 2 per dimension "
                         f"({2 * input.ndim} for shape {tuple(input.shape)}), got {pad}")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if any(n + a + b < 0 for n, (a, b) in zip(input.shape, widths)):
        raise ValueError(f"pad: widths {pad} would crop shape {tuple(input.shape)} below size 0")
    return PadFunction.apply(input, tuple(widths), value)


# --------------------------------------------------------------------------- kernels: conv, pooling, norms
# (wired to minicnn.kernels below)


def _data(t):
    return None if t is None else t.data


class Conv2dFunction(Function):
    """2-D convolution by im2col + one GEMM (see ``kernels.textbook``);  backward: col2im for x, GEMMs for w."""

    def forward(self, x, weight, bias, stride, padding, dilation, groups):
        out, self.cache = K.conv2d_forward(x, weight, bias, stride, padding, dilation, groups)
        return out

    def backward(self, grad):
        need_x, need_w, need_b = self.needs_input_grad[:3]
        return K.conv2d_backward(grad, self.cache, need_x, need_w, need_b)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """Convolve ``input`` (N, C, H, W) (or one image (C, H, W)) with ``weight`` (O, C/groups, kH, kW)
    -> (N, O, H', W') (or (O, H', W')).

    ``padding``: an int, a pair, ``'valid'``, ``'same'`` (stride 1, as PyTorch), or a 4-tuple
    ``(top, bottom, left, right)`` for asymmetric padding (a minicnn extension; PyTorch
    users call ``F.pad`` first, which works here too).
    """
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels/groups, kH, kW), "
                         f"got shape {tuple(weight.shape)}")
    padding = K.normalize_conv_padding(padding, weight.shape[2:], stride, dilation)
    x, unbatched = batched("conv2d", input)
    out = Conv2dFunction.apply(x, weight, bias, stride, padding, dilation, groups)   # the kernel checks them
    return out.squeeze(0) if unbatched else out


class LinearFunction(Function):
    """y = x @ W^T + b for x (*, in), W (out, in);  dx = g @ W, dW = g^T x, db = sum(g)."""

    def forward(self, x, weight, bias):
        out, self.cache = K.linear_forward(x, weight, bias)
        return out

    def backward(self, grad):
        return K.linear_backward(grad, self.cache, *self.needs_input_grad[:3])


def linear(input, weight, bias=None) -> Tensor:
    """Affine map ``input @ weight.T + bias`` (``torch.nn.functional.linear``)."""
    return LinearFunction.apply(input, weight, bias)


class BatchNormFunction(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel (axis 1);
    batch statistics in training (running statistics updated in place), running ones in eval."""

    def forward(self, x, running_mean, running_var, weight, bias, training, momentum, eps):
        out, self.cache = K.batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps)
        return out

    def backward(self, grad):
        need_x, _, _, need_w, need_b = self.needs_input_grad[:5]
        dx, dw, db = K.batch_norm_backward(grad, self.cache, need_x, need_w, need_b)
        return dx, None, None, dw, db


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5) -> Tensor:
    """Batch normalisation over (N, C), (N, C, L) or (N, C, H, W) (``torch.nn.functional.batch_norm``).

    ``running_mean``/``running_var`` are tensors (or NumPy/CuPy arrays) updated in place when
    ``training`` (unbiased variance, as PyTorch); they may be ``None`` only when ``training`` (no tracking).
    """
    if input.ndim not in (2, 3, 4):
        raise ValueError(f"batch_norm: input of {input.ndim} dimensions is not supported: expected input of shape "
                         f"(N, C), (N, C, L) or (N, C, H, W), got {tuple(input.shape)}")
    if running_mean is None and not training:
        raise ValueError("batch_norm: running statistics are required in eval mode")
    return BatchNormFunction.apply(input, _running_stat("running_mean", running_mean),
                           _running_stat("running_var", running_var), weight, bias,
                                   bool(training), float(momentum), float(eps))


def _running_stat(name, stat):
    """A running statistic as the array the kernel updates in place: a Tensor's data, or a NumPy/CuPy array itself."""
    if stat is None or isinstance(stat, Tensor):
        return _data(stat)
    if isinstance(stat, np.ndarray) or type(stat).__module__.startswith("cupy"):
        return stat
    raise TypeError(f"batch_norm: {name} must be a Tensor, a NumPy or CuPy array, or None, "
                    f"got {type(stat).__name__}")


class LocalResponseNormFunction(Function):
    """y = x / (k + alpha/size * sum of x^2 over ``size`` neighbouring channels)^beta (PyTorch's)."""

    def forward(self, x, size, alpha, beta, k):
        out, self.cache = K.local_response_norm_forward(x, size, alpha, beta, k)
        return out

    def backward(self, grad):
        return K.local_response_norm_backward(grad, self.cache)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0) -> Tensor:
    """Local response normalisation across channels (AlexNet; ``torch.nn.functional.local_response_norm``)."""
    return LocalResponseNormFunction.apply(input, int(size), float(alpha), float(beta), float(k))


class DropoutFunction(Function):
    """Inverted dropout: y = x * mask / (1 - p), mask ~ Bernoulli(1 - p);  dx = g * mask / (1 - p)."""

    def forward(self, x, p, training, rng):
        out, self.mask = K.dropout_forward(x, p, training, rng)
        return out

    def backward(self, grad):
        return K.dropout_backward(grad, self.mask)


def dropout(input, p=0.5, training=True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p); identity unless ``training``.

    The mask comes from the device's default generator: ``minicnn.manual_seed`` makes it repeatable.
    In a data-parallel forward pass each rank keeps its rows of the global batch's mask (``backend.row_generator``).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:                       # everything dropped (PyTorch returns zeros too)
        return input * 0.0
    return DropoutFunction.apply(input, float(p), True, backend.row_generator(input.device))
