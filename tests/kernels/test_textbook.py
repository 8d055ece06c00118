"""The textbook kernels against the loop references and finite differences; the fast kernels against
the textbook ones; and the switch between the two sets."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn
import minicnn.functional as F
from minicnn import kernels
from minicnn.kernels import fast, textbook as T
from minicnn.kernels import reference as R
from minicnn.kernels.geometry import pool_geometry


def fd(f, x, g):
    return R.numerical_gradient(f, x, g)


# --------------------------------------------------------------------------- convolution

@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    c, o = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw, dh, dw = (draw(st.integers(1, 2)) for _ in range(4))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    # the padded input must hold one dilated kernel: draw sizes that make it so
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[1]), 6))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[2] - pads[3]), 6))
    return (draw(st.integers(1, 2)), c, h, w), (o, c // groups, kh, kw), (sh, sw), \
        ((pads[0], pads[1]), (pads[2], pads[3])), (dh, dw), groups, draw(st.booleans())


@settings(max_examples=30)
@given(conv_cases(), st.integers(0, 2**16))
def test_textbook_conv_matches_the_reference_and_the_fast_kernel(case, seed):
    xs, ws, stride, padding, dilation, groups, has_bias = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if has_bias else None
    out, cache = T.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_allclose(out, R.conv2d(x, w, b, stride, padding, dilation, groups), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(out.shape)
    dx, dw, db = T.conv2d_backward(g, cache)
    rdx, rdw, rdb = R.conv2d_backward(g, x, w, stride, padding, dilation, groups)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, rdw, rtol=1e-10, atol=1e-10)
    if has_bias:
        np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-10)
    fout, fcache = fast.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_allclose(fout, out, rtol=1e-10, atol=1e-10)
    for got, want in zip(fast.conv2d_backward(g, fcache), (dx, dw, db)):
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_textbook_conv_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 4, 5, 4)), rng.standard_normal((4, 2, 3, 2)), rng.standard_normal(4)
    args = ((2, 1), ((1, 0), (1, 1)), (1, 2), 2)
    out, cache = T.conv2d_forward(x, w, b, *args)
    g = rng.standard_normal(out.shape)
    dx, dw, db = T.conv2d_backward(g, cache)
    np.testing.assert_allclose(dx, fd(lambda t: T.conv2d_forward(t, w, b, *args)[0], x, g), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, fd(lambda t: T.conv2d_forward(x, t, b, *args)[0], w, g), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, fd(lambda t: T.conv2d_forward(x, w, t, *args)[0], b, g), rtol=1e-6, atol=1e-8)


def test_textbook_im2col_and_col2im_are_adjoint_and_match_the_fast_ones():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 5))
    args = ((3, 2), (2, 1), ((1, 2), (0, 1)), (1, 2))
    cols = T.im2col(x, *args)
    np.testing.assert_array_equal(cols, fast.im2col(x, *args))
    c = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, T.col2im(c, x.shape, *args)), rtol=1e-12)
    np.testing.assert_allclose(T.col2im(c, x.shape, *args), fast.col2im(c, x.shape, *args), rtol=1e-12)


# --------------------------------------------------------------------------- pooling

@settings(max_examples=30)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1),
       st.integers(1, 2), st.booleans(), st.integers(0, 2**16))
def test_textbook_pooling_matches_the_reference_and_the_fast_kernels(kh, kw, sh, sw, pad, dil, ceil, seed):
    pad = min(pad, (dil * (kh - 1) + 1) // 2, (dil * (kw - 1) + 1) // 2)
    rng = np.random.default_rng(seed)
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) * 0.25       # distinct values: one arg-max
    out, cache = T.max_pool2d_forward(x, (kh, kw), (sh, sw), pad, ceil, dil)
    geo = pool_geometry("t", x, (kh, kw), (sh, sw), pad, dil, ceil)
    ref, argmax = R.max_pool2d(x, *geo[4:8], ceil)
    np.testing.assert_array_equal(out, ref)
    g = rng.standard_normal(out.shape)
    dx = T.max_pool2d_backward(g, cache)
    np.testing.assert_allclose(dx, R.max_pool2d_backward(g, x.shape, argmax), atol=1e-12)
    fout, fcache = fast.max_pool2d_forward(x, (kh, kw), (sh, sw), pad, ceil, dil)
    np.testing.assert_array_equal(fout, out)
    np.testing.assert_allclose(fast.max_pool2d_backward(g, fcache), dx, atol=1e-12)
    for include in (True, False):
        out, cache = T.avg_pool2d_forward(x, (kh, kw), (sh, sw), pad, ceil, include)
        np.testing.assert_allclose(out, R.avg_pool2d(x, *geo[4:7], ceil, include), rtol=1e-12)
        g = rng.standard_normal(out.shape)
        np.testing.assert_allclose(T.avg_pool2d_backward(g, cache),
                                   R.avg_pool2d_backward(g, x.shape, *geo[4:7], ceil, include), atol=1e-12)
        fout, fcache = fast.avg_pool2d_forward(x, (kh, kw), (sh, sw), pad, ceil, include)
        np.testing.assert_allclose(fout, out, rtol=1e-12)
        np.testing.assert_allclose(fast.avg_pool2d_backward(g, fcache), T.avg_pool2d_backward(g, cache), atol=1e-12)


def test_textbook_max_pool_edge_cases():
    """A window of -inf values sends its gradient to its first element inside the image; a NaN wins."""
    x = np.full((1, 1, 2, 2), -np.inf)
    out, cache = T.max_pool2d_forward(x, 2, 1, padding=1)
    dx = T.max_pool2d_backward(np.ones(out.shape), cache)
    np.testing.assert_array_equal(dx, fast.max_pool2d_backward(np.ones(out.shape), fast.max_pool2d_forward(x, 2, 1, 1)[1]))
    assert dx.sum() == out.size
    x = np.array([[[[1.0, np.nan], [3.0, 2.0]]]])
    out, cache = T.max_pool2d_forward(x, 2)
    assert np.isnan(out).all()
    np.testing.assert_array_equal(T.max_pool2d_backward(np.ones(out.shape), cache), [[[[0, 1], [0, 0]]]])


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (5, 4), (2, 3)])
def test_textbook_adaptive_pool_and_subsampling(size):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 4))
    out, cache = T.adaptive_avg_pool2d_forward(x, size)
    np.testing.assert_allclose(out, R.adaptive_avg_pool2d(x, size), rtol=1e-12)
    g = rng.standard_normal(out.shape)
    dx = T.adaptive_avg_pool2d_backward(g, cache)
    np.testing.assert_allclose(dx, fd(lambda t: T.adaptive_avg_pool2d_forward(t, size)[0], x, g), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx, fast.adaptive_avg_pool2d_backward(g, fast.adaptive_avg_pool2d_forward(x, size)[1]),
                               atol=1e-12)
    coeff, bias = rng.standard_normal(3), rng.standard_normal(3)
    out, cache = T.subsample_forward(x, coeff, bias)
    np.testing.assert_allclose(out, R.subsample(x, coeff, bias), rtol=1e-12)
    g = rng.standard_normal(out.shape)
    dx, dc, db = T.subsample_backward(g, cache)
    np.testing.assert_allclose(dx, fd(lambda t: T.subsample_forward(t, coeff, bias)[0], x, g), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dc, fd(lambda t: T.subsample_forward(x, t, bias)[0], coeff, g), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, g.sum(axis=(0, 2, 3)), rtol=1e-12)


# --------------------------------------------------------------------------- normalisation, element-wise, linear

@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("training,running,affine", [(True, True, True), (True, False, False), (False, True, True)])
def test_textbook_batch_norm(shape, training, running, affine):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape) * 2 + 1
    w, b = (rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)) if affine else (None, None)
    rm0, rv0 = rng.standard_normal(3), rng.uniform(0.5, 2, 3)

    def run(kset, xv, wv=w, bv=b):
        rm, rv = (rm0.copy(), rv0.copy()) if running else (None, None)
        out, cache = kset.batch_norm_forward(xv, rm, rv, wv, bv, training=training, momentum=0.2)
        return out, cache, rm, rv
    out, cache, rm, rv = run(T, x)
    fout, fcache, frm, frv = run(fast, x)
    np.testing.assert_allclose(out, fout, rtol=1e-12, atol=1e-12)
    if running:
        np.testing.assert_allclose(rm, frm, rtol=1e-12)
        np.testing.assert_allclose(rv, frv, rtol=1e-12)
    g = rng.standard_normal(shape)
    dx, dw, db = T.batch_norm_backward(g, cache)
    np.testing.assert_allclose(dx, fd(lambda t: run(T, t)[0], x, g), rtol=1e-6, atol=1e-8)
    if affine:
        np.testing.assert_allclose(dw, fd(lambda t: run(T, x, wv=t)[0], w, g), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(db, fd(lambda t: run(T, x, bv=t)[0], b, g), rtol=1e-6, atol=1e-8)
    for got, want in zip(fast.batch_norm_backward(g, fcache), (dx, dw, db)):
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_textbook_elementwise_and_linear():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 5))
    g = rng.standard_normal(x.shape)
    out, mask = T.relu_forward(x)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(T.relu_backward(g, mask), g * (x > 0))
    out, cache = T.scaled_tanh_forward(x, 1.7159, 2 / 3)
    np.testing.assert_allclose(out, 1.7159 * np.tanh(2 * x / 3), rtol=1e-12)
    np.testing.assert_allclose(T.scaled_tanh_backward(g, cache),
                               fd(lambda t: T.scaled_tanh_forward(t, 1.7159, 2 / 3)[0], x, g), rtol=1e-6, atol=1e-8)
    w, b = rng.standard_normal((6, 5)), rng.standard_normal(6)
    out, cache = T.linear_forward(x, w, b)
    np.testing.assert_allclose(out, R.linear(x, w, b), rtol=1e-12)
    g = rng.standard_normal(out.shape)
    dx, dw, db = T.linear_backward(g, cache)
    np.testing.assert_allclose(dx, fd(lambda t: T.linear_forward(t, w, b)[0], x, g), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, fd(lambda t: T.linear_forward(x, t, b)[0], w, g), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, g.reshape(-1, 6).sum(axis=0), rtol=1e-12)
    for got, want in zip(fast.linear_backward(g, fast.linear_forward(x, w, b)[1]), (dx, dw, db)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_textbook_kernels_keep_float32():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    for out, _ in (T.conv2d_forward(x, w, None, (1, 1), ((1, 1), (1, 1))), T.max_pool2d_forward(x, 2),
                   T.avg_pool2d_forward(x, 3, 2, 1), T.adaptive_avg_pool2d_forward(x, 4),
                   T.batch_norm_forward(x, None, None), T.scaled_tanh_forward(x, 1.7159, 2 / 3),
                   T.linear_forward(x, np.ones((5, 6), np.float32))):
        assert out.dtype == np.float32


def test_both_sets_refuse_bad_arguments_alike():
    x = np.zeros((1, 2, 4, 4), np.float32)
    for kset in (T, fast):
        with pytest.raises(ValueError, match="in_channels \\(2\\) must be divisible by groups \\(3\\)"):
            kset.conv2d_forward(x, np.zeros((3, 1, 3, 3), np.float32), None, 1, ((0, 0), (0, 0)), 1, 3)
        with pytest.raises(ValueError, match="padding should be at most half"):
            kset.max_pool2d_forward(x, 2, 2, 2)
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            kset.batch_norm_forward(np.zeros((1, 2), np.float32), None, None)
        out, cache = kset.max_pool2d_forward(x, 2)
        with pytest.raises(ValueError, match=r"max_pool2d_backward: grad must have the output's shape \(1, 2, 2, 2\)"):
            kset.max_pool2d_backward(np.zeros((1, 2, 3, 3), np.float32), cache)


# --------------------------------------------------------------------------- the switch

def test_use_switches_the_kernel_set_and_restores_it():
    assert kernels.mode() == os.environ.get("MINICNN_KERNELS", "fast")
    before = kernels.mode()
    with kernels.use("textbook"):
        assert kernels.mode() == "textbook" and kernels.active() is T
        out, cache = kernels.max_pool2d_forward(np.ones((1, 1, 2, 2)), 2)
        assert type(cache).__module__ == T.__name__
    assert kernels.mode() == before
    # a backward runs the set that made the cache, whatever is active by then
    with kernels.use("fast"):
        assert kernels.max_pool2d_backward(np.ones((1, 1, 1, 1)), cache).shape == (1, 1, 2, 2)
    with pytest.raises(ValueError, match="expected 'fast' or 'textbook', got 'slow'"):
        kernels.use("slow")


def test_a_model_trains_alike_in_both_modes():
    """One float64 LeNet-5 step through autograd: the same gradients from either kernel set."""
    grads = {}
    for name in ("fast", "textbook"):
        with kernels.use(name):
            minicnn.manual_seed(0)
            model = minicnn.architectures.get("lenet5").to(minicnn.float64)
            x = minicnn.tensor(np.random.default_rng(0).standard_normal((3, 1, 32, 32)))
            F.cross_entropy(model(x), minicnn.tensor([1, 2, 3])).backward()
            grads[name] = [p.grad.numpy() for p in model.parameters()]
    for a, b in zip(grads["fast"], grads["textbook"]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_a_bad_environment_value_is_a_clear_error():
    """``import minicnn`` works (a command line can still say it in one line); the first kernel
    call raises, naming the variable."""
    done = subprocess.run([sys.executable, "-c", "import minicnn; print('imported'); minicnn.randn(2).relu()"],
                          capture_output=True, text=True, env=dict(os.environ, MINICNN_KERNELS="turbo"), timeout=120)
    assert done.returncode != 0 and done.stdout == "imported\n"
    assert done.stderr.strip().splitlines()[-1] == "ValueError: MINICNN_KERNELS must be 'fast' or 'textbook', got 'turbo'"
