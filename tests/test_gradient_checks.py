"""Gradient checks that were missing (a copy of the code with planted one-line bugs passed them):

* batch-norm whose input needs no gradient (its weight gradient takes a path of its own),
  on 3-D (N, C, L) input, and without running statistics;
* ``nll_loss`` and ``mse_loss`` with every reduction;
* the size-dependent convolution routes (dx by transposed convolution from 32 channels per group,
  the channels-last im2col from 16 channels) at the sizes where they really switch on, against
  finite differences: float64 and small images keep them cheap.

Gradients are read with ``np.asarray(t.grad)``: it works whether ``grad`` is an array or a Tensor.
"""
import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import gradcheck
from minicnn.kernels.fast import conv as conv_module
from minicnn.kernels.fast import norm
from minicnn.kernels import reference as R

FD = dict(rtol=1e-6, atol=1e-8)
FD_CONV = dict(rtol=1e-5, atol=1e-6)     # sums of hundreds of products of values up to ~10


def t64(shape, seed, requires_grad=True, low=-2.0, high=2.0):
    values = np.random.default_rng(seed).uniform(low, high, shape)
    return minicnn.tensor(values, dtype=np.float64, requires_grad=requires_grad)


# --------------------------------------------------------------------------- batch normalisation

@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (2, 3, 3, 4)])
def test_batch_norm_weight_and_bias_gradients_when_the_input_needs_none(training, shape):
    """x needs no gradient (a network's first layer): dweight = sum(g * xhat), dbias = sum(g)."""
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal(shape), rng.standard_normal(shape)
    weight, bias = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)

    def forward(w_, b_):
        return norm.batch_norm_forward(x, rm.copy(), rv.copy(), w_, b_, training=training)[0]

    _, cache = norm.batch_norm_forward(x, rm.copy(), rv.copy(), weight, bias, training=training)
    for need_b in (True, False):
        dx, dweight, dbias = norm.batch_norm_backward(g, cache, need_x=False, need_b=need_b)
        assert dx is None and (dbias is None) != need_b
        np.testing.assert_allclose(dweight, R.numerical_gradient(lambda v: forward(v, bias), weight, g), **FD)
        mean, var = R.batch_stats(x) if training else (rm, rv)
        xhat = R.batch_norm(x, mean, var)
        np.testing.assert_allclose(dweight, (g * xhat).sum(axis=tuple(i for i in range(x.ndim) if i != 1)),
                                   rtol=1e-10)
        if need_b:
            np.testing.assert_allclose(dbias, R.numerical_gradient(lambda v: forward(weight, v), bias, g), **FD)

    # through autograd: only the weight and bias require a gradient
    xt = minicnn.tensor(x, dtype=np.float64)
    w, b = t64((3,), seed=2), t64((3,), seed=3)

    def fn(x_, w_, b_):
        return F.batch_norm(x_, minicnn.tensor(rm.copy()), minicnn.tensor(rv.copy()), w_, b_, training=training)
    assert gradcheck(fn, xt, w, b)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_on_3d_input_gradcheck(training):
    x, w, b = t64((4, 3, 5), seed=4), t64((3,), seed=5), t64((3,), seed=6)

    def fn(x_, w_, b_):
        rm = minicnn.tensor(np.array([0.3, -0.2, 0.1]))
        rv = minicnn.tensor(np.array([0.7, 1.3, 2.0]))
        return F.batch_norm(x_, rm, rv, w_, b_, training=training)
    assert gradcheck(fn, x, w, b)


@pytest.mark.parametrize("shape", [(6, 2), (3, 2, 4), (2, 2, 3, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_without_running_statistics_gradcheck(shape, affine):
    x = t64(shape, seed=7)
    w, b = (t64((2,), seed=8), t64((2,), seed=9)) if affine else (None, None)
    out = F.batch_norm(x, None, None, w, b, training=True)
    axes = tuple(i for i in range(x.ndim) if i != 1)
    ref = R.batch_norm(x.data, x.data.mean(axis=axes), x.data.var(axis=axes),
                       None if w is None else w.data, None if b is None else b.data)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda *t: F.batch_norm(t[0], None, None, *(t[1:] or (None, None)), training=True),
                     x, *([w, b] if affine else []))
    # the kernel without running statistics uses the batch's even in eval mode (as PyTorch)
    _, cache = norm.batch_norm_forward(x.data, None, None, training=False)
    g = np.random.default_rng(10).standard_normal(shape)
    dx, _, _ = norm.batch_norm_backward(g, cache)
    np.testing.assert_allclose(
        dx, R.numerical_gradient(lambda v: norm.batch_norm_forward(v, None, None, training=False)[0], x.data, g),
        rtol=1e-5, atol=1e-7)


def test_batch_norm_takes_numpy_arrays_as_running_statistics():
    x = t64((6, 3), seed=11)
    rm, rv = np.zeros(3), np.ones(3)
    tm, tv = minicnn.zeros(3, dtype=np.float64), minicnn.ones(3, dtype=np.float64)
    out = F.batch_norm(x, rm, rv, training=True, momentum=0.5)
    want = F.batch_norm(x, tm, tv, training=True, momentum=0.5)
    np.testing.assert_array_equal(out.numpy(), want.numpy())
    np.testing.assert_allclose(rm, 0.5 * x.data.mean(axis=0), rtol=1e-12)     # updated in place
    np.testing.assert_array_equal(rm, tm.numpy())
    np.testing.assert_array_equal(rv, tv.numpy())
    eval_out = F.batch_norm(x, rm, rv, training=False)
    np.testing.assert_allclose(eval_out.numpy(), R.batch_norm(x.data, rm, rv), rtol=1e-12)
    with pytest.raises(TypeError, match=r"batch_norm: running_mean must be a Tensor, a NumPy or CuPy array, "
                                        r"or None, got list"):
        F.batch_norm(x, [0.0, 0.0, 0.0], rv, training=False)


# --------------------------------------------------------------------------- losses

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 2, 2)])
def test_nll_loss_gradcheck_and_values(reduction, shape):
    logp = t64(shape, seed=12, low=-3.0, high=-0.1)
    target_shape = (shape[0],) + shape[2:]
    target = np.random.default_rng(13).integers(0, shape[1], target_shape)
    picked = -np.take_along_axis(logp.data, target[:, None], axis=1)[:, 0]
    want = {"none": picked, "sum": picked.sum(), "mean": picked.mean()}[reduction]
    np.testing.assert_allclose(F.nll_loss(logp, target, reduction=reduction).numpy(), want, rtol=1e-12)
    assert gradcheck(lambda t: F.nll_loss(t, target, reduction=reduction), logp)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_gradcheck_and_values(reduction):
    x, y = t64((3, 4), seed=14), t64((3, 4), seed=15)
    sq = (x.data - y.data) ** 2
    want = {"none": sq, "sum": sq.sum(), "mean": sq.mean()}[reduction]
    np.testing.assert_allclose(F.mse_loss(x, y, reduction=reduction).numpy(), want, rtol=1e-12)
    assert gradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction), x, y)
    assert gradcheck(lambda a: F.mse_loss(a, y.data, reduction=reduction), x)     # an array target


# --------------------------------------------------------------------------- size-dependent conv routes

def _conv_fd(x, w, b, stride, padding, dilation, groups):
    """conv2d_backward's dx, dw, db against central differences of conv2d_forward."""
    args = (stride, padding, dilation, groups)
    out, cache = conv_module.conv2d_forward(x, w, b, *args)
    g = np.random.default_rng(16).standard_normal(out.shape)
    dx, dw, db = conv_module.conv2d_backward(g, cache)
    np.testing.assert_allclose(dx, R.numerical_gradient(lambda v: conv_module.conv2d_forward(v, w, b, *args)[0], x, g),
                               **FD_CONV)
    np.testing.assert_allclose(dw, R.numerical_gradient(lambda v: conv_module.conv2d_forward(x, v, b, *args)[0], w, g),
                               **FD_CONV)
    np.testing.assert_allclose(db, R.numerical_gradient(lambda v: conv_module.conv2d_forward(x, w, v, *args)[0], b, g),
                               **FD_CONV)
    return cache.geom


@pytest.mark.parametrize("channels, groups, kernel, padding, dilation", [
    (32, 1, (3, 3), ((1, 1), (1, 1)), (1, 1)),      # the smallest group that takes the route
    (64, 2, (3, 2), ((2, 0), (1, 0)), (1, 2)),      # two groups of 32, asymmetric padding, dilation
])
def test_transposed_conv_dx_route_at_its_real_size_matches_finite_differences(channels, groups, kernel, padding,
                                                                              dilation):
    rng = np.random.default_rng(17)
    x = rng.standard_normal((1, channels, 3, 3))
    w = rng.standard_normal((2 * groups, channels // groups, *kernel))
    b = rng.standard_normal(2 * groups)
    geom = _conv_fd(x, w, b, (1, 1), padding, dilation, groups)
    assert conv_module.dx_by_transposed_conv(np, geom)                   # the route under test, unpatched
    assert not conv_module.dx_by_transposed_conv(np, geom._replace(C=(32 * groups) - groups))   # 31 per group: not


@pytest.mark.parametrize("channels, stride, padding, dilation", [
    (16, (1, 1), ((1, 1), (1, 1)), (1, 1)),         # the smallest channel count that takes the route
    (24, (2, 1), ((0, 1), (1, 1)), (1, 2)),         # stride, asymmetric padding, dilation
])
def test_channels_last_route_at_its_real_size_matches_finite_differences(channels, stride, padding, dilation):
    rng = np.random.default_rng(18)
    x = rng.standard_normal((2, channels, 5, 5))
    w = rng.standard_normal((3, channels, 3, 3))
    b = rng.standard_normal(3)
    geom = _conv_fd(x, w, b, stride, padding, dilation, 1)
    pixels = geom.N * geom.Ho * geom.Wo
    assert conv_module.use_channels_last(np, geom.C, geom.groups, geom.Wo, pixels, geom.O)   # unpatched
    assert not conv_module.use_channels_last(np, 15, geom.groups, geom.Wo, pixels, geom.O)
    assert not conv_module.dx_by_transposed_conv(np, geom)               # dx by the channels-last col2im
