"""More CUDA kernels (CuPy ``RawKernel``s, compiled by ``cuda``'s helpers): each does in one launch what
took several array operations, because on a GPU a small network's step is bound by the host's rate of
issuing launches, not by arithmetic.

* ``sgd_step_multi``: one SGD step for many parameters at once (PyTorch's ``foreach``/``fused``), each
  parameter, gradient and momentum buffer found through a device table of pointers (``optim.foreach``).
* ``bn_stats_block`` / ``bn_grad_sums_block``: training batch-norm's per-channel sums in one launch each
  way (a block per channel, a tree in shared memory; were two launches: partial sums, then their sums).
* ``bn_eval``: eval-mode batch-norm with the running statistics, scale and shift computed in the kernel
  (was astype, sqrt, divide, add and the apply: 5 launches).
* ``relu_fwd`` / ``relu_bwd``: ReLU from its output (no mask array), 1 launch each way.
* ``scaled_tanh_fwd`` / ``scaled_tanh_bwd``: LeNet's a * tanh(b x), 1 launch each way (were 3 and 4).
* ``subsample_fwd`` / ``subsample_bwd``: LeNet-5's trainable subsampling, one launch each way (were 7 and 9).
* (softmax cross-entropy's two kernels are in ``fused_loss``.)
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
// out = (x - rm[c]) * inv * weight[c] + bias[c] (weight, bias optional).
extern "C" __global__ void bn_eval(const T* __restrict__ x, const T* __restrict__ rm, const T* __restrict__ rv,
        const T* __restrict__ weight, const T* __restrict__ bias, T* __restrict__ out, long long C, long long S,
        long long total, long long eps_bits, long long has_weight, long long has_bias) {
    const T eps = (T)AS_DOUBLE(eps_bits);
    GRID_STRIDE_LOOP(idx, total) {
        const long long c = (idx / S) % C;
        const T inv = (T)1 / (T)sqrt(rv[c] + eps);
        T o = (x[idx] - rm[c]) * inv;
        if (has_weight) o *= weight[c];
        if (has_bias) o += bias[c];
        out[idx] = o;
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
    "subsample_fwd": r"""
// LeNet's subsampling: sums[n, c, oh, ow] = sum of the window (zero padding); out = coeff[c] * sums + bias[c].
extern "C" __global__ void subsample_fwd(const T* __restrict__ x, const T* __restrict__ coeff,
        const T* __restrict__ bias, T* __restrict__ sums, T* __restrict__ out,
        long long N, long long C, long long H, long long W, long long kh, long long kw,
        long long sh, long long sw, long long ph, long long pw, long long dh, long long dw,
        long long Ho, long long Wo, long long total, long long has_bias) {
    GRID_STRIDE_LOOP(idx, total) {
        const long long ow = idx % Wo, oh = (idx / Wo) % Ho, nc = idx / (Wo * Ho), c = nc % C;
        const T* plane = x + nc * H * W;
        T s = 0;
        for (long long i = 0; i < kh; ++i) {
            const long long h = oh * sh - ph + i * dh;
            if (h < 0 || h >= H) continue;
            for (long long j = 0; j < kw; ++j) {
                const long long w = ow * sw - pw + j * dw;
                if (w >= 0 && w < W) s += plane[h * W + w];
            }
        }
        sums[idx] = s;
        out[idx] = has_bias ? s * coeff[c] + bias[c] : s * coeff[c];
    }
}
""",
    "subsample_bwd": r"""
// dx[n, c, h, w] = coeff[c] * sum of grad[n, c, oh, ow] over the windows that read (h, w): a gather.
extern "C" __global__ void subsample_bwd(const T* __restrict__ grad, const T* __restrict__ coeff, T* __restrict__ dx,
        long long N, long long C, long long H, long long W, long long kh, long long kw,
        long long sh, long long sw, long long ph, long long pw, long long dh, long long dw,
        long long Ho, long long Wo, long long total) {
    GRID_STRIDE_LOOP(idx, total) {
        const long long w = idx % W, h = (idx / W) % H, nc = idx / (W * H), c = nc % C;
        const T* g = grad + nc * Ho * Wo;
        T acc = 0;
        for (long long i = 0; i < kh; ++i) {
            const long long hs = h + ph - i * dh;
            if (hs < 0 || hs % sh != 0) continue;
            const long long oh = hs / sh;
            if (oh >= Ho) continue;
            for (long long j = 0; j < kw; ++j) {
                const long long ws = w + pw - j * dw;
                if (ws < 0 || ws % sw != 0) continue;
                const long long ow = ws / sw;
                if (ow < Wo) acc += g[oh * Wo + ow] * coeff[c];
            }
        }
        dx[idx] = acc;
    }
}
""",
    "bn_stats_block": r"""
// Training batch-norm statistics, one block per channel c (its M = N*S values x[(n*C + c)*S + s]): each thread
// sums every blockDim-th value shifted by the channel's first value k (a stable one-pass variance), in double,
// then a tree in shared memory; thread 0 writes mean = k + s1/M, inv_std = 1/sqrt(var + eps) (biased var)
// and, with update_running, running = (1 - momentum) * running + momentum * stat (unbiased variance).
extern "C" __global__ void bn_stats_block(const T* __restrict__ x, T* __restrict__ mean, T* __restrict__ inv_std,
        T* __restrict__ running_mean, T* __restrict__ running_var, long long C, long long S, long long M,
        long long eps_bits, long long momentum_bits, long long update_running) {
    __shared__ double sa[BN_BLOCK], sb[BN_BLOCK];
    const double eps = AS_DOUBLE(eps_bits), momentum = AS_DOUBLE(momentum_bits);
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        const double k = (double)x[c * S];
        double a = 0, b = 0;
        for (long long j = threadIdx.x; j < M; j += blockDim.x) {
            const long long n = j / S;
            const double v = (double)x[(n * C + c) * S + (j - n * S)] - k;
            a += v;
            b += v * v;
        }
        block_sum2(sa, sb, a, b);
        if (threadIdx.x == 0) {
            const double d = sa[0] / M;
            double var = sb[0] / M - d * d;
            if (var < 0) var = 0;
            const double m = k + d;
            mean[c] = (T)m;
            inv_std[c] = (T)(1.0 / sqrt(var + eps));
            if (update_running) {
                running_mean[c] = (T)((1.0 - momentum) * (double)running_mean[c] + momentum * m);
                running_var[c] = (T)((1.0 - momentum) * (double)running_var[c] + momentum * var * M / (M - 1));
            }
        }
        __syncthreads();                              // (sa, sb are reused by this block's next channel)
    }
}
""",
    "bn_grad_sums_block": r"""
// As bn_stats_block, for the backward pass: sum_g[c] = sum of g, sum_gx[c] = sum of g * xhat over channel c.
extern "C" __global__ void bn_grad_sums_block(const T* __restrict__ g, const T* __restrict__ xhat,
        T* __restrict__ sum_g, T* __restrict__ sum_gx, long long C, long long S, long long M) {
    __shared__ double sa[BN_BLOCK], sb[BN_BLOCK];
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        double a = 0, b = 0;
        for (long long j = threadIdx.x; j < M; j += blockDim.x) {
            const long long n = j / S;
            const long long at = (n * C + c) * S + (j - n * S);
            a += (double)g[at];
            b += (double)g[at] * (double)xhat[at];
        }
        block_sum2(sa, sb, a, b);
        if (threadIdx.x == 0) {
            sum_g[c] = (T)sa[0];
            sum_gx[c] = (T)sb[0];
        }
        __syncthreads();
    }
}
""",
}
BN_BLOCK = 256        # threads per block of the per-channel reductions (a power of two)
_BLOCK_PRELUDE = f"""
#define BN_BLOCK {BN_BLOCK}
#if !defined(__CUDACC__)      // the CPU stand-in runs one thread per block, one block: no shared state to sync
#define __shared__ static
#define __device__
static inline void __syncthreads() {{}}
#endif
// Each thread's (a, b) into the block's shared sa, sb, then summed by a tree (blockDim.x a power of two):
// the totals end in sa[0], sb[0], for every thread to read.
__device__ inline void block_sum2(double* sa, double* sb, double a, double b) {{
    sa[threadIdx.x] = a;
    sb[threadIdx.x] = b;
    __syncthreads();
    for (long long h = blockDim.x / 2; h > 0; h /= 2) {{
        if ((long long)threadIdx.x < h) {{
            sa[threadIdx.x] += sa[threadIdx.x + h];
            sb[threadIdx.x] += sb[threadIdx.x + h];
        }}
        __syncthreads();
    }}
}}
"""
for _name in ("bn_stats_block", "bn_grad_sums_block"):
    _SOURCES[_name] = _BLOCK_PRELUDE + _SOURCES[_name]
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


def bn_eval(x, running_mean, running_var, weight, bias, eps):
    """Eval-mode batch-norm of contiguous x (N, C, *) with the running statistics (x's dtype): one launch."""
    xp = get_array_module(x)
    N, C = x.shape[:2]
    out = xp.empty_like(x)
    if x.size:
        _launch(_kernel(xp, "bn_eval", x.dtype), x.size,
                (x, running_mean, running_var, running_mean if weight is None else weight,
                 running_mean if bias is None else bias, out, *_i64(C, x.size // (N * C), x.size),
                 _double_bits(eps), *_i64(weight is not None, bias is not None)))
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


def subsample_forward(x, coeff, bias, g):
    """LeNet's subsampling of contiguous x with a ``PoolGeometry``  ->  (out, window sums): one launch."""
    xp = get_array_module(x)
    sums, out = xp.empty((g.N, g.C, g.Ho, g.Wo), dtype=x.dtype), xp.empty((g.N, g.C, g.Ho, g.Wo), dtype=x.dtype)
    if out.size:
        _launch(_kernel(xp, "subsample_fwd", x.dtype), out.size,
                (x, coeff, coeff if bias is None else bias, sums, out, *_i64(*cuda._pool_args(g), out.size,
                                                                              bias is not None)))
    return out, sums


def subsample_backward(grad, coeff, g):
    """dx (N, C, H, W) of the subsampling: one launch."""
    xp = get_array_module(grad)
    dx = xp.empty((g.N, g.C, g.H, g.W), dtype=grad.dtype)
    if dx.size:
        _launch(_kernel(xp, "subsample_bwd", grad.dtype), dx.size,
                (xp.ascontiguousarray(grad), coeff, dx, *_i64(*cuda._pool_args(g), dx.size)))
    return dx


def _channel_blocks(C):
    return (max(1, min(C, 1 << 16)),), (BN_BLOCK,)


def batch_norm_stats(x, running_mean, running_var, momentum, eps):
    """x (N, C, *) contiguous  ->  (mean, inv_std), each (C,), from the batch, in one launch (a block per
    channel); updates the running statistics in place when they are given (x's dtype)."""
    xp = get_array_module(x)
    N, C = x.shape[:2]
    S, M = x.size // (N * C), x.size // C
    mean, inv_std = xp.empty(C, dtype=x.dtype), xp.empty(C, dtype=x.dtype)
    update = running_mean is not None
    rm, rv = (running_mean, running_var) if update else (mean, inv_std)   # (unused placeholders)
    _kernel(xp, "bn_stats_block", x.dtype)(*_channel_blocks(C), (x, mean, inv_std, rm, rv, *_i64(C, S, M),
                                                                _double_bits(eps), _double_bits(momentum),
                                                                np.int64(update)))
    return mean, inv_std


def batch_norm_grad_sums(grad, xhat):
    """-> (sum_g, sum_gx), each (C,): per-channel sums of grad and of grad * xhat, in one launch."""
    xp = get_array_module(grad)
    N, C = xhat.shape[:2]
    S, M = xhat.size // (N * C), xhat.size // C
    sum_g, sum_gx = xp.empty(C, dtype=grad.dtype), xp.empty(C, dtype=grad.dtype)
    _kernel(xp, "bn_grad_sums_block", grad.dtype)(*_channel_blocks(C), (grad, xhat, sum_g, sum_gx, *_i64(C, S, M)))
    return sum_g, sum_gx
