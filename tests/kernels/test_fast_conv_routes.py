"""The fast convolution's routes added for speed, against the loop reference and the textbook kernel,
on one thread and on several: kernels cut to their live taps on small padded maps, and the routes
for images with few channels."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn.kernels import fast, reference as R, textbook as T
from minicnn.kernels.fast import conv, rows
from minicnn.kernels.geometry import conv_geometry, conv_output_size
from threaded import fast_kernels_on, shared_fixture


@pytest.fixture(params=[1, 3], ids=["1-thread", "3-threads"])
def threads(request, monkeypatch):
    """One thread, or three with every minimum slice size at zero (so small shapes are really cut)."""
    with fast_kernels_on(request.param, monkeypatch) as n:
        yield n


def check_conv(x, w, b, stride, padding, dilation=(1, 1), groups=1, need_x=True, rtol=1e-9, loops=True):
    """The fast kernel against the loop reference (unless not ``loops``: slow for big shapes) and the
    textbook kernel, forward and backward."""
    out, cache = fast.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    tout, tcache = T.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    ref = R.conv2d(x, w, b, stride, padding, dilation, groups) if loops else tout
    atol = rtol * max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=atol)
    np.testing.assert_allclose(out, tout, rtol=rtol, atol=atol)
    g = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
    got = fast.conv2d_backward(g, cache, need_x=need_x)
    textbook = T.conv2d_backward(g, tcache, need_x=need_x)
    want = R.conv2d_backward(g, x, w, stride, padding, dilation, groups) if loops else textbook
    for name, a, r, t in zip(("dx", "dw", "db"), got, want, textbook):
        if t is None:
            assert a is None, name
            continue
        assert a.dtype == x.dtype and a.shape == t.shape, name
        scale = max(1.0, float(np.abs(r).max()))
        np.testing.assert_allclose(a, r, rtol=rtol, atol=rtol * scale, err_msg=name)
        np.testing.assert_allclose(a, t, rtol=rtol, atol=rtol * scale, err_msg=name)


# --------------------------------------------------------------------------- taps that read only padding


@st.composite
def small_padded_maps(draw):
    k = draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pads = tuple(draw(st.integers(0, k - 1)) for _ in range(4))
    low_h, low_w = max(1, k - pads[0] - pads[1]), max(1, k - pads[2] - pads[3])    # the kernel must fit
    h, w = draw(st.integers(low_h, max(low_h, 4))), draw(st.integers(low_w, max(low_w, 4)))
    c, o = draw(st.integers(1, 20)), draw(st.integers(1, 6))
    return (draw(st.integers(1, 5)), c, h, w), (o, c, k, k), stride, ((pads[0], pads[1]), (pads[2], pads[3]))


@shared_fixture(30)
@given(small_padded_maps(), st.booleans(), st.integers(0, 2**16))
def test_kernels_cut_to_their_live_taps_compute_the_same_convolution(threads, case, has_bias, seed):
    xs, ws, stride, padding = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    check_conv(x, w, rng.standard_normal(ws[0]) if has_bias else None, stride, padding)


@settings(max_examples=60)
@given(small_padded_maps())
def test_cutting_dead_taps_keeps_the_output_size_and_the_padding_non_negative(case):
    xs, ws, stride, padding = case
    g = conv_geometry(np.empty(xs), np.empty(ws), None, stride, padding, (1, 1), 1)
    cut, weight, window = conv.crop_dead_taps(g, np.zeros(ws))
    (t, b), (l, r) = cut.padding
    assert min(t, b, l, r) >= 0
    assert conv_output_size(g.H, cut.kh, g.stride[0], t, b, 1) == g.Ho
    assert conv_output_size(g.W, cut.kw, g.stride[1], l, r, 1) == g.Wo
    assert weight.shape == (ws[0], ws[1], cut.kh, cut.kw)
    if window is None:
        assert cut == g


def test_a_3x3_kernel_on_a_1x1_map_keeps_only_its_centre():
    g = conv_geometry(np.empty((2, 4, 1, 1)), np.empty((3, 4, 3, 3)), None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    cut, weight, window = conv.crop_dead_taps(g, np.arange(3 * 4 * 9.0).reshape(3, 4, 3, 3))
    assert window == (1, 2, 1, 2) and (cut.kh, cut.kw, cut.padding) == (1, 1, ((0, 0), (0, 0)))
    assert cut.full_window
    np.testing.assert_array_equal(weight[..., 0, 0], np.arange(3 * 4 * 9.0).reshape(3, 4, 3, 3)[..., 1, 1])


# --------------------------------------------------------------------------- whole-row columns (few channels)


@pytest.fixture
def rows_route(monkeypatch):
    """Every stride-1 convolution of these tests takes the whole-row route, in blocks of a few images;
    the calls made to it are counted."""
    monkeypatch.setattr(rows, "ROWS_MAX_WIDENING", 100.0)
    monkeypatch.setattr(conv, "ROWS_MAX_K_FORWARD", 10**6)
    monkeypatch.setattr(conv, "ROWS_MAX_K_DX", 10**6)
    monkeypatch.setattr(conv, "CPU_CHUNK_BYTES", 2000)
    calls = {"convolve_into": 0, "input_gradient_into": 0}

    def counting(name, f):
        def counted(*args, **kwargs):
            calls[name] += 1
            return f(*args, **kwargs)
        return counted

    for name in calls:
        monkeypatch.setattr(rows, name, counting(name, getattr(rows, name)))
    return calls


@st.composite
def few_channel_cases(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    h = draw(st.integers(max(1, kh - pads[0] - pads[1]), 9))
    w = draw(st.integers(max(1, kw - pads[2] - pads[3]), 9))
    return ((draw(st.integers(1, 6)), draw(st.integers(1, 4)), h, w), (draw(st.integers(1, 5)), kh, kw),
            ((pads[0], pads[1]), (pads[2], pads[3])))


@shared_fixture(30)
@given(few_channel_cases(), st.booleans(), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**16))
def test_whole_row_route_matches_the_reference(threads, rows_route, case, has_bias, dtype, seed):
    (n, c, h, w), (o, kh, kw), padding = case
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal((n, c, h, w)).astype(dtype), rng.standard_normal((o, c, kh, kw)).astype(dtype)
    bias = rng.standard_normal(o).astype(dtype) if has_bias else None
    before = dict(rows_route)
    check_conv(x, wt, bias, (1, 1), padding, rtol=1e-9 if dtype == np.float64 else 2e-5)
    g, _, _ = conv.crop_dead_taps(conv_geometry(x, wt, bias, (1, 1), padding, (1, 1), 1), wt)
    if not (g.pointwise or g.full_window or conv.use_unrolled(np, g, x.dtype.itemsize)):     # (routes of their own)
        assert rows_route["convolve_into"] > before["convolve_into"]
        assert rows_route["input_gradient_into"] > before["input_gradient_into"]


@pytest.mark.parametrize("shape,weight,padding,need_x", [((7, 1, 32, 32), (6, 1, 5, 5), 0, False),
                                                         ((5, 6, 14, 14), (16, 6, 5, 5), 0, True),
                                                         ((3, 20, 16, 16), (50, 20, 5, 5), 2, True),
                                                         ((4, 1, 32, 32), (20, 1, 5, 5), 2, False)])
def test_lenet_layers_on_their_default_routes_match_the_textbook_kernel(threads, shape, weight, padding, need_x):
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal(shape), rng.standard_normal(weight), rng.standard_normal(weight[0])
    check_conv(x, w, b, (1, 1), ((padding,) * 2,) * 2, need_x=need_x, loops=False)


# --------------------------------------------------------------------------- the unrolled weight (tiny maps)


UNROLLED_BACKWARD = conv.unrolled.backward


@st.composite
def tiny_maps(draw):
    k = draw(st.integers(2, 4))
    h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.integers(0, k - 1)) for _ in range(4))
    if h + pads[0] + pads[1] < k:
        pads = (pads[0], k - h - pads[0]) + pads[2:]
    if w + pads[2] + pads[3] < k:
        pads = pads[:3] + (k - w - pads[2],)
    return (draw(st.integers(1, 5)), draw(st.integers(1, 6)), h, w), (draw(st.integers(1, 5)), k), \
        stride, ((pads[0], pads[1]), (pads[2], pads[3]))


@shared_fixture(30)
@given(tiny_maps(), st.booleans(), st.booleans(), st.integers(0, 2**16))
def test_unrolled_weight_route_matches_the_reference(threads, monkeypatch, case, has_bias, need_x, seed):
    (n, c, h, w), (o, k), stride, padding = case
    calls = []
    monkeypatch.setattr(conv.unrolled, "backward", lambda *a: calls.append(1) or UNROLLED_BACKWARD(*a))
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, k, k))
    check_conv(x, wt, rng.standard_normal(o) if has_bias else None, stride, padding, need_x=need_x)
    g, _, _ = conv.crop_dead_taps(conv_geometry(x, wt, None, stride, padding, (1, 1), 1), wt)
    assert bool(calls) == (conv.use_unrolled(np, g, x.dtype.itemsize) and not g.full_window)


def test_resnet_2x2_layer_takes_the_unrolled_route_and_matches_the_textbook_kernel(threads):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((6, 32, 2, 2)), rng.standard_normal((48, 32, 3, 3))
    g = conv_geometry(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert conv.use_unrolled(np, g, x.dtype.itemsize) and not conv.crop_dead_taps(g, w)[2]
    check_conv(x, w, rng.standard_normal(48), (1, 1), ((1, 1), (1, 1)), loops=False)


@pytest.mark.parametrize("shape,weight,padding", [((0, 32, 2, 2), (48, 32, 3, 3), 1),     # unrolled weight
                                                  ((0, 6, 14, 14), (16, 6, 5, 5), 0),      # whole rows
                                                  ((0, 512, 1, 1), (64, 512, 3, 3), 1)])   # cut to the centre
def test_an_empty_batch_on_the_new_routes(threads, shape, weight, padding):
    rng = np.random.default_rng(0)
    w = rng.standard_normal(weight)
    out, cache = fast.conv2d_forward(np.zeros(shape), w, np.ones(weight[0]), (1, 1), ((padding,) * 2,) * 2)
    assert out.shape[:2] == (0, weight[0])
    dx, dw, db = fast.conv2d_backward(np.zeros(out.shape), cache)
    assert dx.shape == shape and not dw.any() and dw.shape == weight and not db.any()
