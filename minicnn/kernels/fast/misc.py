"""Dropout and linear (fully connected) kernels and a threaded matrix product.

All functions take and return plain arrays (NumPy or CuPy, found with ``get_array_module``)
and keep the dtype they are given.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ...backend import get_array_module
from ..geometry import check_linear
from . import cuda, fused
from .memory import empty, workspace
from .threads import balanced_slices, batch_slices, elementwise, parallel_map

# --------------------------------------------------------------------------- optimizer steps

def parameter_updates(update, params):
    """An optimizer step: ``update(first, stop)`` updates parameters first..stop-1. On the CPU the
    parameters are shared out among minicnn's threads by size; on a GPU they run in one call."""
    on_cpu = all(get_array_module(p) is np for p in params)
    parallel_map(update, balanced_slices([p.size for p in params]) if on_cpu else [(0, len(params))])


STEP_CHUNK = 1 << 17   # values per chunk of an optimizer step: its temporaries stay in the L2 cache
# (AlexNet's SGD step, 61M parameters, 2 threads: 34 ms with chunks of 16K values, 22 ms with 64K-256K)


def sgd_step(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    """One SGD step in place (``torch.optim.SGD``'s rule, see ``minicnn.optim.SGD``) on contiguous
    arrays of one dtype: p (updated), grad (read only), buf (the momentum buffer, updated; ignored
    without momentum; written from scratch when ``first``). The same operations, in the same order,
    as the plain NumPy step, so the same numbers: on the CPU chunk by chunk, with two small scratch
    arrays instead of a temporary the size of the parameter per operation (which, for a large
    layer, the OS would page in anew at every step); one fused kernel on a GPU."""
    xp = get_array_module(p)
    if p.size == 0:
        return
    if xp is not np:
        return cuda.sgd_step(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first)
    p, grad = p.reshape(-1), grad.reshape(-1)
    buf = buf.reshape(-1) if momentum else None
    chunk = min(STEP_CHUNK, p.size)
    t, u = workspace(np, "step_t", (chunk,), p.dtype), workspace(np, "step_u", (chunk,), p.dtype)
    for a in range(0, p.size, chunk):
        b = min(a + chunk, p.size)
        pc, g, tc, uc = p[a:b], grad[a:b], t[:b - a], u[:b - a]
        if maximize:
            g = np.negative(g, out=tc)
        if weight_decay != 0:
            g = np.add(g, np.multiply(weight_decay, pc, out=uc), out=tc)   # g + wd * p
        if momentum != 0:
            bc = buf[a:b]
            if first:
                bc[...] = g
            else:
                bc *= momentum
                bc += g if dampening == 0 else np.multiply(1.0 - dampening, g, out=uc)
            g = np.add(g, np.multiply(momentum, bc, out=uc), out=tc) if nesterov else bc
        pc -= np.multiply(lr, g, out=uc)


# --------------------------------------------------------------------------- ReLU

class ReluOutputMask(NamedTuple):
    """ReLU's cache on a GPU: its output, whose positive entries are the mask (no mask array to write)."""
    out: object


def relu_forward(x, need_mask=True):
    """x  ->  (out, mask): out = max(x, 0), mask = out > 0 (None unless ``need_mask``).
    Cut into row slices for the CPU threads (``backend.elementwise``); one launch on a GPU, where the
    mask is read from the output in backward (a ``ReluOutputMask``)."""
    xp = get_array_module(x)
    if xp is not np and x.dtype.kind == "f":
        out = fused.relu_forward(xp.ascontiguousarray(x))
        return out, (ReluOutputMask(out) if need_mask else None)
    out = empty(xp, x.shape, x.dtype)
    if not need_mask:
        elementwise(lambda o, x: xp.maximum(x, 0, out=o), out, x)
        return out, None
    mask = empty(xp, x.shape, bool)
    elementwise(lambda o, m, x: (xp.maximum(x, 0, out=o), xp.greater(o, 0, out=m)), out, mask, x)
    return out, mask


def relu_backward(grad, mask):
    """dx = grad * mask."""
    xp = get_array_module(grad)
    if isinstance(mask, ReluOutputMask):
        return fused.relu_backward(xp.ascontiguousarray(grad, dtype=mask.out.dtype), mask.out)
    dx = empty(xp, grad.shape, grad.dtype)
    elementwise(lambda d, g, m: xp.multiply(g, m, out=d), dx, grad, mask)
    return dx


class ScaledTanhCache(NamedTuple):
    t: object       # tanh(b * x)
    ab: float       # a * b


def scaled_tanh_forward(x, a, b):
    """out = a * tanh(b * x) (LeCun's 1.7159 * tanh(2x/3)), in row slices for the CPU threads."""
    xp = get_array_module(x)
    if xp is not np and x.dtype.kind == "f":   # one launch on a GPU
        out, t = fused.scaled_tanh_forward(xp.ascontiguousarray(x), a, b)
        return out, ScaledTanhCache(t, a * b)
    dtype = xp.result_type(x.dtype, b)        # x's float dtype; float64 for integer x, as x * b would be
    t, out = empty(xp, x.shape, dtype), empty(xp, x.shape, dtype)

    def scaled_tanh(out, t, x):            # t = tanh(b x) in place, out = a t
        xp.tanh(xp.multiply(x, b, out=t), out=t)
        xp.multiply(t, a, out=out)
    elementwise(scaled_tanh, out, t, x)
    return out, ScaledTanhCache(t, a * b)


def scaled_tanh_backward(grad, cache: ScaledTanhCache):
    """dx = grad * a*b * (1 - t^2), in place in one scratch array."""
    xp = get_array_module(grad)
    t, ab = cache
    if xp is not np:
        return fused.scaled_tanh_backward(xp.ascontiguousarray(grad, dtype=t.dtype), t, ab)
    d = empty(xp, grad.shape, t.dtype)

    def derivative(d, t, g):               # (t^2 - 1) * (-ab) * g
        xp.multiply(t, t, out=d)
        d -= 1
        d *= -ab
        d *= g
    elementwise(derivative, d, t, grad)
    return d


# --------------------------------------------------------------------------- linear


# --------------------------------------------------------------------------- reductions


def channel_sums(a):
    """Per-channel sums of a (N, C, *) array (or a channel slice of one): (C,).

    Summing the N rows of the (N, C*H*W) view first (whole contiguous rows added at a time) and
    then each channel's H*W partial sums is 2 to 20 times faster than ``a.sum(axis=(0, 2, 3))``,
    whose inner loop runs over only H*W values (4 of them on a 2x2 map).
    """
    N, C = a.shape[:2]
    if get_array_module(a) is not np:     # one reduction kernel on a GPU
        return a.reshape(N, C, math.prod(a.shape[2:])).sum(axis=(0, 2))
    per_map = math.prod(a.shape[2:])
    return a.reshape(N, C * per_map).sum(axis=0).reshape(C, per_map).sum(axis=1)


# --------------------------------------------------------------------------- matrix product

MIN_THREADED_MACS = 1 << 22   # smaller products run on one thread: waking the others costs more


def matmul(a, b, out=None):
    """a (M, K) @ b (K, N) -> (M, N), cut into one slab per CPU thread (see ``backend.set_num_threads``).

    The output is cut along its longer side: rows of ``a`` (each thread reads all of b) or columns
    of ``b`` (each thread reads all of a), so that the big operand is read once in all. Small
    products, and products on a GPU, are a single ``xp.matmul``.
    """
    xp = get_array_module(a, b)
    M, N = a.shape[0], b.shape[1]
    if out is None:
        out = empty(xp, (M, N), xp.result_type(a, b))
    slabs = batch_slices(max(M, N), xp) if M * N * a.shape[1] >= MIN_THREADED_MACS else [(0, max(M, N))]
    if M >= N:
        parallel_map(lambda r0, r1: xp.matmul(a[r0:r1], b, out=out[r0:r1]), slabs)
    else:
        parallel_map(lambda c0, c1: xp.matmul(a, b[:, c0:c1], out=out[:, c0:c1]), slabs)
    return out


class LinearCache(NamedTuple):
    """What ``linear_backward`` needs: the input and weight (references, not copies)."""
    x: object
    weight: object
    has_bias: bool


def linear_forward(x, weight, bias=None):
    """Fully connected layer.  x (*, in), weight (out, in), bias (out,) or None  ->  (out (*, out), cache).

    out = x @ weight.T + bias   (PyTorch's layout: one row of ``weight`` per output feature).
    """
    check_linear(x, weight, bias)
    out = matmul(x.reshape(math.prod(x.shape[:-1]), x.shape[-1]), weight.T).reshape(*x.shape[:-1], weight.shape[0])
    if bias is not None:
        out += bias
    return out, LinearCache(x, weight, bias is not None)


def linear_backward(grad, cache: LinearCache, need_x=True, need_w=True, need_b=True):
    """grad (*, out)  ->  (dx (*, in), dweight (out, in), dbias (out,)); None for those not needed.

    dx = grad @ weight;  dweight = sum over rows of grad^T x;  dbias = sum over rows of grad.
    """
    x, weight, has_bias = cache
    g2 = grad.reshape(math.prod(grad.shape[:-1]), grad.shape[-1])     # (not -1: out or in may be 0)
    dx = matmul(g2, weight).reshape(x.shape) if need_x else None
    dw = db = None
    if need_w or (need_b and has_bias):
        if need_w:
            dw = matmul(g2.T, x.reshape(g2.shape[0], x.shape[-1]))
        if need_b and has_bias:
            db = g2.sum(axis=0)
    return dx, dw, db
