"""Pooling and normalisation kernels against the loop references, hand computations and finite differences."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn.kernels import fast
from minicnn.kernels import reference as R
from minicnn.kernels import (adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward, avg_pool2d_backward,
                             avg_pool2d_forward, batch_norm_backward, batch_norm_forward,
                             local_response_norm_backward, local_response_norm_forward, max_pool2d_backward,
                             max_pool2d_forward, subsample_backward, subsample_forward)
from minicnn.kernels.geometry import pool_output_size

FD = dict(rtol=1e-6, atol=1e-7)   # finite differences (float64, eps 1e-6)


def distinct_values(shape, seed, dtype=np.float64):
    """A random permutation of 0.1, 0.2, ...: no ties, so max pooling is differentiable everywhere."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n).reshape(shape) * 0.1 + 0.1).astype(dtype)


# --------------------------------------------------------------------------- pooling cases


@st.composite
def pool_cases(draw, dilation=False, max_hw=8):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ph, pw = draw(st.integers(0, (dh * (kh - 1) + 1) // 2)), draw(st.integers(0, (dw * (kw - 1) + 1) // 2))
    ceil_mode = draw(st.booleans())
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), max(max_hw, dh * (kh - 1) + 1)))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), max(max_hw, dw * (kw - 1) + 1)))
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w), kernel=(kh, kw), stride=(sh, sw),
                padding=(ph, pw), dilation=(dh, dw), ceil_mode=ceil_mode, seed=draw(st.integers(0, 2**16)))


@settings(max_examples=50)
@given(pool_cases(dilation=True))
def test_max_pool_matches_reference_forward_and_backward(case):
    x = distinct_values(case["shape"], case["seed"])
    k, s, p, d, ceil = case["kernel"], case["stride"], case["padding"], case["dilation"], case["ceil_mode"]
    out, cache = max_pool2d_forward(x, k, s, p, ceil, d)
    expected, argmax = R.max_pool2d(x, k, s, p, d, ceil)
    np.testing.assert_array_equal(out, expected)
    g = np.random.default_rng(case["seed"]).standard_normal(out.shape)
    np.testing.assert_allclose(max_pool2d_backward(g, cache), R.max_pool2d_backward(g, x.shape, argmax), rtol=1e-12)
    x32 = x.astype(np.float32)
    out32, cache32 = max_pool2d_forward(x32, k, s, p, ceil, d)
    assert out32.dtype == np.float32 and max_pool2d_backward(g.astype(np.float32), cache32).dtype == np.float32
    np.testing.assert_array_equal(out32, expected.astype(np.float32))


@settings(max_examples=10)
@given(pool_cases(dilation=True, max_hw=6))
def test_max_pool_backward_matches_finite_differences(case):
    x = distinct_values(case["shape"], case["seed"])
    args = case["kernel"], case["stride"], case["padding"], case["ceil_mode"], case["dilation"]
    out, cache = max_pool2d_forward(x, *args)
    g = np.random.default_rng(case["seed"] + 1).standard_normal(out.shape)
    numeric = R.numerical_gradient(lambda v: max_pool2d_forward(v, *args)[0], x, g, eps=1e-4)
    np.testing.assert_allclose(max_pool2d_backward(g, cache), numeric, **FD)


def test_max_pool_ties_route_to_the_first_argmax():
    x = np.array([[[[1.0, 1.0, 0.0],
                    [1.0, 1.0, 2.0],
                    [0.0, 2.0, 2.0]]]])
    out, cache = max_pool2d_forward(x, 2, 1)          # overlapping 2x2 windows, stride 1
    np.testing.assert_array_equal(out, [[[[1.0, 2.0], [2.0, 2.0]]]])
    g = np.array([[[[10.0, 20.0], [30.0, 40.0]]]])
    dx = max_pool2d_backward(g, cache)
    # window (0,0): four 1s -> first is (0,0); window (0,1): the 2 at (1,2);
    # window (1,0): the 2 at (2,1); window (1,1): 2s at (1,2), (2,1), (2,2) -> first is (1,2).
    np.testing.assert_array_equal(dx, [[[[10.0, 0.0, 0.0],
                                         [0.0, 0.0, 60.0],
                                         [0.0, 30.0, 0.0]]]])
    x = np.full((1, 1, 2, 2), 5.0)
    _, cache = max_pool2d_forward(x, 2)
    np.testing.assert_array_equal(max_pool2d_backward(np.ones((1, 1, 1, 1)), cache), [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_max_pool_padding_is_minus_infinity():
    x = -np.arange(1.0, 5.0).reshape(1, 1, 2, 2)      # all negative: a zero pad would win
    out, _ = max_pool2d_forward(x, 2, 1, 1)
    np.testing.assert_array_equal(out[0, 0], [[-1, -1, -2], [-1, -1, -2], [-3, -3, -4]])


@settings(max_examples=50)
@given(pool_cases(), st.booleans(), st.sampled_from([None, None, 3, -2]))
def test_avg_pool_matches_reference(case, count_include_pad, divisor_override):
    x = np.random.default_rng(case["seed"]).standard_normal(case["shape"])
    args = case["kernel"], case["stride"], case["padding"], case["ceil_mode"], count_include_pad, divisor_override
    out, cache = avg_pool2d_forward(x, *args)
    np.testing.assert_allclose(out, R.avg_pool2d(x, *args), rtol=1e-12, atol=1e-14)
    g = np.random.default_rng(case["seed"] + 1).standard_normal(out.shape)
    dx = avg_pool2d_backward(g, cache)
    np.testing.assert_allclose(dx, R.avg_pool2d_backward(g, x.shape, *args), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, R.numerical_gradient(lambda v: avg_pool2d_forward(v, *args)[0], x, g), **FD)
    out32, _ = avg_pool2d_forward(x.astype(np.float32), *args)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out, rtol=1e-5, atol=1e-6)


def test_avg_pool_divisor_rules_by_hand():
    """3x3 input of ones, kernel 2, stride 2, padding 1, ceil_mode: windows straddle the padding."""
    x = np.ones((1, 1, 3, 3))
    out, _ = avg_pool2d_forward(x, 2, 2, 1, ceil_mode=True, count_include_pad=True)
    np.testing.assert_allclose(out[0, 0], [[1 / 4, 2 / 4], [2 / 4, 4 / 4]])   # padding counted
    out, _ = avg_pool2d_forward(x, 2, 2, 1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(out[0, 0], np.ones((2, 2)))                       # only real cells counted
    # ceil_mode overhang (beyond the padding) is never counted: 4x4 input, kernel 3, stride 2, no padding
    out, _ = avg_pool2d_forward(np.ones((1, 1, 4, 4)), 3, 2, 0, ceil_mode=True, count_include_pad=True)
    np.testing.assert_allclose(out[0, 0], np.ones((2, 2)))
    # a ceil_mode window that would start in the right padding is dropped
    assert pool_output_size(5, 2, 2, 1, 1, True) == 3 and pool_output_size(5, 2, 2, 1, 1, False) == 3
    assert pool_output_size(4, 2, 2, 1, 1, True) == 3 and pool_output_size(6, 3, 3, 1, 1, True) == 3
    assert pool_output_size(5, 3, 2, 0, 1, True) == 2 and pool_output_size(6, 3, 2, 0, 1, True) == 3


@settings(max_examples=40)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9),
       st.integers(1, 6), st.integers(1, 6), st.integers(0, 1000))
def test_adaptive_avg_pool_matches_reference(n, c, h, w, oh, ow, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    out, cache = adaptive_avg_pool2d_forward(x, (oh, ow))
    np.testing.assert_allclose(out, R.adaptive_avg_pool2d(x, (oh, ow)), rtol=1e-12, atol=1e-14)
    g = rng.standard_normal(out.shape)
    numeric = R.numerical_gradient(lambda v: adaptive_avg_pool2d_forward(v, (oh, ow))[0], x, g)
    np.testing.assert_allclose(adaptive_avg_pool2d_backward(g, cache), numeric, **FD)


@pytest.mark.parametrize("size,full,mode", [(1, (1, 1), "global"), ((6, 4), (6, 4), "identity"),
                                            ((3, 2), (3, 2), "blocks"), ((4, 3), (4, 3), "matrix"),
                                            ((None, 2), (6, 2), "blocks"), ((9, 5), (9, 5), "matrix")])
def test_adaptive_avg_pool_fast_paths(size, full, mode):
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 4)).astype(np.float32)
    out, cache = fast.adaptive_avg_pool2d_forward(x, size)
    assert cache.mode == mode and out.dtype == np.float32 and out.shape == (2, 3, *full)
    np.testing.assert_allclose(out, R.adaptive_avg_pool2d(x, full), rtol=1e-5, atol=1e-6)
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    dx = fast.adaptive_avg_pool2d_backward(g, cache)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    # every bin spreads its gradient evenly: the total is preserved
    np.testing.assert_allclose(dx.sum(axis=(2, 3)), g.sum(axis=(2, 3)), rtol=1e-5)


@settings(max_examples=20)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(2, 7), st.integers(2, 7), st.integers(1, 3),
       st.integers(1, 3), st.booleans(), st.integers(0, 1000))
def test_subsample_matches_reference_and_finite_differences(n, c, h, w, k, s, has_bias, seed):
    k = min(k, h, w)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    coeff, bias = rng.standard_normal(c), (rng.standard_normal(c) if has_bias else None)
    out, cache = subsample_forward(x, coeff, bias, k, s)
    np.testing.assert_allclose(out, R.subsample(x, coeff, bias, (k, k), (s, s)), rtol=1e-12, atol=1e-13)
    g = rng.standard_normal(out.shape)
    dx, dcoeff, dbias = subsample_backward(g, cache)
    np.testing.assert_allclose(dx, R.numerical_gradient(lambda v: subsample_forward(v, coeff, bias, k, s)[0], x, g), **FD)
    np.testing.assert_allclose(dcoeff, R.numerical_gradient(lambda v: subsample_forward(x, v, bias, k, s)[0], coeff, g),
                               **FD)
    if has_bias:
        np.testing.assert_allclose(dbias, R.numerical_gradient(lambda v: subsample_forward(x, coeff, v, k, s)[0],
                                                               bias, g), **FD)
    else:
        assert dbias is None


def test_subsample_lenet_by_hand():
    x = np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4)
    out, cache = subsample_forward(x, np.array([0.5], np.float32), np.array([1.0], np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[[[1 + 0.5 * 10, 1 + 0.5 * 18], [1 + 0.5 * 42, 1 + 0.5 * 50]]]])
    dx, dcoeff, dbias = subsample_backward(np.ones((1, 1, 2, 2), np.float32), cache)
    np.testing.assert_array_equal(dx, np.full((1, 1, 4, 4), 0.5))
    np.testing.assert_array_equal(dcoeff, [120.0])
    np.testing.assert_array_equal(dbias, [4.0])


def test_pool_errors_name_the_op():
    x = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"max_pool2d: padding should be at most half of the \(effective\) kernel"):
        max_pool2d_forward(x, 2, 2, 2)
    with pytest.raises(ValueError, match=r"avg_pool2d: x must be 4-D \(N, C, H, W\), got shape \(2, 5, 5\)"):
        avg_pool2d_forward(x[0], 2)
    with pytest.raises(ValueError, match=r"max_pool2d: input of spatial size 5x5 .* too small for kernel \(6, 6\)"):
        max_pool2d_forward(x, 6)
    with pytest.raises(ValueError, match=r"max_pool2d: stride must be >= 1"):
        max_pool2d_forward(x, 2, 0)
    with pytest.raises(TypeError, match=r"max_pool2d: x must be a floating-point array, got dtype int32"):
        max_pool2d_forward(x.astype(np.int32), 2)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size must be positive ints"):
        adaptive_avg_pool2d_forward(x, (0, 2))
    with pytest.raises(ValueError, match=r"subsample: coeff must have shape \(2,\)"):
        subsample_forward(x, np.ones(3, np.float32))
    _, cache = max_pool2d_forward(x, 2)
    with pytest.raises(ValueError, match=r"max_pool2d_backward: grad must have the output's shape \(1, 2, 2, 2\)"):
        max_pool2d_backward(np.zeros((1, 2, 3, 3), np.float32), cache)


# --------------------------------------------------------------------------- batch normalisation


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2), (2, 3, 4, 5)])
def test_batch_norm_training_stats_and_running_update(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 2 + 1
    weight, bias = rng.standard_normal(3), rng.standard_normal(3)
    running_mean, running_var = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 0.5])
    rm0, rv0 = running_mean.copy(), running_var.copy()
    out, _ = batch_norm_forward(x, running_mean, running_var, weight, bias, training=True, momentum=0.2, eps=1e-3)
    mean, var = R.batch_stats(x)
    np.testing.assert_allclose(out, R.batch_norm(x, mean, var, weight, bias, eps=1e-3), rtol=1e-10, atol=1e-12)
    n = x.size // 3
    np.testing.assert_allclose(running_mean, 0.8 * rm0 + 0.2 * mean, rtol=1e-12)
    np.testing.assert_allclose(running_var, 0.8 * rv0 + 0.2 * var * n / (n - 1), rtol=1e-12)   # unbiased
    axes = (0,) + tuple(range(2, x.ndim))
    np.testing.assert_allclose(running_var, 0.8 * rv0 + 0.2 * x.var(axis=axes, ddof=1), rtol=1e-12)


def test_batch_norm_eval_uses_running_stats_and_leaves_them():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
    running_mean = np.array([0.1, 0.2, 0.3], np.float32)
    running_var = np.array([1.5, 0.5, 2.0], np.float32)
    weight, bias = np.array([1.0, 2.0, 3.0], np.float32), np.array([0.0, -1.0, 1.0], np.float32)
    out, cache = batch_norm_forward(x, running_mean, running_var, weight, bias, training=False)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(running_mean, np.array([0.1, 0.2, 0.3], np.float32))
    np.testing.assert_array_equal(running_var, np.array([1.5, 0.5, 2.0], np.float32))
    np.testing.assert_allclose(out, R.batch_norm(x, running_mean, running_var, weight, bias), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(x.shape).astype(np.float32)
    dx, dweight, dbias = batch_norm_backward(g, cache)
    assert dx.dtype == np.float32
    scale = weight / np.sqrt(running_var + 1e-5)
    np.testing.assert_allclose(dx, g * scale[None, :, None, None], rtol=1e-5)    # eval: just a scale


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(6, 3), (3, 3, 2, 3)])
def test_batch_norm_backward_matches_finite_differences(training, affine, shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    weight, bias = (rng.standard_normal(3), rng.standard_normal(3)) if affine else (None, None)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)

    def forward(x_, w_=weight, b_=bias):
        # fresh copies: training updates the running stats in place
        return batch_norm_forward(x_, rm.copy(), rv.copy(), w_, b_, training=training)[0]

    out, cache = batch_norm_forward(x, rm.copy(), rv.copy(), weight, bias, training=training)
    g = rng.standard_normal(out.shape)
    dx, dweight, dbias = batch_norm_backward(g, cache)
    np.testing.assert_allclose(dx, R.numerical_gradient(forward, x, g), rtol=1e-5, atol=1e-7)
    if affine:
        np.testing.assert_allclose(dweight, R.numerical_gradient(lambda v: forward(x, v, bias), weight, g), **FD)
        np.testing.assert_allclose(dbias, R.numerical_gradient(lambda v: forward(x, weight, v), bias, g), **FD)
    else:
        assert dweight is None and dbias is None


def test_batch_norm_without_running_stats_always_uses_batch_stats():
    x = np.random.default_rng(3).standard_normal((8, 2))
    out, cache = batch_norm_forward(x, None, None, training=False)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=0), 1 / (1 + 1e-5 / x.var(axis=0)), rtol=1e-10)
    assert cache.batch_stats


def test_batch_norm_errors():
    with pytest.raises(ValueError, match=r"batch_norm: expected more than 1 value per channel when training, "
                                         r"got input of shape \(1, 3\)"):
        batch_norm_forward(np.ones((1, 3)), np.zeros(3), np.ones(3), training=True)
    with pytest.raises(ValueError, match=r"expected more than 1 value per channel .* \(1, 3, 1, 1\)"):
        batch_norm_forward(np.ones((1, 3, 1, 1)), None, None, training=True)
    out, _ = batch_norm_forward(np.ones((1, 3)), np.zeros(3), np.ones(3), training=False)   # fine in eval
    np.testing.assert_allclose(out, 1 / np.sqrt(1 + 1e-5))
    with pytest.raises(ValueError, match=r"batch_norm: running_mean must have shape \(3,\)"):
        batch_norm_forward(np.ones((2, 3)), np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match=r"batch_norm: weight must have shape \(3,\)"):
        batch_norm_forward(np.ones((2, 3)), None, None, np.ones(2))


# --------------------------------------------------------------------------- local response normalisation


@settings(max_examples=25)
@given(st.integers(1, 2), st.integers(1, 7), st.lists(st.integers(1, 3), min_size=1, max_size=2),
       st.integers(1, 6), st.floats(0.5, 3.0), st.floats(0.1, 1.0), st.floats(0.5, 2.0), st.integers(0, 1000))
def test_lrn_matches_reference_and_finite_differences(n, c, spatial, size, alpha, beta, k, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *spatial))
    out, cache = local_response_norm_forward(x, size, alpha, beta, k)
    np.testing.assert_allclose(out, R.local_response_norm(x, size, alpha, beta, k), rtol=1e-12, atol=1e-14)
    g = rng.standard_normal(out.shape)
    numeric = R.numerical_gradient(lambda v: local_response_norm_forward(v, size, alpha, beta, k)[0], x, g)
    np.testing.assert_allclose(local_response_norm_backward(g, cache), numeric, **FD)


def test_lrn_alexnet_defaults_float32_and_errors():
    x = np.random.default_rng(0).standard_normal((2, 8, 3, 3)).astype(np.float32) * 10
    out, cache = local_response_norm_forward(x, 5, 1e-4, 0.75, 2.0)        # AlexNet's constants
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, R.local_response_norm(x, 5, 1e-4, 0.75, 2.0), rtol=1e-5)
    assert local_response_norm_backward(np.ones_like(x), cache).dtype == np.float32
    with pytest.raises(ValueError, match=r"local_response_norm: x must be \(N, C, \*\) with at least 3 dimensions"):
        local_response_norm_forward(np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match=r"local_response_norm: size must be a positive int, got 0"):
        local_response_norm_forward(x, 0)


def test_results_do_not_alias_reused_scratch_buffers():
    """Kernels reuse scratch buffers between calls; what they return must never be one of them."""
    x = distinct_values((1, 1, 5, 4), 0)
    for forward, backward in ((lambda v: max_pool2d_forward(v, 2, 2, 0, True), max_pool2d_backward),
                              (lambda v: avg_pool2d_forward(v, 2, 2, 1, True), avg_pool2d_backward)):
        out, cache = forward(x)
        first = backward(np.ones(out.shape), cache)
        kept = first.copy()
        backward(np.full(out.shape, 7.0), cache)
        np.testing.assert_array_equal(first, kept)


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode", [
    (3, 2, 1, 1, False), (2, 2, 1, 1, True), (3, 1, 1, 1, False), (3, 2, 1, 2, False), (5, 3, 2, 1, True)])
def test_max_pool_window_of_minus_inf_sends_its_gradient_to_its_first_element_inside_the_image(
        kernel, stride, padding, dilation, ceil_mode):
    """As PyTorch (and the reference): never to a padding cell, where it would be lost."""
    x = np.full((2, 2, 7, 6), -np.inf)
    x[0, 0, 3, 3], x[1, 1, 0, 5] = 1.0, 2.0
    out, cache = max_pool2d_forward(x, kernel, stride, padding, ceil_mode, dilation)
    ref_out, ref_argmax = R.max_pool2d(x, (kernel, kernel), (stride, stride), (padding, padding), (dilation, dilation),
                                       ceil_mode=ceil_mode)
    np.testing.assert_array_equal(out, ref_out)
    grad = np.random.default_rng(0).random(out.shape)
    dx = max_pool2d_backward(grad, cache)
    np.testing.assert_allclose(dx, R.max_pool2d_backward(grad, x.shape, ref_argmax))
    assert np.isclose(dx.sum(), grad.sum())            # every window's gradient landed in the image
