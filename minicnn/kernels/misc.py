"""Dropout and linear (fully connected) kernels, a threaded matrix product, and the small argument
checks every kernel shares.

All functions take and return plain arrays (NumPy or CuPy, found with ``get_array_module``)
and keep the dtype they are given.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

from ..backend import batch_slices, get_array_module, parallel_map

# --------------------------------------------------------------------------- shared argument checks


def check_float_array(op: str, name: str, a, ndim=None, layout: str = ""):
    """Raise a clear error unless ``a`` is a floating-point array (of ``ndim`` dimensions, when given).

    ``ndim`` is an int or a tuple of allowed ints; ``layout`` names the axes for the message,
    e.g. ``"(N, C, H, W)"``.
    """
    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        raise TypeError(f"{op}: {name} must be an array, got {type(a).__name__}")
    if a.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating-point array, got dtype {a.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            dims = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{op}: {name} must be {dims} {layout}".rstrip() + f", got shape {tuple(a.shape)}")


def check_same_dtype(op: str, x, **others):
    """Raise TypeError unless every array in ``others`` (None allowed) has the dtype of ``x``."""
    for name, a in others.items():
        if a is not None and a.dtype != x.dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype} but the input has dtype {x.dtype}; "
                            "cast them to the same floating dtype")


def pair(op: str, name: str, value, minimum: int = 0):
    """``3 -> (3, 3)``; ``(2, 3) -> (2, 3)``; checks the values are ints >= ``minimum``."""
    if isinstance(value, numbers.Integral):
        value = (int(value), int(value))
    try:
        value = tuple(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None
    if len(value) != 2 or not all(isinstance(v, numbers.Integral) for v in value):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in value):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(value[0]), int(value[1])


def channel_vector(op: str, name: str, a, channels: int, x):
    """Check that an optional per-channel parameter is a 1-D array of length ``channels`` and x's dtype."""
    if a is None:
        return
    check_float_array(op, name, a, 1, f"(C,) with C = {channels}")
    if a.shape[0] != channels:
        raise ValueError(f"{op}: {name} must have shape ({channels},) to match the {channels} channels "
                         f"of the input, got shape {tuple(a.shape)}")
    check_same_dtype(op, x, **{name: a})


# --------------------------------------------------------------------------- dropout


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


# --------------------------------------------------------------------------- linear


# --------------------------------------------------------------------------- reductions


def channel_sums(a):
    """Per-channel sums of a (N, C, *) array (or a channel slice of one): (C,).

    Summing the N rows of the (N, C*H*W) view first (whole contiguous rows added at a time) and
    then each channel's H*W partial sums is 2 to 20 times faster than ``a.sum(axis=(0, 2, 3))``,
    whose inner loop runs over only H*W values (4 of them on a 2x2 map).
    """
    N, C = a.shape[:2]
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
        out = xp.empty((M, N), dtype=xp.result_type(a, b))
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
    check_float_array("linear", "x", x)
    if x.ndim < 1:
        raise ValueError(f"linear: x must have at least 1 dimension (*, in_features), got shape {tuple(x.shape)}")
    check_float_array("linear", "weight", weight, 2, "(out_features, in_features)")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: x has {x.shape[-1]} features in its last dimension but weight expects "
                         f"{weight.shape[1]} (weight shape {tuple(weight.shape)}, x shape {tuple(x.shape)})")
    check_same_dtype("linear", x, weight=weight)
    if bias is not None:
        check_float_array("linear", "bias", bias, 1, "(out_features,)")
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
        check_same_dtype("linear", x, bias=bias)
    out = matmul(x.reshape(-1, x.shape[-1]), weight.T).reshape(*x.shape[:-1], weight.shape[0])
    if bias is not None:
        out += bias
    return out, LinearCache(x, weight, bias is not None)


def linear_backward(grad, cache: LinearCache, need_x=True, need_w=True, need_b=True):
    """grad (*, out)  ->  (dx (*, in), dweight (out, in), dbias (out,)); None for those not needed.

    dx = grad @ weight;  dweight = sum over rows of grad^T x;  dbias = sum over rows of grad.
    """
    x, weight, has_bias = cache
    g2 = grad.reshape(-1, grad.shape[-1])
    dx = matmul(g2, weight).reshape(x.shape) if need_x else None
    dw = db = None
    if need_w or (need_b and has_bias):
        if need_w:
            dw = matmul(g2.T, x.reshape(-1, x.shape[-1]))
        if need_b and has_bias:
            db = g2.sum(axis=0)
    return dx, dw, db
