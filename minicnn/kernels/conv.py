"""2-D convolution (cross-correlation, as in every deep-learning library) by im2col + one GEMM.

Layouts.  Images are NCHW; weights are (O, C/groups, kH, kW) as in PyTorch.  ``im2col`` copies
every receptive field into a column matrix laid out as

    cols[c, i, j, n, oh, ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]     shape (C, kH, kW, N, Ho, Wo)

i.e. a (C*kH*kW, N*Ho*Wo) matrix, one column per output pixel.  The convolution is then

    out[o, (n, oh, ow)] = sum_k weight[o, k] * cols[k, (n, oh, ow)]        one GEMM  (O, K) @ (K, N*Ho*Wo)

(with groups: one GEMM per group, as a batched matmul).  Keeping the C*kH*kW axis first makes
the im2col copy read whole image rows (contiguous for stride 1), and makes every group's block
of rows contiguous.  The GEMM result is (O, N, Ho, Wo); it is copied into the NCHW output.

Blocks.  The output is computed a block at a time (a few whole images, or a band of output rows
of one big image), so that the block's column matrix (about 8 MB) stays in the CPU cache between
the im2col copy and the GEMM that reads it, and its memory is reused.  When the block is part of
one image the GEMM writes straight into the NCHW output.  Backward recomputes the columns block
by block instead of keeping them from the forward pass (which would cost kH*kW times the input's
memory per layer).

Backward.
    dbias[o]   = sum over (n, oh, ow) of grad[n, o, oh, ow]
    dweight    = grad2 @ cols^T                  grad2 = grad as (O, N*Ho*Wo)
    dx         = col2im(weight^T @ grad2)        scatter-add every column back to its pixels
For stride 1 on the CPU, dx is usually computed instead as a convolution of the gradient with the
flipped, transposed kernel ("full" correlation: pad by dilation*(k-1) - padding): the same numbers,
but an im2col copy replaces col2im's kH*kW strided accumulations, which NumPy runs about three
times more slowly per element (see ``dx_by_transposed_conv`` for when each is used).

``cache`` (a ``ConvCache``) holds references to x and weight, not copies: do not modify them in
place between forward and backward.
"""
from __future__ import annotations

import numbers
import threading
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..backend import batch_slices, get_array_module, parallel_map
from . import cuda
from ..checks import check_float_array, check_grad, check_same_dtype, pair
from .misc import channel_sums, matmul

# The column matrix of one block of the output is kept near this size (bytes).  On the CPU that
# keeps it in cache between im2col and the GEMM; on a GPU bigger blocks fill the device.
CPU_CHUNK_BYTES = 8 << 20
GPU_CHUNK_BYTES = 256 << 20
MIN_GEMM_COLUMNS = 1024   # ... but at least this many output pixels per GEMM, when the batch allows
MIN_BAND_COLUMNS = 256    # ... and this many when one image is cut into bands of rows
WORKSPACE_MAX_BYTES = 64 << 20   # scratch buffers up to this size are kept for reuse (see workspace)
CHANNELS_LAST_MAX_WIDTH = 8      # on the CPU, outputs at most this wide (with enough channels and
CHANNELS_LAST_MIN_CHANNELS = 16  # groups=1) take the channels-last im2col: see channels_last_cols
_workspaces = threading.local()


# --------------------------------------------------------------------------- arguments and shapes


def normalize_conv_padding(padding, kernel_size, stride=1, dilation=1, op: str = "conv2d"):
    """Turn any padding spec into ``((top, bottom), (left, right))``.

    Accepts an int, a pair ``(ph, pw)``, ``"valid"`` (no padding), ``"same"`` (output size = input
    size; stride 1 only, as in PyTorch; when the total d*(k-1) is odd the extra row/column goes on
    the bottom/right, as in PyTorch), a 4-tuple ``(top, bottom, left, right)``, or the nested form.
    """
    kh, kw = pair(op, "kernel_size", kernel_size, 1)
    sh, sw = pair(op, "stride", stride, 1)
    dh, dw = pair(op, "dilation", dilation, 1)
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                                 f"(stride {(sh, sw)}); give explicit padding")
            th, tw = dh * (kh - 1), dw * (kw - 1)
            return (th // 2, th - th // 2), (tw // 2, tw - tw // 2)
        raise ValueError(f"{op}: padding must be an int, a pair, a 4-tuple, 'valid' or 'same', got {padding!r}")
    if isinstance(padding, numbers.Integral):
        padding = (padding, padding)
    try:
        items = tuple(padding)
    except TypeError:
        raise TypeError(f"{op}: padding must be an int, a pair, a 4-tuple, 'valid' or 'same', got {padding!r}") from None
    if len(items) == 2 and all(isinstance(v, numbers.Integral) for v in items):
        flat = (items[0], items[0], items[1], items[1])
    elif len(items) == 4 and all(isinstance(v, numbers.Integral) for v in items):
        flat = items
    elif len(items) == 2 and all(isinstance(v, (tuple, list)) and len(v) == 2 for v in items):
        flat = (*items[0], *items[1])
    else:
        raise ValueError(f"{op}: padding must be an int, a pair (ph, pw), a 4-tuple (top, bottom, left, right), "
                         f"((top, bottom), (left, right)), 'valid' or 'same', got {padding!r}")
    if not all(isinstance(v, numbers.Integral) for v in flat) or any(v < 0 for v in flat):
        raise ValueError(f"{op}: padding must be non-negative ints, got {padding!r}")
    t, b, l, r = (int(v) for v in flat)
    return (t, b), (l, r)


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, dilation: int) -> int:
    """floor((size + pads - dilation*(kernel-1) - 1) / stride) + 1  (may be <= 0 when the kernel does not fit)."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def _norm_pad_pairs(op, padding):
    try:
        (t, b), (l, r) = padding
    except (TypeError, ValueError):
        raise ValueError(f"{op}: padding must be normalised to ((top, bottom), (left, right)) "
                         f"(see normalize_conv_padding), got {padding!r}") from None
    if not all(isinstance(v, numbers.Integral) and v >= 0 for v in (t, b, l, r)):
        raise ValueError(f"{op}: padding must be non-negative ints, got {padding!r}")
    return (int(t), int(b)), (int(l), int(r))


class ConvGeometry(NamedTuple):
    """Every size a convolution needs, checked once."""
    N: int
    C: int
    H: int
    W: int
    O: int
    kh: int
    kw: int
    Ho: int
    Wo: int
    stride: tuple
    padding: tuple      # ((top, bottom), (left, right))
    dilation: tuple
    groups: int

    @property
    def pointwise(self) -> bool:
        """A 1x1 kernel with stride 1 and no padding: the convolution is a plain matrix product."""
        return (self.kh, self.kw) == (1, 1) and self.stride == (1, 1) and self.padding == ((0, 0), (0, 0))

    @property
    def full_window(self) -> bool:
        """The kernel covers the whole (unpadded) input, one group: a fully connected layer on x.reshape(N, -1)
        (LeNet-5's C5)."""
        return ((self.kh, self.kw) == (self.H, self.W) and self.padding == ((0, 0), (0, 0))
                and self.dilation == (1, 1) and self.groups == 1)


def conv_geometry(x, weight, bias, stride, padding, dilation, groups, op="conv2d") -> ConvGeometry:
    """Validate the arguments of a convolution and work out its sizes."""
    check_float_array(op, "x", x, 4, "(N, C, H, W)")
    check_float_array(op, "weight", weight, 4, "(out_channels, in_channels/groups, kH, kW)")
    check_same_dtype(op, x, weight=weight, bias=bias)
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    N, C, H, W = (int(s) for s in x.shape)
    O, Cg, kh, kw = (int(s) for s in weight.shape)
    if C % groups:
        raise ValueError(f"{op}: in_channels ({C}) must be divisible by groups ({groups})")
    if O % groups:
        raise ValueError(f"{op}: out_channels ({O}, weight.shape[0]) must be divisible by groups ({groups})")
    if Cg != C // groups:
        raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} expects {Cg * groups} input channels "
                         f"(in_channels/groups = {Cg}, groups = {groups}), but x has {C} channels")
    if min(O, Cg, kh, kw) < 1:
        raise ValueError(f"{op}: weight must have non-zero sizes, got shape {tuple(weight.shape)}")
    if bias is not None:
        check_float_array(op, "bias", bias, 1, "(out_channels,)")
        if bias.shape[0] != O:
            raise ValueError(f"{op}: bias must have shape ({O},) (one per output channel), got {tuple(bias.shape)}")
    stride = pair(op, "stride", stride, 1)
    dilation = pair(op, "dilation", dilation, 1)
    (pt, pb), (pl, pr) = _norm_pad_pairs(op, padding)
    Ho = conv_output_size(H, kh, stride[0], pt, pb, dilation[0])
    Wo = conv_output_size(W, kw, stride[1], pl, pr, dilation[1])
    if Ho < 1 or Wo < 1:
        raise ValueError(f"{op}: kernel ({kh}x{kw}, dilation {dilation}) is larger than the padded input "
                         f"({H + pt + pb}x{W + pl + pr} = {H}x{W} plus padding {((pt, pb), (pl, pr))})")
    return ConvGeometry(N, C, H, W, O, kh, kw, Ho, Wo, stride, ((pt, pb), (pl, pr)), dilation, groups)


def workspace(xp, key: str, shape, dtype):
    """A scratch array for temporaries, reused from call to call (CPU only; contents undefined).

    Fresh multi-MB arrays are expensive on the CPU: the OS maps new zeroed pages on first touch.
    Each thread keeps one growing byte buffer per ``key``; never return a workspace array to a caller.
    On a GPU this is just ``xp.empty`` (CuPy's memory pool already recycles blocks).
    """
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if xp is not np or nbytes > WORKSPACE_MAX_BYTES:
        return xp.empty(shape, dtype=dtype)
    buffers = _workspaces.__dict__.setdefault("buffers", {})
    buf = buffers.get(key)
    if buf is None or buf.nbytes < nbytes:
        buf = buffers[key] = np.empty(max(nbytes, 64), dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


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


# --------------------------------------------------------------------------- forward / backward


class ConvCache(NamedTuple):
    """What ``conv2d_backward`` needs: the inputs (references, not copies) and the geometry."""
    x: object
    weight: object
    has_bias: bool
    geom: ConvGeometry


def output_blocks(xp, n_images, Ho, Wo, bytes_per_pixel, split_rows=True):
    """Cut the output into blocks ``(n0, n1, r0, r1)`` (images n0:n1, output rows r0:r1) whose
    column matrices take about ``CPU_CHUNK_BYTES`` (``GPU_CHUNK_BYTES`` on a GPU).

    Several whole images when they fit, but at least ``MIN_GEMM_COLUMNS`` output pixels so that
    the GEMM is not too thin; an image whose columns alone are bigger is cut into bands of output
    rows (if ``split_rows``), so that its columns still stay in the CPU cache.
    """
    target = CPU_CHUNK_BYTES if xp is np else GPU_CHUNK_BYTES
    per_row = max(1, bytes_per_pixel * Wo)
    if split_rows and per_row * Ho > target and Ho > 1:
        rows = max(1, target // per_row, -(-MIN_BAND_COLUMNS // Wo))
        for n in range(n_images):
            for r0 in range(0, Ho, rows):
                yield n, n + 1, r0, min(r0 + rows, Ho)
        return
    m = max(1, target // (per_row * Ho), -(-MIN_GEMM_COLUMNS // max(1, Ho * Wo)))
    for n0 in range(0, n_images, m):
        yield n0, min(n0 + m, n_images), 0, Ho


def _band_padding(padding, r0, r1, H, kh, sh, dh):
    """The padding that makes im2col produce only output rows r0:r1 (negative values crop input rows)."""
    (pt, _), (pl, pr) = padding
    top = pt - r0 * sh                                   # the band starts r0*sh rows further down
    needed = (r1 - r0 - 1) * sh + dh * (kh - 1) + 1      # input rows (padded) that the band reads
    return (top, needed - H - top), (pl, pr)


def _block_view(a, n0, n1, r0, r1, G):
    """Block (n0:n1, :, r0:r1, :) of an NCHW array as (G, channels/G, pixels) when that is a view
    (one image, or whole images... of one image only); None otherwise."""
    if n1 - n0 != 1:
        return None
    C, Ho, Wo = a.shape[1:]
    return a[n0].reshape(C, Ho * Wo)[:, r0 * Wo:r1 * Wo].reshape(G, C // G, (r1 - r0) * Wo)


def use_channels_last(xp, channels, groups, Wo, pixels, out_channels) -> bool:
    """Whether a convolution takes the channels-last route (``channels_last_cols``).

    For small images the (C, kH, kW, N, Ho, Wo) columns are a gather whose innermost runs are only
    Wo pixels long (8, 4, 2, 1 in a ResNet on 32x32 inputs); with channels innermost each run is kW*C
    values long. Measured on ResNet-18's layers at batch 64 (8x8 to 1x1, 64 to 512 channels) the
    gather is 3 to 10 times faster; on large images (56x56) it is slower, hence the thresholds.
    The route also reorders the weight (a copy of it per call): worth it only while the columns
    outweigh the weight, i.e. with at least 4 output pixels (N*Ho*Wo) per output channel.
    """
    return (xp is np and groups == 1 and Wo <= CHANNELS_LAST_MAX_WIDTH
            and channels >= CHANNELS_LAST_MIN_CHANNELS and pixels >= 4 * out_channels)


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


def _channels_last_weight(w3, C, kernel):
    """w3 (1, O, C*kH*kW) in (c, i, j) order -> (O, kH*kW*C) in (i, j, c) order, the channels-last GEMM operand."""
    O, (kh, kw) = w3.shape[1], kernel
    w = workspace(np, "conv_cl_w", (O, kh, kw, C), w3.dtype)
    w[...] = w3.reshape(O, C, kh, kw).transpose(0, 2, 3, 1)
    return w.reshape(O, kh * kw * C)


def _convolve_into(out, x, w3, kernel, stride, padding, dilation):
    """out (N, O, Ho, Wo) <- convolution of x (N, C, H, W) with w3 (G, O/G, C/G*kH*kW), no bias.

    The core of the forward pass, without argument checks; ``padding`` may be negative (crop),
    as the transposed convolution of the backward pass needs.  Per block of the output: im2col
    into a scratch buffer, then one GEMM per group, written straight into ``out`` when the block
    is (part of) one image, else through a scratch buffer and one copy.
    """
    xp = get_array_module(x)
    G, Og, Kg = w3.shape
    (N, C, H, _), (O, Ho, Wo) = x.shape, out.shape[1:]
    (kh, kw), (sh, _), (dh, _) = kernel, stride, dilation
    if use_channels_last(xp, C, G, Wo, N * Ho * Wo, O):   # small images: all columns at once, channels innermost
        cols = channels_last_cols(x, kernel, stride, padding, dilation).reshape(N * Ho * Wo, Kg)
        y = workspace(xp, "conv_y", (O, N * Ho * Wo), x.dtype)
        xp.matmul(_channels_last_weight(w3, C, kernel), cols.T, out=y)
        out[...] = y.reshape(O, N, Ho, Wo).transpose(1, 0, 2, 3)
        return
    for n0, n1, r0, r1 in output_blocks(xp, N, Ho, Wo, G * Kg * x.itemsize):
        m, pixels = n1 - n0, (r1 - r0) * Wo
        cols = workspace(xp, "conv_cols", (C, kh, kw, m, r1 - r0, Wo), x.dtype)
        im2col(x[n0:n1], kernel, stride, _band_padding(padding, r0, r1, H, kh, sh, dh), dilation, out=cols)
        target = _block_view(out, n0, n1, r0, r1, G)
        if target is not None:
            xp.matmul(w3, cols.reshape(G, Kg, pixels), out=target)
        else:   # whole images: the GEMM gives (O, m, Ho, Wo), NCHW wants (m, O, Ho, Wo)
            y = workspace(xp, "conv_y", (G, Og, m * pixels), x.dtype)
            xp.matmul(w3, cols.reshape(G, Kg, m * pixels), out=y)
            out[n0:n1] = y.reshape(O, m, Ho, Wo).transpose(1, 0, 2, 3)


MIN_SLICE_MACS = 1 << 21   # a batch slice handed to another thread does at least this many multiply-adds
HEAVY_MACS = 1 << 25       # a convolution left in one slice (a batch of one) with this much work lets BLAS thread


def _batch_slices(g: ConvGeometry, xp):
    """The batch cut into one slice per CPU thread (fewer if the slices would be too small to pay),
    and whether the work is heavy enough for a multi-threaded BLAS should it stay in one slice."""
    macs_per_image = g.O * g.Ho * g.Wo * (g.C // g.groups) * g.kh * g.kw
    slices = batch_slices(g.N, xp, min_size=-(-MIN_SLICE_MACS // max(1, macs_per_image)))
    return slices, g.N * macs_per_image >= HEAVY_MACS


def conv2d_forward(x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """2-D convolution.  x (N, C, H, W), weight (O, C/groups, kH, kW), bias (O,) or None
    ->  (out (N, O, Ho, Wo), cache).

    out[n, o, oh, ow] = bias[o] + sum_{c in o's group, i, j} weight[o, c, i, j] * xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]
    ``stride``/``dilation`` are (sh, sw) pairs (ints accepted); ``padding`` is ((top, bottom),
    (left, right)), see ``normalize_conv_padding``.  Ho = floor((H + top + bottom - dh*(kH-1) - 1)/sh) + 1.
    """
    g = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    xp = get_array_module(x, weight, bias)
    G, O = g.groups, g.O
    w3 = weight.reshape(G, O // G, (g.C // G) * g.kh * g.kw)
    if g.full_window:   # out = x (N, C*kH*kW) @ W^T, no columns to build
        out = matmul(x.reshape(g.N, g.C * g.H * g.W), w3[0].T).reshape(g.N, O, 1, 1)
        if bias is not None:
            out += bias.reshape(O, 1, 1)
        return out, ConvCache(x, weight, bias is not None, g)
    out = xp.empty((g.N, O, g.Ho, g.Wo), dtype=x.dtype)

    def forward_slice(n0, n1):   # images n0:n1, on one of minicnn's CPU threads
        m = n1 - n0
        if g.pointwise:   # 1x1: out[n] = W @ x[n], a batch of GEMMs, no im2col at all
            xp.matmul(w3, x[n0:n1].reshape(m, G, g.C // G, g.H * g.W), out=out[n0:n1].reshape(m, G, O // G, g.H * g.W))
        else:
            _convolve_into(out[n0:n1], x[n0:n1], w3, (g.kh, g.kw), g.stride, g.padding, g.dilation)
        if bias is not None:
            out[n0:n1] += bias.reshape(O, 1, 1)

    slices, heavy = _batch_slices(g, xp)
    parallel_map(forward_slice, slices, heavy)
    return out, ConvCache(x, weight, bias is not None, g)


def _flipped_transposed_weight(weight, groups):
    """The weight of the convolution that maps grad_out to dx (stride 1): w3t (G, C/G, O/G*kH*kW) with
    w3t[g, c, (o, i, j)] = weight[g*O/G + o, c, kH-1-i, kW-1-j].  Flipping both kernel axes is
    reversing the flattened kH*kW axis."""
    O, Cg, kh, kw = weight.shape
    w = weight.reshape(groups, O // groups, Cg, kh * kw)[..., ::-1].transpose(0, 2, 1, 3)
    wt = workspace(get_array_module(weight), "conv_wt", (groups, Cg, O // groups, kh * kw), weight.dtype)
    wt[...] = w
    return wt.reshape(groups, Cg, (O // groups) * kh * kw)


def dx_by_transposed_conv(xp, g: ConvGeometry) -> bool:
    """Whether backward computes dx as a convolution of the gradient (True) or by col2im (False).

    Only for stride 1 on the CPU, and only when it is expected to be cheaper.  Rough costs in
    element operations, from measurements: the transposed convolution copies O*kH*kW*N*H*W column
    entries and makes a flipped copy of the weight (about 3 per weight, as it is cache-cold); col2im
    has the GEMM write C*kH*kW*N*Ho*Wo entries and adds them back in strided slices (about 3 each).
    Measured on LeNet-Keras's second layer (20 -> 50 channels, 5x5, 16x16, batch 256): by col2im
    33 ms, by the transposed convolution 52 ms.
    """
    if xp is not np or g.stride != (1, 1) or g.C // g.groups < 32:
        return False          # (its GEMM has C/G rows: with fewer than 32 it runs at half speed or less)
    kk = g.kh * g.kw
    transposed = g.O * kk * g.N * g.H * g.W + 3 * g.O * (g.C // g.groups) * kk
    scatter = 4 * g.C * kk * g.N * g.Ho * g.Wo
    return transposed < scatter


def _grad_block(grad, n0, n1, r0, r1, G):
    """grad_out's block as the GEMM operand (G, O/G, pixels): a view for one image, else a copy
    of the images (m, O, Ho, Wo) into the column order (O, m, Ho, Wo)."""
    block = _block_view(grad, n0, n1, r0, r1, G)
    if block is None:
        O = grad.shape[1]
        block = workspace(get_array_module(grad), "conv_grad", (O, n1 - n0, *grad.shape[2:]), grad.dtype)
        block[...] = grad[n0:n1].transpose(1, 0, 2, 3)
        block = block.reshape(G, O // G, -1)
    return block


def conv2d_backward(grad_out, cache: ConvCache, need_x=True, need_w=True, need_b=True):
    """grad_out (N, O, Ho, Wo)  ->  (dx (N, C, H, W), dweight (O, C/G, kH, kW), dbias (O,)).

    Any of them is None when not needed (``need_*`` False, or no bias).  Skipping dx (the first
    layer of a network) saves the col2im; skipping dweight saves recomputing the columns.
    The batch is cut into slices, one per CPU thread: each writes its part of dx and returns
    its part of dweight, and the parts are summed in slice order.
    """
    x, weight, has_bias, g = cache
    check_grad("conv2d_backward", grad_out, (g.N, g.O, g.Ho, g.Wo))
    xp = get_array_module(grad_out, x)
    grad_out = grad_out.astype(x.dtype, copy=False)
    need_b = need_b and has_bias
    if not (need_x or need_w) or g.full_window:
        db = channel_sums(grad_out) if need_b else None
    if not (need_x or need_w):
        return None, None, db
    if g.full_window:   # a fully connected layer: dx = grad @ W, dW = grad^T @ x
        g2, w2 = grad_out.reshape(g.N, g.O), weight.reshape(g.O, g.C * g.kh * g.kw)
        dx = matmul(g2, w2).reshape(x.shape) if need_x else None
        dw = matmul(g2.T, x.reshape(g.N, g.C * g.H * g.W)).reshape(weight.shape) if need_w else None
        return dx, dw, db
    dx = xp.empty(x.shape, dtype=x.dtype) if need_x else None

    def backward_slice(n0, n1):   # images n0:n1, on one of minicnn's CPU threads: (dweight, dbias) parts
        dw = _backward_slice(grad_out[n0:n1], x[n0:n1], weight, g._replace(N=n1 - n0),
                             dx[n0:n1] if need_x else None, need_w)
        return dw, (channel_sums(grad_out[n0:n1]) if need_b else None)

    slices, heavy = _batch_slices(g, xp)
    parts = parallel_map(backward_slice, slices, heavy)
    dw, db = parts[0]
    for dw_part, db_part in parts[1:]:
        if need_w:
            dw += dw_part
        if need_b:
            db += db_part
    return dx, (dw.reshape(weight.shape) if need_w else None), db


def _backward_slice(grad_out, x, weight, g: ConvGeometry, dx, need_w):
    """conv2d_backward for one slice of the batch: writes dx (if not None), returns dweight (G, O/G, C/G*kH*kW) or None."""
    xp = get_array_module(grad_out, x)
    need_x = dx is not None
    G, O, C, kernel = g.groups, g.O, g.C, (g.kh, g.kw)
    Og, Cg, L = O // G, C // G, g.Ho * g.Wo
    Kg = Cg * g.kh * g.kw
    dw = xp.empty((G, Og, Kg), dtype=x.dtype) if need_w else None
    w3 = weight.reshape(G, Og, Kg)

    if g.pointwise:   # per image: dx[n] = W^T @ grad[n];  dW = sum over n of grad[n] @ x[n]^T
        g4 = grad_out.reshape(g.N, G, Og, L)
        if need_x:
            xp.matmul(w3.transpose(0, 2, 1), g4, out=dx.reshape(g.N, G, Cg, L))
        if need_w and xp is not np:   # GPU: one GEMM over the whole batch, (O, N*L) @ (N*L, C)
            x4 = x.reshape(g.N, G, Cg, L)
            xp.matmul(g4.transpose(1, 2, 0, 3).reshape(G, Og, g.N * L),
                      x4.transpose(1, 0, 3, 2).reshape(G, g.N * L, Cg), out=dw)
        elif need_w:                  # CPU: image by image, each product small enough for the cache
            x4, tmp = x.reshape(g.N, G, Cg, L), workspace(xp, "conv_dw", dw.shape, x.dtype)
            dw.fill(0)
            for n in range(g.N):
                dw += xp.matmul(g4[n], x4[n].transpose(0, 2, 1), out=tmp)
        return dw

    channels_last = g.N > 0 and use_channels_last(xp, C, G, g.Wo, g.N * L, O)
    transposed = need_x and dx_by_transposed_conv(xp, g)
    if channels_last and (need_w or (need_x and not transposed)):   # grad as (O, N*Ho*Wo), for dW and dx
        g2 = _grad_block(grad_out, 0, g.N, 0, g.Ho, 1).reshape(O, g.N * L)

    if need_w and channels_last:   # dW = grad (O, N*Ho*Wo) @ cols
        cols = channels_last_cols(x, kernel, g.stride, g.padding, g.dilation).reshape(-1, Kg)
        dw_cl = workspace(xp, "conv_cl_dw", (O, g.kh, g.kw, C), x.dtype)
        xp.matmul(g2, cols, out=dw_cl.reshape(O, Kg))
        dw[...] = dw_cl.transpose(0, 3, 1, 2).reshape(dw.shape)     # (i, j, c) order back to (c, i, j)
    elif need_w:   # dW = sum over blocks of grad_block @ cols_block^T, the columns recomputed block by block
        if g.N == 0:
            dw.fill(0)
        tmp = workspace(xp, "conv_dw", dw.shape, x.dtype)
        blocks = output_blocks(xp, g.N, g.Ho, g.Wo, C * g.kh * g.kw * x.itemsize)
        for k, (n0, n1, r0, r1) in enumerate(blocks):
            cols = workspace(xp, "conv_cols", (C, g.kh, g.kw, n1 - n0, r1 - r0, g.Wo), x.dtype)
            band = _band_padding(g.padding, r0, r1, g.H, g.kh, g.stride[0], g.dilation[0])
            im2col(x[n0:n1], kernel, g.stride, band, g.dilation, out=cols)
            g3 = _grad_block(grad_out, n0, n1, r0, r1, G)
            xp.matmul(g3, cols.reshape(G, Kg, -1).transpose(0, 2, 1), out=tmp if k else dw)
            if k:   # the first block wrote straight into dw
                dw += tmp

    if transposed:
        # stride 1: dx is the convolution of grad_out, padded by dilation*(k-1) - padding, with the
        # flipped kernel whose in/out channels are swapped ("full" correlation).
        (pt, pb), (pl, pr) = g.padding
        reach_h, reach_w = g.dilation[0] * (g.kh - 1), g.dilation[1] * (g.kw - 1)
        _convolve_into(dx, grad_out, _flipped_transposed_weight(weight, G), kernel, (1, 1),
                       ((reach_h - pt, reach_h - pb), (reach_w - pl, reach_w - pr)), g.dilation)
    elif need_x and channels_last:   # dx = col2im(grad^T @ W), channels last
        dcols = workspace(xp, "conv_cl_dcols", (g.N, g.Ho, g.Wo, g.kh, g.kw, C), x.dtype)
        xp.matmul(g2.T, _channels_last_weight(w3, C, kernel), out=dcols.reshape(g.N * L, Kg))
        channels_last_col2im(dcols, dx, kernel, g.stride, g.padding, g.dilation)
    elif need_x:   # dx = col2im(W^T @ grad), whole images at a time
        for n0, n1, _, _ in output_blocks(xp, g.N, g.Ho, g.Wo, C * g.kh * g.kw * x.itemsize, split_rows=False):
            dcols = workspace(xp, "conv_dcols", (G, Kg, (n1 - n0) * L), x.dtype)
            xp.matmul(w3.transpose(0, 2, 1), _grad_block(grad_out, n0, n1, 0, g.Ho, G), out=dcols)
            col2im(dcols.reshape(C, g.kh, g.kw, n1 - n0, g.Ho, g.Wo), (n1 - n0, C, g.H, g.W),
                   kernel, g.stride, g.padding, g.dilation, out=dx[n0:n1])
    return dw
