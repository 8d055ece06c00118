"""CUDA kernels (CuPy ``RawKernel``) for the loops that NumPy-style array code does badly on a GPU.

* ``im2col``: one thread per column entry; reads the pixel (or 0 in the padding).
* ``col2im``: a *gather*: one thread per input pixel sums every column entry whose window covers
  it.  No atomics, so the result is deterministic (the order of the sum is fixed).
* ``max_pool2d_forward`` / ``max_pool2d_backward``: one thread per output (max and first arg-max,
  stored as the flat h*W + w index in the input plane) / per input pixel (gather of the gradients
  of the windows whose arg-max it is).
* ``batch_norm_apply`` / ``batch_norm_grad_input`` (training statistics): the element-wise launch of
  batch-norm each way, after the per-channel sums of ``fused.batch_norm_stats`` / ``batch_norm_grad_sums``
  (2 launches each way instead of some 25 CuPy operations, whose launch overhead was most of a ResNet's
  batch-norm time).

The kernels are compiled lazily, once per (kernel, dtype), with all index arithmetic in 64-bit
(``long long``) so tensors over 2**31 elements work.  This module never imports CuPy: the wrappers
get the ``cupy`` module from the arrays they are given (``get_array_module``).  Only float32 and
float64 are supported.
"""
from __future__ import annotations

import numpy as np   # host-side scalar types only (kernel arguments), never applied to device arrays

from ...backend import get_array_module

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

_GRID_STRIDE = """
#define GRID_STRIDE_LOOP(idx, total) \\
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < (total); \\
         idx += (long long)blockDim.x * gridDim.x)
"""

_BITS = """
// Floating-point kernel arguments travel as the bits of a double in a long long.
#if defined(__CUDACC__)
#define AS_DOUBLE(bits) __longlong_as_double(bits)
#else
#include <cstring>
static inline double AS_DOUBLE(long long bits) { double d; std::memcpy(&d, &bits, sizeof d); return d; }
#endif
"""

_SOURCES = {
    "im2col_kernel": r"""
// cols[c, i, j, n, oh, ow] = x[n, c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]   (0 outside the image)
extern "C" __global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ cols,
        long long N, long long C, long long H, long long W, long long kh, long long kw,
        long long sh, long long sw, long long pt, long long pl, long long dh, long long dw,
        long long Ho, long long Wo, long long total) {
    GRID_STRIDE_LOOP(idx, total) {
        long long r = idx;
        const long long ow = r % Wo; r /= Wo;
        const long long oh = r % Ho; r /= Ho;
        const long long n = r % N;   r /= N;
        const long long j = r % kw;  r /= kw;
        const long long i = r % kh;
        const long long c = r / kh;
        const long long h = oh * sh - pt + i * dh;
        const long long w = ow * sw - pl + j * dw;
        T v = 0;
        if (h >= 0 && h < H && w >= 0 && w < W) v = x[((n * C + c) * H + h) * W + w];
        cols[idx] = v;
    }
}
""",
    "col2im_kernel": r"""
// dx[n, c, h, w] = sum of cols[c, i, j, n, oh, ow] over the (i, j, oh, ow) with
// oh*sh - pt + i*dh == h and ow*sw - pl + j*dw == w.  One thread per pixel: a gather, no atomics.
extern "C" __global__ void col2im_kernel(const T* __restrict__ cols, T* __restrict__ dx,
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
            const long long hs = h + pt - i * dh;          // = oh * sh
            if (hs < 0 || hs % sh != 0) continue;
            const long long oh = hs / sh;
            if (oh >= Ho) continue;
            for (long long j = 0; j < kw; ++j) {
                const long long ws = w + pl - j * dw;      // = ow * sw
                if (ws < 0 || ws % sw != 0) continue;
                const long long ow = ws / sw;
                if (ow >= Wo) continue;
                acc += cols[((((c * kh + i) * kw + j) * N + n) * Ho + oh) * Wo + ow];
            }
        }
        dx[idx] = acc;
    }
}
""",
    "max_pool_fwd_kernel": r"""
// out[n, c, oh, ow] = max of the window (padding ignored); argmax = h*W + w of the FIRST maximum
// in row-major window order.  A NaN anywhere in the window makes the output NaN.
extern "C" __global__ void max_pool_fwd_kernel(const T* __restrict__ x, T* __restrict__ out,
        long long* __restrict__ argmax,
        long long N, long long C, long long H, long long W, long long kh, long long kw,
        long long sh, long long sw, long long ph, long long pw, long long dh, long long dw,
        long long Ho, long long Wo, long long total) {
    GRID_STRIDE_LOOP(idx, total) {
        const long long ow = idx % Wo;
        const long long oh = (idx / Wo) % Ho;
        const long long nc = idx / (Wo * Ho);
        const T* plane = x + nc * H * W;
        T best = 0, nan_seen = 0;
        long long arg = -1, first = -1;
        bool nan = false;
        for (long long i = 0; i < kh; ++i) {
            const long long h = oh * sh - ph + i * dh;
            if (h < 0 || h >= H) continue;
            for (long long j = 0; j < kw; ++j) {
                const long long w = ow * sw - pw + j * dw;
                if (w < 0 || w >= W) continue;
                const T v = plane[h * W + w];
                if (first < 0) first = h * W + w;
                if (v != v) { nan = true; nan_seen = v; }        // NaN: the output is NaN, as in PyTorch
                else if (arg < 0 || v > best) { best = v; arg = h * W + w; }
            }
        }
        if (arg < 0) arg = first;                            // only NaNs in the window
        out[idx] = nan ? nan_seen : best;
        argmax[idx] = arg;
    }
}
""",
    "max_pool_bwd_kernel": r"""
// dx[n, c, h, w] = sum of grad[n, c, oh, ow] over the windows covering (h, w) whose argmax is (h, w).
extern "C" __global__ void max_pool_bwd_kernel(const T* __restrict__ grad, const long long* __restrict__ argmax,
        T* __restrict__ dx,
        long long N, long long C, long long H, long long W, long long kh, long long kw,
        long long sh, long long sw, long long ph, long long pw, long long dh, long long dw,
        long long Ho, long long Wo, long long total) {
    GRID_STRIDE_LOOP(idx, total) {
        const long long w = idx % W;
        const long long h = (idx / W) % H;
        const long long nc = idx / (W * H);
        const long long me = h * W + w;
        const T* g = grad + nc * Ho * Wo;
        const long long* a = argmax + nc * Ho * Wo;
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
                if (ow >= Wo) continue;
                if (a[oh * Wo + ow] == me) acc += g[oh * Wo + ow];
            }
        }
        dx[idx] = acc;
    }
}
""",
    "bn_apply": r"""
// xhat = (x - mean[c]) * inv_std[c];  out = xhat * weight[c] + bias[c]  (weight, bias optional).
extern "C" __global__ void bn_apply(const T* __restrict__ x, const T* __restrict__ mean,
        const T* __restrict__ inv_std, const T* __restrict__ weight, const T* __restrict__ bias,
        T* __restrict__ xhat, T* __restrict__ out, long long C, long long S, long long total,
        long long has_weight, long long has_bias) {
    GRID_STRIDE_LOOP(idx, total) {
        const long long c = (idx / S) % C;
        const T h = (x[idx] - mean[c]) * inv_std[c];
        xhat[idx] = h;
        T o = has_weight ? h * weight[c] : h;
        if (has_bias) o += bias[c];
        out[idx] = o;
    }
}
""",
    "bn_grad_input": r"""
// dx = inv_std[c] * weight[c] * (g - sum_g[c]/M - xhat * sum_gx[c]/M)   (weight optional).
extern "C" __global__ void bn_grad_input(const T* __restrict__ g, const T* __restrict__ xhat,
        const T* __restrict__ sum_g, const T* __restrict__ sum_gx, const T* __restrict__ inv_std,
        const T* __restrict__ weight, T* __restrict__ dx, long long C, long long S, long long M,
        long long total, long long has_weight) {
    GRID_STRIDE_LOOP(idx, total) {
        const long long c = (idx / S) % C;
        const T scale = has_weight ? inv_std[c] * weight[c] : inv_std[c];
        dx[idx] = scale * (g[idx] - sum_g[c] / (T)M - xhat[idx] * (sum_gx[c] / (T)M));
    }
}
""",
    "sgd_step": r"""
// One SGD step, as torch.optim.SGD: d = (maximize ? -g : g) + weight_decay * p; with momentum,
// buf = d on the first step (flag 4) else momentum * buf + (1 - dampening) * d, and d = buf, or
// d + momentum * buf with Nesterov (flag 2); then p -= lr * d.  Flags: 1 maximize, 2 nesterov,
// 4 first step, 8 momentum != 0.
extern "C" __global__ void sgd_step(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf,
        long long n, long long lr_bits, long long momentum_bits, long long dampening_bits,
        long long weight_decay_bits, long long flags) {
    const T lr = (T)AS_DOUBLE(lr_bits), momentum = (T)AS_DOUBLE(momentum_bits);
    const T dampening = (T)AS_DOUBLE(dampening_bits), weight_decay = (T)AS_DOUBLE(weight_decay_bits);
    GRID_STRIDE_LOOP(i, n) {
        T d = (flags & 1) ? -g[i] : g[i];
        if (weight_decay != (T)0) d += weight_decay * p[i];
        if (flags & 8) {
            const T b = (flags & 4) ? d : momentum * buf[i] + ((T)1 - dampening) * d;
            buf[i] = b;
            d = (flags & 2) ? d + momentum * b : b;
        }
        p[i] -= lr * d;
    }
}
""",
}

_compiled: dict = {}
THREADS_PER_BLOCK = 256
MAX_BLOCKS = 1 << 20     # the grid-stride loop covers any size with at most this many blocks


def _kernel(xp, name: str, dtype):
    """The compiled kernel ``name`` for ``dtype`` (compiled on first use, then cached)."""
    dtype = np.dtype(dtype)
    if dtype not in _CTYPES:
        raise TypeError(f"minicnn.kernels.cuda: {name} supports float32 and float64 arrays, got {dtype}")
    key = (name, dtype.str)
    kernel = _compiled.get(key)
    if kernel is None:
        code = f"typedef {_CTYPES[dtype]} T;\n" + _GRID_STRIDE + _BITS + _SOURCES[name]
        kernel = _compiled[key] = xp.RawKernel(code, name)
    return kernel


def _launch(kernel, total: int, args):
    blocks = max(1, min((total + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK, MAX_BLOCKS))
    kernel((blocks,), (THREADS_PER_BLOCK,), args)


def _i64(*values):
    return tuple(np.int64(v) for v in values)


def _gather_into(name, src, out, image_shape, out_size, kernel_size, stride, pad_before, dilation):
    """Run the gather kernel ``name`` (one thread per element of ``out``) from ``src`` into ``out``,
    through a contiguous scratch array when ``out`` is not contiguous.  Returns ``out``."""
    xp = get_array_module(src)
    src = xp.ascontiguousarray(src)
    (kh, kw), (sh, sw), (pt, pl), (dh, dw) = kernel_size, stride, pad_before, dilation
    target = out if out.flags.c_contiguous else xp.empty(out.shape, dtype=out.dtype)
    if target.size:
        _launch(_kernel(xp, name, src.dtype), target.size,
                (src, target, *_i64(*image_shape, kh, kw, sh, sw, pt, pl, dh, dw, *out_size, target.size)))
    if target is not out:
        out[...] = target
    return out


def im2col(x, out, kernel_size, stride, pad_before, dilation):
    """Fill ``out`` (C, kH, kW, N, Ho, Wo) with the columns of x (N, C, H, W).
    ``pad_before`` = (top, left); negative values crop.  Returns ``out``."""
    return _gather_into("im2col_kernel", x, out, x.shape, out.shape[-2:], kernel_size, stride, pad_before, dilation)


def col2im(cols, out, kernel_size, stride, pad_before, dilation):
    """Fill ``out`` (N, C, H, W) with the col2im gather of cols (C, kH, kW, N, Ho, Wo).  Returns ``out``."""
    return _gather_into("col2im_kernel", cols, out, out.shape, cols.shape[-2:], kernel_size, stride, pad_before,
                        dilation)


def _pool_args(g):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = g.kernel, g.stride, g.padding, g.dilation
    return g.N, g.C, g.H, g.W, kh, kw, sh, sw, ph, pw, dh, dw, g.Ho, g.Wo


def max_pool2d_forward(x, g):
    """x (N, C, H, W) and a ``PoolGeometry``  ->  (out (N, C, Ho, Wo), argmax int64 flat h*W + w)."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    out = xp.empty((g.N, g.C, g.Ho, g.Wo), dtype=x.dtype)
    argmax = xp.empty(out.shape, dtype=xp.int64)
    if out.size:
        _launch(_kernel(xp, "max_pool_fwd_kernel", x.dtype), out.size,
                (x, out, argmax, *_i64(*_pool_args(g), out.size)))
    return out, argmax


def max_pool2d_backward(grad, argmax, g):
    """grad (N, C, Ho, Wo), argmax from ``max_pool2d_forward``  ->  dx (N, C, H, W)."""
    xp = get_array_module(grad)
    grad = xp.ascontiguousarray(grad)
    dx = xp.empty((g.N, g.C, g.H, g.W), dtype=grad.dtype)
    if dx.size:
        _launch(_kernel(xp, "max_pool_bwd_kernel", grad.dtype), dx.size,
                (grad, argmax, dx, *_i64(*_pool_args(g), dx.size)))
    return dx


# --------------------------------------------------------------------------- batch normalisation

def _double_bits(value: float):
    return np.array(float(value), dtype=np.float64).view(np.int64)[()]


def batch_norm_apply(x, mean, inv_std, weight, bias):
    """-> (xhat, out): xhat = (x - mean) * inv_std, out = xhat * weight + bias, per channel (axis 1)."""
    xp = get_array_module(x)
    N, C = x.shape[:2]
    xhat, out = xp.empty_like(x), xp.empty_like(x)
    if x.size:
        _launch(_kernel(xp, "bn_apply", x.dtype), x.size,
                (x, mean, inv_std, mean if weight is None else weight, mean if bias is None else bias, xhat, out,
                 *_i64(C, x.size // (N * C), x.size, weight is not None, bias is not None)))
    return xhat, out


def batch_norm_grad_input(grad, xhat, sum_g, sum_gx, inv_std, weight):
    """-> dx = inv_std * weight * (grad - sum_g / M - xhat * sum_gx / M), per channel."""
    xp = get_array_module(grad)
    N, C = xhat.shape[:2]
    dx = xp.empty_like(xhat)
    if dx.size:
        _launch(_kernel(xp, "bn_grad_input", grad.dtype), dx.size,
                (grad, xhat, sum_g, sum_gx, inv_std, inv_std if weight is None else weight, dx,
                 *_i64(C, xhat.size // (N * C), xhat.size // C, dx.size, weight is not None)))
    return dx


# --------------------------------------------------------------------------- optimizers

def sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    """One fused SGD step in place on contiguous arrays (``buf`` is ignored without momentum)."""
    flags = (1 if maximize else 0) | (2 if nesterov else 0) | (4 if first else 0) | (8 if momentum else 0)
    if p.size:
        xp = get_array_module(p)
        _launch(_kernel(xp, "sgd_step", p.dtype), p.size,
                (p, g, p if buf is None else buf, np.int64(p.size), _double_bits(lr), _double_bits(momentum),
                 _double_bits(dampening), _double_bits(weight_decay), np.int64(flags)))
