"""Textbook solution of batch_norm (minicnn.kernels.textbook.batch_norm_forward and backward)."""
import numpy as np


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    axes, shape = (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        m = x.size // x.shape[1]
        running_mean[...] = (1 - momentum) * running_mean + momentum * mean
        running_var[...] = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    else:
        mean, var = running_mean, running_var
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype).reshape(shape)
    xhat = (x - mean.reshape(shape)) * inv_std
    out = xhat * gamma.reshape(shape) + beta.reshape(shape)
    return out.astype(x.dtype, copy=False), (xhat, inv_std, gamma, training)


def batch_norm_backward(grad, cache):
    xhat, inv_std, gamma, training = cache
    axes, shape = (0,) + tuple(range(2, grad.ndim)), (1, -1) + (1,) * (grad.ndim - 2)
    sum_g, sum_gx = grad.sum(axis=axes), (grad * xhat).sum(axis=axes)
    scale = inv_std * gamma.reshape(shape)
    m = grad.size // grad.shape[1]
    if training:
        dx = scale * (grad - sum_g.reshape(shape) / m - xhat * (sum_gx.reshape(shape) / m))
    else:
        dx = grad * scale
    return dx, sum_gx, sum_g
