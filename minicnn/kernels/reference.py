"""Slow, obvious loop versions of the kernels, written straight from the definitions.

They exist to be read and to test the fast kernels against; they take NumPy arrays, compute in
float64 and return float64.  Padding, strides, dilation, groups, ceil_mode and the divisor rules
are spelled out index by index; nothing here is clever.
"""
from __future__ import annotations

import math

import numpy as np


def conv2d(x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """out[n, o, oh, ow] = bias[o] + sum over the group's c and (i, j) of weight[o, c, i, j] * x[n, g*Cg + c, h, w]
    with h = oh*sh - top + i*dh, w = ow*sw - left + j*dw (terms outside the image are zero)."""
    x, weight = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    N, C, H, W = x.shape
    O, Cg, kh, kw = weight.shape
    (sh, sw), (dh, dw), ((pt, pb), (pl, pr)) = stride, dilation, padding
    Ho = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    Og = O // groups
    out = np.zeros((N, O, Ho, Wo))
    for n in range(N):
        for o in range(O):
            first_channel = (o // Og) * Cg
            for oh in range(Ho):
                for ow in range(Wo):
                    total = 0.0 if bias is None else float(bias[o])
                    for c in range(Cg):
                        for i in range(kh):
                            for j in range(kw):
                                h, w = oh * sh - pt + i * dh, ow * sw - pl + j * dw
                                if 0 <= h < H and 0 <= w < W:
                                    total += weight[o, c, i, j] * x[n, first_channel + c, h, w]
                    out[n, o, oh, ow] = total
    return out


def conv2d_backward(grad, x, weight, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """(dx, dweight, dbias) by the chain rule, one output element at a time: each term
    weight[o, c, i, j] * x[n, c', h, w] of the forward sum sends grad * weight to dx and grad * x to dweight."""
    grad, x, weight = (np.asarray(a, np.float64) for a in (grad, x, weight))
    N, C, H, W = x.shape
    O, Cg, kh, kw = weight.shape
    (sh, sw), (dh, dw), ((pt, _), (pl, _)) = stride, dilation, padding
    Og = O // groups
    dx, dweight = np.zeros_like(x), np.zeros_like(weight)
    for n in range(N):
        for o in range(O):
            first_channel = (o // Og) * Cg
            for oh in range(grad.shape[2]):
                for ow in range(grad.shape[3]):
                    g = grad[n, o, oh, ow]
                    for c in range(Cg):
                        for i in range(kh):
                            for j in range(kw):
                                h, w = oh * sh - pt + i * dh, ow * sw - pl + j * dw
                                if 0 <= h < H and 0 <= w < W:
                                    dx[n, first_channel + c, h, w] += g * weight[o, c, i, j]
                                    dweight[o, c, i, j] += g * x[n, first_channel + c, h, w]
    return dx, dweight, grad.sum(axis=(0, 2, 3))


def _pool_size(size, k, s, p, d, ceil_mode):
    """PyTorch's rule, written out: count the windows; with ceil_mode a partial last window counts
    unless it would start in the right padding."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool2d(x, kernel_size, stride=None, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
    """(out, argmax): the window maximum and the (h, w) of its FIRST occurrence (row-major order)."""
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    (kh, kw), (ph, pw), (dh, dw) = kernel_size, padding, dilation
    sh, sw = stride if stride is not None else kernel_size
    Ho, Wo = _pool_size(H, kh, sh, ph, dh, ceil_mode), _pool_size(W, kw, sw, pw, dw, ceil_mode)
    out = np.zeros((N, C, Ho, Wo))
    argmax = np.zeros((N, C, Ho, Wo, 2), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    best, where = -math.inf, (-1, -1)
                    for i in range(kh):
                        for j in range(kw):
                            h, w = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                            if 0 <= h < H and 0 <= w < W and (where == (-1, -1) or x[n, c, h, w] > best):
                                best, where = x[n, c, h, w], (h, w)
                    out[n, c, oh, ow] = best
                    argmax[n, c, oh, ow] = where
    return out, argmax


def max_pool2d_backward(grad, x_shape, argmax):
    """Each output's gradient added to the input position of its arg-max."""
    dx = np.zeros(x_shape)
    N, C, Ho, Wo = grad.shape
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    h, w = argmax[n, c, oh, ow]
                    dx[n, c, h, w] += grad[n, c, oh, ow]
    return dx


def _avg_windows(H, W, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Yield (oh, ow, [(h, w) inside the image], divisor) for every average-pooling window, following
    PyTorch's C++: the window is clipped to the padded input for ``count_include_pad``, then to the input."""
    (kh, kw), (ph, pw) = kernel_size, padding
    sh, sw = stride if stride is not None else kernel_size
    Ho, Wo = _pool_size(H, kh, sh, ph, 1, ceil_mode), _pool_size(W, kw, sw, pw, 1, ceil_mode)
    for oh in range(Ho):
        for ow in range(Wo):
            hstart, wstart = oh * sh - ph, ow * sw - pw
            hend, wend = min(hstart + kh, H + ph), min(wstart + kw, W + pw)
            pool_size = (hend - hstart) * (wend - wstart)
            hstart, wstart, hend, wend = max(hstart, 0), max(wstart, 0), min(hend, H), min(wend, W)
            cells = [(h, w) for h in range(hstart, hend) for w in range(wstart, wend)]
            if divisor_override is not None:
                divisor = divisor_override
            else:
                divisor = pool_size if count_include_pad else len(cells)
            yield oh, ow, cells, divisor


def avg_pool2d(x, kernel_size, stride=None, padding=(0, 0), ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    windows = list(_avg_windows(H, W, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override))
    out = np.zeros((N, C, windows[-1][0] + 1, windows[-1][1] + 1))
    for oh, ow, cells, divisor in windows:
        for h, w in cells:
            out[:, :, oh, ow] += x[:, :, h, w]
        out[:, :, oh, ow] /= divisor
    return out


def avg_pool2d_backward(grad, x_shape, kernel_size, stride=None, padding=(0, 0), ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    dx = np.zeros(x_shape)
    for oh, ow, cells, divisor in _avg_windows(x_shape[2], x_shape[3], kernel_size, stride, padding, ceil_mode,
                                               count_include_pad, divisor_override):
        for h, w in cells:
            dx[:, :, h, w] += grad[:, :, oh, ow] / divisor
    return dx


def adaptive_avg_pool2d(x, output_size):
    """Bin i covers [floor(i*H/Ho), ceil((i+1)*H/Ho)); same for columns; out = mean over the bin."""
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    Ho, Wo = output_size
    out = np.zeros((N, C, Ho, Wo))
    for oh in range(Ho):
        h0, h1 = (oh * H) // Ho, -(-((oh + 1) * H) // Ho)
        for ow in range(Wo):
            w0, w1 = (ow * W) // Wo, -(-((ow + 1) * W) // Wo)
            out[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


def subsample(x, coeff, bias, kernel=(2, 2), stride=(2, 2)):
    """LeNet-5: out[n, c, oh, ow] = coeff[c] * sum of the window + bias[c]."""
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.zeros((N, C, Ho, Wo))
    for c in range(C):
        for oh in range(Ho):
            for ow in range(Wo):
                window = x[:, c, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw]
                out[:, c, oh, ow] = coeff[c] * window.sum(axis=(1, 2)) + (0.0 if bias is None else bias[c])
    return out


def batch_norm(x, mean, var, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * weight + bias, per channel (axis 1), given the statistics."""
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        y = (x[:, c] - mean[c]) / math.sqrt(var[c] + eps)
        out[:, c] = y * (1.0 if weight is None else weight[c]) + (0.0 if bias is None else bias[c])
    return out


def batch_stats(x):
    """Per-channel mean and biased variance over every axis but 1, one channel at a time."""
    x = np.asarray(x, np.float64)
    means, variances = [], []
    for c in range(x.shape[1]):
        values = x[:, c].ravel()
        m = sum(values) / len(values)
        means.append(m)
        variances.append(sum((v - m) ** 2 for v in values) / len(values))
    return np.array(means), np.array(variances)


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """out[:, c] = x[:, c] / (k + alpha/size * sum_{c' = c - size//2}^{c + (size-1)//2} x[:, c']^2) ** beta."""
    x = np.asarray(x, np.float64)
    C = x.shape[1]
    out = np.empty_like(x)
    for c in range(C):
        total = np.zeros_like(x[:, c])
        for c2 in range(c - size // 2, c + (size - 1) // 2 + 1):
            if 0 <= c2 < C:
                total += x[:, c2] ** 2
        out[:, c] = x[:, c] / (k + alpha / size * total) ** beta
    return out


def linear(x, weight, bias=None):
    """out[..., o] = sum_i x[..., i] * weight[o, i] + bias[o]."""
    x, weight = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    flat = x.reshape(-1, x.shape[-1])
    out = np.zeros((flat.shape[0], weight.shape[0]))
    for r in range(flat.shape[0]):
        for o in range(weight.shape[0]):
            out[r, o] = sum(flat[r, i] * weight[o, i] for i in range(weight.shape[1]))
            if bias is not None:
                out[r, o] += bias[o]
    return out.reshape(*x.shape[:-1], weight.shape[0])


def numerical_gradient(f, x, grad, eps=1e-6):
    """d/dx of sum(f(x) * grad) by central differences, one element of x at a time (float64)."""
    x = np.array(x, dtype=np.float64)
    dx = np.zeros_like(x)
    flat, dflat = x.reshape(-1), dx.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + eps
        plus = float(np.sum(f(x) * grad))
        flat[k] = saved - eps
        minus = float(np.sum(f(x) * grad))
        flat[k] = saved
        dflat[k] = (plus - minus) / (2 * eps)
    return dx
