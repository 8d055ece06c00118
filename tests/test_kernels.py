"""Convolution, linear and dropout kernels: fast versions against the loop references and
against finite differences (pooling and normalisation are in test_kernels_pool_norm.py)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn.kernels import fast
from minicnn.kernels.fast import conv as conv_module
from minicnn.kernels import reference as R
from minicnn.kernels import (col2im, conv2d_backward, conv2d_forward, dropout_backward, dropout_forward, im2col,
                             linear_backward, linear_forward, normalize_conv_padding)


def close(actual, expected, dtype=np.float64):
    """Tight for float64, float32-sized for float32."""
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(actual, expected, **tol)


# --------------------------------------------------------------------------- convolution cases


@st.composite
def conv_cases(draw, max_hw=7, max_groups=3):
    """A random valid convolution: groups up to ``max_groups`` (depthwise included), dilation, stride,
    asymmetric padding, non-square kernels and inputs, batch and channels down to 1."""
    groups = draw(st.integers(1, max_groups))
    cin_g = draw(st.integers(1, 2))
    cout_g = draw(st.integers(1, 2))
    n = draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pt, pb, pl, pr = (draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pt - pb), max_hw))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pl - pr), max_hw))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return dict(shape=(n, groups * cin_g, h, w), wshape=(groups * cout_g, cin_g, kh, kw), stride=(sh, sw),
                padding=((pt, pb), (pl, pr)), dilation=(dh, dw), groups=groups, bias=bias, seed=seed)


def make_conv(case, dtype=np.float64):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(dtype)
    w = rng.standard_normal(case["wshape"]).astype(dtype)
    b = rng.standard_normal(case["wshape"][0]).astype(dtype) if case["bias"] else None
    return x, w, b


def conv_args(case):
    return case["stride"], case["padding"], case["dilation"], case["groups"]


@settings(max_examples=60)
@given(conv_cases())
def test_conv_forward_and_backward_match_reference(case):
    x, w, b = make_conv(case)
    out, cache = conv2d_forward(x, w, b, *conv_args(case))
    close(out, R.conv2d(x, w, b, *conv_args(case)))
    g = np.random.default_rng(case["seed"] + 1).standard_normal(out.shape)
    dx, dw, db = conv2d_backward(g, cache)
    rdx, rdw, rdb = R.conv2d_backward(g, x, w, *conv_args(case))
    close(dx, rdx)
    close(dw, rdw)
    if b is None:
        assert db is None
    else:
        close(db, rdb)


@settings(max_examples=25)
@given(conv_cases(max_hw=5))
def test_conv_float32_keeps_dtype_and_matches(case):
    x, w, b = make_conv(case, np.float32)
    out, cache = conv2d_forward(x, w, b, *conv_args(case))
    assert out.dtype == np.float32
    close(out, R.conv2d(x, w, b, *conv_args(case)), np.float32)
    g = np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)
    dx, dw, db = conv2d_backward(g, cache)
    assert dx.dtype == dw.dtype == np.float32 and (db is None or db.dtype == np.float32)
    rdx, rdw, _ = R.conv2d_backward(g, x, w, *conv_args(case))
    close(dx, rdx, np.float32)
    close(dw, rdw, np.float32)


@settings(max_examples=12)
@given(conv_cases(max_hw=5))
def test_conv_backward_matches_finite_differences(case):
    x, w, b = make_conv(case)
    args = conv_args(case)
    out, cache = conv2d_forward(x, w, b, *args)
    g = np.random.default_rng(case["seed"] + 7).standard_normal(out.shape)
    dx, dw, db = conv2d_backward(g, cache)
    np.testing.assert_allclose(dx, R.numerical_gradient(lambda v: conv2d_forward(v, w, b, *args)[0], x, g),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, R.numerical_gradient(lambda v: conv2d_forward(x, v, b, *args)[0], w, g),
                               rtol=1e-6, atol=1e-7)
    if b is not None:
        np.testing.assert_allclose(db, R.numerical_gradient(lambda v: conv2d_forward(x, w, v, *args)[0], b, g),
                                   rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("transposed", [True, False])
@pytest.mark.parametrize("stride,padding,dilation,groups", [
    ((1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((1, 1), ((0, 2), (3, 0)), (2, 1), 2),       # padding larger than the kernel reach on one side
    ((1, 1), ((0, 0), (0, 0)), (1, 1), 4),       # depthwise
    ((2, 1), ((1, 0), (1, 1)), (1, 2), 1),
])
def test_conv_both_dx_routes_and_batch_chunks(monkeypatch, transposed, stride, padding, dilation, groups):
    """dx by col2im and by the transposed convolution agree with the reference, also when the output
    is cut into bands of rows of one image, or into chunks of 2 images (with a remainder)."""
    monkeypatch.setattr(conv_module, "dx_by_transposed_conv",
                        lambda xp, g: transposed and g.stride == (1, 1))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4, 6, 7))
    w = rng.standard_normal((8, 4 // groups, 3, 2))
    b = rng.standard_normal(8)
    expected = R.conv2d(x, w, b, stride, padding, dilation, groups)
    g = rng.standard_normal(expected.shape)
    rdx, rdw, rdb = R.conv2d_backward(g, x, w, stride, padding, dilation, groups)
    per_row = 4 * 3 * 2 * expected.shape[3] * 8          # bytes of columns per output row
    per_image = per_row * expected.shape[2]
    monkeypatch.setattr(conv_module, "MIN_GEMM_COLUMNS", 1)
    monkeypatch.setattr(conv_module, "MIN_BAND_COLUMNS", 1)
    # bands of 1 and 2 output rows of one image, 2 images at a time (5 = 2 + 2 + 1), all at once
    for chunk_bytes in (1, 2 * per_row, 2 * per_image, 1 << 30):
        monkeypatch.setattr(conv_module, "CPU_CHUNK_BYTES", chunk_bytes)
        out, cache = conv2d_forward(x, w, b, stride, padding, dilation, groups)
        close(out, expected)
        dx, dw, db = conv2d_backward(g, cache)
        close(dx, rdx)
        close(dw, rdw)
        close(db, rdb)


def test_conv_pointwise_1x1_and_need_flags():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 5, 4))
    w = rng.standard_normal((4, 3, 1, 1))          # 1x1 with 2 groups: the plain-GEMM path
    out, cache = conv2d_forward(x, w, None, 1, ((0, 0), (0, 0)), 1, 2)
    close(out, R.conv2d(x, w, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 2))
    g = rng.standard_normal(out.shape)
    rdx, rdw, _ = R.conv2d_backward(g, x, w, (1, 1), ((0, 0), (0, 0)), (1, 1), 2)
    dx, dw, db = conv2d_backward(g, cache)
    close(dx, rdx)
    close(dw, rdw)
    assert db is None
    dx, dw, db = conv2d_backward(g, cache, need_x=False)
    assert dx is None
    close(dw, rdw)
    w3 = rng.standard_normal((5, 6, 3, 3))
    b3 = rng.standard_normal(5)
    out, cache = conv2d_forward(x, w3, b3, 1, ((1, 1), (1, 1)), 1, 1)
    g = rng.standard_normal(out.shape)
    rdx, rdw, rdb = R.conv2d_backward(g, x, w3, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    dx, dw, db = conv2d_backward(g, cache, need_w=False, need_b=False)
    assert dw is None and db is None
    close(dx, rdx)
    dx, dw, db = conv2d_backward(g, cache, need_x=False)
    assert dx is None
    close(dw, rdw)
    close(db, rdb)


def test_conv_results_do_not_alias_reused_scratch_buffers():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    for stride in (1, 2):
        out, cache = conv2d_forward(x, w, None, stride, ((1, 1), (1, 1)))
        first = conv2d_backward(np.ones(out.shape), cache)
        kept = [a.copy() for a in first[:2]]
        conv2d_forward(x * 2, w, None, stride, ((1, 1), (1, 1)))
        conv2d_backward(np.full(out.shape, 3.0), cache)
        for a, b in zip(first[:2], kept):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kernel", [1, 3])
def test_conv_empty_batch(kernel):
    x, w = np.zeros((0, 2, 5, 5), np.float32), np.ones((3, 2, kernel, kernel), np.float32)
    out, cache = conv2d_forward(x, w, np.ones(3, np.float32))
    assert out.shape == (0, 3, 6 - kernel, 6 - kernel) and out.dtype == np.float32
    dx, dw, db = conv2d_backward(out, cache)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw, np.zeros_like(w))
    np.testing.assert_array_equal(db, np.zeros(3))


def test_conv_hand_computed():
    """A 3x3 image, 2x2 kernel of ones, stride 1: each output is the sum of a 2x2 block."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    out, cache = conv2d_forward(x, np.ones((1, 1, 2, 2)), np.array([0.5]))
    np.testing.assert_array_equal(out, [[[[8.5, 12.5], [20.5, 24.5]]]])
    dx, dw, db = conv2d_backward(np.ones((1, 1, 2, 2)), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    np.testing.assert_array_equal(dw[0, 0], [[8, 12], [20, 24]])
    np.testing.assert_array_equal(db, [4.0])


@settings(max_examples=30)
@given(conv_cases())
def test_col2im_is_the_adjoint_of_im2col(case):
    """<im2col(x), c> == <x, col2im(c)> for every x and c: the defining property of the backward."""
    x, _, _ = make_conv(case)
    kernel = case["wshape"][2:]
    cols = im2col(x, kernel, case["stride"], case["padding"], case["dilation"])
    c = np.random.default_rng(case["seed"]).standard_normal(cols.shape)
    back = col2im(c, x.shape, kernel, case["stride"], case["padding"], case["dilation"])
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols * c), np.sum(x * back), rtol=1e-10, atol=1e-10)


def test_im2col_layout():
    x = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
    cols = im2col(x, (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1))
    assert cols.shape == (1, 2, 2, 2, 2, 2) and cols.dtype == np.float32
    np.testing.assert_array_equal(cols[0, 0, 0, 0], [[0, 1], [3, 4]])       # top-left of every window, image 0
    np.testing.assert_array_equal(cols[0, 1, 1, 1], [[13, 14], [16, 17]])   # bottom-right, image 1
    padded = im2col(x, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1))
    np.testing.assert_array_equal(padded[0, :, :, 0, 0, 0], [[0, 0, 0], [0, 0, 1], [0, 3, 4]])


# --------------------------------------------------------------------------- padding


@pytest.mark.parametrize("padding,kernel,stride,dilation,expected", [
    (0, 3, 1, 1, ((0, 0), (0, 0))),
    (2, 3, 1, 1, ((2, 2), (2, 2))),
    ((1, 2), 3, 2, 1, ((1, 1), (2, 2))),
    ("valid", 5, 1, 1, ((0, 0), (0, 0))),
    ("same", 3, 1, 1, ((1, 1), (1, 1))),
    ("same", (4, 5), 1, 1, ((1, 2), (2, 2))),     # even kernel: the extra row goes to the bottom
    ("same", 3, 1, (2, 3), ((2, 2), (3, 3))),
    ("same", 2, 1, 3, ((1, 2), (1, 2))),
    ((1, 2, 3, 4), 3, 1, 1, ((1, 2), (3, 4))),
    (((0, 1), (2, 0)), 3, 1, 1, ((0, 1), (2, 0))),
])
def test_normalize_conv_padding(padding, kernel, stride, dilation, expected):
    assert normalize_conv_padding(padding, kernel, stride, dilation) == expected


@pytest.mark.parametrize("kernel,dilation", [((4, 5), (1, 1)), ((2, 3), (3, 2)), ((3, 3), (1, 1))])
def test_same_padding_keeps_size_and_matches_explicit(kernel, dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 7, 6))
    w = rng.standard_normal((3, 2, *kernel))
    padding = normalize_conv_padding("same", kernel, 1, dilation)
    out, _ = conv2d_forward(x, w, None, 1, padding, dilation)
    assert out.shape == (1, 3, 7, 6)
    close(out, R.conv2d(x, w, None, (1, 1), padding, dilation))


@pytest.mark.parametrize("padding,stride,message", [
    ("same", 2, "not supported for strided"),
    ("full", 1, "'valid' or 'same'"),
    (-1, 1, "non-negative"),
    ((1, 2, 3), 1, "4-tuple"),
])
def test_normalize_conv_padding_errors(padding, stride, message):
    with pytest.raises(ValueError, match=message):
        normalize_conv_padding(padding, 3, stride, 1)


# --------------------------------------------------------------------------- conv errors


def test_conv_errors_name_the_op_and_the_problem():
    x = np.zeros((2, 4, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"conv2d: weight must be 4-D \(out_channels, in_channels/groups, kH, kW\), "
                                         r"got shape \(3, 3\)"):
        conv2d_forward(x, np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match=r"conv2d: x must be 4-D \(N, C, H, W\), got shape \(4, 5, 5\)"):
        conv2d_forward(x[0], np.zeros((2, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"in_channels \(4\) must be divisible by groups \(3\)"):
        conv2d_forward(x, np.zeros((3, 1, 3, 3), np.float32), groups=3)
    with pytest.raises(ValueError, match=r"out_channels \(3, weight.shape\[0\]\) must be divisible by groups \(2\)"):
        conv2d_forward(x, np.zeros((3, 2, 3, 3), np.float32), groups=2)
    with pytest.raises(ValueError, match=r"expects 2 input channels .* but x has 4 channels"):
        conv2d_forward(x, np.zeros((3, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"kernel \(8x8, dilation \(1, 1\)\) is larger than the padded input \(7x7"):
        conv2d_forward(x, np.zeros((1, 4, 8, 8), np.float32), padding=((1, 1), (1, 1)))
    with pytest.raises(ValueError, match=r"kernel .* dilation \(3, 3\)\) is larger than the padded input"):
        conv2d_forward(x, np.zeros((1, 4, 3, 3), np.float32), dilation=3)
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(2,\)"):
        conv2d_forward(x, np.zeros((2, 4, 3, 3), np.float32), np.zeros(3, np.float32))
    with pytest.raises(TypeError, match=r"conv2d: weight has dtype float64 but the input has dtype float32"):
        conv2d_forward(x, np.zeros((2, 4, 3, 3)))
    with pytest.raises(TypeError, match=r"conv2d: x must be a floating-point array, got dtype int64"):
        conv2d_forward(np.zeros((1, 1, 3, 3), np.int64), np.zeros((1, 1, 1, 1)))
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1"):
        conv2d_forward(x, np.zeros((2, 4, 3, 3), np.float32), stride=0)
    with pytest.raises(ValueError, match=r"conv2d: padding must be normalised"):
        conv2d_forward(x, np.zeros((2, 4, 3, 3), np.float32), padding=1)
    out, cache = conv2d_forward(x, np.zeros((2, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"conv2d_backward: grad must have the output's shape \(2, 2, 3, 3\)"):
        conv2d_backward(np.zeros((2, 2, 5, 5), np.float32), cache)


# --------------------------------------------------------------------------- linear


@settings(max_examples=20)
@given(st.lists(st.integers(1, 3), min_size=0, max_size=2), st.integers(1, 4), st.integers(1, 4),
       st.booleans(), st.integers(0, 1000))
def test_linear_matches_reference_and_finite_differences(lead, n_in, n_out, has_bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, n_in))
    w = rng.standard_normal((n_out, n_in))
    b = rng.standard_normal(n_out) if has_bias else None
    out, cache = linear_forward(x, w, b)
    close(out, R.linear(x, w, b))
    g = rng.standard_normal(out.shape)
    dx, dw, db = linear_backward(g, cache)
    np.testing.assert_allclose(dx, R.numerical_gradient(lambda v: linear_forward(v, w, b)[0], x, g), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, R.numerical_gradient(lambda v: linear_forward(x, v, b)[0], w, g), rtol=1e-6, atol=1e-8)
    if has_bias:
        np.testing.assert_allclose(db, R.numerical_gradient(lambda v: linear_forward(x, w, v)[0], b, g),
                                   rtol=1e-6, atol=1e-8)
    else:
        assert db is None


def test_linear_float32_and_errors():
    x = np.ones((2, 3), np.float32)
    w = np.full((4, 3), 0.5, np.float32)
    out, cache = linear_forward(x, w, np.arange(4, dtype=np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.5, 2.5, 3.5, 4.5]] * 2)
    dx, dw, db = linear_backward(np.ones((2, 4), np.float32), cache, need_w=False)
    assert dw is None and dx.dtype == np.float32
    np.testing.assert_array_equal(dx, np.full((2, 3), 2.0))
    np.testing.assert_array_equal(db, [2, 2, 2, 2])
    with pytest.raises(ValueError, match=r"linear: weight must be 2-D \(out_features, in_features\), got shape \(3,\)"):
        linear_forward(x, np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"linear: x has 3 features in its last dimension but weight expects 5"):
        linear_forward(x, np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(4,\)"):
        linear_forward(x, w, np.ones(3, np.float32))


# --------------------------------------------------------------------------- dropout


def test_dropout_is_seeded_scaled_and_unbiased():
    x = np.random.default_rng(0).uniform(1.0, 2.0, size=(200, 500)).astype(np.float32)
    out1, mask1 = dropout_forward(x, 0.3, True, np.random.default_rng(42))
    out2, mask2 = dropout_forward(x, 0.3, True, np.random.default_rng(42))
    out3, _ = dropout_forward(x, 0.3, True, np.random.default_rng(43))
    np.testing.assert_array_equal(out1, out2)                  # same seed, same mask
    assert not np.array_equal(out1, out3)
    assert out1.dtype == mask1.dtype == np.float32
    kept = out1 != 0
    np.testing.assert_allclose(out1[kept], x[kept] / np.float32(0.7), rtol=1e-6)   # survivors scaled by 1/(1-p)
    assert set(np.unique(mask1)) == {np.float32(0.0), np.float32(1 / 0.7)}
    assert abs(1 - kept.mean() - 0.3) < 0.01                  # about p of them dropped
    assert abs(out1.mean() / x.mean() - 1) < 0.01              # the mean is preserved
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(dropout_backward(g, mask1), g * mask1)
    assert np.all(dropout_backward(g, mask1)[~kept] == 0)


def test_dropout_identity_when_not_training_or_p_zero():
    x = np.arange(6.0).reshape(2, 3)
    rng = np.random.default_rng(0)
    for p, training in ((0.5, False), (0.0, True)):
        out, mask = dropout_forward(x, p, training, rng)
        assert out is x and mask is None
        g = np.ones_like(x)
        assert dropout_backward(g, mask) is g


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, "half"])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"dropout: p must be a probability in \[0, 1\)"):
        dropout_forward(np.ones(3), p, True, np.random.default_rng(0))


@pytest.mark.parametrize("channels_last", [True, False])
@given(case=conv_cases(max_groups=1))
def test_conv_channels_last_route_matches_reference(channels_last, case):
    """The channels-last im2col (small images, groups=1) gives the reference's output, dx and dw."""
    assert case["groups"] == 1           # generated so: no example is thrown away
    original = conv_module.use_channels_last
    conv_module.use_channels_last = lambda xp, *args: channels_last and xp is np
    try:
        x, w, b = make_conv(case)
        out, cache = conv2d_forward(x, w, b, *conv_args(case))
        close(out, R.conv2d(x, w, b, *conv_args(case)))
        g = np.random.default_rng(case["seed"] + 1).standard_normal(out.shape)
        dx, dw, _ = conv2d_backward(g, cache)
        rdx, rdw, _ = R.conv2d_backward(g, x, w, *conv_args(case))
        close(dx, rdx)
        close(dw, rdw)
    finally:
        conv_module.use_channels_last = original


def test_channels_last_thresholds():
    assert conv_module.use_channels_last(np, 64, 1, 8, 64 * 64, 64)          # ResNet-18 layer1 at 32x32
    assert not conv_module.use_channels_last(np, 512, 1, 1, 64, 512)         # weight outweighs the columns
    assert not conv_module.use_channels_last(np, 64, 1, 56, 8 * 56 * 56, 64)  # large images
    assert not conv_module.use_channels_last(np, 64, 2, 8, 4096, 64)         # groups


@pytest.mark.parametrize("kernel,stride,padding,dilation", [((3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1)),
                                                            ((2, 3), (1, 2), ((0, 1), (2, 0)), (2, 1)),
                                                            ((1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1))])
def test_channels_last_col2im_is_the_adjoint_of_channels_last_cols(kernel, stride, padding, dilation):
    """<cols(x), d> = <x, col2im(d)> for every x and d: col2im is exactly the transpose of im2col."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 7, 6))
    cols = conv_module.channels_last_cols(x, kernel, stride, padding, dilation).copy()
    d = rng.standard_normal(cols.shape)
    back = conv_module.channels_last_col2im(d, np.empty_like(x), kernel, stride, padding, dilation)
    np.testing.assert_allclose((cols * d).sum(), (x * back).sum(), rtol=1e-12)


@pytest.mark.parametrize("n, stride", [(3, 1), (1, 2), (0, 1)])
def test_conv_whose_kernel_covers_the_input_is_a_fully_connected_layer(n, stride):
    """LeNet-5's C5 (kernel = input size, no padding) takes the matrix-product route: same numbers."""
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((n, 4, 5, 5)), rng.standard_normal((6, 4, 5, 5)), rng.standard_normal(6)
    out, cache = fast.conv2d_forward(x, w, b, stride=stride)
    assert cache.geom.full_window and out.shape == (n, 6, 1, 1)
    np.testing.assert_allclose(out, R.conv2d(x, w, b, (stride, stride)), atol=1e-12)
    grad = rng.standard_normal(out.shape)
    for got, want in zip(fast.conv2d_backward(grad, cache), R.conv2d_backward(grad, x, w, (stride, stride))):
        np.testing.assert_allclose(got, want, atol=1e-12)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    out32, cache32 = fast.conv2d_forward(x32, w32)
    assert out32.dtype == np.float32 and all(a.dtype == np.float32 for a in fast.conv2d_backward(out32, cache32)[:2])
