"""The fast path's gathers: ``im2col``/``col2im`` (CUDA kernels on a GPU, strided copies on the CPU),
the channels-last columns that small CPU images take, and ``pad2d``.

The column layout is the textbook one: cols[c, i, j, n, oh, ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw],
shape (C, kH, kW, N, Ho, Wo); ``channels_last_cols`` holds the same numbers as (N, Ho, Wo, kH, kW, C).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ...backend import get_array_module
from ..geometry import conv_output_size
from . import cuda
from .memory import workspace

CHANNELS_LAST_MAX_WIDTH = 8      # on the CPU, outputs at most this wide (with enough channels and
CHANNELS_LAST_MIN_CHANNELS = 16  # groups=1) take the channels-last im2col: see channels_last_cols


def pad2d(x, padding, value=0.0, out=None):
    """Pad the last two axes of x: ((top, bottom), (left, right)); negative widths crop instead.

    Returns x itself when there is nothing to do.  Otherwise a new array (or ``out``, of the padded
    shape) is filled with ``value`` and x is copied into its middle (cheaper than ``np.pad``, and
    works the same on CuPy).
    """
    (t, b), (l, r) = padding
    if t < 0 or b < 0 or l < 0 or r < 0:         # crop first, then pad what remains positive
        H, W = x.shape[-2:]
        x = x[..., max(-t, 0):H - max(-b, 0), max(-l, 0):W - max(-r, 0)]
        t, b, l, r = max(t, 0), max(b, 0), max(l, 0), max(r, 0)
    if t == b == l == r == 0:
        return x
    *lead, H, W = x.shape
    if out is None:
        out = get_array_module(x).empty((*lead, H + t + b, W + l + r), dtype=x.dtype)
    out.fill(value)
    out[..., t:t + H, l:l + W] = x
    return out


def sliding_windows(xpad, kernel_size, stride, dilation, out_size):
    """A read-only strided view (N, C, kH, kW, Ho, Wo) of every window of an (already padded) array.

    view[n, c, i, j, oh, ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]; no data is copied.
    """
    (kh, kw), (sh, sw), (dh, dw), (Ho, Wo) = kernel_size, stride, dilation, out_size
    sN, sC, sH, sW = xpad.strides
    return as_strided(xpad, shape=(xpad.shape[0], xpad.shape[1], kh, kw, Ho, Wo),
                      strides=(sN, sC, sH * dh, sW * dw, sH * sh, sW * sw), writeable=False)


def im2col(x, kernel_size, stride, padding, dilation, out=None):
    """Image to columns.  x (N, C, H, W)  ->  cols (C, kH, kW, N, Ho, Wo), x's dtype.

    cols[c, i, j, n, oh, ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]  (zero outside the image).
    ``padding`` is ((top, bottom), (left, right)); negative values crop.  ``out``: optional
    contiguous buffer of that shape to fill.  Reshaped to (C*kH*kW, N*Ho*Wo) it is the GEMM operand.
    """
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    (pt, pb), (pl, pr) = padding
    N, C, H, W = x.shape
    Ho = conv_output_size(H, kh, sh, pt, pb, dh)
    Wo = conv_output_size(W, kw, sw, pl, pr, dw)
    if out is None:
        out = xp.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)
    if xp is not np:
        return cuda.im2col(x, out, (kh, kw), (sh, sw), (pt, pl), (dh, dw))
    (t, b), (l, r) = ((max(pt, 0), max(pb, 0)), (max(pl, 0), max(pr, 0)))
    Hc, Wc = H - max(-pt, 0) - max(-pb, 0), W - max(-pl, 0) - max(-pr, 0)     # after any cropping
    xpad = pad2d(x, padding, out=workspace(np, "im2col_pad", (N, C, Hc + t + b, Wc + l + r), x.dtype))
    windows = sliding_windows(xpad, (kh, kw), (sh, sw), (dh, dw), (Ho, Wo))
    np.copyto(out, windows.transpose(1, 2, 3, 0, 4, 5))   # the one copy: a strided gather
    return out


def col2im(cols, x_shape, kernel_size, stride, padding, dilation, out=None):
    """Columns back to an image, summing overlaps: the adjoint (transpose) of ``im2col``.

    cols (C, kH, kW, N, Ho, Wo)  ->  dx (N, C, H, W) with
    dx[n, c, h, w] = sum of cols[c, i, j, n, oh, ow] over all (i, j, oh, ow) whose window reads (h, w).
    One strided slice-add per kernel offset (i, j) into a zeroed padded image whose padding is
    then dropped.  ``out``: optional (N, C, H, W) array to write dx into.
    """
    xp = get_array_module(cols)
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    (pt, pb), (pl, pr) = padding
    N, C, H, W = x_shape
    Ho, Wo = cols.shape[-2:]
    if out is None:
        out = xp.empty((N, C, H, W), dtype=cols.dtype)
    if xp is not np:
        return cuda.col2im(cols, out, (kh, kw), (sh, sw), (pt, pl), (dh, dw))
    padded = pt or pb or pl or pr
    dxpad = workspace(np, "col2im_pad", (N, C, H + pt + pb, W + pl + pr), cols.dtype) if padded else out
    dxpad.fill(0)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dh, j * dw
            dxpad[:, :, h0:h0 + sh * (Ho - 1) + 1:sh, w0:w0 + sw * (Wo - 1) + 1:sw] += cols[:, i, j].transpose(1, 0, 2, 3)
    if padded:
        out[...] = dxpad[:, :, pt:pt + H, pl:pl + W]
    return out


def use_channels_last(xp, channels, groups, Wo, pixels, out_channels) -> bool:
    """Whether a convolution takes the channels-last route (``channels_last_cols``).

    For small images the (C, kH, kW, N, Ho, Wo) columns are a gather whose innermost runs are only
    Wo pixels long (8, 4, 2, 1 in a ResNet on 32x32 inputs); with channels innermost each run is kW*C
    values long. Measured on ResNet-18's layers at batch 64 (8x8 to 1x1, 64 to 512 channels) the
    gather is 3 to 10 times faster; on large images (56x56) it is slower, hence the thresholds.
    The route also reorders the weight (a copy of it per call): worth it only while the columns
    outweigh the weight, i.e. with at least one output pixel (N*Ho*Wo) per output channel (measured
    with 2 threads: ResNet-18's 2x2 layers at batch 64, 256 pixels for 256 channels, 2.2/5.4 ->
    1.8/3.8 ms forward/backward; ResNet-50's 7x7 layers at batch 8, 392 pixels for 512 channels,
    4 % slower).
    """
    return (xp is np and groups == 1 and Wo <= CHANNELS_LAST_MAX_WIDTH
            and channels >= CHANNELS_LAST_MIN_CHANNELS and pixels >= out_channels)


def channels_last_cols(x, kernel, stride, padding, dilation):
    """Image to columns, channels innermost.  x (N, C, H, W) -> cols (N, Ho, Wo, kH, kW, C).

    cols[n, oh, ow, i, j, c] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]: the same numbers as ``im2col``
    in another order.  Reshaped to (N*Ho*Wo, kH*kW*C) it is the GEMM operand.  Returns a scratch
    buffer (valid until the next call).  ``padding`` may be negative (crop).
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    (pt, pb), (pl, pr) = padding
    N, C, H, W = x.shape
    Ho = conv_output_size(H, kh, sh, pt, pb, dh)
    Wo = conv_output_size(W, kw, sw, pl, pr, dw)
    x = x[:, :, max(-pt, 0):H - max(-pb, 0), max(-pl, 0):W - max(-pr, 0)]       # crop, if asked
    (t, b), (l, r) = (max(pt, 0), max(pb, 0)), (max(pl, 0), max(pr, 0))
    Hc, Wc = x.shape[2:]
    xpad = workspace(np, "conv_cl_pad", (N, Hc + t + b, Wc + l + r, C), x.dtype)   # NHWC, zero border
    xpad.fill(0)
    xpad[:, t:t + Hc, l:l + Wc, :] = x.transpose(0, 2, 3, 1)
    sN, sH, sW, sC = xpad.strides
    windows = as_strided(xpad, shape=(N, Ho, Wo, kh, kw, C),
                         strides=(sN, sH * sh, sW * sw, sH * dh, sW * dw, sC), writeable=False)
    cols = workspace(np, "conv_cl_cols", (N, Ho, Wo, kh, kw, C), x.dtype)
    np.copyto(cols, windows)
    return cols


def channels_last_col2im(dcols, dx, kernel, stride, padding, dilation):
    """The adjoint of ``channels_last_cols``: dcols (N, Ho, Wo, kH, kW, C) summed back into dx (N, C, H, W).

    One strided slice-add per kernel offset into a zeroed, padded NHWC scratch image (runs of C values,
    not of Wo pixels), then the padding is dropped and the result written to ``dx`` in NCHW order.
    ``padding`` must be non-negative (as in a forward convolution).
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    (pt, pb), (pl, pr) = padding
    N, C, H, W = dx.shape
    Ho, Wo = dcols.shape[1:3]
    dxpad = workspace(np, "conv_cl_dxpad", (N, H + pt + pb, W + pl + pr, C), dx.dtype)
    dxpad.fill(0)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dh, j * dw
            dxpad[:, h0:h0 + sh * (Ho - 1) + 1:sh, w0:w0 + sw * (Wo - 1) + 1:sw, :] += dcols[:, :, :, i, j, :]
    dx[...] = dxpad[:, pt:pt + H, pl:pl + W, :].transpose(0, 3, 1, 2)
    return dx


def channels_last_weight(w3, C, kernel):
    """w3 (1, O, C*kH*kW) in (c, i, j) order -> (O, kH*kW*C) in (i, j, c) order, the channels-last GEMM operand."""
    O, (kh, kw) = w3.shape[1], kernel
    w = workspace(np, "conv_cl_w", (O, kh, kw, C), w3.dtype)
    w[...] = w3.reshape(O, C, kh, kw).transpose(0, 2, 3, 1)
    return w.reshape(O, kh * kw * C)
