"""Textbook solution of linear (minicnn.kernels.textbook.linear_forward and linear_backward)."""


def linear_forward(x, weight, bias):
    out = x @ weight.T
    return out if bias is None else out + bias


def linear_backward(grad, x, weight):
    return grad @ weight, grad.T @ x, grad.sum(axis=0)
