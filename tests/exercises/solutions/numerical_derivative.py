"""Textbook solution of numerical_derivative, in the exercise's format (as minicnn.gradcheck does it)."""
import numpy as np


def numerical_derivative(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    flat, g = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = f(x)
        flat[i] = old - h
        minus = f(x)
        flat[i] = old
        g[i] = (plus - minus) / (2 * h)
    return grad
