"""Textbook solution of avg_pool_backward (minicnn.kernels.textbook.avg_pool2d_backward)."""
import numpy as np


def avg_pool_backward(grad, x_shape, kernel_size, stride):
    (kh, kw), (sh, sw) = kernel_size, stride
    Ho, Wo = grad.shape[2:]
    share = grad / (kh * kw)
    dx = np.zeros(x_shape, dtype=grad.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += share
    return dx
