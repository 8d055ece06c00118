"""The textbook kernels: every layer written the way a course teaches it, forward and backward.

Read this file first. Each kernel is a handful of whole-array operations (NumPy or CuPy, found
with ``get_array_module``), with the maths in its docstring. ``minicnn.kernels.fast`` computes the
same numbers faster (threads, reused buffers, channels-last gathers, CUDA kernels) and is tested
against these; these are tested against the loop versions in ``reference.py`` and against finite
differences. ``MINICNN_KERNELS=textbook`` (or ``minicnn.kernels.use("textbook")``) runs every
layer of every model through this file.

Arguments are checked by the shared ``geometry`` helpers (the same rules and messages as the fast
kernels); a ``*_forward`` returns ``(out, cache)`` and the matching ``*_backward`` takes that cache.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from ..backend import get_array_module
from ..checks import channel_vector, check_float_array, check_grad
from .geometry import (adaptive_output_size, avg_pool_divisor_override, check_batch_norm, check_linear, conv_geometry,
                       pool_geometry, window_offset_to_flat)

# --------------------------------------------------------------------------- convolution by im2col


def _pad(x, widths, value=0.0):
    """Pad the last two axes by ((top, bottom), (left, right)); a negative width crops instead."""
    xp = get_array_module(x)
    (t, b), (l, r) = widths
    x = x[:, :, max(-t, 0):x.shape[2] - max(-b, 0), max(-l, 0):x.shape[3] - max(-r, 0)]
    return xp.pad(x, ((0, 0), (0, 0), (max(t, 0), max(b, 0)), (max(l, 0), max(r, 0))), constant_values=value)


def _offsets(kernel, stride, dilation, Ho, Wo):
    """For each kernel offset (i, j): the strided slices of the padded image that hold element
    (i, j) of every window at once (shape (N, C, Ho, Wo))."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    return [(i, j, slice(i * dh, i * dh + sh * (Ho - 1) + 1, sh), slice(j * dw, j * dw + sw * (Wo - 1) + 1, sw))
            for i in range(kh) for j in range(kw)]


def im2col(x, kernel, stride, padding, dilation):
    """x (N, C, H, W) -> cols (C, kH, kW, N, Ho, Wo):  cols[c, i, j, n, oh, ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw].
    As a (C*kH*kW, N*Ho*Wo) matrix: one column per output pixel, holding its receptive field."""
    xpad = _pad(x, padding)
    Ho = (xpad.shape[2] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    Wo = (xpad.shape[3] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    cols = get_array_module(x).empty((x.shape[1], *kernel, x.shape[0], Ho, Wo), dtype=x.dtype)
    for i, j, rows, columns in _offsets(kernel, stride, dilation, Ho, Wo):
        cols[:, i, j] = xpad[:, :, rows, columns].transpose(1, 0, 2, 3)
    return cols


def col2im(cols, x_shape, kernel, stride, padding, dilation):
    """The adjoint of ``im2col``: every column entry is added back to the pixel it was copied from."""
    (t, b), (l, r) = padding
    N, C, H, W = x_shape
    dxpad = get_array_module(cols).zeros((N, C, H + t + b, W + l + r), dtype=cols.dtype)
    for i, j, rows, columns in _offsets(kernel, stride, dilation, *cols.shape[-2:]):
        dxpad[:, :, rows, columns] += cols[:, i, j].transpose(1, 0, 2, 3)
    return dxpad[:, :, t:t + H, l:l + W]


class ConvCache(NamedTuple):
    x_shape: tuple
    cols: object        # (G, C/G*kH*kW, N*Ho*Wo), from the forward pass
    weight: object
    has_bias: bool
    geometry: object


def conv2d_forward(x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """out[n, o] = bias[o] + sum over c (o's group), i, j of weight[o, c, i, j] * xpad[n, c, oh*sh + i*dh, ow*sw + j*dw].
    One matmul per group:  out (O/G, N*Ho*Wo) = weight (O/G, C/G*kH*kW) @ cols (C/G*kH*kW, N*Ho*Wo)."""
    g = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    xp, G = get_array_module(x), g.groups
    K, L = g.C // G * g.kh * g.kw, g.N * g.Ho * g.Wo
    cols = im2col(x, (g.kh, g.kw), g.stride, g.padding, g.dilation).reshape(G, K, L)
    out = xp.matmul(weight.reshape(G, g.O // G, -1), cols)                      # (G, O/G, N*Ho*Wo)
    out = out.reshape(g.O, g.N, g.Ho, g.Wo).transpose(1, 0, 2, 3)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return xp.ascontiguousarray(out), ConvCache(x.shape, cols, weight, bias is not None, g)


def conv2d_backward(grad, cache: ConvCache, need_x=True, need_w=True, need_b=True):
    """dbias = sum of grad;  dweight = grad2 @ cols^T;  dx = col2im(weight^T @ grad2),
    with grad2 = grad as (O, N*Ho*Wo), per group."""
    x_shape, cols, weight, has_bias, g = cache
    check_grad("conv2d_backward", grad, (g.N, g.O, g.Ho, g.Wo))
    xp, G = get_array_module(grad), g.groups
    grad2 = grad.transpose(1, 0, 2, 3).reshape(G, g.O // G, g.N * g.Ho * g.Wo)
    db = grad.sum(axis=(0, 2, 3)) if need_b and has_bias else None
    dw = xp.matmul(grad2, cols.transpose(0, 2, 1)).reshape(weight.shape) if need_w else None
    dx = None
    if need_x:
        dcols = xp.matmul(weight.reshape(G, g.O // G, -1).transpose(0, 2, 1), grad2)   # (G, C/G*kH*kW, N*Ho*Wo)
        dcols = dcols.reshape(g.C, g.kh, g.kw, g.N, g.Ho, g.Wo)
        dx = col2im(dcols, x_shape, (g.kh, g.kw), g.stride, g.padding, g.dilation)
    return dx, dw, db


# --------------------------------------------------------------------------- pooling through window slices

def _windows(xpad, g):
    """(kH*kW, N, C, Ho, Wo): every window's elements, one kernel offset per row of the stack."""
    return get_array_module(xpad).stack([xpad[:, :, rows, cols] for _, _, rows, cols in
                                         _offsets(g.kernel, g.stride, g.dilation, g.Ho, g.Wo)])


def _unwindow(parts, g, dtype):
    """The adjoint of ``_windows``: add part k of every window back where offset k read it; drop the padding."""
    (t, b), (l, r) = g.pad_widths
    dxpad = get_array_module(parts).zeros((g.N, g.C, g.H + t + max(b, 0), g.W + l + max(r, 0)), dtype=dtype)
    for k, (_, _, rows, cols) in enumerate(_offsets(g.kernel, g.stride, g.dilation, g.Ho, g.Wo)):
        dxpad[:, :, rows, cols] += parts[k]
    return dxpad[:, :, t:t + g.H, l:l + g.W]


def _inside(g, xp, dtype, include_padding=False):
    """The windows of an all-ones image: 1 where a window element lies in the image (or in its
    padding too, with ``include_padding``), 0 elsewhere (the padding, ceil_mode's overhang)."""
    (ph, pw) = g.padding
    ones = xp.ones((1, 1, g.H + 2 * ph, g.W + 2 * pw) if include_padding else (1, 1, g.H, g.W), dtype=dtype)
    (t, b), (l, r) = g.pad_widths
    widths = ((t - ph, b - ph), (l - pw, r - pw)) if include_padding else g.pad_widths
    return _windows(_pad(ones, widths), g._replace(N=1, C=1))


class PoolCache(NamedTuple):
    extra: object       # max: the arg-max offset of each window; average: the divisor
    geometry: object


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, dilation=1):
    """out = the max of each window (padding never wins); the cache keeps which offset won,
    the first one inside the image on ties (a NaN wins: max propagates it)."""
    g = pool_geometry("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    windows = _windows(_pad(x, g.pad_widths, -np.inf), g)
    out = windows.max(axis=0)
    hit = (windows == out) | (windows != windows)
    argmax = (hit & (_inside(g, get_array_module(x), x.dtype) > 0)).argmax(axis=0)
    return out, PoolCache(argmax, g)


def max_pool2d_backward(grad, cache: PoolCache):
    """Each window's gradient goes to the element that won its max."""
    argmax, g = cache
    check_grad("max_pool2d_backward", grad, (g.N, g.C, g.Ho, g.Wo))
    return _unwindow(get_array_module(grad).stack([grad * (argmax == k) for k in range(len(_offsets(
        g.kernel, g.stride, g.dilation, 1, 1)))]), g, grad.dtype)


def max_pool2d_indices(cache: PoolCache):
    """PyTorch's ``return_indices``: the flat index h*W + w (int64) of each window's winner in its input plane."""
    return window_offset_to_flat(*cache)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       divisor_override=None):
    """out = (sum of the window, padding counted as 0) / divisor; the divisor counts the window's
    elements inside the image (and its padding, with ``count_include_pad``), or is ``divisor_override``."""
    g = pool_geometry("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    xp = get_array_module(x)
    divisor = avg_pool_divisor_override("avg_pool2d", divisor_override)
    if divisor is None:
        divisor = _inside(g, xp, x.dtype, include_padding=count_include_pad).sum(axis=0)
    return _windows(_pad(x, g.pad_widths), g).sum(axis=0) / divisor, PoolCache(divisor, g)


def avg_pool2d_backward(grad, cache: PoolCache):
    """Every element of a window gets grad / divisor."""
    divisor, g = cache
    check_grad("avg_pool2d_backward", grad, (g.N, g.C, g.Ho, g.Wo))
    share = grad / divisor
    return _unwindow(get_array_module(grad).stack([share] * (g.kernel[0] * g.kernel[1])), g, grad.dtype)


def _adaptive_bins(size, out_size):
    """PyTorch's bins: bin i covers [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out_size, -(-(i + 1) * size // out_size)) for i in range(out_size)]


def adaptive_avg_pool2d_forward(x, output_size):
    """out[:, :, i, j] = the mean of x over row bin i and column bin j."""
    N, C, H, W, Ho, Wo = adaptive_output_size(x, output_size)
    out = get_array_module(x).empty((N, C, Ho, Wo), dtype=x.dtype)
    for i, (h0, h1) in enumerate(_adaptive_bins(H, Ho)):
        for j, (w0, w1) in enumerate(_adaptive_bins(W, Wo)):
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out, AdaptiveCache(x.shape, Ho, Wo)


class AdaptiveCache(NamedTuple):
    x_shape: tuple
    Ho: int
    Wo: int


def adaptive_avg_pool2d_backward(grad, cache: AdaptiveCache):
    """Each bin's gradient is spread evenly over the bin (bins may overlap: their shares add)."""
    (N, C, H, W), Ho, Wo = cache
    check_grad("adaptive_avg_pool2d_backward", grad, (N, C, Ho, Wo))
    dx = get_array_module(grad).zeros((N, C, H, W), dtype=grad.dtype)
    for i, (h0, h1) in enumerate(_adaptive_bins(H, Ho)):
        for j, (w0, w1) in enumerate(_adaptive_bins(W, Wo)):
            dx[:, :, h0:h1, w0:w1] += grad[:, :, i, j, None, None] / ((h1 - h0) * (w1 - w0))
    return dx


def subsample_forward(x, coeff, bias=None, kernel=2, stride=2):
    """LeNet-5's S2/S4: out[n, c] = coeff[c] * (sum of each window of x[n, c]) + bias[c]."""
    g = pool_geometry("subsample", x, kernel, stride, 0, 1, False)
    if coeff is None:
        raise TypeError(f"subsample: coeff must be an array of shape ({g.C},), got None")
    channel_vector("subsample", "coeff", coeff, g.C, x)
    channel_vector("subsample", "bias", bias, g.C, x)
    sums = _windows(_pad(x, g.pad_widths), g).sum(axis=0)
    out = sums * coeff.reshape(-1, 1, 1) + (0 if bias is None else bias.reshape(-1, 1, 1))
    return out, PoolCache((sums, coeff, bias is not None), g)


def subsample_backward(grad, cache: PoolCache):
    """dcoeff = sum of grad * window sums;  dbias = sum of grad;  dx = grad * coeff in every window element."""
    (sums, coeff, has_bias), g = cache
    check_grad("subsample_backward", grad, (g.N, g.C, g.Ho, g.Wo))
    dx = _unwindow(get_array_module(grad).stack([grad * coeff.reshape(-1, 1, 1)] * (g.kernel[0] * g.kernel[1])),
                   g, grad.dtype)
    return dx, (grad * sums).sum(axis=(0, 2, 3)), grad.sum(axis=(0, 2, 3)) if has_bias else None


# --------------------------------------------------------------------------- batch normalisation

class BatchNormCache(NamedTuple):
    xhat: object
    inv_std: object
    weight: object
    has_bias: bool
    batch_stats: bool


def batch_norm_forward(x, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1, eps=1e-5):
    """out = (x - mean) / sqrt(var + eps) * weight + bias, per channel (axis 1). Training: the batch's
    mean and (biased) variance, and running = (1 - momentum) * running + momentum * stat (unbiased var)."""
    momentum, eps, batch_stats = check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    axes, shape = (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)
    if batch_stats:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        if training and running_mean is not None:
            m = x.size // x.shape[1]
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
            running_var[...] = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    else:
        mean, var = running_mean, running_var
    inv_std = (1.0 / get_array_module(x).sqrt(var + eps)).astype(x.dtype).reshape(shape)
    xhat = (x - mean.reshape(shape)) * inv_std
    out = xhat * (1 if weight is None else weight.reshape(shape)) + (0 if bias is None else bias.reshape(shape))
    return out.astype(x.dtype, copy=False), BatchNormCache(xhat, inv_std, weight, bias is not None, batch_stats)


def batch_norm_backward(grad, cache: BatchNormCache, need_x=True, need_w=True, need_b=True):
    """dweight = sum grad * xhat;  dbias = sum grad;  dx = weight * inv_std * (grad - mean(grad) - xhat * mean(grad * xhat))
    with batch statistics (their own gradient included), else dx = grad * weight * inv_std."""
    xhat, inv_std, weight, has_bias, batch_stats = cache
    check_grad("batch_norm_backward", grad, xhat.shape)
    axes, shape = (0,) + tuple(range(2, grad.ndim)), (1, -1) + (1,) * (grad.ndim - 2)
    sum_g, sum_gx = grad.sum(axis=axes), (grad * xhat).sum(axis=axes)
    dx = None
    if need_x:
        scale = inv_std * (1 if weight is None else weight.reshape(shape))
        m = grad.size // grad.shape[1]
        dx = scale * (grad - sum_g.reshape(shape) / m - xhat * (sum_gx.reshape(shape) / m)) if batch_stats \
            else grad * scale
    return dx, (sum_gx if need_w and weight is not None else None), (sum_g if need_b and has_bias else None)


# --------------------------------------------------------------------------- element-wise and fully connected

def relu_forward(x, need_mask=True):
    """out = max(x, 0);  the mask x > 0 is all the backward needs."""
    return get_array_module(x).maximum(x, 0), (x > 0 if need_mask else None)


def relu_backward(grad, mask):
    """dx = grad where x > 0, else 0."""
    return grad * mask


def scaled_tanh_forward(x, a, b):
    """out = a * tanh(b * x) (LeCun's 1.7159 * tanh(2x/3)); the cache is t = tanh(b * x)."""
    t = get_array_module(x).tanh(x * b)
    return a * t, ScaledTanhCache(t, a * b)


class ScaledTanhCache(NamedTuple):
    t: object
    ab: float


def scaled_tanh_backward(grad, cache: ScaledTanhCache):
    """dx = grad * a*b * (1 - t^2)."""
    t, ab = cache
    return grad * (ab * (1 - t * t))


class LinearCache(NamedTuple):
    x: object
    weight: object
    has_bias: bool


def linear_forward(x, weight, bias=None):
    """out = x @ weight^T + bias, for x (*, in) and weight (out, in)."""
    check_linear(x, weight, bias)
    out = x @ weight.T
    return (out if bias is None else out + bias), LinearCache(x, weight, bias is not None)


def linear_backward(grad, cache: LinearCache, need_x=True, need_w=True, need_b=True):
    """dx = grad @ weight;  dweight = grad^T @ x over all rows;  dbias = grad summed over all rows."""
    x, weight, has_bias = cache
    rows = math.prod(grad.shape[:-1])                     # every leading axis is a row (-1 fails on empty rows)
    g2, x2 = grad.reshape(rows, grad.shape[-1]), x.reshape(rows, x.shape[-1])
    return ((grad @ weight) if need_x else None, (g2.T @ x2) if need_w else None,
            g2.sum(axis=0) if need_b and has_bias else None)


def parameter_updates(update, params):
    """An optimizer step: ``update(first, stop)`` updates parameters first..stop-1; here all in one call."""
    update(0, len(params))


# --------------------------------------------------------------------------- shared with the fast set
# Dropout and local response normalisation have no faster version: ``kernels.fast`` uses these.

def dropout_forward(x, p: float, training: bool, rng):
    """Inverted dropout.  x: any shape  ->  (out, mask), out has x's shape and dtype.

    out = x * mask with mask = [u >= p] / (1 - p), u ~ U[0, 1) drawn from ``rng`` (an xp random
    ``Generator`` seeded by the caller), so E[out] = x and evaluation needs no rescaling.
    When not training, or p == 0, dropout is the identity: returns ``(x, None)`` (x itself, no copy).
    """
    check_float_array("dropout", "x", x)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) < 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1), got {p!r}")
    p = float(p)
    if not training or p == 0.0:
        return x, None
    xp = get_array_module(x)
    draw_dtype = x.dtype if x.dtype.itemsize >= 4 else xp.float32   # Generator.random: float32/64 only
    keep = rng.random(x.shape, dtype=draw_dtype) >= p
    mask = xp.multiply(keep, 1.0 / (1.0 - p), dtype=x.dtype)      # the scaled mask: 0 or 1/(1-p)
    return x * mask, mask


def dropout_backward(grad, mask):
    """d out / d x = mask, so dx = grad * mask (grad itself when dropout was the identity)."""
    return grad if mask is None else grad * mask


class LRNCache(NamedTuple):
    """``x``: the input (a reference); ``base`` = k + alpha/size * window sum of x^2; ``div`` = base**beta."""
    x: object
    base: object
    div: object
    out: object
    size: int
    alpha: float
    beta: float


def _channel_window_sum(a, before: int, after: int):
    """s[:, c] = sum of a[:, c - before : c + after + 1] (zero outside the channels); one add per offset."""
    xp = get_array_module(a)
    C = a.shape[1]
    padded = xp.zeros((a.shape[0], C + before + after, *a.shape[2:]), dtype=a.dtype)
    padded[:, before:before + C] = a
    s = padded[:, 0:C].copy()
    for t in range(1, before + after + 1):
        s += padded[:, t:t + C]
    return s


def local_response_norm_forward(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalisation across channels.  x (N, C, *)  ->  (out like x, cache).

    out = x / div,  div = (k + alpha/size * sum_{c' in window(c)} x[:, c']^2) ** beta, where the
    window holds ``size`` channels: size//2 before c and (size-1)//2 after (zero padded), as PyTorch.
    """
    op = "local_response_norm"
    check_float_array(op, "x", x, None)
    if x.ndim < 3:
        raise ValueError(f"{op}: x must be (N, C, *) with at least 3 dimensions, got shape {tuple(x.shape)}")
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"{op}: size must be a positive int, got {size!r}")
    size, alpha, beta, k = int(size), float(alpha), float(beta), float(k)
    base = _channel_window_sum(x * x, size // 2, (size - 1) // 2)
    base *= alpha / size
    base += k
    div = base ** beta
    out = x / div
    return out, LRNCache(x, base, div, out, size, alpha, beta)


def local_response_norm_backward(grad, cache: LRNCache):
    """grad (like x)  ->  dx.

    With D = base = k + alpha/size * sum x^2 over the window:  out_c = x_c * D_c^-beta, and
    dx_j = grad_j / div_j - (2 alpha beta / size) * x_j * sum_{c : j in window(c)} grad_c * out_c / D_c,
    the inner sum running over channels c in [j - (size-1)//2, j + size//2] (the window, mirrored).
    """
    x, base, div, out, size, alpha, beta = cache
    check_grad("local_response_norm_backward", grad, x.shape)
    t = _channel_window_sum(grad * out / base, (size - 1) // 2, size // 2)
    dx = grad / div
    dx -= (2.0 * alpha * beta / size) * x * t
    return dx
