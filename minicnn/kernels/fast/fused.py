"""More CUDA kernels (CuPy ``RawKernel``s, compiled by ``cuda``'s helpers): each does in one launch what
took several array operations, because on a GPU a small network's step is bound by the host's rate of
issuing launches, not by arithmetic.

* ``sgd_step_multi``: one SGD step for many parameters at once (PyTorch's ``foreach``/``fused``), each
  parameter, gradient and momentum buffer found through a device table of pointers (``optim.foreach``).
* ``bn_eval``: eval-mode batch-norm with the running statistics, scale and shift computed in the kernel
  (was astype, sqrt, divide, add and the apply: 5 launches), optionally followed by a ReLU.
* ``relu_fwd`` / ``relu_bwd``: ReLU from its output (no mask array), 1 launch each way.
* ``scaled_tanh_fwd`` / ``scaled_tanh_bwd``: LeNet's a * tanh(b x), 1 launch each way (were 3 and 4).
* ``im2col_batch`` / ``col2im_batch``: columns laid out image by image, (N, C, kH, kW, Ho, Wo), so that
  one strided-batched GEMM writes the NCHW output (no transpose copy) and reads an NCHW gradient.

Like ``cuda``, this module never imports CuPy: the ``xp`` comes from the arrays.
"""
from __future__ import annotations

import numpy as np   # host-side scalar types and the pointer table only, never applied to device arrays

from ...backend import get_array_module
from . import cuda
from .cuda import _double_bits, _i64, _kernel, _launch

_SOURCES = {
    "sgd_step_multi": r"""
// One SGD step (torch.optim.SGD's rule, as sgd_step) over `count` parameters anywhere in memory. table[0..count]
// are the running offsets of the parameters' values (table[count] = total); then, per parameter k, its data
// pointer table[count+1+k], its gradient's [2*count+1+k], its momentum buffer's [3*count+1+k] and 1 at
// [4*count+1+k] when that buffer starts at this step (buf = d).  Flags: 1 maximize, 2 nesterov, 8 momentum.
extern "C" __global__ void sgd_step_multi(const long long* __restrict__ table, long long count, long long total,
        long long lr_bits, long long momentum_bits, long long dampening_bits, long long weight_decay_bits,
        long long flags) {
    const T lr = (T)AS_DOUBLE(lr_bits), momentum = (T)AS_DOUBLE(momentum_bits);
    const T dampening = (T)AS_DOUBLE(dampening_bits), weight_decay = (T)AS_DOUBLE(weight_decay_bits);
    GRID_STRIDE_LOOP(i, total) {
        long long k = 0, hi = count;                  // the parameter k with table[k] <= i < table[k + 1]
        while (hi - k > 1) {
            const long long mid = (k + hi) / 2;
            if (table[mid] <= i) k = mid; else hi = mid;
        }
        const long long j = i - table[k];
        T* p = (T*)table[count + 1 + k];
        const T* g = (const T*)table[2 * count + 1 + k];
        T d = (flags & 1) ? -g[j] : g[j];
        if (weight_decay != (T)0) d += weight_decay * p[j];
        if (flags & 8) {
            T* buf = (T*)table[3 * count + 1 + k];
            const T b = table[4 * count + 1 + k] ? d : momentum * buf[j] + ((T)1 - dampening) * d;
            buf[j] = b;
            d = (flags & 2) ? d + momentum * b : b;
        }
        p[j] -= lr * d;
    }
}
""",
    "bn_eval": r"""
// Eval-mode batch-norm with the running statistics: inv = 1/sqrt(rv[c] + eps);
// out = (x - rm[c]) * inv * weight[c] + bias[c] (weight, bias optional), then max(out, 0) with relu.
extern "C" __global__ void bn_eval(const T* __restrict__ x, const T* __restrict__ rm, const T* __restrict__ rv,
        const T* __restrict__ weight, const T* __restrict__ bias, T* __restrict__ out, long long C, long long S,
        long long total, long long eps_bits, long long has_weight, long long has_bias, long long relu) {
    const T eps = (T)AS_DOUBLE(eps_bits);
    GRID_STRIDE_LOOP(idx, total) {
        const long long c = (idx / S) % C;
        const T inv = (T)1 / (T)sqrt(rv[c] + eps);
        T o = (x[idx] - rm[c]) * inv;
        if (has_weight) o *= weight[c];
        if (has_bias) o += bias[c];
        out[idx] = (relu && !(o > (T)0)) ? (o != o ? o : (T)0) : o;
    }
}
""",
    "relu_fwd": r"""
// out = max(x, 0) (NaN stays NaN, as xp.maximum)
extern "C" __global__ void relu_fwd(const T* __restrict__ x, T* __restrict__ out, long long total) {
    GRID_STRIDE_LOOP(idx, total) {
        const T v = x[idx];
        out[idx] = (v > (T)0 || v != v) ? v : (T)0;
    }
}
""",
    "relu_bwd": r"""
// dx = grad where out > 0, else 0 (the mask read from ReLU's output)
extern "C" __global__ void relu_bwd(const T* __restrict__ grad, const T* __restrict__ out, T* __restrict__ dx,
        long long total) {
    GRID_STRIDE_LOOP(idx, total) {
        dx[idx] = out[idx] > (T)0 ? grad[idx] : (T)0;
    }
}
""",
    "scaled_tanh_fwd": r"""
// t = tanh(b x), out = a t
extern "C" __global__ void scaled_tanh_fwd(const T* __restrict__ x, T* __restrict__ t, T* __restrict__ out,
        long long total, long long a_bits, long long b_bits) {
    const T a = (T)AS_DOUBLE(a_bits), b = (T)AS_DOUBLE(b_bits);
    GRID_STRIDE_LOOP(idx, total) {
        const T v = (T)tanh(x[idx] * b);
        t[idx] = v;
        out[idx] = v * a;
    }
}
""",
    "scaled_tanh_bwd": r"""
// dx = (t^2 - 1) * (-a b) * grad
extern "C" __global__ void scaled_tanh_bwd(const T* __restrict__ grad, const T* __restrict__ t, T* __restrict__ dx,
        long long total, long long ab_bits) {
    const T nab = -(T)AS_DOUBLE(ab_bits);
    GRID_STRIDE_LOOP(idx, total) {
        const T v = t[idx];
        dx[idx] = (v * v - (T)1) * nab * grad[idx];
    }
}
""",
    "im2col_batch": r"""
// cols[n, c, i, j, oh, ow] = x[n, c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]   (0 outside the image)
extern "C" __global__ void im2col_batch(const T* __restrict__ x, T* __restrict__ cols,
        long long N, long long C, long long H, long long W, long long kh, long long kw,
        long long sh, long long sw, long long pt, long long pl, long long dh, long long dw,
        long long Ho, long long Wo, long long total) {
    GRID_STRIDE_LOOP(idx, total) {
        long long r = idx;
        const long long ow = r % Wo; r /= Wo;
        const long long oh = r % Ho; r /= Ho;
        const long long j = r % kw;  r /= kw;
        const long long i = r % kh;  r /= kh;
        const long long c = r % C;
        const long long n = r / C;
        const long long h = oh * sh - pt + i * dh;
        const long long w = ow * sw - pl + j * dw;
        T v = 0;
        if (h >= 0 && h < H && w >= 0 && w < W) v = x[((n * C + c) * H + h) * W + w];
        cols[idx] = v;
    }
}
""",
    "col2im_batch": r"""
// dx[n, c, h, w] = sum of cols[n, c, i, j, oh, ow] over the (i, j, oh, ow) whose window reads (h, w): a gather.
extern "C" __global__ void col2im_batch(const T* __restrict__ cols, T* __restrict__ dx,
        long long N, long long C, long long H, long long W, long long kh, long long kw,
        long long sh, long long sw, long long pt, long long pl, long long dh, long long dw,
        long long Ho, long long Wo, long long total) {
    GRID_STRIDE_LOOP(idx, total) {
        long long r = idx;
        const long long w = r % W; r /= W;
        const long long h = r % H; r /= H;
        const long long c = r % C;
        const long long n = r / C;
        T acc = 0;
        for (long long i = 0; i < kh; ++i) {
            const long long hs = h + pt - i * dh;
            if (hs < 0 || hs % sh != 0) continue;
            const long long oh = hs / sh;
            if (oh >= Ho) continue;
            for (long long j = 0; j < kw; ++j) {
                const long long ws = w + pl - j * dw;
                if (ws < 0 || ws % sw != 0) continue;
                const long long ow = ws / sw;
                if (ow >= Wo) continue;
                acc += cols[((((n * C + c) * kh + i) * kw + j) * Ho + oh) * Wo + ow];
            }
        }
        dx[idx] = acc;
    }
}
""",
}
cuda._SOURCES.update(_SOURCES)


def sgd_step_multi(table, count, total, dtype, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """One fused SGD step over ``count`` parameters (``total`` values of ``dtype``) found through ``table``
    (a device int64 array of offsets and pointers, see the kernel): one launch."""
    flags = (1 if maximize else 0) | (2 if nesterov else 0) | (8 if momentum else 0)
    if total:
        xp = get_array_module(table)
        _launch(_kernel(xp, "sgd_step_multi", dtype), total,
                (table, *_i64(count, total), _double_bits(lr), _double_bits(momentum), _double_bits(dampening),
                 _double_bits(weight_decay), np.int64(flags)))


def bn_eval(x, running_mean, running_var, weight, bias, eps, relu=False):
    """Eval-mode batch-norm of contiguous x (N, C, *) with the running statistics (x's dtype), and a ReLU
    after it with ``relu``: one launch."""
    xp = get_array_module(x)
    N, C = x.shape[:2]
    out = xp.empty_like(x)
    if x.size:
        _launch(_kernel(xp, "bn_eval", x.dtype), x.size,
                (x, running_mean, running_var, running_mean if weight is None else weight,
                 running_mean if bias is None else bias, out, *_i64(C, x.size // (N * C), x.size),
                 _double_bits(eps), *_i64(weight is not None, bias is not None, relu)))
    return out


def _elementwise(name, inputs, outputs, *scalars):
    xp = get_array_module(inputs[0])
    total = inputs[0].size
    if total:
        _launch(_kernel(xp, name, inputs[0].dtype), total, (*inputs, *outputs, np.int64(total), *scalars))


def relu_forward(x):
    """out = max(x, 0) of contiguous x: one launch."""
    out = get_array_module(x).empty_like(x)
    _elementwise("relu_fwd", (x,), (out,))
    return out


def relu_backward(grad, out):
    """dx = grad where ReLU's output ``out`` is positive, else 0: one launch."""
    dx = get_array_module(grad).empty_like(out)
    _elementwise("relu_bwd", (grad, out), (dx,))
    return dx


def scaled_tanh_forward(x, a, b):
    """(out, t): t = tanh(b x), out = a t: one launch."""
    xp = get_array_module(x)
    t, out = xp.empty_like(x), xp.empty_like(x)
    _elementwise("scaled_tanh_fwd", (x,), (t, out), _double_bits(a), _double_bits(b))
    return out, t


def scaled_tanh_backward(grad, t, ab):
    """dx = (t^2 - 1) * (-ab) * grad: one launch."""
    dx = get_array_module(grad).empty_like(t)
    _elementwise("scaled_tanh_bwd", (grad, t), (dx,), _double_bits(ab))
    return dx


def im2col_batch(x, out, kernel_size, stride, pad_before, dilation):
    """Fill ``out`` (N, C, kH, kW, Ho, Wo) with the columns of x (N, C, H, W), image by image."""
    return cuda._gather_into("im2col_batch", x, out, x.shape, out.shape[-2:], kernel_size, stride, pad_before,
                             dilation)


def col2im_batch(cols, out, kernel_size, stride, pad_before, dilation):
    """Fill ``out`` (N, C, H, W) with the col2im gather of cols (N, C, kH, kW, Ho, Wo)."""
    return cuda._gather_into("col2im_batch", cols, out, out.shape, cols.shape[-2:], kernel_size, stride,
                             pad_before, dilation)
