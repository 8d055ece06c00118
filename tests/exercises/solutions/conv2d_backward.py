"""Textbook solution of conv2d_backward (minicnn.kernels.textbook.col2im and conv2d_backward)."""
import numpy as np

from im2col import im2col


def col2im(cols, x_shape, kernel_size, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    N, C, H, W = x_shape
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = cols.reshape(C, kh, kw, N, Ho, Wo)
    dxpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxpad[:, :, i * dh:i * dh + sh * (Ho - 1) + 1:sh, j * dw:j * dw + sw * (Wo - 1) + 1:sw] += \
                cols[:, i, j].transpose(1, 0, 2, 3)
    return dxpad[:, :, ph:ph + H, pw:pw + W]


def conv2d_backward(grad, x, weight, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    O = weight.shape[0]
    grad2 = grad.transpose(1, 0, 2, 3).reshape(O, -1)
    cols = im2col(x, weight.shape[2:], stride, padding, dilation)
    db = grad.sum(axis=(0, 2, 3))
    dw = (grad2 @ cols.T).reshape(weight.shape)
    dx = col2im(weight.reshape(O, -1).T @ grad2, x.shape, weight.shape[2:], stride, padding, dilation)
    return dx, dw, db
