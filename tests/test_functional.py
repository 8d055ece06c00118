"""Activations, softmax family, losses and padding: values against NumPy and finite differences."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minicnn
import minicnn.functional as F
from minicnn import gradcheck


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
    with pytest.raises(ValueError, match="pad: widths must be non-negative"):
        F.pad(x, (-1, 0))
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
