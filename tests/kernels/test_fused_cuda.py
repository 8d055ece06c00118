"""The fused GPU kernels (``minicnn.kernels.fast.fused``) against the CPU path, through the public ops,
in float64: softmax cross-entropy, ReLU, LeNet's scaled tanh and subsampling, batch-norm (training and
eval, forward and backward). Runs under the CuPy stand-in in CI (``tests/test_standin.py``)."""
import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import nn

from conftest import cuda

pytestmark = cuda

RNG = np.random.default_rng(0)


def both(fn, *arrays, grad_of=(0,)):
    """fn's output and the gradients of sum(output * w) w.r.t. ``grad_of`` on the CPU and on the GPU."""
    results = []
    w = None
    for device in ("cpu", "cuda"):
        ts = [minicnn.tensor(a, device=device, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
        out = fn(*ts)
        if w is None:
            w = RNG.standard_normal(out.shape)
        (out * minicnn.tensor(w, device=device)).sum().backward() if out.ndim else out.backward()
        results.append((out.numpy(), [ts[i].grad.numpy() for i in grad_of]))
    return results


def close(cpu, gpu, tol=1e-12):
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=tol, atol=tol)
    for a, b in zip(cpu[1], gpu[1]):
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_fused_cross_entropy_on_cuda(reduction, smoothing):
    x, t = RNG.standard_normal((5, 7)) * 3, np.array([0, 6, 3, 3, 1])
    close(*both(lambda a: F.cross_entropy(a, minicnn.tensor(t, device=a.device), reduction=reduction,
                                          label_smoothing=smoothing), x))


def test_fused_cross_entropy_bad_target_is_nan_on_cuda():
    x = minicnn.tensor(RNG.standard_normal((3, 4)), device="cuda", requires_grad=True)
    loss = F.cross_entropy(x, minicnn.tensor(np.array([1, 4, -1]), device="cuda"), reduction="none")
    assert np.isfinite(loss.numpy()[0]) and np.isnan(loss.numpy()[1:]).all()
    loss.sum().backward()
    g = x.grad.numpy()
    assert np.isfinite(g[0]).all() and np.isnan(g[1:]).all()


def test_fused_relu_and_scaled_tanh_on_cuda():
    x = RNG.standard_normal((3, 4, 5))
    x[0, 0, :2] = 0.0
    close(*both(F.relu, x))
    close(*both(lambda a: F.scaled_tanh(a), x))
    nan = minicnn.tensor(np.array([np.nan, -1.0, 2.0]), device="cuda")
    np.testing.assert_array_equal(F.relu(nan).numpy(), [np.nan, 0.0, 2.0])


def test_fused_subsample_on_cuda():
    x, coeff, bias = RNG.standard_normal((2, 3, 6, 6)), RNG.standard_normal(3), RNG.standard_normal(3)
    close(*both(lambda a, c, b: F.subsample(a, c, b), x, coeff, bias, grad_of=(0, 1, 2)))


@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_on_cuda(training):
    x, mean0 = RNG.standard_normal((3, 4, 5, 6)) * 2 + 1, RNG.standard_normal(4)
    outs = []
    for device in ("cpu", "cuda"):
        minicnn.manual_seed(0)
        bn = nn.BatchNorm2d(4).to(minicnn.float64).to(device)
        bn.running_mean.data[...] = minicnn.tensor(mean0, device=device).data
        bn.weight.data[...] = minicnn.tensor(np.arange(1.0, 5.0), device=device).data
        bn.train(training)
        xt = minicnn.tensor(x, device=device, requires_grad=True)
        out = bn(xt)
        (out * minicnn.tensor(np.cos(np.arange(out.numel())).reshape(out.shape), device=device)).sum().backward()
        outs.append((out.numpy(), xt.grad.numpy(), bn.weight.grad.numpy(), bn.running_mean.numpy(),
                     bn.running_var.numpy(), bn.bias.grad.numpy()))
    for a, b in zip(*outs):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10)
