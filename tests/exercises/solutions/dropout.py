"""Textbook solution of dropout (minicnn.kernels.textbook.dropout_forward and dropout_backward)."""
import numpy as np


def dropout_forward(x, p, training, rng):
    if not training or p == 0:
        return x, None
    keep = rng.random(x.shape) >= p
    mask = np.multiply(keep, 1.0 / (1.0 - p), dtype=x.dtype)
    return x * mask, mask


def dropout_backward(grad, mask):
    return grad if mask is None else grad * mask
