"""max_pool2d's dilation and return_indices (both kernel sets), max_unpool2d and the layers, and unbatched
(C, H, W) inputs to conv2d and the pools: against the loop reference, by hand, and PyTorch where installed."""
import numpy as np
import pytest

import minicnn
import minicnn.functional as F
import minicnn.nn as nn
from minicnn import gradcheck
from minicnn.kernels import reference

CASES = [  # kernel, stride, padding, dilation, ceil_mode
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (2, 2), False),
    ((3, 2), (1, 2), (1, 0), (1, 2), True),
    ((3, 3), (3, 3), (1, 1), (1, 1), True),
    ((2, 3), (2, 1), (0, 1), (3, 1), True),
]


@pytest.mark.parametrize("kernel_set", ["fast", "textbook"])
@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode", CASES)
def test_max_pool2d_indices_and_dilation_against_the_loops(kernel_set, kernel, stride, padding, dilation, ceil_mode,
                                                           device):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 8))
    x[0, 0, :4, :4] = 1.0                                     # ties: the first maximum wins
    with minicnn.kernels.use(kernel_set):
        out, indices = F.max_pool2d(minicnn.tensor(x, device=device), kernel, stride, padding, dilation, ceil_mode,
                                    return_indices=True)
    want, argmax = reference.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    np.testing.assert_array_equal(out.to("cpu").numpy(), want)
    assert indices.dtype == np.int64 and indices.device == out.device
    np.testing.assert_array_equal(indices.to("cpu").numpy(), argmax[..., 0] * 8 + argmax[..., 1])


@pytest.mark.parametrize("kernel_set", ["fast", "textbook"])
def test_max_pool2d_dilation_gradient(kernel_set):
    x = minicnn.tensor(np.random.default_rng(4).standard_normal((1, 2, 7, 7)), requires_grad=True)
    with minicnn.kernels.use(kernel_set):
        assert gradcheck(lambda t: F.max_pool2d(t, 3, 2, 1, dilation=2), x)


def test_max_unpool2d_by_hand():
    x = minicnn.tensor(np.array([[[[1.0, 5.0, 2.0, 0.0],
                                   [3.0, 4.0, 7.0, 8.0],
                                   [0.0, 0.0, 1.0, 1.0],
                                   [9.0, 0.0, 1.0, 2.0]]]]))
    pooled, indices = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(indices.numpy(), [[[[1, 7], [12, 15]]]])
    values = minicnn.tensor(pooled.numpy(), requires_grad=True)
    unpooled = F.max_unpool2d(values, indices, 2)
    np.testing.assert_array_equal(unpooled.numpy(), [[[[0, 5, 0, 0], [0, 0, 0, 8], [0, 0, 0, 0], [9, 0, 0, 2]]]])
    (unpooled * minicnn.tensor(np.arange(16.0).reshape(1, 1, 4, 4))).sum().backward()
    np.testing.assert_array_equal(values.grad.numpy(), [[[[1, 7], [12, 15]]]])      # the gather of the indices
    assert F.max_unpool2d(values, indices, 2, output_size=(5, 5)).shape == (1, 1, 5, 5)
    with pytest.raises(ValueError, match=r"max_unpool2d: invalid output_size \(6, 4\)"):
        F.max_unpool2d(values, indices, 2, output_size=(6, 4))
    with pytest.raises(ValueError, match=r"max_unpool2d: indices must be in \[0, 4\)"):
        F.max_unpool2d(values, indices, 1)


def test_unpool_on_device(device):
    x = minicnn.tensor(np.random.default_rng(5).standard_normal((2, 3, 6, 5)), device=device, requires_grad=True)
    pooled, indices = F.max_pool2d(x, 2, return_indices=True, ceil_mode=True)
    unpooled = F.max_unpool2d(pooled, indices, 2, output_size=x.shape)
    kept = unpooled.to("cpu").numpy()
    host = x.to("cpu").numpy()
    assert ((kept == 0) | (kept == host)).all() and (kept != 0).sum() == pooled.numel()
    unpooled.sum().backward()
    assert x.grad.to("cpu").numpy().sum() == pytest.approx(pooled.numel())


def test_the_layers():
    pool, unpool = nn.MaxPool2d(3, 2, 1, dilation=1, return_indices=True), nn.MaxUnpool2d(3, 2, 1)
    x = minicnn.tensor(np.random.default_rng(6).standard_normal((2, 1, 5, 5)))
    out, indices = pool(x)
    assert unpool(out, indices, output_size=x.shape).shape == x.shape
    assert repr(unpool) == "MaxUnpool2d(kernel_size=3, stride=2, padding=1)"
    dilated = nn.MaxPool2d(2, 1, dilation=2)(x)
    assert dilated.shape == (2, 1, 3, 3)
    np.testing.assert_array_equal(dilated.numpy(), F.max_pool2d(x, 2, 1, 0, 2).numpy())
    image = x[0]
    np.testing.assert_array_equal(nn.MaxPool2d(2)(image).numpy(), nn.MaxPool2d(2)(x).numpy()[0])
    assert nn.AvgPool2d(2, divisor_override=1)(image).numpy().sum() == pytest.approx(x.numpy()[0, :, :4, :4].sum())


def test_unbatched_inputs_give_the_batched_result():
    rng = np.random.default_rng(7)
    image = minicnn.tensor(rng.standard_normal((3, 7, 6)), requires_grad=True)
    weight = minicnn.tensor(rng.standard_normal((4, 3, 3, 3)))
    calls = [lambda t: F.conv2d(t, weight, None, 1, 1), lambda t: F.max_pool2d(t, 2, dilation=2),
             lambda t: F.avg_pool2d(t, 3, 2, 1), lambda t: F.adaptive_avg_pool2d(t, (2, 4))]
    for call in calls:
        single, batch = call(image), call(image.unsqueeze(0))
        assert single.shape == batch.shape[1:]
        np.testing.assert_allclose(single.numpy(), batch.numpy()[0], rtol=1e-12)
        assert gradcheck(call, image)
    conv = nn.Conv2d(3, 4, 3).to(dtype=np.float64)
    np.testing.assert_allclose(conv(image).numpy(), conv(image.unsqueeze(0)).numpy()[0], rtol=1e-12)
    with pytest.raises(ValueError, match=r"max_pool2d: expected input of shape \(N, C, H, W\) or \(C, H, W\), got \(7, 6\)"):
        F.max_pool2d(image[0], 2)


def test_max_pool_with_indices_against_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(8).standard_normal((2, 3, 11, 10))
    for kernel, stride, padding, dilation, ceil_mode in CASES:
        out, indices = F.max_pool2d(minicnn.tensor(x), kernel, stride, padding, dilation, ceil_mode, return_indices=True)
        ref, ref_indices = torch.nn.functional.max_pool2d(torch.tensor(x), kernel, stride, padding, dilation,
                                                          ceil_mode, return_indices=True)
        np.testing.assert_array_equal(out.numpy(), ref.numpy())
        np.testing.assert_array_equal(indices.numpy(), ref_indices.numpy())
        size = x.shape[2:]
        try:
            ref_un = torch.nn.functional.max_unpool2d(ref, ref_indices, kernel, stride, padding, output_size=size)
        except (ValueError, RuntimeError):                  # dilated windows: this size is out of unpooling's range
            with pytest.raises(ValueError, match="max_unpool2d: invalid output_size"):
                F.max_unpool2d(out, indices, kernel, stride, padding, output_size=size)
            continue
        np.testing.assert_array_equal(F.max_unpool2d(out, indices, kernel, stride, padding, output_size=size).numpy(),
                                      ref_un.numpy())
