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
of one big image), so that the block's column matrix (about 2 MB) stays in the CPU cache between
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

Routes on the CPU, chosen per call from the geometry (each tested against the textbook kernel):
kernel taps that read only zero padding are cut off first (``crop_dead_taps``: a 3x3 kernel on a
1x1 map keeps its centre); a kernel covering the whole input is a matrix product (``full_window``),
a 1x1 kernel a batch of them (``pointwise``); tiny maps (2x2 under 3x3) use the unrolled weight
(``unrolled.py``); small images with enough channels take channels-last columns (``im2col.py``);
stride-1 layers with few channels take whole-row columns for dx, and for the smallest kernels the
forward (``rows.py``); the rest the blocks above.

``cache`` (a ``ConvCache``) holds references to x and weight, not copies: do not modify them in
place between forward and backward.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...backend import get_array_module
from ...checks import check_grad
from ..geometry import ConvGeometry, conv_geometry
from .im2col import (channels_last_col2im, channels_last_cols, channels_last_weight, col2im, im2col,
                     use_channels_last)
from .memory import empty, workspace
from . import fused, rows, unrolled
from .misc import channel_sums, matmul
from .rows import ROWS_MAX_K_DX, ROWS_MAX_K_FORWARD, use_rows
from .unrolled import use_unrolled
from .threads import batch_slices, elementwise, parallel_map

# The column matrix of one block of the output is kept near this size (bytes).  On the CPU that
# keeps it in cache between im2col and the GEMM (the blocks of both threads together in the shared
# L3: measured on LeNet's layers, 2 MB blocks are 10-20 % faster than 8 MB ones with 2 threads, and
# no slower on 224x224 layers); on a GPU bigger blocks fill the device.
CPU_CHUNK_BYTES = 2 << 20
GPU_CHUNK_BYTES = 256 << 20
MIN_GEMM_COLUMNS = 1024   # ... but at least this many output pixels per GEMM, when the batch allows
MIN_BAND_COLUMNS = 256    # ... and this many when one image is cut into bands of rows


# --------------------------------------------------------------------------- forward / backward


class ConvCache(NamedTuple):
    """What ``conv2d_backward`` needs: the inputs (references, not copies) and the geometry; the weight
    cut to its live taps and, for tiny maps, the unrolled weight, when the forward pass made them."""
    x: object
    weight: object
    has_bias: bool
    geom: ConvGeometry
    cropped: object = None
    unrolled: object = None


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
        xp.matmul(channels_last_weight(w3, C, kernel), cols.T, out=y)
        out[...] = y.reshape(O, N, Ho, Wo).transpose(1, 0, 2, 3)
        return
    for n0, n1, r0, r1 in output_blocks(xp, N, Ho, Wo, G * Kg * x.itemsize):
        m, pixels = n1 - n0, (r1 - r0) * Wo
        if xp is not np and r1 - r0 == Ho and m > 1:   # GPU: columns image by image, one batched GEMM into NCHW
            cols = xp.empty((m, C, kh, kw, Ho, Wo), dtype=x.dtype)
            fused.im2col_batch(x[n0:n1], cols, kernel, stride, (padding[0][0], padding[1][0]), dilation)
            xp.matmul(w3, cols.reshape(m, G, Kg, pixels), out=out[n0:n1].reshape(m, G, Og, pixels))
            continue
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
    return slices, xp is np and g.N * macs_per_image >= HEAVY_MACS     # (a GPU has no BLAS threads to lend)


def conv2d_forward(x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """2-D convolution.  x (N, C, H, W), weight (O, C/groups, kH, kW), bias (O,) or None
    ->  (out (N, O, Ho, Wo), cache).

    out[n, o, oh, ow] = bias[o] + sum_{c in o's group, i, j} weight[o, c, i, j] * xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]
    ``stride``/``dilation`` are (sh, sw) pairs (ints accepted); ``padding`` is ((top, bottom),
    (left, right)), see ``normalize_conv_padding``.  Ho = floor((H + top + bottom - dh*(kH-1) - 1)/sh) + 1.
    """
    g = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    xp = get_array_module(x, weight, bias)
    cache = ConvCache(x, weight, bias is not None, g)
    g, weight, window = crop_dead_taps(g, weight)
    if window is not None:
        cache = cache._replace(cropped=weight)
    G, O = g.groups, g.O
    w3 = weight.reshape(G, O // G, (g.C // G) * g.kh * g.kw)
    if g.full_window:   # out = x (N, C*kH*kW) @ W^T, no columns to build
        out = matmul(x.reshape(g.N, g.C * g.H * g.W), w3[0].T).reshape(g.N, O, 1, 1)
        if bias is not None:
            flat = out.reshape(g.N, O)
            xp.add(flat, bias, out=flat)
        return out, cache
    if use_unrolled(xp, g, x.dtype.itemsize):   # a tiny map (2x2 under a 3x3 kernel): one product with the unrolled weight
        out, m = unrolled.forward(x, weight, bias, g)
        return out, cache._replace(unrolled=m)
    out = empty(xp, (g.N, O, g.Ho, g.Wo), x.dtype)

    def forward_slice(n0, n1):   # images n0:n1, on one of minicnn's CPU threads
        m = n1 - n0
        if g.pointwise:   # 1x1: out[n] = W @ x[n], a batch of GEMMs, no im2col at all
            xp.matmul(w3, x[n0:n1].reshape(m, G, g.C // G, g.H * g.W), out=out[n0:n1].reshape(m, G, O // G, g.H * g.W))
        elif use_rows(xp, g, ROWS_MAX_K_FORWARD):   # few channels: whole-row columns, the bias added on the way out
            rows.convolve_into(out[n0:n1], x[n0:n1], w3[0], bias, g, CPU_CHUNK_BYTES)
            return
        else:
            _convolve_into(out[n0:n1], x[n0:n1], w3, (g.kh, g.kw), g.stride, g.padding, g.dilation)
        if bias is not None:
            block = out[n0:n1]
            xp.add(block, bias.reshape(O, 1, 1), out=block)      # (one launch on a GPU, where += on a slice is two)

    slices, heavy = _batch_slices(g, xp)
    parallel_map(forward_slice, slices, heavy)
    return out, cache


def _live_taps(size, kernel, stride, pad, out_size):
    """The kernel offsets [first, stop) that read the input itself (not only its padding) for at least
    one output position (dilation 1); None if none does."""
    live = [i for i in range(kernel) if i - pad + stride * (out_size - 1) >= 0 and i - pad <= size - 1]
    return (live[0], live[-1] + 1) if live else None


def crop_dead_taps(g: ConvGeometry, weight):
    """``(g, weight, window)`` without the kernel rows and columns that read nothing but zero padding
    (``weight`` None: the geometry and window only, no copy of the weight).

    On small maps with padding, some kernel offsets never reach the image: a 3x3 kernel on a 1x1 map
    (padding 1) reads only its centre, 4 of 9 taps of a 3x3/2 on a 2x2 map read the image (ResNet's
    last stage on 32x32 inputs). Their products are all zero, so the convolution is the same with the
    kernel cut to ``weight[:, :, i0:i1, j0:j1]`` (``window``) and the padding reduced to match
    (never negative); their weight gradient is zero. Returns the arguments unchanged (``window``
    None) when every tap is live, and for dilated kernels.
    """
    if g.dilation != (1, 1) or g.padding == ((0, 0), (0, 0)):
        return g, weight, None
    (pt, _), (pl, _) = g.padding
    rows = _live_taps(g.H, g.kh, g.stride[0], pt, g.Ho)
    cols = _live_taps(g.W, g.kw, g.stride[1], pl, g.Wo)
    if rows is None or cols is None or (rows, cols) == ((0, g.kh), (0, g.kw)):
        return g, weight, None
    (i0, i1), (j0, j1) = rows, cols
    kh, kw, top, left = i1 - i0, j1 - j0, pt - i0, pl - j0
    bottom = max(0, (g.Ho - 1) * g.stride[0] + kh - g.H - top)    # (the same output size: see the tests)
    right = max(0, (g.Wo - 1) * g.stride[1] + kw - g.W - left)
    cropped = None
    if weight is not None:
        xp = get_array_module(weight)
        cropped = empty(xp, (g.O, weight.shape[1], kh, kw), weight.dtype)
        elementwise(xp.copyto, cropped, weight[:, :, i0:i1, j0:j1])   # (big weights: on minicnn's threads)
    return g._replace(kh=kh, kw=kw, padding=((top, bottom), (left, right))), cropped, (i0, i1, j0, j1)


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
    x, weight, has_bias, g, cropped, m = cache
    check_grad("conv2d_backward", grad_out, (g.N, g.O, g.Ho, g.Wo))
    xp = get_array_module(grad_out, x)
    grad_out = grad_out.astype(x.dtype, copy=False)
    g, cut, window = crop_dead_taps(g, weight if cropped is None else None)
    cropped = cut if cropped is None else cropped
    if m is not None:
        dx, dw, db = unrolled.backward(grad_out, x, m, g, need_x, need_w, need_b and has_bias)
    else:
        dx, dw, db = _conv2d_backward(grad_out, x, cropped, has_bias, g, need_x, need_w, need_b)
    if window is not None and dw is not None:   # the taps that read only padding have zero gradient
        i0, i1, j0, j1 = window
        full = empty(xp, weight.shape, dw.dtype)

        def expand(o0, o1):   # output channels o0:o1 (for big weights, on minicnn's threads)
            full[o0:o1].fill(0)
            full[o0:o1, :, i0:i1, j0:j1] = dw[o0:o1]
        parallel_map(expand, batch_slices(g.O, xp, min_size=-(-(1 << 18) // max(1, weight[0].size))))
        dw = full
    return dx, dw, db


def _conv2d_backward(grad_out, x, weight, has_bias, g, need_x, need_w, need_b):
    """conv2d_backward's work, for the (possibly cropped) weight and geometry."""
    xp = get_array_module(grad_out, x)
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
    dx = empty(xp, x.shape, x.dtype) if need_x else None

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
        xp.matmul(g2.T, channels_last_weight(w3, C, kernel), out=dcols.reshape(g.N * L, Kg))
        channels_last_col2im(dcols, dx, kernel, g.stride, g.padding, g.dilation)
    elif need_x and use_rows(xp, g, ROWS_MAX_K_DX):   # few channels: dx from whole-row runs
        rows.input_gradient_into(dx, grad_out, w3[0], g, CPU_CHUNK_BYTES)
    elif need_x and xp is not np and g.N > 1:   # GPU: one batched GEMM from the NCHW gradient, columns image by image
        dcols = xp.empty((g.N, G, Kg, L), dtype=x.dtype)
        xp.matmul(w3.transpose(0, 2, 1), grad_out.reshape(g.N, G, Og, L), out=dcols)
        fused.col2im_batch(dcols.reshape(g.N, C, g.kh, g.kw, g.Ho, g.Wo), dx, kernel, g.stride,
                           (g.padding[0][0], g.padding[1][0]), g.dilation)
    elif need_x:   # dx = col2im(W^T @ grad), whole images at a time
        for n0, n1, _, _ in output_blocks(xp, g.N, g.Ho, g.Wo, C * g.kh * g.kw * x.itemsize, split_rows=False):
            dcols = workspace(xp, "conv_dcols", (G, Kg, (n1 - n0) * L), x.dtype)
            xp.matmul(w3.transpose(0, 2, 1), _grad_block(grad_out, n0, n1, 0, g.Ho, G), out=dcols)
            col2im(dcols.reshape(C, g.kh, g.kw, n1 - n0, g.Ho, g.Wo), (n1 - n0, C, g.H, g.W),
                   kernel, g.stride, g.padding, g.dilation, out=dx[n0:n1])
    return dw
