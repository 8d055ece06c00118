"""Differentiable neural-network ops, named and called like ``torch.nn.functional``.

Each op is a ``Function`` with its forward and backward side by side; the heavy ones
(convolution, pooling, normalisation, dropout) call the plain-array kernels in
``minicnn.kernels``, so that the maths lives in one place and runs on NumPy or CuPy.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import backend
from . import kernels as K
from .autograd import Function, Tensor
from .ops.activations import ReLUFunction, SigmoidFunction, TanhFunction
from .backend import get_array_module
from .checks import check_dim

__all__ = [  # the functions, as torch.nn.functional has them (plus LeNet's scaled_tanh and subsample)
    "relu", "sigmoid", "tanh", "scaled_tanh", "softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss",
    "pad", "conv2d", "linear", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "subsample", "batch_norm",
    "local_response_norm", "dropout",
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
        shifted = x - x.max(axis=dim, keepdims=True)
        shifted -= xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.out, self.dim = shifted, dim
        return shifted

    def backward(self, grad):
        xp = get_array_module(grad)
        return grad - xp.exp(self.out) * grad.sum(axis=self.dim, keepdims=True)


def softmax(x: Tensor, dim=None) -> Tensor:
    """Numerically stable softmax along ``dim``."""
    return SoftmaxFunction.apply(x, _dim(dim, x.ndim, "softmax"))


def log_softmax(x: Tensor, dim=None) -> Tensor:
    """Numerically stable log-softmax along ``dim``."""
    return LogSoftmaxFunction.apply(x, _dim(dim, x.ndim, "log_softmax"))


# --------------------------------------------------------------------------- losses

_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropyFunction(Function):
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
        target, self.scale = _poisoned_rows(xp, target, c)
        loss = -logp[rows, target]
        if label_smoothing:
            loss = (1 - label_smoothing) * loss - (label_smoothing / c) * logp.sum(axis=1)
        if self.scale is not None:
            loss *= self.scale.astype(loss.dtype)
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
        if self.scale is not None:
            dx *= self.scale.astype(dx.dtype)[:, None]
        if self.reduction == "none":
            dx *= grad[:, None]
        else:
            dx *= grad / n if self.reduction == "mean" else grad
        return dx, None


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _class_target(op, input, target):
    """Check logits/log-probabilities (N, C, d1, ...) against integer class indices (N, d1, ...);
    return the target as an array on the input's device."""
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C) or (N, C, d1, ...), got {tuple(input.shape)}")
    target = target.data if isinstance(target, Tensor) else target
    if get_array_module(target) is np:       # host data (NumPy, lists): checked here, before any copy
        target = np.asarray(target)
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"{op}: expected a target of shape {expected} for input of shape "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype}")
    # The range check reads the targets on the host. For targets already on a GPU it would cost
    # a device-to-host synchronisation per training step: there an out-of-range class makes its
    # loss (and gradient) NaN instead (``_poisoned_rows``), which the training loop reports.
    if isinstance(target, np.ndarray) and target.size and (int(target.min()) < 0 or int(target.max()) >= input.shape[1]):
        raise ValueError(f"{op}: target values must be in [0, {input.shape[1]}), "
                         f"got min {int(target.min())} and max {int(target.max())}")
    return get_array_module(input.data).asarray(target)


def _poisoned_rows(xp, target, num_classes):
    """``(safe_target, scale)``: on a GPU, targets outside [0, C) read class 0 and get scale NaN (else 1),
    so a bad target shows up as a NaN loss without a device-to-host check; on the CPU ``(target, None)``."""
    if xp is np:
        return target, None
    valid = (target >= 0) & (target < num_classes)
    return xp.where(valid, target, 0), xp.where(valid, 1.0, float("nan"))


def _class_dim_last(input, target):
    """(N, C, d1, ...) logits and (N, d1, ...) targets as (N*d1*..., C) and (N*d1*...,)."""
    perm = (0,) + tuple(range(2, input.ndim)) + (1,)
    return input.permute(*perm).reshape(-1, input.shape[1]), target.reshape(-1)


def cross_entropy(input: Tensor, target, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy between logits ``input`` (N, C) and class indices ``target`` (N,).

    Same as ``torch.nn.functional.cross_entropy`` for integer targets (``weight`` and
    ``ignore_index`` are not supported; K-dimensional inputs (N, C, d1, ...) are).
    """
    _check_reduction(reduction, "cross_entropy")
    target = _class_target("cross_entropy", input, target)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if input.ndim > 2:
        loss = CrossEntropyFunction.apply(*_class_dim_last(input, target), reduction, float(label_smoothing))
        return loss.reshape(target.shape) if reduction == "none" else loss
    return CrossEntropyFunction.apply(input, target, reduction, float(label_smoothing))


def nll_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C) (or (N, C, d1, ...)) at integer ``target``."""
    _check_reduction(reduction, "nll_loss")
    target = _class_target("nll_loss", input, target)
    flat, flat_target = _class_dim_last(input, target) if input.ndim > 2 else (input, target)
    xp = get_array_module(flat.data)
    flat_target, scale = _poisoned_rows(xp, flat_target, flat.shape[1])
    picked = -flat[xp.arange(flat.shape[0]), flat_target]
    if scale is not None:
        picked = picked * Tensor(scale.astype(flat.dtype))
    if reduction == "none":
        return picked.reshape(target.shape)
    return picked.sum() if reduction == "sum" else picked.mean()


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)^2`` reduced by ``reduction``."""
    _check_reduction(reduction, "mse_loss")
    if not isinstance(target, Tensor):    # arrays and lists take the input's dtype and device
        target = Tensor(get_array_module(input.data).asarray(target, dtype=input.dtype))
    if target.shape != input.shape:
        raise ValueError(f"mse_loss: input shape {tuple(input.shape)} and target shape "
                         f"{tuple(target.shape)} differ")
    diff = input - target
    sq = diff * diff
    return sq if reduction == "none" else (sq.sum() if reduction == "sum" else sq.mean())


# --------------------------------------------------------------------------- padding

class PadFunction(Function):
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


def pad(input: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
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
    """Convolve ``input`` (N, C, H, W) with ``weight`` (O, C/groups, kH, kW) -> (N, O, H', W').

    ``padding``: an int, a pair, ``'valid'``, ``'same'`` (stride 1, as PyTorch), or a 4-tuple
    ``(top, bottom, left, right)`` for asymmetric padding (a minicnn extension; PyTorch
    users call ``F.pad`` first, which works here too).
    """
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels/groups, kH, kW), "
                         f"got shape {tuple(weight.shape)}")
    padding = K.normalize_conv_padding(padding, weight.shape[2:], stride, dilation)
    return Conv2dFunction.apply(input, weight, bias, stride, padding, dilation, groups)   # the kernel checks them


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


class MaxPool2dFunction(Function):
    """Max over each window (padding counts as -inf);  dx: g routed to the first arg-max of each window."""

    def forward(self, x, kernel_size, stride, padding, ceil_mode):
        out, self.cache = K.max_pool2d_forward(x, kernel_size, stride, padding, ceil_mode)
        return out

    def backward(self, grad):
        return K.max_pool2d_backward(grad, self.cache)


def max_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False) -> Tensor:
    """2-D max pooling (``torch.nn.functional.max_pool2d``; ``stride`` defaults to ``kernel_size``)."""
    return MaxPool2dFunction.apply(input, kernel_size, stride, padding, bool(ceil_mode))   # the kernel checks them


class AvgPool2dFunction(Function):
    """Mean over each window;  dx: g / divisor spread evenly over the window."""

    def forward(self, x, kernel_size, stride, padding, ceil_mode, count_include_pad):
        out, self.cache = K.avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad)
        return out

    def backward(self, grad):
        return K.avg_pool2d_backward(grad, self.cache)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True) -> Tensor:
    """2-D average pooling (``torch.nn.functional.avg_pool2d``)."""
    return AvgPool2dFunction.apply(input, kernel_size, stride, padding,
                           bool(ceil_mode), bool(count_include_pad))


class AdaptiveAvgPool2dFunction(Function):
    """Average over PyTorch's adaptive bins [floor(i*H/out), ceil((i+1)*H/out));  dx: g spread over each bin."""

    def forward(self, x, output_size):
        out, self.cache = K.adaptive_avg_pool2d_forward(x, output_size)
        return out

    def backward(self, grad):
        return K.adaptive_avg_pool2d_backward(grad, self.cache)


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """Average-pool to a fixed ``output_size`` (an int, a pair; ``None`` keeps that input size)."""
    if isinstance(output_size, numbers.Integral):
        output_size = (int(output_size), int(output_size))
    if input.ndim != 4:
        raise ValueError(f"adaptive_avg_pool2d: expected input of shape (N, C, H, W), got {tuple(input.shape)}")
    output_size = tuple(input.shape[2 + i] if s is None else int(s) for i, s in enumerate(output_size))
    return AdaptiveAvgPool2dFunction.apply(input, output_size)


class SubsampleFunction(Function):
    """LeNet-5's trainable subsampling: y = coeff[c] * (window sum of x) + bias[c];
    dx = coeff * g spread over the window, dcoeff = sum(g * window sums), dbias = sum(g)."""

    def forward(self, x, weight, bias, kernel_size, stride):
        out, self.cache = K.subsample_forward(x, weight, bias, kernel_size, stride)
        return out

    def backward(self, grad):
        return K.subsample_backward(grad, self.cache)


def subsample(input, weight, bias, kernel_size=2, stride=2) -> Tensor:
    """LeNet-5's S2/S4 layers (no PyTorch equivalent): a trainable coefficient and bias per channel."""
    return SubsampleFunction.apply(input, weight, bias, kernel_size, stride)


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
        raise ValueError(f"batch_norm: expected input of shape (N, C), (N, C, L) or (N, C, H, W), "
                         f"got {tuple(input.shape)}")
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
