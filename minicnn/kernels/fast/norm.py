"""Normalisation kernels: batch normalisation and local response normalisation (AlexNet).

Both follow PyTorch's definitions exactly (including the unbiased variance in BatchNorm's running
estimate, and LRN's channel window of ``size`` with size//2 channels before and (size-1)//2 after).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...backend import get_array_module
from ...checks import check_grad
from ..geometry import check_batch_norm
from . import cuda, fused
from .memory import empty
from .threads import batch_slices, parallel_map

# --------------------------------------------------------------------------- batch normalisation

MIN_SLICE_VALUES = 1 << 18   # a channel slice handed to another CPU thread holds at least this many values


class BatchNormCache(NamedTuple):
    """``xhat``: the normalised input; ``inv_std``: 1/sqrt(var + eps) per channel, shaped to broadcast;
    ``batch_stats``: True when the batch's own mean/var were used (training), so backward must
    differentiate through them; False in eval mode (running stats are constants)."""
    xhat: object
    inv_std: object
    weight: object
    has_bias: bool
    batch_stats: bool


def _per_channel(ndim):
    """The shape that broadcasts a vector of per-channel values (all channels, or a slice of them)
    against an (N, C, *) array of ``ndim`` dimensions: (1, -1, 1, ...)."""
    return (1, -1) + (1,) * (ndim - 2)


SHORT_MAP = 32   # per-channel maps of fewer values are processed as whole rows of channels (see _channel_views)


def _channel_views(a):
    """``(block, vector)`` for a C-contiguous (N, C, *) array: ``block(a, c0, c1)`` is channels c0:c1 as
    a view, ``vector(v)`` shapes a per-channel vector of those channels to broadcast against it.

    A per-channel vector broadcast against (N, C, H, W) makes NumPy's innermost loop H*W long: 4 values
    on a 2x2 map, and such an operation is then several times slower than on one long run. For maps
    shorter than ``SHORT_MAP`` the block is (N, channels*H*W) rows instead, and the vector each value
    repeated H*W times (a short vector: made per call); else (N, channels, H*W) and a (channels, 1) vector.
    """
    N, C = a.shape[:2]
    m = a.size // max(N * C, 1)
    if m < SHORT_MAP:
        return (lambda b, c0, c1: b.reshape(N, C * m)[:, c0 * m:c1 * m]), (lambda v: get_array_module(v).repeat(v, m))
    return (lambda b, c0, c1: b.reshape(N, C, m)[:, c0:c1]), (lambda v: v.reshape(-1, 1))


def _sums(block, channels):
    """Per-channel sums of a ``_channel_views`` block: rows first (over N), then each channel's values."""
    rows = block.sum(axis=0)
    return rows.reshape(channels, rows.size // max(channels, 1)).sum(axis=1)


def batch_norm_forward(x, running_mean, running_var, weight=None, bias=None, training=True,
                       momentum=0.1, eps=1e-5):
    """Batch normalisation.  x (N, C) or (N, C, *): statistics per channel over every other axis.
    running_mean, running_var: (C,) or None; weight (gamma), bias (beta): (C,) or None (affine=False).
    ->  (out, cache), out has x's shape and dtype.

    out = (x - mean) / sqrt(var + eps) * weight + bias.
    Training: mean/var are the batch's (biased var); the running stats are updated IN PLACE:
    running = (1 - momentum) * running + momentum * batch_stat, with the UNBIASED batch variance.
    Eval: the running stats are used (and left alone).  Without running stats, batch stats are
    always used, as in PyTorch.
    """
    momentum, eps, batch_stats = check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    C = x.shape[1]
    count = x.size // C if C else 0
    xp = get_array_module(x)
    shape = _per_channel(x.ndim)
    if xp is not np:   # CuPy: fused kernels (3 launches instead of some 25 small operations)
        return _batch_norm_forward_gpu(x, running_mean, running_var, weight, bias, training, batch_stats,
                                       momentum, eps)
    x = xp.ascontiguousarray(x)
    xhat, out = empty(xp, x.shape, x.dtype), empty(xp, x.shape, x.dtype)
    mean, var, inv_std = (xp.empty(C, dtype=x.dtype) for _ in range(3))
    if not batch_stats:
        mean[...], var[...] = running_mean, running_var
    block, vector = _channel_views(x)

    def normalise(c0, c1):   # channels c0:c1, on one of minicnn's CPU threads
        xs, xh, o = block(x, c0, c1), block(xhat, c0, c1), block(out, c0, c1)
        if batch_stats:
            mean[c0:c1] = _sums(xs, c1 - c0) / count
        xp.subtract(xs, vector(mean[c0:c1]), out=xh)                         # centred first:
        if batch_stats:                                                     # a stable two-pass variance
            var[c0:c1] = _sums(xp.multiply(xh, xh, out=o), c1 - c0) / count    # (out as scratch)
        inv_std[c0:c1] = 1.0 / xp.sqrt(var[c0:c1] + eps)
        xh *= vector(inv_std[c0:c1])
        if weight is not None:
            xp.multiply(xh, vector(weight[c0:c1]), out=o)
        else:
            o[...] = xh
        if bias is not None:
            o += vector(bias[c0:c1])

    per_channel = x.size // max(C, 1)
    parallel_map(normalise, batch_slices(C, xp, min_size=-(-MIN_SLICE_VALUES // max(1, per_channel))))
    if training and running_mean is not None:
        running_mean *= 1.0 - momentum
        running_mean += (momentum * mean).astype(running_mean.dtype, copy=False)
        running_var *= 1.0 - momentum
        running_var += (momentum * count / (count - 1) * var).astype(running_var.dtype, copy=False)
    return out, BatchNormCache(xhat, inv_std.reshape(shape), weight, bias is not None, batch_stats)


def _batch_norm_forward_gpu(x, running_mean, running_var, weight, bias, training, batch_stats, momentum, eps):
    """``batch_norm_forward`` on CuPy arrays, through ``cuda``'s batch-norm kernels (same results)."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    shape, dtype = _per_channel(x.ndim), x.dtype
    if batch_stats:
        update = training and running_mean is not None
        # the kernel updates running stats of x's dtype in place; others go through a scratch copy
        rm, rv = ((a if a.dtype == dtype and a.flags.c_contiguous else a.astype(dtype))
                  for a in (running_mean, running_var)) if update else (None, None)
        mean, inv_std = fused.batch_norm_stats(x, rm, rv, momentum, eps)
        if update and rm is not running_mean:
            running_mean[...], running_var[...] = rm, rv
    weight = None if weight is None else xp.ascontiguousarray(weight, dtype=dtype)
    bias = None if bias is None else xp.ascontiguousarray(bias, dtype=dtype)
    if not batch_stats:   # one launch: the scale and shift from the running statistics inside the kernel
        rm, rv = (xp.ascontiguousarray(a, dtype=dtype) for a in (running_mean, running_var))
        out = fused.bn_eval(x, rm, rv, weight, bias, eps)
        return out, BatchNormEvalCache(x, rm, rv, eps, weight, bias is not None)
    xhat, out = cuda.batch_norm_apply(x, mean, inv_std, weight, bias)
    return out, BatchNormCache(xhat, inv_std.reshape(shape), weight, bias is not None, batch_stats)


class BatchNormEvalCache(NamedTuple):
    """Eval-mode batch-norm's cache on a GPU: the input and the running statistics (references, as
    PyTorch saves them); ``batch_norm_backward`` derives xhat and inv_std from them when it runs."""
    x: object
    running_mean: object
    running_var: object
    eps: float
    weight: object
    has_bias: bool


def _eval_cache(cache: BatchNormEvalCache) -> BatchNormCache:
    x, rm, rv, eps, weight, has_bias = cache
    shape = _per_channel(x.ndim)
    inv_std = (1.0 / get_array_module(x).sqrt(rv + eps)).astype(x.dtype, copy=False)
    return BatchNormCache((x - rm.reshape(shape)) * inv_std.reshape(shape), inv_std.reshape(shape), weight,
                          has_bias, False)


def _batch_norm_backward_gpu(grad, cache: BatchNormCache, need_x, need_w, need_b):
    """``batch_norm_backward`` with batch statistics on CuPy arrays: 3 kernel launches (``cuda``)."""
    xhat, inv_std, weight, has_bias, _ = cache
    grad = get_array_module(grad).ascontiguousarray(grad)
    sum_g, sum_gx = fused.batch_norm_grad_sums(grad, xhat)
    dx = cuda.batch_norm_grad_input(grad, xhat, sum_g, sum_gx, inv_std.reshape(-1), weight) if need_x else None
    return dx, (sum_gx if need_w and weight is not None else None), (sum_g if need_b and has_bias else None)


def batch_norm_backward(grad, cache: BatchNormCache, need_x=True, need_w=True, need_b=True):
    """grad (like x)  ->  (dx, dweight (C,), dbias (C,)); None for those not needed or absent.

    dweight = sum grad * xhat;  dbias = sum grad  (over every axis but 1).
    Batch stats:  dx = weight * inv_std * (grad - mean(grad) - xhat * mean(grad * xhat)), where the two
    means are dbias / M and dweight / M (M values per channel): computed once, used twice.
    Running stats (eval): dx = grad * weight * inv_std  (a fixed per-channel scale).
    """
    if isinstance(cache, BatchNormEvalCache):
        cache = _eval_cache(cache)
    xhat, inv_std, weight, has_bias, batch_stats = cache
    check_grad("batch_norm_backward", grad, xhat.shape)
    xp = get_array_module(grad)
    if xp is not np and batch_stats:
        return _batch_norm_backward_gpu(grad, cache, need_x, need_w, need_b)
    C = xhat.shape[1]
    batch_dx = need_x and batch_stats          # this dx needs both sums below, whatever is asked
    want_gx = batch_dx or (need_w and weight is not None)
    want_g = batch_dx or (need_b and has_bias)
    sum_gx = xp.empty(C, dtype=xhat.dtype) if want_gx else None
    sum_g = xp.empty(C, dtype=xhat.dtype) if want_g else None
    dx = empty(xp, xhat.shape, xhat.dtype) if need_x else None
    m = xhat.size // max(C, 1)

    grad = xp.ascontiguousarray(grad)
    block, vector = _channel_views(xhat)
    inv_std = inv_std.reshape(-1)

    def backward_slice(c0, c1):   # channels c0:c1, on one of minicnn's CPU threads
        g, xh = block(grad, c0, c1), block(xhat, c0, c1)
        if want_gx:   # (dx's slice doubles as scratch for grad * xhat)
            prod = xp.multiply(g, xh, out=block(dx, c0, c1)) if need_x else g * xh
            sum_gx[c0:c1] = _sums(prod, c1 - c0)
        if want_g:
            sum_g[c0:c1] = _sums(g, c1 - c0)
        if need_x:
            d = block(dx, c0, c1)
            scale = vector(inv_std[c0:c1] * weight[c0:c1] if weight is not None else inv_std[c0:c1])
            if batch_stats:   # dx = scale * (g - mean(g) - xhat * mean(g * xhat)), the means from the sums above
                xp.multiply(xh, vector(sum_gx[c0:c1] / m), out=d)
                xp.subtract(g, d, out=d)
                d -= vector(sum_g[c0:c1] / m)
                d *= scale
            else:
                xp.multiply(g, scale, out=d)

    parallel_map(backward_slice, batch_slices(C, xp, min_size=-(-MIN_SLICE_VALUES // max(1, m))))
    dweight = sum_gx if (need_w and weight is not None) else None
    dbias = sum_g if (need_b and has_bias) else None
    return dx, dweight, dbias
