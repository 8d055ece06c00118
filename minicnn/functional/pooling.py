"""Pooling with ``torch.nn.functional``'s names: ``max_pool2d`` (``dilation``, ``return_indices``),
``max_unpool2d``, ``avg_pool2d``, ``adaptive_avg_pool2d``, and LeNet-5's ``subsample``.

Each takes a batch (N, C, H, W) or, as PyTorch, one unbatched image (C, H, W) (``batched`` adds and
removes the batch dimension around the kernel).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import kernels as K
from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..checks import pair


def batched(op, input):
    """``(input as (N, C, H, W), True if it came unbatched as (C, H, W))``; anything else is refused."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a minicnn Tensor, got {type(input).__name__} "
                        "(wrap arrays with minicnn.tensor(...))")
    if input.ndim == 3:
        return input.unsqueeze(0), True
    if input.ndim != 4:
        raise ValueError(f"{op}: expected input of shape (N, C, H, W) or (C, H, W), got {tuple(input.shape)}")
    return input, False


class MaxPool2dFunction(Function):
    """Max over each (dilated) window (padding counts as -inf);  dx: g routed to the first arg-max of each window.
    ``indices``: None, or a list that receives the winners' flat indices h*W + w (``return_indices``)."""

    def forward(self, x, kernel_size, stride, padding, ceil_mode, dilation, indices=None):
        out, self.cache = K.max_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, dilation)
        if indices is not None:
            indices.append(K.max_pool2d_indices(self.cache))
        return out

    def backward(self, grad):
        return K.max_pool2d_backward(grad, self.cache)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling (``torch.nn.functional.max_pool2d``; ``stride`` defaults to ``kernel_size``).

    With ``return_indices=True`` returns ``(output, indices)``: indices (int64, the output's shape) is the
    flat index h*W + w of each window's maximum in its input plane, as ``max_unpool2d`` takes it.
    """
    x, unbatched = batched("max_pool2d", input)
    indices = [] if return_indices else None
    out = MaxPool2dFunction.apply(x, kernel_size, stride, padding, bool(ceil_mode), dilation, indices)  # the kernel checks them
    out = out.squeeze(0) if unbatched else out
    if not return_indices:
        return out
    return out, Tensor(indices[0][0] if unbatched else indices[0])


def _unpool_output_size(input, kernel_size, stride, padding, output_size):
    """PyTorch's rule: (H - 1)*stride - 2*padding + kernel, or ``output_size`` (last two entries) when it lies
    strictly within one stride of that."""
    kernel = pair("max_unpool2d", "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair("max_unpool2d", "stride", stride, 1)
    padding = pair("max_unpool2d", "padding", padding, 0)
    default = tuple((input.shape[-2 + d] - 1) * stride[d] + kernel[d] - 2 * padding[d] for d in range(2))
    if output_size is None:
        return default
    size = tuple(int(s) for s in output_size)
    size = size[-2:] if len(size) == input.ndim else size
    if len(size) != 2:
        raise ValueError(f"max_unpool2d: output_size must have 2 elements (or {input.ndim}), got {tuple(output_size)}")
    for d in range(2):
        if not default[d] - stride[d] < size[d] < default[d] + stride[d]:
            raise ValueError(f"max_unpool2d: invalid output_size {size}: each size must lie strictly between "
                             f"{tuple(s - t for s, t in zip(default, stride))} and "
                             f"{tuple(s + t for s, t in zip(default, stride))}")
    return size


class MaxUnpool2dFunction(Function):
    """The partial inverse of max pooling: y (N, C, Ho, Wo) zeros but y.flat[plane][indices] = x;
    dx = g.flat[plane][indices] (a gather)."""

    def forward(self, x, indices, out_hw):
        xp = get_array_module(x)
        n, c = x.shape[:2]
        out = xp.zeros((n, c, out_hw[0] * out_hw[1]), dtype=x.dtype)
        self.at = (xp.arange(n)[:, None, None], xp.arange(c)[None, :, None], indices.reshape(n, c, -1))
        out[self.at] = x.reshape(n, c, -1)
        self.x_shape = x.shape
        return out.reshape(n, c, *out_hw)

    def backward(self, grad):
        n, c = self.x_shape[:2]
        return grad.reshape(n, c, -1)[self.at].reshape(self.x_shape), None, None


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Place each value of ``input`` (N, C, H, W) (or (C, H, W)) at its ``indices`` (from ``max_pool2d(...,
    return_indices=True)``) in a zero output of size ``output_size`` (default (H - 1)*stride - 2*padding + kernel),
    as ``torch.nn.functional.max_unpool2d``. Indices are range-checked on the CPU; on a GPU they are not read on
    the host (an out-of-range index is the caller's bug there, as in PyTorch's CUDA kernel)."""
    x, unbatched = batched("max_unpool2d", input)
    index = indices.data if isinstance(indices, Tensor) else indices
    xp = get_array_module(x.data)
    index = xp.asarray(index)
    if index.dtype.kind not in "iu" or tuple(index.shape) != tuple(input.shape):
        raise ValueError(f"max_unpool2d: indices must be integers of the input's shape {tuple(input.shape)}, "
                         f"got {index.dtype} of shape {tuple(index.shape)}")
    out_hw = _unpool_output_size(input, kernel_size, stride, padding, output_size)
    index = index.reshape(x.shape).astype(xp.int64, copy=False)
    if xp is np and index.size and (int(index.min()) < 0 or int(index.max()) >= out_hw[0] * out_hw[1]):
        raise ValueError(f"max_unpool2d: indices must be in [0, {out_hw[0] * out_hw[1]}) for an output of size "
                         f"{out_hw}, got min {int(index.min())} and max {int(index.max())}")
    out = MaxUnpool2dFunction.apply(x, index, out_hw)
    return out.squeeze(0) if unbatched else out


class AvgPool2dFunction(Function):
    """Mean over each window;  dx: g / divisor spread evenly over the window."""

    def forward(self, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
        out, self.cache = K.avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                               divisor_override)
        return out

    def backward(self, grad):
        return K.avg_pool2d_backward(grad, self.cache)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None) -> Tensor:
    """2-D average pooling (``torch.nn.functional.avg_pool2d``)."""
    x, unbatched = batched("avg_pool2d", input)
    out = AvgPool2dFunction.apply(x, kernel_size, stride, padding, bool(ceil_mode), bool(count_include_pad),
                                  divisor_override)
    return out.squeeze(0) if unbatched else out


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
    x, unbatched = batched("adaptive_avg_pool2d", input)
    output_size = tuple(x.shape[2 + i] if s is None else int(s) for i, s in enumerate(output_size))
    out = AdaptiveAvgPool2dFunction.apply(x, output_size)
    return out.squeeze(0) if unbatched else out


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
