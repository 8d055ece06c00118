"""Pooling kernels: max, average, adaptive average, and LeNet-5's trainable subsampling.

Every window-based kernel here is written as a loop over the kH*kW *kernel offsets* (never over
pixels): for offset (i, j) the strided slice

    xpad[:, :, i*dh : ... : sh, j*dw : ... : sw]          shape (N, C, Ho, Wo)

holds element (i, j) of every window at once, so a window max / sum is kH*kW whole-array
operations, and the backward pass adds each offset's share of the gradient back through the
same slice.  Shapes follow PyTorch, including its ``ceil_mode`` rule (a last window that would
start in the right/bottom padding is dropped) and its average-pool divisor rules.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...backend import get_array_module
from ...checks import channel_vector, check_grad
from ..geometry import (PoolGeometry, adaptive_output_size, avg_pool_divisor_override, pool_geometry,
                        window_offset_to_flat)
from . import cuda, fused
from .im2col import pad2d
from .memory import empty, workspace
from .misc import channel_sums
from .threads import batch_slices, parallel_map

def _padded(x, g: PoolGeometry, value):
    """x padded (or cropped) by ``g.pad_widths`` with ``value``, in a reused scratch buffer."""
    (t, b), (l, r) = g.pad_widths
    shape = (g.N, g.C, g.H + t + b, g.W + l + r)
    return pad2d(x, g.pad_widths, value, out=workspace(get_array_module(x), "pool_pad", shape, x.dtype))


def _scatter_windows(parts, g: PoolGeometry, dtype, xp, out=None):
    """Adjoint of reading windows: dx (N, C, H, W) = sum over offsets of ``parts(index, target)`` (shape
    (N, C, Ho, Wo)) added through that offset's strided slice of a zero padded image, padding dropped.
    ``target`` is that slice when the part may be written straight into it (then ``parts`` returns
    None), else None.

    When the windows tile the image without overlapping (stride = kernel, no dilation: 2x2/2 pooling)
    each element belongs to one window at most, so every slice is simply written: no zero fill first
    (but for rows/columns no window reaches) and no read-add-write.  ``out``: optional (N, C, H, W) array.
    """
    (t, b), (l, r) = g.pad_widths
    (kh, kw), (sh, sw), (dh, dw) = g.kernel, g.stride, g.dilation
    Hp, Wp = g.H + t + max(b, 0), g.W + l + max(r, 0)
    padded = (Hp, Wp) != (g.H, g.W)
    if out is None:
        out = empty(xp, (g.N, g.C, g.H, g.W), dtype)
    dxpad = workspace(xp, "pool_dxpad", (g.N, g.C, Hp, Wp), dtype) if padded else out
    tiled = (kh, kw) == (sh, sw) and (kh == 1 or dh == 1) and (kw == 1 or dw == 1)
    if tiled:
        dxpad[:, :, g.Ho * sh:] = 0             # rows and columns that no window reaches
        dxpad[:, :, :, g.Wo * sw:] = 0
        for index, rows, cols in g.offsets():
            part = parts(index, dxpad[:, :, rows, cols])
            if part is not None:
                dxpad[:, :, rows, cols] = part
    else:
        dxpad.fill(0)
        for index, rows, cols in g.offsets():
            dxpad[:, :, rows, cols] += parts(index, None)
    if padded:
        out[...] = dxpad[:, :, t:t + g.H, l:l + g.W]
    return out


MIN_SLICE_VALUES = 1 << 18   # a batch slice handed to another thread holds at least this many input values


def _per_image_slices(g: PoolGeometry, xp):
    """The batch cut into one slice per CPU thread (fewer if the slices would be too small to pay:
    waking a thread costs tens of microseconds, and these passes are mostly memory traffic)."""
    return batch_slices(g.N, xp, min_size=-(-MIN_SLICE_VALUES // max(1, g.C * g.H * g.W)))


# --------------------------------------------------------------------------- max pooling


class MaxPoolCache(NamedTuple):
    """``argmax``: for every output, which window element won (the kernel-offset index i*kW + j on
    the CPU, the flat h*W + w index in the input plane on the GPU)."""
    argmax: object
    geom: PoolGeometry


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, dilation=1):
    """Max pooling.  x (N, C, H, W)  ->  (out (N, C, Ho, Wo), cache).

    out[n, c, oh, ow] = max over (i, j) of xpad[n, c, oh*sh + i*dh, ow*sw + j*dw], padding = -inf.
    ``stride`` defaults to ``kernel_size``; padding must be at most half the kernel (as in PyTorch).
    Ties go to the FIRST maximum in row-major window order (the one backward routes gradient to).
    A NaN in a window makes the output NaN (as in PyTorch); where its gradient goes is unspecified.
    """
    g = pool_geometry("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    xp = get_array_module(x)
    if xp is not np:
        out, argmax = cuda.max_pool2d_forward(x, g)
        return out, MaxPoolCache(argmax, g)
    kk = g.kernel[0] * g.kernel[1]
    out = empty(np, (g.N, g.C, g.Ho, g.Wo), x.dtype)
    argmax = empty(np, (g.N, g.C, g.Ho, g.Wo), np.uint8 if kk <= 256 else np.int32)
    parallel_map(lambda n0, n1: _max_pool_into(out[n0:n1], argmax[n0:n1], x[n0:n1], g._replace(N=n1 - n0)),
                 _per_image_slices(g, np))
    return out, MaxPoolCache(argmax, g)


def _max_pool_into(out, argmax, x, g: PoolGeometry):
    """The CPU max pooling of x (a slice of the batch) into ``out`` and ``argmax``."""
    xpad = _padded(x, g, -np.inf)
    better = np.empty(argmax.shape, dtype=bool)
    update = np.empty(argmax.shape, dtype=argmax.dtype)
    argmax.fill(0)
    for index, rows, cols in g.offsets():
        candidate = xpad[:, :, rows, cols]
        if index == 0:
            np.copyto(out, candidate)
            continue
        np.greater(candidate, out, out=better)        # strictly greater: an earlier tie keeps the win
        np.maximum(out, candidate, out=out)
        # argmax = index where better, else unchanged.  Offsets come in increasing order, so this
        # is max(argmax, better * index): much faster than a masked copy.
        np.multiply(better, argmax.dtype.type(index), out=update)
        np.maximum(argmax, update, out=argmax)
    _route_minus_inf_windows_inside(out, argmax, g)


def _route_minus_inf_windows_inside(out, argmax, g: PoolGeometry):
    """A window whose values are all -inf keeps arg-max 0, its first element; for a window that
    overlaps the top or left padding that is a padding cell, and its gradient would be lost.
    PyTorch gives it to the window's first element inside the image: so do we.  Such windows are
    in the first output rows and columns only (padding is at most half a kernel)."""
    (_, kw), (sh, sw), (dh, dw) = g.kernel, g.stride, g.dilation
    (top, _), (left, _) = g.pad_widths
    if top <= 0 and left <= 0:
        return
    i0 = np.maximum(0, -(-(top - np.arange(g.Ho) * sh) // dh))     # first kernel row inside the image
    j0 = np.maximum(0, -(-(left - np.arange(g.Wo) * sw) // dw))    # first kernel column inside the image
    first = (i0[:, None] * kw + j0[None, :]).astype(argmax.dtype)
    for border in ((slice(None, int((i0 > 0).sum())), slice(None)), (slice(None), slice(None, int((j0 > 0).sum())))):
        where = out[(..., *border)] == -np.inf
        if where.any():
            np.copyto(argmax[(..., *border)], first[border], where=where)


def max_pool2d_backward(grad, cache: MaxPoolCache):
    """grad (N, C, Ho, Wo)  ->  dx (N, C, H, W): each output's gradient goes to its (first) arg-max."""
    argmax, g = cache
    check_grad("max_pool2d_backward", grad, (g.N, g.C, g.Ho, g.Wo))
    xp = get_array_module(grad)
    if xp is not np:
        return cuda.max_pool2d_backward(grad, argmax, g)
    dx = empty(np, (g.N, g.C, g.H, g.W), grad.dtype)

    def backward_slice(n0, n1):
        won = np.empty(argmax[n0:n1].shape, dtype=bool)
        part = np.empty(grad[n0:n1].shape, dtype=grad.dtype)

        def routed(index, target):   # the gradient of the windows whose arg-max is this offset
            np.equal(argmax[n0:n1], index, out=won)
            if target is not None:
                np.multiply(grad[n0:n1], won, out=target)
                return None
            return np.multiply(grad[n0:n1], won, out=part)
        _scatter_windows(routed, g._replace(N=n1 - n0), grad.dtype, np, out=dx[n0:n1])
    parallel_map(backward_slice, _per_image_slices(g, np))
    return dx


def max_pool2d_indices(cache: MaxPoolCache):
    """PyTorch's ``return_indices``: the flat index h*W + w (int64) of each window's winner in its input plane
    (what the CUDA kernel keeps already; the CPU keeps the kernel-offset index)."""
    argmax, g = cache
    return window_offset_to_flat(argmax, g) if get_array_module(argmax) is np else argmax


# --------------------------------------------------------------------------- average pooling


class AvgPoolCache(NamedTuple):
    """``divisor``: (Ho, Wo) array, the number each window's sum was divided by."""
    divisor: object
    geom: PoolGeometry


def _avg_pool_divisor(xp, g: PoolGeometry, count_include_pad: bool, dtype):
    """PyTorch's divisor per output (Ho, Wo): the window clipped to the padded input (counting padding)
    or to the input itself.  It is separable: (rows counted) x (columns counted)."""
    def counts(n_out, size, k, s, p):
        start = xp.arange(n_out) * s - p
        end = xp.minimum(start + k, size + p)           # the ceil_mode overhang is never counted
        if count_include_pad:
            return end - start
        return xp.minimum(end, size) - xp.maximum(start, 0)
    rows = counts(g.Ho, g.H, g.kernel[0], g.stride[0], g.padding[0])
    cols = counts(g.Wo, g.W, g.kernel[1], g.stride[1], g.padding[1])
    return (rows[:, None] * cols[None, :]).astype(dtype)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       divisor_override=None):
    """Average pooling.  x (N, C, H, W)  ->  (out (N, C, Ho, Wo), cache).

    out = (sum of the window, zero padding) / divisor, where divisor is ``divisor_override`` if given,
    else the window size clipped to the padded input (``count_include_pad``) or to the input.
    """
    g = pool_geometry("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    xp = get_array_module(x)
    divisor_override = avg_pool_divisor_override("avg_pool2d", divisor_override)
    if divisor_override is not None:
        divisor = xp.full((g.Ho, g.Wo), divisor_override, dtype=x.dtype)
    else:
        divisor = _avg_pool_divisor(xp, g, count_include_pad, x.dtype)
    out = empty(xp, (g.N, g.C, g.Ho, g.Wo), x.dtype)

    def forward_slice(n0, n1):
        gs = g._replace(N=n1 - n0)
        window_sum(_padded(x[n0:n1], gs, 0.0), gs, out=out[n0:n1])
        out[n0:n1] /= divisor
    parallel_map(forward_slice, _per_image_slices(g, xp))
    return out, AvgPoolCache(divisor, g)


def avg_pool2d_backward(grad, cache: AvgPoolCache):
    """grad (N, C, Ho, Wo)  ->  dx (N, C, H, W): every window element receives grad / divisor."""
    divisor, g = cache
    check_grad("avg_pool2d_backward", grad, (g.N, g.C, g.Ho, g.Wo))
    xp = get_array_module(grad)
    dx = empty(xp, (g.N, g.C, g.H, g.W), grad.dtype)

    def backward_slice(n0, n1):
        share = grad[n0:n1] / divisor
        _scatter_windows(lambda index, target: share, g._replace(N=n1 - n0), grad.dtype, xp, out=dx[n0:n1])
    parallel_map(backward_slice, _per_image_slices(g, xp))
    return dx


def window_sum(xpad, g: PoolGeometry, out=None):
    """Sum of every window of an already padded array: (N, C, Ho, Wo), one slice-add per kernel offset.
    ``out``: optional array of that shape to write into."""
    for index, rows, cols in g.offsets():
        if index == 0:
            if out is None:
                out = xpad[:, :, rows, cols].copy()
            else:
                out[...] = xpad[:, :, rows, cols]
        else:
            out += xpad[:, :, rows, cols]
    return out


# --------------------------------------------------------------------------- adaptive average pooling


class AdaptiveAvgPoolCache(NamedTuple):
    """``mode``: 'global', 'identity', 'blocks' (sizes divide evenly) or 'matrix' (with ``rows``/``cols``,
    the (Ho, H) and (Wo, W) averaging matrices)."""
    x_shape: tuple
    mode: str
    rows: object
    cols: object


def _adaptive_matrix(xp, n_out, size, dtype):
    """(n_out, size) averaging matrix: row i averages input [floor(i*size/n_out), ceil((i+1)*size/n_out))."""
    i = xp.arange(n_out)
    start = (i * size) // n_out
    end = ((i + 1) * size + n_out - 1) // n_out
    pos = xp.arange(size)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def adaptive_avg_pool2d_forward(x, output_size):
    """Adaptive average pooling.  x (N, C, H, W)  ->  (out (N, C, Ho, Wo), cache).

    Output bin (i, j) averages rows [floor(i*H/Ho), ceil((i+1)*H/Ho)) and the columns likewise
    (PyTorch's bins; they may overlap).  ``output_size``: int or pair, None keeps that input size.
    Averaging over a rectangle is separable, so in general out = A_rows @ x @ A_cols^T.
    """
    N, C, H, W, Ho, Wo = adaptive_output_size(x, output_size)
    xp = get_array_module(x)
    if (Ho, Wo) == (1, 1):
        return x.mean(axis=(2, 3), keepdims=True), AdaptiveAvgPoolCache(x.shape, "global", None, None)
    if (Ho, Wo) == (H, W):
        return x.copy(), AdaptiveAvgPoolCache(x.shape, "identity", None, None)
    if H % Ho == 0 and W % Wo == 0:
        out = x.reshape(N, C, Ho, H // Ho, Wo, W // Wo).mean(axis=(3, 5))
        return out, AdaptiveAvgPoolCache(x.shape, "blocks", Ho, Wo)
    rows = _adaptive_matrix(xp, Ho, H, x.dtype)
    cols = _adaptive_matrix(xp, Wo, W, x.dtype)
    out = xp.matmul(rows, xp.matmul(x, cols.T))
    return out, AdaptiveAvgPoolCache(x.shape, "matrix", rows, cols)


def adaptive_avg_pool2d_backward(grad, cache: AdaptiveAvgPoolCache):
    """grad (N, C, Ho, Wo)  ->  dx (N, C, H, W): each bin's gradient spread evenly over the bin."""
    (N, C, H, W), mode, rows, cols = cache
    xp = get_array_module(grad)
    if mode == "global":
        check_grad("adaptive_avg_pool2d_backward", grad, (N, C, 1, 1))
        dx = xp.empty((N, C, H, W), dtype=grad.dtype)
        dx[...] = grad * (1.0 / (H * W))
        return dx
    if mode == "identity":
        check_grad("adaptive_avg_pool2d_backward", grad, (N, C, H, W))
        return grad.copy()
    if mode == "blocks":
        Ho, Wo = rows, cols
        check_grad("adaptive_avg_pool2d_backward", grad, (N, C, Ho, Wo))
        dx = xp.empty((N, C, Ho, H // Ho, Wo, W // Wo), dtype=grad.dtype)
        dx[...] = (grad * (1.0 / ((H // Ho) * (W // Wo))))[:, :, :, None, :, None]
        return dx.reshape(N, C, H, W)
    check_grad("adaptive_avg_pool2d_backward", grad, (N, C, rows.shape[0], cols.shape[0]))
    return xp.matmul(rows.T, xp.matmul(grad, cols))


# --------------------------------------------------------------------------- LeNet-5 subsampling


class SubsampleCache(NamedTuple):
    """``window_sums``: (N, C, Ho, Wo) sums the coefficients multiplied; ``coeff``: the coefficients."""
    window_sums: object
    coeff: object
    has_bias: bool
    geom: PoolGeometry


def subsample_forward(x, coeff, bias=None, kernel=2, stride=2):
    """LeNet-5's trainable subsampling.  x (N, C, H, W), coeff (C,), bias (C,) or None
    ->  (out (N, C, Ho, Wo), cache).

    out[n, c] = coeff[c] * (sum of each kernel x kernel window of x[n, c]) + bias[c]   (no padding)
    """
    g = pool_geometry("subsample", x, kernel, stride, 0, 1, False)
    if coeff is None:
        raise TypeError(f"subsample: coeff must be an array of shape ({g.C},), got None")
    channel_vector("subsample", "coeff", coeff, g.C, x)
    channel_vector("subsample", "bias", bias, g.C, x)
    xp = get_array_module(x)
    if xp is not np and x.dtype.kind == "f" and coeff.dtype == x.dtype and (bias is None or bias.dtype == x.dtype):
        out, sums = fused.subsample_forward(xp.ascontiguousarray(x), xp.ascontiguousarray(coeff),
                                            None if bias is None else xp.ascontiguousarray(bias), g)
        return out, SubsampleCache(sums, coeff, bias is not None, g)
    sums = empty(xp, (g.N, g.C, g.Ho, g.Wo), x.dtype)
    out = empty(xp, sums.shape, x.dtype)

    def forward_slice(n0, n1):
        window_sum(x[n0:n1], g._replace(N=n1 - n0), out=sums[n0:n1])
        xp.multiply(sums[n0:n1], coeff[:, None, None], out=out[n0:n1])
        if bias is not None:
            out[n0:n1] += bias[:, None, None]
    parallel_map(forward_slice, _per_image_slices(g, xp))
    return out, SubsampleCache(sums, coeff, bias is not None, g)


def subsample_backward(grad, cache: SubsampleCache):
    """grad (N, C, Ho, Wo)  ->  (dx (N, C, H, W), dcoeff (C,), dbias (C,) or None).

    dcoeff[c] = sum grad * window_sum;  dbias[c] = sum grad;  every window element gets grad * coeff[c].
    """
    sums, coeff, has_bias, g = cache
    check_grad("subsample_backward", grad, (g.N, g.C, g.Ho, g.Wo))
    xp = get_array_module(grad)
    dcoeff = channel_sums(grad * sums)
    dbias = channel_sums(grad) if has_bias else None
    if xp is not np and coeff.dtype == grad.dtype:   # one gather kernel on a GPU
        return fused.subsample_backward(grad, xp.ascontiguousarray(coeff), g), dcoeff, dbias
    dx = empty(xp, (g.N, g.C, g.H, g.W), grad.dtype)

    def backward_slice(n0, n1):
        share = grad[n0:n1] * coeff[:, None, None]
        _scatter_windows(lambda index, target: share, g._replace(N=n1 - n0), grad.dtype, xp, out=dx[n0:n1])
    parallel_map(backward_slice, _per_image_slices(g, xp))
    return dx, dcoeff, dbias
