"""Softmax cross-entropy on a GPU in one launch each way (CuPy ``RawKernel``s, compiled by ``cuda``'s helpers;
were some 18 and 8 array operations), with PyTorch's ``ignore_index``: an ignored row's loss and gradient
are 0 and it does not count in the mean. Nothing is read back to the host: a target outside [0, c) that is
not ``ignore_index`` makes its row's loss and gradient NaN instead of an error.

Like ``cuda``, this module never imports CuPy: the ``xp`` comes from the arrays.
"""
from __future__ import annotations

from ...backend import get_array_module
from . import cuda
from .cuda import _double_bits, _i64, _kernel, _launch

NEVER = -(1 << 62)      # an ignore_index no target can equal (nothing is ignored)

_SOURCES = {
    "ce_fwd": r"""
// One thread per row i of logits x (n, c): logp = x - max - log(sum exp(x - max));
// out[i] = -(1 - e) * logp[t] - e/c * sum_j logp[j] and out[n + i] = 1 (the row counts), or 0 and 0 when
// t == ignore; a target outside [0, c) gives NaN (the NaN from its bits: NVRTC has no NAN macro).
extern "C" __global__ void ce_fwd(const T* __restrict__ x, const long long* __restrict__ target, T* __restrict__ logp,
        T* __restrict__ out, long long n, long long c, long long eps_bits, long long ignore) {
    const T e = (T)AS_DOUBLE(eps_bits);
    GRID_STRIDE_LOOP(i, n) {
        const T* row = x + i * c;
        T* lp = logp + i * c;
        T m = row[0];
        for (long long j = 1; j < c; ++j) m = row[j] > m ? row[j] : m;
        T s = 0;
        for (long long j = 0; j < c; ++j) { lp[j] = row[j] - m; s += (T)exp(lp[j]); }
        const T lse = (T)log(s);
        T all = 0;
        for (long long j = 0; j < c; ++j) { lp[j] -= lse; all += lp[j]; }
        const long long t = target[i];
        out[n + i] = t == ignore ? (T)0 : (T)1;
        if (t == ignore) { out[i] = (T)0; continue; }
        if (t < 0 || t >= c) { out[i] = (T)AS_DOUBLE(0x7ff8000000000000LL); continue; }
        T l = -lp[t];
        if (e != (T)0) l = ((T)1 - e) * l - (e / (T)c) * all;
        out[i] = l;
    }
}
""",
    "ce_bwd": r"""
// dx[i, j] = (exp(logp[i, j]) - (j == t_i) * (1 - e) - e/c) * g, with g = grad[i] (per_row), grad[0] / count[0]
// (use_count: the mean over the rows that count) or grad[0]; 0 for an ignored row, NaN for a target outside [0, c).
extern "C" __global__ void ce_bwd(const T* __restrict__ logp, const long long* __restrict__ target,
        const T* __restrict__ grad, const T* __restrict__ count, T* __restrict__ dx, long long n, long long c,
        long long eps_bits, long long per_row, long long use_count, long long ignore) {
    const T e = (T)AS_DOUBLE(eps_bits);
    GRID_STRIDE_LOOP(idx, n * c) {
        const long long i = idx / c, j = idx % c, t = target[i];
        T d = (T)exp(logp[idx]);
        if (j == t) d -= (T)1 - e;
        if (e != (T)0) d -= e / (T)c;
        if (t < 0 || t >= c) d = (T)AS_DOUBLE(0x7ff8000000000000LL);
        if (t == ignore) d = (T)0;
        dx[idx] = d * (per_row ? grad[i] : use_count ? grad[0] / count[0] : grad[0]);
    }
}
""",
}
cuda._SOURCES.update(_SOURCES)


def cross_entropy_forward(logits, target, label_smoothing, ignore_index=None):
    """logits (n, c) contiguous, integer target (n,)  ->  (rows (2, n): each row's loss, then 1 where the row
    counts (0 where its target is ``ignore_index``); logp (n, c); the target as int64): one launch."""
    xp = get_array_module(logits)
    n, c = logits.shape
    target = xp.ascontiguousarray(target, dtype=xp.int64)
    logp, rows = xp.empty_like(logits), xp.empty((2, n), dtype=logits.dtype)
    if n and c:
        _launch(_kernel(xp, "ce_fwd", logits.dtype), n,
                (logits, target, logp, rows, *_i64(n, c), _double_bits(label_smoothing),
                 *_i64(NEVER if ignore_index is None else ignore_index)))
    return rows, logp, target


def cross_entropy_backward(grad, logp, target, label_smoothing, reduction, count, ignore_index=None):
    """dx (n, c) of ``cross_entropy_forward``'s loss: grad is (n,) for reduction 'none', else 0-d; 'mean'
    divides it by ``count`` (a 1-element device array: the rows that count). One launch."""
    xp = get_array_module(logp)
    n, c = logp.shape
    dx = xp.empty_like(logp)
    if dx.size:
        _launch(_kernel(xp, "ce_bwd", logp.dtype), dx.size,
                (logp, target, xp.ascontiguousarray(grad, dtype=logp.dtype), count, dx, *_i64(n, c),
                 _double_bits(label_smoothing), *_i64(reduction == "none", reduction == "mean",
                                                      NEVER if ignore_index is None else ignore_index)))
    return dx
