"""Chapter 3 (the other layers), first part: relu, max_pool, avg_pool_backward."""
from __future__ import annotations

import numpy as np

from ..kernels import textbook
from .common import Exercise, array_of, check_grad, compare, overlap_mistake, unmodified

# --------------------------------------------------------------------------- relu

STUB_RELU = '''"""Exercise relu (chapter 3): ReLU forward and backward.

Check it with:  python -m minicnn.exercises check relu
"""
import numpy as np


def relu_forward(x):
    """x (any shape)  ->  (out, cache):  out = max(x, 0), x's shape and dtype; cache: what backward needs
    (the mask x > 0 is enough). Do not change x in place."""
    raise NotImplementedError("relu_forward: not implemented yet")


def relu_backward(grad, cache):
    """grad (out's shape), the cache of relu_forward  ->  dx = grad where x > 0, else 0.
    At x == 0 exactly the gradient is 0, as in PyTorch."""
    raise NotImplementedError("relu_backward: not implemented yet")
'''


def _relu(mod, x, grad):
    out, cache = mod.relu_forward(x)
    return out, mod.relu_backward(grad, cache)


def _relu_stage1(mod):
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    grad = np.ones_like(x)
    copies = x.copy(), grad.copy()
    out, dx = _relu(mod, x, grad)
    array_of("relu_forward(x (2, 3, 4) float32)[0]", out, x.shape, np.float32)
    array_of("relu_backward(grad, cache)", dx, x.shape, np.float32)
    unmodified("x", copies[0], x)
    unmodified("grad", copies[1], grad)


def _relu_stage2(mod):
    x = np.array([[-1.0, 0.0, 2.0], [3.0, -0.5, 0.0]])
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out, dx = _relu(mod, x, g)
    compare("relu([[-1, 0, 2], [3, -0.5, 0]])", np.maximum(x, 0), out)
    compare("dx for x = [[-1, 0, 2], [3, -0.5, 0]], grad = [[1, 2, 3], [4, 5, 6]]", g * (x > 0), dx, [
        (g * (x >= 0), "at x == 0 the gradient is 0 (PyTorch's choice): the mask is x > 0, not x >= 0"),
        ((x > 0).astype(float), "multiply the incoming grad by the mask (the chain rule), do not return the mask"),
        (g * np.maximum(x, 0), "dx is grad where x > 0 (times 1), not grad * relu(x)")])


def _relu_stage3(mod):
    rng = np.random.default_rng(11)
    for shape in [(2, 3, 5, 4), (1, 7), (6,), (3, 1, 1, 1)]:
        x, g = rng.normal(size=shape), rng.normal(size=shape)
        out, dx = _relu(mod, x, g)
        compare(f"relu of x {shape}", textbook.relu_forward(x)[0], out)
        compare(f"relu's dx for x {shape}", textbook.relu_backward(g, x > 0), dx)


def _relu_stage4(mod):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(3, 4))
    x[np.abs(x) < 0.05] = 0.5                      # keep finite differences away from the kink
    u = rng.normal(size=x.shape)
    _, dx = _relu(mod, x, u)
    check_grad("relu's dx", dx, lambda: float((np.maximum(x, 0) * u).sum()), x)


# --------------------------------------------------------------------------- max_pool

STUB_MAX_POOL = '''"""Exercise max_pool (chapter 3): max pooling forward and backward.

Check it with:  python -m minicnn.exercises check max_pool
"""
import numpy as np


def max_pool_forward(x, kernel_size, stride):
    """x (N, C, H, W), kernel_size (kH, kW), stride (sh, sw)  ->  (out, cache), no padding.

    out[n, c, oh, ow] = max of x[n, c, oh*sh : oh*sh + kH, ow*sw : ow*sw + kW]   (N, C, Ho, Wo), x's dtype,
    Ho = (H - kH) // sh + 1. The cache keeps, for every window, WHICH element won (its offset, or its index).
    """
    raise NotImplementedError("max_pool_forward: not implemented yet")


def max_pool_backward(grad, cache):
    """grad (N, C, Ho, Wo)  ->  dx (N, C, H, W): each window's gradient goes to the element that won its
    max; on a tie, to the FIRST maximum (row by row), as minicnn's kernels do. Windows may overlap
    (stride < kernel): an element that wins several windows gets the SUM of their gradients."""
    raise NotImplementedError("max_pool_backward: not implemented yet")
'''


def _pool(mod, x, k, s, grad):
    out, cache = mod.max_pool_forward(x, k, s)
    return out, mod.max_pool_backward(grad, cache)


def _max_variants(x, k, s, grad):
    """dx with the gradient given to every maximum, spread over the window, and assigned (not added)."""
    N, C, Ho, Wo = grad.shape
    every, spread = np.zeros(x.shape), np.zeros(x.shape)
    for oh in range(Ho):
        for ow in range(Wo):
            rows, cols = slice(oh * s[0], oh * s[0] + k[0]), slice(ow * s[1], ow * s[1] + k[1])
            win = x[:, :, rows, cols]
            every[:, :, rows, cols] += (win == win.max(axis=(2, 3), keepdims=True)) * grad[:, :, oh, ow, None, None]
            spread[:, :, rows, cols] += grad[:, :, oh, ow, None, None] / (k[0] * k[1])
    return [(every, "on a tie the gradient goes to the FIRST maximum of the window only (row by row), "
                    "as minicnn's kernels do; your code gives it to every maximum"),
            (spread, "max pooling sends each window's gradient to its maximum only, not spread over the window")]


def _maxpool_stage1(mod):
    x = np.random.default_rng(0).normal(size=(2, 3, 6, 6)).astype(np.float32)
    grad = np.ones((2, 3, 3, 3), np.float32)
    copies = x.copy(), grad.copy()
    out, dx = _pool(mod, x, (2, 2), (2, 2), grad)
    array_of("max_pool_forward(x (2, 3, 6, 6), (2, 2), (2, 2))[0]", out, (2, 3, 3, 3), np.float32)
    array_of("max_pool_backward(grad, cache)", dx, x.shape, np.float32)
    unmodified("x", copies[0], x)
    unmodified("grad", copies[1], grad)


def _maxpool_stage2(mod):
    x = np.array([[[[1.0, 3.0, 2.0, 2.0], [3.0, 0.0, 2.0, 1.0]]]])
    g = np.array([[[[1.0, 2.0]]]])
    out, dx = _pool(mod, x, (2, 2), (2, 2), g)
    compare("max pooling of [[1, 3, 2, 2], [3, 0, 2, 1]] with 2x2 windows", np.array([[[[3.0, 2.0]]]]), out)
    compare("dx for that x and grad [[1, 2]] (both windows have ties)",
            textbook.max_pool2d_backward(g, textbook.max_pool2d_forward(x, 2)[1]), dx, _max_variants(x, (2, 2), (2, 2), g))


def _maxpool_stage3(mod):
    rng = np.random.default_rng(13)
    for shape, k, s in [((2, 3, 6, 6), (2, 2), (2, 2)), ((1, 2, 5, 7), (3, 3), (1, 1)), ((2, 1, 6, 5), (2, 3), (2, 1)),
                        ((1, 1, 4, 4), (1, 1), (1, 1)), ((3, 2, 7, 4), (3, 2), (2, 2))]:
        x = rng.normal(size=shape)
        out, cache = textbook.max_pool2d_forward(x, k, s)
        g = rng.normal(size=out.shape)
        got_out, dx = _pool(mod, x, k, s, g)
        what = f" for x {shape}, kernel {k}, stride {s}"
        compare("max pooling" + what, out, got_out)
        overlap_mistake("max pooling's dx" + what, textbook.max_pool2d_backward(g, cache), dx,
                        textbook.max_pool2d_backward(np.ones_like(g), cache))
        compare("max pooling's dx" + what, textbook.max_pool2d_backward(g, cache), dx, _max_variants(x, k, s, g))


def _maxpool_stage4(mod):
    rng = np.random.default_rng(14)
    x = rng.permutation(60).reshape(1, 3, 4, 5) / 7.0     # no ties: finite differences see the same winners
    u = rng.normal(size=(1, 3, 3, 4))
    _, dx = _pool(mod, x, (2, 2), (1, 1), u)
    check_grad("max pooling's dx", dx, lambda: float((textbook.max_pool2d_forward(x, 2, 1)[0] * u).sum()), x, eps=1e-4)


# --------------------------------------------------------------------------- avg_pool_backward

STUB_AVG_POOL = '''"""Exercise avg_pool_backward (chapter 3): the gradient of average pooling.

Check it with:  python -m minicnn.exercises check avg_pool_backward
Then LeNet-5 uses it: its subsampling layers (a trainable average pooling) take their dx from it.
"""
import numpy as np


def avg_pool_backward(grad, x_shape, kernel_size, stride):
    """grad (N, C, Ho, Wo) = dL/d out of  out[n, c, oh, ow] = mean of x[n, c, oh*sh : oh*sh + kH, ow*sw : ow*sw + kW]
    ->  dx of shape x_shape (N, C, H, W), grad's dtype (no padding).

    Every element of a window gets grad / (kH*kW) of that window's gradient; windows may overlap
    (stride < kernel): then the shares of all windows holding an element add up.
    """
    raise NotImplementedError("avg_pool_backward: not implemented yet")
'''


def _avg_expected(grad, x_shape, k, s):
    x = np.zeros(x_shape)
    return textbook.avg_pool2d_backward(grad, textbook.avg_pool2d_forward(x, k, s)[1])


def _avg_variants(grad, x_shape, k, s):
    kk = k[0] * k[1]
    right = _avg_expected(grad, x_shape, k, s)
    return [(right * kk, "each element of a window gets grad / (kH*kW): the mean divides by the window's size"),
            (right * kk / k[0] if k[0] != k[1] or k[0] > 1 else None,
             "divide by the window's number of elements, kH*kW, not by kH")]


def _avg_stage1(mod):
    grad = np.ones((2, 3, 3, 3), np.float32)
    before = grad.copy()
    dx = mod.avg_pool_backward(grad, (2, 3, 6, 6), (2, 2), (2, 2))
    array_of("avg_pool_backward(grad (2, 3, 3, 3), (2, 3, 6, 6), (2, 2), (2, 2))", dx, (2, 3, 6, 6), np.float32)
    unmodified("grad", before, grad)


def _avg_stage2(mod):
    g = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    compare("dx of 2x2 average pooling of a 4x4 map, for grad [[1, 2], [3, 4]]", _avg_expected(g, (1, 1, 4, 4), (2, 2),
            (2, 2)), mod.avg_pool_backward(g, (1, 1, 4, 4), (2, 2), (2, 2)), _avg_variants(g, (1, 1, 4, 4), (2, 2), (2, 2)))


def _avg_stage3(mod):
    rng = np.random.default_rng(15)
    for shape, k, s in [((2, 3, 6, 6), (2, 2), (2, 2)), ((1, 2, 5, 7), (3, 3), (1, 1)), ((2, 1, 6, 5), (2, 3), (2, 1)),
                        ((1, 1, 4, 4), (1, 1), (1, 1)), ((3, 2, 7, 4), (3, 2), (2, 2))]:
        Ho, Wo = (shape[2] - k[0]) // s[0] + 1, (shape[3] - k[1]) // s[1] + 1
        g = rng.normal(size=(*shape[:2], Ho, Wo))
        what = f"average pooling's dx for x {shape}, kernel {k}, stride {s}"
        overlap_mistake(what, _avg_expected(g, shape, k, s), mod.avg_pool_backward(g, shape, k, s),
                        _avg_expected(np.ones_like(g), shape, k, s) * (k[0] * k[1]))
        compare(what, _avg_expected(g, shape, k, s),
                mod.avg_pool_backward(g, shape, k, s), _avg_variants(g, shape, k, s))


def _avg_stage4(mod):
    rng = np.random.default_rng(16)
    x, u = rng.normal(size=(2, 2, 5, 4)), rng.normal(size=(2, 2, 2, 3))
    dx = mod.avg_pool_backward(u, x.shape, (3, 2), (2, 1))
    check_grad("average pooling's dx", dx, lambda: float((textbook.avg_pool2d_forward(x, (3, 2), (2, 1))[0] * u).sum()),
               x)


EXERCISES = [
    Exercise("relu", 3, "forward and backward", ("relu_forward", "relu_backward"), STUB_RELU,
             ("forward: out = np.maximum(x, 0); keep mask = x > 0 as the cache.",
              "backward: return grad * mask (a boolean mask multiplies as 0 and 1, and keeps grad's dtype)."),
             ("minicnn.kernels.textbook:relu_forward", "minicnn.kernels.textbook:relu_backward"),
             ((1, _relu_stage1), (2, _relu_stage2), (3, _relu_stage3), (4, _relu_stage4))),
    Exercise("max_pool", 3, "forward and backward (gradient to the first maximum)",
             ("max_pool_forward", "max_pool_backward"), STUB_MAX_POOL,
             ("Stack the windows: for each kernel offset (i, j), x[:, :, i : i + sh*(Ho-1) + 1 : sh, j : ...] is "
              "(N, C, Ho, Wo); np.stack them into (kH*kW, N, C, Ho, Wo).",
              "out = windows.max(axis=0); argmax = windows.argmax(axis=0) is the FIRST winning offset.",
              "backward: for each offset k, add grad * (argmax == k) back into the slice offset k was read from."),
             ("minicnn.kernels.textbook:_windows", "minicnn.kernels.textbook:_unwindow",
              "minicnn.kernels.textbook:max_pool2d_forward", "minicnn.kernels.textbook:max_pool2d_backward"),
             ((1, _maxpool_stage1), (2, _maxpool_stage2), (3, _maxpool_stage3), (4, _maxpool_stage4))),
    Exercise("avg_pool_backward", 3, "the gradient of average pooling", ("avg_pool_backward",), STUB_AVG_POOL,
             ("share = grad / (kH * kW): every element of a window gets its window's share.",
              "dx = zeros(x_shape); for each offset (i, j): dx[:, :, i : i + sh*(Ho-1) + 1 : sh, j : ...] += share."),
             ("minicnn.kernels.textbook:_unwindow", "minicnn.kernels.textbook:avg_pool2d_backward"),
             ((1, _avg_stage1), (2, _avg_stage2), (3, _avg_stage3), (4, _avg_stage4))),
]

