"""The unrolled-weight route: convolutions of tiny maps (2x2 and 3x3 ones under a 3x3 kernel: a
ResNet's third stage on 32x32 inputs) as one matrix product with no gathers.

A convolution is a linear map from an image x[n] (C*H*W values) to its output (O*Ho*Wo values),
so it is the product with one (C*H*W, O*Ho*Wo) matrix, the weight unrolled:

    M[(c, h, w), (o, oh, ow)] = weight[o, c, h - oh*sh + top, w - ow*sw + left]   (zero where that is no tap)
    out (N, O*Ho*Wo) = x (N, C*H*W) @ M;    dx = grad @ M^T;    dM = x^T @ grad, folded back into dW

When H*W <= kH*kW this is no more work than im2col's GEMM (C*kH*kW values per output): on a 2x2
map with padding 1, im2col's columns are 5/9 zero padding, M leaves them out. And there is nothing
to gather but the weight: building M (from the weight, in the forward pass, kept for the backward
one) and folding dM back into dW cost about one pass over M each, so M must not be much bigger
than the weight (at most twice: (H*W)*(Ho*Wo) <= 2*kH*kW). CPU, one group, no dilation, and only
while M is small (``UNROLLED_MAX_BYTES``). Measured on ResNet-18's 256-channel 2x2 layers at
batch 64 (2 threads): forward 1.8 -> 1.4 ms, backward 3.8 -> 2.2 ms (channels-last im2col before).
"""
from __future__ import annotations

import numpy as np

from ..geometry import ConvGeometry
from .memory import empty, workspace
from .misc import channel_sums, matmul
from .threads import batch_slices, parallel_map

UNROLLED_MAX_BYTES = 8 << 20


def use_unrolled(xp, g: ConvGeometry, itemsize: int) -> bool:
    """Whether a convolution of ``itemsize``-byte values takes the unrolled-weight route (see the
    module docstring)."""
    pairs = g.H * g.W * g.Ho * g.Wo     # M holds C*O values per (input pixel, output pixel) pair
    return (xp is np and g.groups == 1 and g.dilation == (1, 1) and g.H * g.W <= g.kh * g.kw
            and pairs <= 2 * g.kh * g.kw and g.C * g.O * pairs * itemsize <= UNROLLED_MAX_BYTES)


def _taps(g: ConvGeometry):
    """The (input pixel p = h*W + w, output pixel q = oh*Wo + ow, tap t = i*kW + j) triples such that
    output q reads pixel p through tap t."""
    (pt, _), (pl, _) = g.padding
    triples = []
    for oh in range(g.Ho):
        for ow in range(g.Wo):
            for h in range(g.H):
                for w in range(g.W):
                    i, j = h - oh * g.stride[0] + pt, w - ow * g.stride[1] + pl
                    if 0 <= i < g.kh and 0 <= j < g.kw:
                        triples.append((h * g.W + w, oh * g.Wo + ow, i * g.kw + j))
    return triples


def unrolled_weight(weight, g: ConvGeometry):
    """M (C*H*W, Ho*Wo*O) for ``weight`` (O, C, kH, kW), its columns output pixel first (so that
    every tap is copied as whole rows of O values); a recycled array (``memory.empty``)."""
    m = empty(np, (g.C, g.H * g.W, g.Ho * g.Wo, g.O), weight.dtype)
    triples = _taps(g)
    w3 = weight.reshape(g.O, g.C, g.kh * g.kw)

    def build(c0, c1):   # input channels c0:c1, on one of minicnn's threads
        taps = workspace(np, "unrolled_taps", (g.kh * g.kw, c1 - c0, g.O), weight.dtype)
        taps[...] = w3[:, c0:c1].transpose(2, 1, 0)
        if len(triples) < g.H * g.W * g.Ho * g.Wo:   # some (pixel, output) pairs are no tap
            m[c0:c1].fill(0)
        for p, q, t in triples:
            m[c0:c1, p, q, :] = taps[t]
    parallel_map(build, batch_slices(g.C, np, min_size=16))
    return m.reshape(g.C * g.H * g.W, g.Ho * g.Wo * g.O)


def forward(x, weight, bias, g: ConvGeometry):
    """(out (N, O, Ho, Wo) = x @ M (+ bias), M): the backward pass needs M again."""
    m = unrolled_weight(weight, g)
    chw, pixels = g.C * g.H * g.W, g.Ho * g.Wo
    y = workspace(np, "unrolled_y", (g.N, g.Ho * g.Wo, g.O), x.dtype)
    matmul(x.reshape(g.N, chw), m, out=y.reshape(g.N, pixels * g.O))
    out = empty(np, (g.N, g.O, g.Ho, g.Wo), x.dtype)
    if bias is not None:
        np.add(y.transpose(0, 2, 1), bias.reshape(g.O, 1), out=out.reshape(g.N, g.O, pixels))
    else:
        out.reshape(g.N, g.O, pixels)[...] = y.transpose(0, 2, 1)
    return out, m


def backward(grad, x, m, g: ConvGeometry, need_x, need_w, need_b):
    """(dx, dweight, dbias) of the unrolled route, for the forward's unrolled weight m; None for those not needed."""
    dx = dw = None
    chw, pixels = g.C * g.H * g.W, g.Ho * g.Wo
    g2 = workspace(np, "unrolled_grad", (g.N, g.Ho * g.Wo, g.O), grad.dtype)    # grad, output pixel first
    g2[...] = grad.reshape(g.N, g.O, pixels).transpose(0, 2, 1)
    g2 = g2.reshape(g.N, pixels * g.O)
    if need_x:
        dx = empty(np, x.shape, x.dtype)
        matmul(g2, m.T, out=dx.reshape(g.N, chw))
    if need_w:
        dm = workspace(np, "unrolled_dm", (g.C, g.H * g.W, g.Ho * g.Wo, g.O), x.dtype)
        matmul(x.reshape(g.N, chw).T, g2, out=dm.reshape(chw, pixels * g.O))
        dw = np.empty((g.O, g.C, g.kh, g.kw), dtype=x.dtype)
        triples = _taps(g)

        def fold(c0, c1):   # input channels c0:c1: every tap sums the entries of M it was unrolled into
            taps = workspace(np, "unrolled_taps", (g.kh * g.kw, c1 - c0, g.O), x.dtype)
            taps.fill(0)
            for p, q, t in triples:
                taps[t] += dm[c0:c1, p, q, :]
            dw.reshape(g.O, g.C, -1)[:, c0:c1] = taps.transpose(2, 1, 0)
        parallel_map(fold, batch_slices(g.C, np, min_size=16))
    db = channel_sums(grad) if need_b else None
    return dx, dw, db
