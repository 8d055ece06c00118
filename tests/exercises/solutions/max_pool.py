"""Textbook solution of max_pool (minicnn.kernels.textbook's window stack, max_pool2d_forward and backward)."""
import numpy as np


def _slices(kernel_size, stride, Ho, Wo):
    (kh, kw), (sh, sw) = kernel_size, stride
    return [(slice(i, i + sh * (Ho - 1) + 1, sh), slice(j, j + sw * (Wo - 1) + 1, sw))
            for i in range(kh) for j in range(kw)]


def max_pool_forward(x, kernel_size, stride):
    N, C, H, W = x.shape
    Ho, Wo = (H - kernel_size[0]) // stride[0] + 1, (W - kernel_size[1]) // stride[1] + 1
    windows = np.stack([x[:, :, r, c] for r, c in _slices(kernel_size, stride, Ho, Wo)])
    return windows.max(axis=0), (windows.argmax(axis=0), x.shape, kernel_size, stride)


def max_pool_backward(grad, cache):
    argmax, x_shape, kernel_size, stride = cache
    dx = np.zeros(x_shape, dtype=grad.dtype)
    for k, (r, c) in enumerate(_slices(kernel_size, stride, *grad.shape[2:])):
        dx[:, :, r, c] += grad * (argmax == k)
    return dx
