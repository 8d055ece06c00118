"""Activations, softmax family, losses and padding: values against NumPy and finite differences."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minicnn
import minicnn.functional as F
from minicnn import backend, gradcheck


def t64(shape, seed=0, low=-2.0, high=2.0):
    return minicnn.tensor(np.random.default_rng(seed).uniform(low, high, shape), requires_grad=True)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), data=st.data())
def test_softmax_and_log_softmax(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = t64(shape, seed=1, low=-5, high=5)
    ref = np.exp(x.data - x.data.max(axis=dim, keepdims=True))
    ref /= ref.sum(axis=dim, keepdims=True)
    np.testing.assert_allclose(F.softmax(x, dim).numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(x, dim).numpy(), np.log(ref), rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda t: F.softmax(t, dim), x)
    assert gradcheck(lambda t: F.log_softmax(t, dim), x)


def test_softmax_is_stable_for_huge_logits():
    x = minicnn.tensor([[1000.0, 1000.0, -1000.0]])
    np.testing.assert_allclose(F.softmax(x, dim=1).numpy(), [[0.5, 0.5, 0.0]])
    assert np.isfinite(F.log_softmax(x, dim=1).numpy()[0, :2]).all()
    loss = F.cross_entropy(minicnn.tensor([[1e4, 0.0]]), np.array([1]))
    np.testing.assert_allclose(loss.item(), 1e4, rtol=1e-6)


def ref_cross_entropy(x, t, smoothing=0.0):
    logp = x - x.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    n, c = x.shape
    q = np.full((n, c), smoothing / c)
    q[np.arange(n), t] += 1 - smoothing
    return -(q * logp).sum(1)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(reduction, smoothing):
    x = t64((6, 4), seed=2, low=-3, high=3)
    target = np.array([0, 3, 1, 1, 2, 0])
    out = F.cross_entropy(x, target, reduction=reduction, label_smoothing=smoothing)
    ref = ref_cross_entropy(x.data, target, smoothing)
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)
    assert gradcheck(lambda t: F.cross_entropy(t, target, reduction=reduction, label_smoothing=smoothing), x)


def test_cross_entropy_hand_computed_and_float32():
    # two classes, equal logits: loss = log 2
    loss = F.cross_entropy(minicnn.tensor([[0.0, 0.0]]), minicnn.tensor([1]))
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.item(), np.log(2), rtol=1e-6)
    x = minicnn.tensor([[0.0, 0.0]], requires_grad=True)
    F.cross_entropy(x, [0]).backward()
    np.testing.assert_allclose(x.grad, [[-0.5, 0.5]])
    assert x.grad.dtype == np.float32


def test_cross_entropy_spatial_targets():
    x = t64((2, 3, 2, 2), seed=3)
    target = np.random.default_rng(0).integers(0, 3, (2, 2, 2))
    flat = x.data.transpose(0, 2, 3, 1).reshape(-1, 3)
    np.testing.assert_allclose(F.cross_entropy(x, target).item(), ref_cross_entropy(flat, target.ravel()).mean())
    assert gradcheck(lambda t: F.cross_entropy(t, target), x)


def test_cross_entropy_errors():
    x = minicnn.zeros(3, 4)
    with pytest.raises(ValueError, match=r"cross_entropy: expected a target of shape \(3,\)"):
        F.cross_entropy(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 4\)"):
        F.cross_entropy(x, np.array([0, 1, 4]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(x, np.array([0, 1, 2]), reduction="avg")


def test_nll_and_mse():
    x = t64((4, 3), seed=4)
    target = np.array([2, 0, 1, 2])
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(x, 1), target).item(),
                               ref_cross_entropy(x.data, target).mean())
    y = t64((4, 3), seed=5)
    np.testing.assert_allclose(F.mse_loss(x, y).item(), ((x.data - y.data) ** 2).mean())
    assert gradcheck(lambda a, b: F.mse_loss(a, b, reduction="sum"), x, y)
    with pytest.raises(ValueError, match="mse_loss: input shape"):
        F.mse_loss(x, minicnn.zeros(3))


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4),
       widths=st.lists(st.integers(0, 3), min_size=2, max_size=4))
def test_pad(shape, widths):
    widths = widths[: 2 * len(shape)]
    widths = widths[: len(widths) // 2 * 2]
    x = t64(shape, seed=6)
    out = F.pad(x, widths)
    np_widths = [(0, 0)] * len(shape)
    for i in range(len(widths) // 2):
        np_widths[len(shape) - 1 - i] = (widths[2 * i], widths[2 * i + 1])
    np.testing.assert_array_equal(out.numpy(), np.pad(x.data, np_widths))
    assert gradcheck(lambda t: F.pad(t, widths), x)


def test_pad_errors_and_dtype():
    x = minicnn.ones(1, 1, 2, 2)
    assert F.pad(x, (0, 1, 0, 1)).shape == (1, 1, 3, 3) and F.pad(x, (1, 1)).dtype == np.float32
    cropped = F.pad(x, (-1, 0))                 # a negative width crops, as in PyTorch
    assert cropped.shape == (1, 1, 2, 1)
    with pytest.raises(ValueError, match=r"pad: widths \(-2, -1\) would crop shape \(1, 1, 2, 2\) below size 0"):
        F.pad(x, (-2, -1))
    with pytest.raises(ValueError, match="pad: mode='reflect' is not supported"):
        F.pad(x, (1, 1), mode="reflect")
    with pytest.raises(ValueError, match="pad: expected an even number"):
        F.pad(x, (1, 0, 1))


def test_scaled_tanh():
    x = t64((5,), seed=7)
    np.testing.assert_allclose(F.scaled_tanh(x).numpy(), 1.7159 * np.tanh(2 * x.data / 3))
    assert gradcheck(F.scaled_tanh, x)
    assert F.scaled_tanh(minicnn.ones(2)).dtype == np.float32


def test_activation_dtypes(device):
    x = minicnn.tensor(np.linspace(-2, 2, 8, dtype=np.float32).reshape(2, 4), device=device, requires_grad=True)
    for f in (F.relu, F.sigmoid, F.tanh, F.scaled_tanh, lambda t: F.softmax(t, 1), lambda t: F.log_softmax(t, 1)):
        y = f(x)
        (y * y).sum().backward()
        assert y.dtype == np.float32 and x.grad.dtype == np.float32


# --------------------------------------------------------------------------- kernel-based ops through autograd

@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(3, 6), w=st.integers(3, 6),
       k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 1),
       dilation=st.integers(1, 2), groups=st.sampled_from([1, "depthwise"]), bias=st.booleans())
def test_conv2d_gradcheck(n, c, h, w, k, stride, padding, dilation, groups, bias):
    groups = c if groups == "depthwise" else 1
    out_c = 2 * groups
    if (h + 2 * padding - dilation * (k - 1) - 1) < 0 or (w + 2 * padding - dilation * (k - 1) - 1) < 0:
        return
    x = t64((n, c, h, w), seed=1)
    wt = t64((out_c, c // groups, k, k), seed=2)
    b = t64((out_c,), seed=3) if bias else None
    args = (x, wt) + ((b,) if bias else ())
    assert gradcheck(lambda *a: F.conv2d(a[0], a[1], a[2] if bias else None, stride, padding, dilation, groups), *args)


def test_conv2d_padding_modes():
    x = t64((1, 2, 5, 6), seed=4)
    wt = t64((3, 2, 2, 3), seed=5)
    assert F.conv2d(x, wt, padding="same").shape == (1, 3, 5, 6)
    assert F.conv2d(x, wt, padding="valid").shape == (1, 3, 4, 4)
    assert F.conv2d(x, wt, padding=(1, 0)).shape == (1, 3, 6, 4)
    asym = F.conv2d(x, wt, padding=(0, 1, 1, 1))           # (top, bottom, left, right)
    ref = F.conv2d(F.pad(x, (1, 1, 0, 1)), wt)
    np.testing.assert_allclose(asym.numpy(), ref.numpy(), rtol=1e-12)
    assert gradcheck(lambda a, b: F.conv2d(a, b, padding="same"), x, wt)
    with pytest.raises(ValueError, match="conv2d: weight must be 4-D"):
        F.conv2d(x, minicnn.ones(3, 3))


@pytest.mark.parametrize("kernel,stride,padding,ceil", [(2, 2, 0, False), (3, 2, 1, False), (3, 2, 0, True),
                                                        ((2, 3), 1, 0, False)])
def test_pool_gradcheck(kernel, stride, padding, ceil):
    rng = np.random.default_rng(6)
    x = minicnn.tensor(rng.permutation(2 * 2 * 7 * 7).reshape(2, 2, 7, 7) / 10.0, requires_grad=True)
    assert gradcheck(lambda t: F.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil), x)
    for include in (True, False):
        assert gradcheck(lambda t, include=include: F.avg_pool2d(t, kernel, stride, padding, ceil, include), x)


@pytest.mark.parametrize("size", [1, (1, 1), (7, 7), (3, 3), (2, 7), (None, 1)])
def test_adaptive_avg_pool_gradcheck(size):
    x = t64((2, 3, 7, 7), seed=7)
    out = F.adaptive_avg_pool2d(x, size)
    if size in (1, (1, 1)):
        np.testing.assert_allclose(out.numpy(), x.data.mean(axis=(2, 3), keepdims=True))
    if size == (7, 7):
        np.testing.assert_allclose(out.numpy(), x.data)
    assert gradcheck(lambda t: F.adaptive_avg_pool2d(t, size), x)


def test_subsample_gradcheck():
    x, coeff, bias = t64((2, 3, 6, 6), seed=8), t64((3,), seed=9), t64((3,), seed=10)
    out = F.subsample(x, coeff, bias)
    ref = x.data.reshape(2, 3, 3, 2, 3, 2).sum(axis=(3, 5)) * coeff.data[:, None, None] + bias.data[:, None, None]
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)
    assert gradcheck(F.subsample, x, coeff, bias)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 4, 4)])
def test_batch_norm_gradcheck(training, shape):
    c = shape[1]
    x, w, b = t64(shape, seed=11), t64((c,), seed=12), t64((c,), seed=13)

    def fn(x_, w_, b_):
        rm = minicnn.tensor(np.linspace(-0.5, 0.5, c))
        rv = minicnn.tensor(np.linspace(0.5, 1.5, c))
        return F.batch_norm(x_, rm, rv, w_, b_, training=training)
    assert gradcheck(fn, x, w, b)


def test_batch_norm_updates_running_stats():
    x = t64((8, 2, 3, 3), seed=14)
    rm, rv = minicnn.zeros(2, dtype=np.float64), minicnn.ones(2, dtype=np.float64)
    F.batch_norm(x, rm, rv, training=True, momentum=0.1)
    np.testing.assert_allclose(rm.numpy(), 0.1 * x.data.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(rv.numpy(), 0.9 + 0.1 * x.data.var(axis=(0, 2, 3), ddof=1))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(minicnn.ones(1, 2), minicnn.zeros(2), minicnn.ones(2), training=True)


def test_lrn_linear_dropout():
    x = t64((2, 6, 3, 3), seed=15, low=0.1)
    assert gradcheck(lambda t: F.local_response_norm(t, 3, alpha=0.5, beta=0.75, k=2.0), x)
    a, w, b = t64((4, 5), seed=16), t64((3, 5), seed=17), t64((3,), seed=18)
    np.testing.assert_allclose(F.linear(a, w, b).numpy(), a.data @ w.data.T + b.data)
    assert gradcheck(F.linear, a, w, b)

    def drop(t):
        minicnn.manual_seed(3)
        return F.dropout(t, 0.4, training=True)
    y = drop(x)
    kept = y.numpy() != 0
    np.testing.assert_allclose(y.numpy()[kept], x.data[kept] / 0.6)
    np.testing.assert_array_equal(drop(x).numpy(), y.numpy())                # seeded
    assert F.dropout(x, 0.4, training=False) is x
    assert gradcheck(drop, x)
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros(x.shape))
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\]"):
        F.dropout(x, 1.5)


def test_dropout_in_a_data_parallel_shard_keeps_its_rows_of_the_global_batch_mask():
    x = minicnn.tensor(np.ones((6, 4, 3)))
    minicnn.manual_seed(8)
    whole = F.dropout(x, 0.5).numpy()                     # one process, the global batch of 6
    for rank in (0, 1, 2):
        minicnn.manual_seed(8)
        with backend.batch_shard(rank, 3):                # rank's rows: rank, rank + 3 (DistributedSampler's)
            part = F.dropout(minicnn.tensor(np.ones((2, 4, 3))), 0.5).numpy()
        np.testing.assert_array_equal(part, whole[rank::3])
    assert 0 < (whole == 0).mean() < 1


def test_kernel_ops_keep_float32(device):
    x = minicnn.tensor(np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32),
                       device=device, requires_grad=True)
    w = minicnn.tensor(np.random.default_rng(1).standard_normal((4, 4, 3, 3)).astype(np.float32),
                       device=device, requires_grad=True)
    rm, rv = minicnn.zeros(4, device=device), minicnn.ones(4, device=device)
    y = F.conv2d(x, w, padding=1)
    y = F.batch_norm(y, rm, rv, training=True)
    y = F.local_response_norm(F.relu(y), 3)
    y = F.max_pool2d(y, 2) + F.avg_pool2d(y, 2)
    y = F.adaptive_avg_pool2d(F.dropout(y, 0.2), 1).flatten(1)
    loss = F.cross_entropy(y, np.array([1, 3]) if device == "cpu" else minicnn.tensor([1, 3], device=device))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32 and w.grad.dtype == np.float32
    assert rm.dtype == np.float32 and rv.dtype == np.float32


def test_loss_targets_are_validated():
    logits = minicnn.zeros(2, 5, 3, 4)
    for bad in (np.zeros((2, 4, 3), np.int64), np.zeros(24, np.int64), np.zeros((4, 6), np.int64)):
        with pytest.raises(ValueError, match=r"expected a target of shape \(2, 3, 4\)"):
            F.cross_entropy(logits, bad)
    logp = F.log_softmax(minicnn.zeros(3, 4), 1)
    with pytest.raises(ValueError, match=r"nll_loss: target values must be in \[0, 4\)"):
        F.nll_loss(logp, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match=r"nll_loss: expected a target of shape \(3,\)"):
        F.nll_loss(logp, np.zeros((3, 3), np.int64))
    with pytest.raises(TypeError, match="integer class indices"):
        F.nll_loss(logp, np.zeros(3))
    with pytest.raises(ValueError, match=r"mse_loss: input shape \(4, 1\) and target shape \(4,\) differ"):
        F.mse_loss(minicnn.zeros(4, 1), np.zeros(4))
    assert F.mse_loss(minicnn.zeros(4), np.ones(4)).dtype == np.float32      # float64 target: no promotion


def test_nll_loss_spatial_equals_cross_entropy():
    x = t64((2, 3, 4, 5), seed=20)
    target = np.random.default_rng(0).integers(0, 3, (2, 4, 5))
    for reduction in ("none", "mean"):
        np.testing.assert_allclose(F.nll_loss(F.log_softmax(x, 1), target, reduction=reduction).numpy(),
                                   F.cross_entropy(x, target, reduction=reduction).numpy(), rtol=1e-12)


def test_functional_names_are_listed_once_and_nn_functional_has_the_same():
    import minicnn.functional as functional
    import minicnn.nn.functional as nnf
    assert len(functional.__all__) == len(set(functional.__all__)) == 20
    assert all(callable(getattr(functional, name)) for name in functional.__all__)
    assert nnf.__all__ == functional.__all__ and all(getattr(nnf, n) is getattr(functional, n) for n in nnf.__all__)
    assert not any(name.endswith("Function") for name in functional.__all__)
