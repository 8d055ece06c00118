"""cross_entropy and nll_loss: class weights, ignore_index, class-probability targets, label smoothing,
unbatched (C,) inputs; softmax over an empty dimension. Hand-computed values, finite differences, and
PyTorch where it is installed."""
import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import gradcheck

LOGITS = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0], [0.3, 0.1, -0.4]])
TARGET = np.array([1, 2, -100, 0])
WEIGHT = np.array([0.5, 2.0, 1.5])


def log_softmax(x):
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def test_weighted_mean_with_ignore_index_by_hand():
    """loss = sum_i w[t_i] * -logp[i, t_i] / sum_i w[t_i] over the rows that are not ignored (PyTorch's weighted mean)."""
    logp = log_softmax(LOGITS)
    by_hand = (2.0 * -logp[0, 1] + 1.5 * -logp[1, 2] + 0.5 * -logp[3, 0]) / (2.0 + 1.5 + 0.5)
    x = minicnn.tensor(LOGITS)
    assert F.cross_entropy(x, TARGET, WEIGHT).item() == pytest.approx(by_hand, rel=1e-12)
    assert F.nll_loss(F.log_softmax(x, 1), TARGET, minicnn.tensor(WEIGHT)).item() == pytest.approx(by_hand, rel=1e-12)
    summed = F.cross_entropy(x, TARGET, WEIGHT, reduction="sum").item()
    assert summed == pytest.approx(by_hand * 4.0, rel=1e-12)
    rows = F.cross_entropy(x, TARGET, WEIGHT, reduction="none").numpy()
    np.testing.assert_allclose(rows, [2.0 * -logp[0, 1], 1.5 * -logp[1, 2], 0.0, 0.5 * -logp[3, 0]], rtol=1e-12)
    everything_ignored = F.cross_entropy(x, np.full(4, 7), ignore_index=7)
    assert np.isnan(everything_ignored.item())        # 0 / 0, as PyTorch


def test_probability_targets_by_hand():
    """loss_i = -sum_j w_j q_ij logp_ij with q smoothed to q(1-e) + e/C; 'mean' divides by N, weights or not."""
    q = np.array([[0.2, 0.5, 0.3], [0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3], [0.9, 0.1, 0.0]])
    logp, e = log_softmax(LOGITS), 0.1
    smoothed = q * (1 - e) + e / 3
    by_hand = -(smoothed * WEIGHT * logp).sum(axis=1)
    x = minicnn.tensor(LOGITS)
    got = F.cross_entropy(x, q, WEIGHT, reduction="none", label_smoothing=e).numpy()
    np.testing.assert_allclose(got, by_hand, rtol=1e-12)
    assert F.cross_entropy(x, q, WEIGHT, label_smoothing=e).item() == pytest.approx(by_hand.mean(), rel=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_gradients_by_finite_differences(reduction, smoothing):
    x = minicnn.tensor(LOGITS, requires_grad=True)
    assert gradcheck(lambda t: F.cross_entropy(t, TARGET, WEIGHT, reduction=reduction, label_smoothing=smoothing), x)
    assert gradcheck(lambda t: F.cross_entropy(t, np.array([0, 2, 2, 1]), ignore_index=2, reduction=reduction,
                                               label_smoothing=smoothing), x)
    q = minicnn.tensor(np.abs(LOGITS) / np.abs(LOGITS).sum(axis=1, keepdims=True), requires_grad=True)
    assert gradcheck(lambda t, p: F.cross_entropy(t, p, WEIGHT, reduction=reduction, label_smoothing=smoothing), x, q)
    assert gradcheck(lambda t: F.nll_loss(t, TARGET, WEIGHT, reduction=reduction), x)
    x4 = minicnn.tensor(np.random.default_rng(0).standard_normal((2, 3, 2, 2)), requires_grad=True)
    target4 = np.array([[[0, 1], [2, 1]], [[1, 1], [0, 2]]])
    assert gradcheck(lambda t: F.cross_entropy(t, target4, WEIGHT, ignore_index=1, reduction=reduction,
                                               label_smoothing=smoothing), x4)


def test_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, target = rng.standard_normal((6, 5, 3)), rng.integers(0, 5, (6, 3))
    target[0, 0] = target[2, 1] = 4
    probs = rng.random((6, 5, 3))
    weight = rng.random(5) + 0.5
    for kwargs in (dict(weight=weight, ignore_index=4), dict(ignore_index=4, label_smoothing=0.3),
                   dict(weight=weight, label_smoothing=0.3, ignore_index=4)):
        for reduction in ("mean", "sum", "none"):
            for tgt in (target, probs):
                if tgt is probs:
                    kwargs = {k: v for k, v in kwargs.items() if k != "ignore_index"}
                mine = minicnn.tensor(x, requires_grad=True)
                theirs = torch.tensor(x, requires_grad=True)
                torch_kwargs = {k: torch.tensor(v) if k == "weight" else v for k, v in kwargs.items()}
                loss = F.cross_entropy(mine, tgt, reduction=reduction, **kwargs)
                ref = torch.nn.functional.cross_entropy(theirs, torch.tensor(tgt), reduction=reduction, **torch_kwargs)
                np.testing.assert_allclose(loss.numpy(), ref.detach().numpy(), rtol=1e-10, err_msg=str(kwargs))
                loss.sum().backward()
                ref.sum().backward()
                np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_unbatched_input_and_zero_d_target():
    x = minicnn.tensor(LOGITS[0], requires_grad=True)
    logp = log_softmax(LOGITS[:1])[0]
    loss = F.nll_loss(F.log_softmax(x, 0), np.array(2), reduction="none")
    assert loss.shape == () and loss.item() == pytest.approx(-logp[2], rel=1e-12)
    assert F.cross_entropy(x, 1).item() == pytest.approx(-logp[1], rel=1e-12)
    assert F.cross_entropy(x, np.array([0.5, 0.5, 0.0])).item() == pytest.approx(-(logp[0] + logp[1]) / 2, rel=1e-12)
    assert gradcheck(lambda t: F.cross_entropy(t, 2, WEIGHT), x)
    with pytest.raises(ValueError, match=r"nll_loss: expected a target of shape \(\) .* got \(2,\)"):
        F.nll_loss(x, np.array([0, 1]))


def test_the_module_forms_and_errors():
    criterion = minicnn.nn.CrossEntropyLoss(weight=WEIGHT, ignore_index=1, label_smoothing=0.1)
    x = minicnn.tensor(LOGITS)
    assert criterion(x, np.array([0, 1, 2, 1])).item() == pytest.approx(
        F.cross_entropy(x, np.array([0, 1, 2, 1]), WEIGHT, ignore_index=1, label_smoothing=0.1).item())
    assert "ignore_index=1" in repr(criterion)
    nll = minicnn.nn.NLLLoss(minicnn.tensor(WEIGHT), reduction="sum")
    assert nll(x, np.array([0, 1, 2, 1])).item() == pytest.approx(-(0.5 * 1 + 2 * -1 + 1.5 * 2 + 2 * 0.1))
    with pytest.raises(ValueError, match=r"cross_entropy: weight must have shape \(3,\) .* got \(2,\)"):
        F.cross_entropy(x, TARGET, np.ones(2))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 3\) \(or ignore_index=-100\), got min -1"):
        F.cross_entropy(x, np.array([0, -1, 2, 1]))
    with pytest.raises(ValueError, match="size_average and reduce .* are not supported"):
        F.nll_loss(x, TARGET, size_average=True)
    with pytest.raises(ValueError, match="size_average and reduce .* are not supported"):
        minicnn.nn.CrossEntropyLoss(reduce=False)


def test_ignore_index_and_weights_on_device(device):
    """On a GPU nothing is read back: an ignored row counts for nothing, an out-of-range one makes its loss NaN."""
    x = minicnn.tensor(LOGITS, device=device, requires_grad=True)
    target = minicnn.tensor(TARGET, device=device)
    weight = minicnn.tensor(WEIGHT, device=device)
    loss = F.cross_entropy(x, target, weight, label_smoothing=0.2)
    loss.backward()
    host = minicnn.tensor(LOGITS, requires_grad=True)
    expected = F.cross_entropy(host, TARGET, WEIGHT, label_smoothing=0.2)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(x.grad.to("cpu").numpy(), host.grad.numpy(), rtol=1e-12)
    assert F.nll_loss(x, target, weight).item() == pytest.approx(F.nll_loss(host, TARGET, WEIGHT).item(), rel=1e-12)
    if device != "cpu":
        rows = F.cross_entropy(x, minicnn.tensor(np.array([1, 5, -100, 0]), device=device), reduction="none")
        values = rows.to("cpu").numpy()
        assert np.isnan(values[1]) and values[2] == 0.0 and np.isfinite(values[[0, 3]]).all()


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax])
def test_softmax_of_an_empty_tensor(op):
    x = minicnn.zeros(5, 0, 0, dtype=np.float64, requires_grad=True)
    y = op(x, 1)
    assert y.shape == (5, 0, 0) and y.dtype == np.float64
    y.sum().backward()
    assert x.grad.shape == (5, 0, 0)
    assert op(minicnn.zeros(0, 3), 1).shape == (0, 3)
