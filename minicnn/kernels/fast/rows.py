"""Whole-row columns: the CPU route of stride-1 convolutions of images with few channels (LeNet's
C1 and C3, the first layers of small networks).

With few channels the columns of ``im2col`` are a gather of very short runs: every kernel offset
copies Wo pixels at a time (10 in LeNet's C3), and ``col2im`` adds them back as many short runs,
so both are dominated by NumPy's per-run overhead, not by the data. Here each image is flattened
with its padding, ``xflat[n, c, h*Wp + w]`` (Wp = the padded width), and a kernel offset (i, j)
reads one contiguous run per image and channel:

    cols[(c, i, j), (n, p)] = xflat[n, c, i*Wp + j + p]        for p < Ho*Wp         (one run of Ho*Wp values)

i.e. the columns of a convolution whose output rows are Wp wide instead of Wo: the last Wp - Wo
values of every output row read past the edge of the window's row (into the next row, or a few
zeros appended to the image), are computed, and are dropped. The GEMM does (Wp/Wo - 1) more work,
the gathers far less (``ROWS_MAX_WIDENING`` bounds the trade). The input gradient uses the same
layout: the gradient, widened with zeros in the dropped positions, gives dcols = W^T @ grad_wide, and
dx is the sum of its kH*kW shifted runs (one contiguous run per image and channel each; the zeros
add nothing anywhere), instead of col2im's kH*kW*Ho short runs per image and channel.

The work is done a block of whole images at a time (about ``CPU_CHUNK_BYTES`` of columns, so the
block stays in the cache from the gather to the GEMM), on each of minicnn's threads for its slice
of the batch.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..geometry import ConvGeometry
from .memory import workspace

# Measured with 2 threads on LeNet's and LeNet-Keras's layers (batch 256): the forward gains only
# for the smallest kernel volumes C*kH*kW (LeNet's C1, 25: 10 %; C3, 150: even; Keras's conv2, 500:
# 8 % slower, its GEMM outweighs the gathers), dx gains up to 500 (C3: 24 %, Keras's conv2: 7 %),
# and dW never does (its GEMM, (O x many) @ (many x C*kH*kW), is slow for few rows and columns and
# gets wider still), so dW keeps the block im2col of ``conv``.
ROWS_MAX_K_FORWARD = 32     # the forward takes this route for C*kH*kW up to this
ROWS_MAX_K_DX = 512         # the input gradient for C*kH*kW up to this (when it would otherwise use col2im)
ROWS_MAX_WIDENING = 1.5     # and either only while the padded width Wp is at most this many times Wo


def use_rows(xp, g: ConvGeometry, max_k) -> bool:
    """Whether a convolution takes the whole-row route (CPU, stride 1, no dilation, one group,
    C*kH*kW <= max_k, and not much wider rows)."""
    (_, _), (pl, pr) = g.padding
    return (xp is np and g.stride == (1, 1) and g.dilation == (1, 1) and g.groups == 1
            and g.C * g.kh * g.kw <= max_k and g.W + pl + pr <= ROWS_MAX_WIDENING * g.Wo)


def _sizes(g: ConvGeometry):
    (pt, pb), (pl, pr) = g.padding
    Hp, Wp = g.H + pt + pb, g.W + pl + pr
    return Hp, Wp, g.Ho * Wp, Hp * Wp + g.kw - 1      # padded size, wide output pixels L, flat image length


def image_blocks(g: ConvGeometry, n_images, itemsize, chunk_bytes):
    """Blocks (n0, n1) of whole images whose wide columns take about ``chunk_bytes``."""
    _, _, L, _ = _sizes(g)
    per_image = g.C * g.kh * g.kw * L * itemsize
    m = max(1, chunk_bytes // max(1, per_image))
    return [(n0, min(n0 + m, n_images)) for n0 in range(0, n_images, m)]


def _flat_images(x, g: ConvGeometry, key):
    """x (b, C, H, W) padded with zeros and flattened: (b, C, Hp*Wp + kW - 1), in a scratch buffer."""
    (pt, _), (pl, _) = g.padding
    Hp, Wp, _, length = _sizes(g)
    b = x.shape[0]
    flat = workspace(np, key, (b, g.C, length), x.dtype)
    if (Hp, Wp) != (g.H, g.W):
        flat.fill(0)
    else:
        flat[:, :, Hp * Wp:] = 0
    flat[:, :, :Hp * Wp].reshape(b, g.C, Hp, Wp)[:, :, pt:pt + g.H, pl:pl + g.W] = x
    return flat


def _columns(x, g: ConvGeometry):
    """The wide columns of x (b, C, H, W): (C*kH*kW, b*Ho*Wp), in a scratch buffer."""
    _, Wp, L, _ = _sizes(g)
    b = x.shape[0]
    flat = _flat_images(x, g, "rows_x")
    sN, sC, s1 = flat.strides
    runs = as_strided(flat, shape=(g.C, g.kh, g.kw, b, L), strides=(sC, Wp * s1, s1, sN, s1), writeable=False)
    cols = workspace(np, "rows_cols", (g.C, g.kh, g.kw, b, L), x.dtype)
    np.copyto(cols, runs)
    return cols.reshape(g.C * g.kh * g.kw, b * L)


def _wide_grad(grad, g: ConvGeometry):
    """grad (b, O, Ho, Wo) as (O, b*Ho*Wp), zero in the Wp - Wo dropped positions of every row."""
    _, Wp, L, _ = _sizes(g)
    b = grad.shape[0]
    wide = workspace(np, "rows_grad", (g.O, b, g.Ho, Wp), grad.dtype)
    wide[..., :g.Wo] = grad.transpose(1, 0, 2, 3)
    wide[..., g.Wo:] = 0
    return wide.reshape(g.O, b * L)


def convolve_into(out, x, w2, bias, g: ConvGeometry, chunk_bytes):
    """out (b, O, Ho, Wo) <- x (b, C, H, W) convolved with w2 (O, C*kH*kW), plus bias (O,) or None."""
    _, Wp, L, _ = _sizes(g)
    y_all = None
    for n0, n1 in image_blocks(g, x.shape[0], x.itemsize, chunk_bytes):
        b = n1 - n0
        cols = _columns(x[n0:n1], g)
        y_all = workspace(np, "rows_y", (g.O, b * L), x.dtype)
        np.matmul(w2, cols, out=y_all)
        y = y_all.reshape(g.O, b, g.Ho, Wp)[..., :g.Wo].transpose(1, 0, 2, 3)
        if bias is not None:
            np.add(y, bias.reshape(g.O, 1, 1), out=out[n0:n1])
        else:
            out[n0:n1] = y


def input_gradient_into(dx, grad, w2, g: ConvGeometry, chunk_bytes):
    """dx (b, C, H, W) <- the input gradient of the convolution, for grad (b, O, Ho, Wo) and w2 (O, C*kH*kW):
    per block, dcols = W^T @ grad_wide, then its kH*kW shifted runs summed into the flat images."""
    (pt, _), (pl, _) = g.padding
    Hp, Wp, L, length = _sizes(g)
    for n0, n1 in image_blocks(g, grad.shape[0], grad.itemsize, chunk_bytes):
        b = n1 - n0
        dcols = workspace(np, "rows_dcols", (g.C * g.kh * g.kw, b * L), grad.dtype)
        np.matmul(w2.T, _wide_grad(grad[n0:n1], g), out=dcols)
        runs = dcols.reshape(g.C, g.kh, g.kw, b, L)
        flat = workspace(np, "rows_dx", (b, g.C, length), grad.dtype)
        flat[:, :, :L] = runs[:, 0, 0].transpose(1, 0, 2)       # offset (0, 0) covers the first L values
        flat[:, :, L:] = 0
        for i in range(g.kh):
            for j in range(g.kw):
                if i or j:
                    start = i * Wp + j
                    flat[:, :, start:start + L] += runs[:, i, j].transpose(1, 0, 2)
        dx[n0:n1] = flat[:, :, :Hp * Wp].reshape(b, g.C, Hp, Wp)[:, :, pt:pt + g.H, pl:pl + g.W]
