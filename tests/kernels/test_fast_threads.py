"""minicnn's CPU threads: the slicing helpers in ``backend``, and every threaded kernel checked
against the reference kernels and against its own one-thread result.

The ``threads`` fixture runs three threads (so slices are uneven) and sets every kernel's
minimum slice size to zero, so that the small shapes used here really take the threaded path.
"""
import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from threadpoolctl import threadpool_info

from minicnn import nn, optim
from minicnn import functional as F
from minicnn.autograd import Tensor
from minicnn.kernels.fast import conv, misc, norm, pool
from minicnn.kernels.fast import threads as fast_threads
from minicnn.kernels import reference as ref
from threaded import fast_kernels_on, shared_fixture


@pytest.fixture
def threads(monkeypatch):
    with fast_kernels_on(3, monkeypatch) as n:
        yield n


def one_thread(fn):
    """fn() run with a single minicnn thread (then the thread count is put back)."""
    before = fast_threads.get_num_threads()
    fast_threads.set_num_threads(1)
    try:
        return fn()
    finally:
        fast_threads.set_num_threads(before)


def blas_threads():
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


# --------------------------------------------------------------------------- the helpers


def test_batch_slices_cover_the_range_in_nearly_equal_contiguous_parts(threads):
    assert fast_threads.batch_slices(10) == [(0, 3), (3, 6), (6, 10)]
    assert fast_threads.batch_slices(2) == [(0, 1), (1, 2)]               # fewer items than threads
    assert fast_threads.batch_slices(0) == [(0, 0)]
    assert fast_threads.batch_slices(10, min_size=4) == [(0, 5), (5, 10)]  # no slice under 4 items
    assert fast_threads.batch_slices(10, min_size=11) == [(0, 10)]


def test_balanced_slices_split_by_total_size(threads):
    assert fast_threads.balanced_slices([10] * 9, min_total=1) == [(0, 3), (3, 6), (6, 9)]
    assert fast_threads.balanced_slices([100, 1, 1, 1], min_total=1) == [(0, 1), (1, 3), (3, 4)]
    assert fast_threads.balanced_slices([1, 1, 1, 100], min_total=1) == [(0, 4)]
    assert fast_threads.balanced_slices([10] * 9, min_total=1000) == [(0, 9)]   # too little work to share
    assert fast_threads.balanced_slices([], min_total=1) == [(0, 0)]


def test_parallel_map_returns_results_in_slice_order_from_several_threads(threads):
    barrier = threading.Barrier(3, timeout=10)      # only passes if the three slices run at the same time

    def work(start, stop):
        barrier.wait()
        return start, stop, threading.get_ident()
    results = fast_threads.parallel_map(work, [(0, 1), (1, 2), (2, 3)])
    assert [r[:2] for r in results] == [(0, 1), (1, 2), (2, 3)]
    assert len({r[2] for r in results}) == 3
    assert results[-1][2] == threading.get_ident()  # the caller takes the last slice


def test_parallel_map_raises_a_worker_exception_in_the_caller(threads):
    def work(start, stop):
        if start == 0:
            raise ValueError("slice 0 failed")
        return start
    with pytest.raises(ValueError, match="slice 0 failed"):
        fast_threads.parallel_map(work, [(0, 1), (1, 2), (2, 3)])
    assert fast_threads.parallel_map(lambda a, b: a, [(0, 1), (1, 2), (2, 3)]) == [0, 1, 2]   # still usable


def test_parallel_map_waits_for_every_slice_before_raising_the_callers_failure(threads):
    finished = []

    def work(start, stop):
        if start == 2:                   # the caller's own slice fails at once...
            raise ValueError("caller's slice failed")
        time.sleep(0.2)                  # ... while the workers are still busy
        finished.append(start)
    with pytest.raises(ValueError, match="caller's slice failed"):
        fast_threads.parallel_map(work, [(0, 1), (1, 2), (2, 3)])
    assert sorted(finished) == [0, 1]


def test_parallel_map_runs_everything_in_the_caller_inside_a_slice_or_with_one_thread(threads):
    caller = threading.get_ident()
    inner = fast_threads.parallel_map(lambda a, b: fast_threads.parallel_map(lambda c, d: threading.get_ident(),
                                                                  [(0, 1), (1, 2)]), [(0, 1), (1, 2), (2, 3)])
    assert all(len(set(ids)) == 1 for ids in inner)      # no nested hand-off (it could deadlock)
    fast_threads.set_num_threads(1)
    assert fast_threads.parallel_map(lambda a, b: threading.get_ident(), [(0, 1), (1, 2)]) == [caller, caller]


def test_a_heavy_single_slice_lets_blas_use_minicnns_threads(threads):
    fast_threads.parallel_map(lambda a, b: None, [(0, 1), (1, 2)])      # BLAS now held at one thread
    inside = fast_threads.parallel_map(lambda a, b: blas_threads(), [(0, 1)], heavy=True)[0]
    assert inside == [3] * len(inside) and blas_threads() == [1] * len(inside)
    assert fast_threads.parallel_map(lambda a, b: blas_threads(), [(0, 1)])[0] == [1] * len(inside)


def test_a_kernel_called_inside_a_slice_is_not_cut_again(threads):
    inner = fast_threads.parallel_map(lambda a, b: fast_threads.batch_slices(12), [(0, 1), (1, 2), (2, 3)])
    assert inner == [[(0, 12)]] * 3
    assert fast_threads.batch_slices(12) == [(0, 4), (4, 8), (8, 12)]


def test_blas_is_held_at_one_thread_while_minicnn_runs_threads_and_given_back_after():
    before_threads = fast_threads.get_num_threads()
    try:
        fast_threads.set_num_threads(1)                # BLAS has its own threads (an earlier test may have limited it)
        own = blas_threads()
        fast_threads.set_num_threads(2)
        fast_threads.parallel_map(lambda a, b: None, [(0, 1), (1, 2)])
        assert blas_threads() == [1] * len(own)
        fast_threads.set_num_threads(1)
        assert blas_threads() == own
    finally:
        fast_threads.set_num_threads(before_threads)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_non_positive_ints(bad):
    with pytest.raises(ValueError, match="set_num_threads: n must be a positive int"):
        fast_threads.set_num_threads(bad)


def test_default_thread_count_follows_the_environment(monkeypatch):
    monkeypatch.setenv("MINICNN_NUM_THREADS", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert fast_threads._default_num_threads() == 3
    monkeypatch.delenv("MINICNN_NUM_THREADS")
    assert fast_threads._default_num_threads() == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert fast_threads._default_num_threads() >= 1


# --------------------------------------------------------------------------- the threaded kernels


@shared_fixture()
@given(n=st.integers(1, 5), c=st.integers(1, 4), o=st.integers(1, 4), size=st.integers(3, 7),
       k=st.integers(1, 3), stride=st.integers(1, 2), pad=st.integers(0, 1), groups=st.sampled_from([1, 2]))
def test_threaded_conv2d_matches_the_reference(threads, n, c, o, size, k, stride, pad, groups):
    c, o = c * groups, o * groups
    rng = np.random.default_rng(n * 100 + size)
    x = rng.standard_normal((n, c, size, size))
    w = rng.standard_normal((o, c // groups, k, k))
    b = rng.standard_normal(o)
    padding = ((pad, pad), (pad, pad))
    out, cache = conv.conv2d_forward(x, w, b, (stride, stride), padding, groups=groups)
    np.testing.assert_allclose(out, ref.conv2d(x, w, b, (stride, stride), padding, groups=groups), atol=1e-10)
    grad = rng.standard_normal(out.shape)
    dx, dw, db = conv.conv2d_backward(grad, cache)
    rdx, rdw, rdb = ref.conv2d_backward(grad, x, w, (stride, stride), padding, groups=groups)
    np.testing.assert_allclose(dx, rdx, atol=1e-10)
    np.testing.assert_allclose(dw, rdw, atol=1e-10)
    np.testing.assert_allclose(db, rdb, atol=1e-10)


@pytest.mark.parametrize("shape, kernel, pad, groups", [
    ((7, 20, 16, 16), 5, 2, 1), ((5, 64, 6, 6), 3, 1, 1), ((9, 6, 14, 14), 5, 0, 1), ((6, 16, 5, 5), 5, 0, 1),
    ((5, 32, 7, 7), 1, 0, 1), ((5, 64, 9, 9), 3, 1, 2), ((4, 32, 7, 7), 1, 0, 4)])
def test_threaded_conv2d_agrees_with_one_thread_on_every_route(threads, shape, kernel, pad, groups):
    """Shapes that take the transposed-convolution, channels-last, col2im, full-window and 1x1 routes."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((24, shape[1] // groups, kernel, kernel)).astype(np.float32)
    padding = ((pad, pad), (pad, pad))
    out, cache = conv.conv2d_forward(x, w, None, padding=padding, groups=groups)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    dx, dw, _ = conv.conv2d_backward(grad, cache)
    out1, cache1 = one_thread(lambda: conv.conv2d_forward(x, w, None, padding=padding, groups=groups))
    dx1, dw1, _ = one_thread(lambda: conv.conv2d_backward(grad, cache1))
    assert out.dtype == dx.dtype == dw.dtype == np.float32
    # The same sums, but in blocks of other sizes (so BLAS may round differently), and dw in two parts.
    for got, want in ((out, out1), (dx, dx1), (dw, dw1)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4 * float(np.abs(want).max()))


@pytest.mark.parametrize("routes, shape, out_channels, kernel, pad, groups", [
    ({"transposed", "channels-last"}, (3, 32, 4, 4), 2, 3, 1, 1), ({"transposed"}, (3, 64, 3, 3), 4, 3, 1, 2),
    ({"channels-last"}, (3, 16, 4, 4), 3, 3, 1, 1), (set(), (3, 6, 6, 6), 4, 3, 0, 1),
    (set(), (3, 4, 12, 12), 4, 3, 1, 2), ({"full-window"}, (3, 6, 5, 5), 4, 5, 0, 1),
    ({"1x1"}, (3, 8, 5, 5), 6, 1, 0, 1), ({"1x1"}, (3, 32, 4, 4), 8, 1, 0, 4)])
def test_threaded_conv2d_matches_the_reference_on_every_route(threads, routes, shape, out_channels, kernel, pad,
                                                              groups):
    """Each route the kernel can take (the thresholds unpatched; none of them: im2col and col2im),
    threaded, against the loop reference."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((out_channels, shape[1] // groups, kernel, kernel))
    b = rng.standard_normal(out_channels)
    padding = ((pad, pad), (pad, pad))
    out, cache = conv.conv2d_forward(x, w, b, padding=padding, groups=groups)
    g = cache.geom
    taken = {"transposed": conv.dx_by_transposed_conv(np, g),
             "channels-last": conv.use_channels_last(np, g.C, g.groups, g.Wo, g.N * g.Ho * g.Wo, g.O),
             "full-window": g.full_window, "1x1": g.pointwise}
    assert {name for name, on in taken.items() if on} == routes
    assert len(conv._batch_slices(g, np)[0]) == 3                   # really cut for the three threads
    np.testing.assert_allclose(out, ref.conv2d(x, w, b, padding=padding, groups=groups), atol=1e-10)
    grad = rng.standard_normal(out.shape)
    for got, want in zip(conv.conv2d_backward(grad, cache),
                         ref.conv2d_backward(grad, x, w, padding=padding, groups=groups)):
        np.testing.assert_allclose(got, want, atol=1e-10)


@shared_fixture()
@given(n=st.integers(1, 6), size=st.integers(2, 9), k=st.integers(1, 3), stride=st.integers(1, 3),
       pad=st.integers(0, 1), ceil=st.booleans())
def test_threaded_pooling_matches_the_reference(threads, n, size, k, stride, pad, ceil):
    pad = min(pad, k // 2)
    if ref._pool_size(size, k, stride, pad, 1, ceil) < 1:
        return
    rng = np.random.default_rng(n * 10 + size)
    x = rng.permutation(n * 3 * size * size).reshape(n, 3, size, size).astype(np.float64)   # no ties
    out, cache = pool.max_pool2d_forward(x, k, stride, pad, ceil)
    rout, rargmax = ref.max_pool2d(x, (k, k), (stride, stride), (pad, pad), ceil_mode=ceil)
    np.testing.assert_array_equal(out, rout)
    grad = rng.standard_normal(out.shape)
    np.testing.assert_allclose(pool.max_pool2d_backward(grad, cache), ref.max_pool2d_backward(grad, x.shape, rargmax))
    out, cache = pool.avg_pool2d_forward(x, k, stride, pad, ceil)
    np.testing.assert_allclose(out, ref.avg_pool2d(x, (k, k), (stride, stride), (pad, pad), ceil), atol=1e-10)
    np.testing.assert_allclose(pool.avg_pool2d_backward(grad, cache),
                               ref.avg_pool2d_backward(grad, x.shape, (k, k), (stride, stride), (pad, pad), ceil),
                               atol=1e-10)


def test_threaded_subsampling_matches_the_reference(threads):
    rng = np.random.default_rng(1)
    x, coeff, bias = rng.standard_normal((5, 3, 8, 8)), rng.standard_normal(3), rng.standard_normal(3)
    out, cache = pool.subsample_forward(x, coeff, bias)
    np.testing.assert_allclose(out, ref.subsample(x, coeff, bias), atol=1e-12)
    grad = rng.standard_normal(out.shape)
    dx, dcoeff, dbias = pool.subsample_backward(grad, cache)
    expected_dx = np.repeat(np.repeat(grad * coeff[:, None, None], 2, axis=2), 2, axis=3)   # 2x2 windows tile x
    np.testing.assert_allclose(dx, expected_dx, atol=1e-12)
    np.testing.assert_allclose(dcoeff, (grad * ref.subsample(x, np.ones(3), None)).sum(axis=(0, 2, 3)), atol=1e-10)
    np.testing.assert_allclose(dbias, grad.sum(axis=(0, 2, 3)), atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 7, 3, 3), (6, 5), (3, 4, 2, 2, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_threaded_batch_norm_matches_the_reference_and_one_thread(threads, shape, training):
    """Forward against the reference, backward against finite differences of the reference, and both
    against the one-thread run."""
    rng = np.random.default_rng(2)
    C = shape[1]
    x, grad = rng.standard_normal(shape), rng.standard_normal(shape)
    weight, bias = rng.standard_normal(C), rng.standard_normal(C)
    running = [rng.standard_normal(C), rng.random(C) + 0.5]
    before = [r.copy() for r in running]
    out, cache = norm.batch_norm_forward(x, *running, weight, bias, training=training)
    mean, var = ref.batch_stats(x) if training else before
    np.testing.assert_allclose(out, ref.batch_norm(x, mean, var, weight, bias), atol=1e-10)
    if training:
        count = x.size // C
        np.testing.assert_allclose(running[0], 0.9 * before[0] + 0.1 * mean, atol=1e-12)
        np.testing.assert_allclose(running[1], 0.9 * before[1] + 0.1 * var * count / (count - 1), atol=1e-12)
    grads = norm.batch_norm_backward(grad, cache)

    def reference(x_, w_, b_):
        mean_, var_ = ref.batch_stats(x_) if training else before
        return ref.batch_norm(x_, mean_, var_, w_, b_)
    for got, want in zip(grads, (ref.numerical_gradient(lambda v: reference(v, weight, bias), x, grad),
                                 ref.numerical_gradient(lambda v: reference(x, v, bias), weight, grad),
                                 ref.numerical_gradient(lambda v: reference(x, weight, v), bias, grad))):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    fresh = [r.copy() for r in before]
    _, cache1 = one_thread(lambda: norm.batch_norm_forward(x, *fresh, weight, bias, training=training))
    for got, want in zip(grads, one_thread(lambda: norm.batch_norm_backward(grad, cache1))):
        np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("m, k, n", [(7, 5, 3), (3, 5, 11), (1, 4, 1), (0, 3, 4)])
def test_threaded_matmul_splits_the_longer_side(threads, m, k, n):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    np.testing.assert_allclose(misc.matmul(a, b), a @ b, atol=1e-12)
    np.testing.assert_allclose(misc.matmul(b.T, a.T), b.T @ a.T, atol=1e-12)   # strided operands


def test_threaded_linear_matches_the_reference(threads):
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 3, 6)), rng.standard_normal((5, 6)), rng.standard_normal(5)
    out, cache = misc.linear_forward(x, w, b)
    np.testing.assert_allclose(out, ref.linear(x, w, b), atol=1e-12)
    grad = rng.standard_normal(out.shape)
    dx, dw, db = misc.linear_backward(grad, cache)
    np.testing.assert_allclose(dx, grad @ w, atol=1e-12)
    np.testing.assert_allclose(dw, grad.reshape(-1, 5).T @ x.reshape(-1, 6), atol=1e-12)
    np.testing.assert_allclose(db, grad.reshape(-1, 5).sum(axis=0), atol=1e-12)


def sgd_by_hand(p, g, state, t, lr=0.1, momentum=0.9, weight_decay=1e-2):
    """torch.optim.SGD's documented update (no dampening, no Nesterov), in float64."""
    g = g + weight_decay * p
    state["buf"] = g if t == 1 else momentum * state["buf"] + g
    return p - lr * state["buf"]


def adam_by_hand(p, g, state, t, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
    """torch.optim.Adam's documented update, in float64."""
    state["m"] = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    state["v"] = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
    return p - lr * (state["m"] / (1 - beta1 ** t)) / (np.sqrt(state["v"] / (1 - beta2 ** t)) + eps)


@pytest.mark.parametrize("make, by_hand", [
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2), sgd_by_hand),
    (lambda ps: optim.Adam(ps, lr=0.01), adam_by_hand)])
def test_threaded_optimizer_step_equals_the_one_thread_step(threads, make, by_hand, monkeypatch):
    monkeypatch.setattr(misc, "balanced_slices", lambda sizes, min_total=0: _three_way(len(sizes)))
    threads_seen = set()
    rng = np.random.default_rng(5)
    shapes = [(4, 3), (7,), (2, 2, 2), (5,)]
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]

    def run():
        params = [nn.Parameter(Tensor(v.copy())) for v in values]
        opt = make(params)
        update = opt._update
        opt._update = lambda *args: (threads_seen.add(threading.get_ident()), update(*args))
        for _ in range(3):
            for p, g in zip(params, grads):
                p.grad = g.copy()
            opt.step()
        return [p.data for p in params]
    threaded = run()
    assert len(threads_seen) >= 2          # handed to a worker (which one takes which slice varies)
    threads_seen.clear()
    serial = one_thread(run)
    assert threads_seen == {threading.get_ident()}
    for got, want in zip(threaded, serial):
        np.testing.assert_array_equal(got, want)
    for got, p, g in zip(threaded, values, grads):           # and both are the documented update
        p, g, state = p.astype(np.float64), g.astype(np.float64), {}
        for t in (1, 2, 3):
            p = by_hand(p, g, state, t)
        np.testing.assert_allclose(got, p, rtol=1e-5, atol=1e-6)


def _three_way(n):
    return [(n * k // 3, n * (k + 1) // 3) for k in range(3)]


def test_elementwise_passes_matching_slices_of_every_array(threads):
    x = np.arange(20.0).reshape(5, 4)
    out = np.empty_like(x)
    seen = []

    def double(o, x):
        seen.append(len(x))
        np.multiply(x, 2, out=o)
    fast_threads.elementwise(double, out, x)
    np.testing.assert_array_equal(out, 2 * x)
    assert sorted(seen) == [1, 2, 2]
    scalar, result = np.array(3.0), np.empty(())
    fast_threads.elementwise(lambda o, x: np.add(x, 1, out=o), result, scalar)   # a 0-d array is one slice
    assert result == 4.0


@pytest.mark.parametrize("op, derivative", [
    (F.relu, lambda x: (x > 0).astype(x.dtype)),
    (F.scaled_tanh, lambda x: 1.7159 * 2 / 3 * (1 - np.tanh(2 * x / 3) ** 2))])
def test_threaded_activations_match_their_formulas(threads, op, derivative):
    rng = np.random.default_rng(6)
    x = Tensor(rng.standard_normal((7, 3, 4)).astype(np.float32), requires_grad=True)
    grad = rng.standard_normal((7, 3, 4)).astype(np.float32)
    y = op(x)
    expected = np.maximum(x.data, 0) if op is F.relu else 1.7159 * np.tanh(2 * x.data / 3)
    np.testing.assert_allclose(y.data, expected, rtol=1e-6, atol=1e-6)
    y.backward(Tensor(grad))
    assert y.data.dtype == x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, grad * derivative(x.data), rtol=1e-5, atol=1e-6)


def test_threaded_batch_norm_handles_an_empty_batch_and_float32_with_float64_running_stats(threads):
    x = np.zeros((0, 3, 4, 4), np.float32)
    out, cache = norm.batch_norm_forward(x, np.zeros(3), np.ones(3), training=False)
    dx, _, _ = norm.batch_norm_backward(out, cache)
    assert out.shape == dx.shape == x.shape and out.dtype == dx.dtype == np.float32
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    mean, var = rng.standard_normal(4), rng.random(4) + 0.5          # float64 running statistics
    out, cache = norm.batch_norm_forward(x, mean, var, training=False)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref.batch_norm(x, mean, var), rtol=1e-5, atol=1e-5)
    out, cache = norm.batch_norm_forward(x, mean.copy(), var.copy(), training=True)
    np.testing.assert_allclose(out, ref.batch_norm(x, *ref.batch_stats(x)), rtol=1e-4, atol=1e-4)


def test_threaded_pooling_with_dilation_and_overlapping_windows(threads):
    rng = np.random.default_rng(9)
    x = rng.permutation(4 * 5 * 11 * 9).reshape(4, 5, 11, 9).astype(np.float64)
    out, cache = pool.max_pool2d_forward(x, (3, 2), (2, 1), (1, 1), True, (2, 1))
    rout, rargmax = ref.max_pool2d(x, (3, 2), (2, 1), (1, 1), (2, 1), ceil_mode=True)
    np.testing.assert_array_equal(out, rout)
    grad = rng.standard_normal(out.shape)
    np.testing.assert_allclose(pool.max_pool2d_backward(grad, cache), ref.max_pool2d_backward(grad, x.shape, rargmax))


def test_threaded_conv2d_takes_non_contiguous_input(threads):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((6, 7, 3, 5)).transpose(0, 2, 1, 3)      # (6, 3, 7, 5), not contiguous
    w = rng.standard_normal((4, 3, 3, 3))
    out, cache = conv.conv2d_forward(x, w, None, padding=((1, 1), (1, 1)))
    np.testing.assert_allclose(out, ref.conv2d(x, w, None, padding=((1, 1), (1, 1))), atol=1e-10)


def test_threaded_linear_on_a_single_vector(threads):
    x, w = np.arange(4.0), np.arange(12.0).reshape(3, 4)
    out, cache = misc.linear_forward(x, w)
    np.testing.assert_allclose(out, w @ x)
    dx, dw, _ = misc.linear_backward(np.ones(3), cache)
    np.testing.assert_allclose(dx, w.sum(axis=0))
    np.testing.assert_allclose(dw, np.tile(x, (3, 1)))


def test_scaled_tanh_of_integers_is_float64_as_before():
    y = F.scaled_tanh(Tensor(np.arange(3)))
    assert y.data.dtype == np.float64
    np.testing.assert_allclose(y.data, 1.7159 * np.tanh(2 * np.arange(3) / 3))


def test_arrays_of_another_library_are_never_cut(threads):
    """CuPy arrays (any xp but NumPy) run in one slice: the threads are for the CPU only."""
    class FakeCupy:
        pass
    assert fast_threads.batch_slices(10, xp=FakeCupy) == [(0, 10)]
    assert fast_threads.batch_slices(10, xp=np) == [(0, 3), (3, 6), (6, 10)]
