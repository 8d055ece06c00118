"""minicnn.nn.init: gains, fans, and the statistics of every initialiser against its formula."""
import math

import numpy as np
import pytest

import minicnn
from minicnn import nn
from minicnn.nn import init


def empty(*shape, dtype=np.float32, device="cpu"):
    return minicnn.zeros(*shape, dtype=dtype, device=device)


def test_calculate_gain_table():
    for name in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose2d", "sigmoid"):
        assert init.calculate_gain(name) == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("selu") == pytest.approx(0.75)
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="negative_slope"):
        init.calculate_gain("leaky_relu", "big")


def test_fan_in_and_fan_out():
    assert init._calculate_fan_in_and_fan_out(empty(64, 3, 3, 3)) == (27, 576)       # conv: in*kh*kw, out*kh*kw
    assert init._calculate_fan_in_and_fan_out(empty(16, 2, 5, 3)) == (30, 240)
    assert init._calculate_fan_in_and_fan_out(empty(4096, 9216)) == (9216, 4096)     # linear: (in, out)
    assert init._calculate_fan_in_and_fan_out(nn.Conv2d(6, 16, 5, groups=2).weight) == (75, 400)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(empty(10))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(empty(3, 3), mode="fan_avg")


SHAPE = (128, 64, 3, 3)              # fan_in 576, fan_out 1152, 73,728 samples: std estimates within ~0.5%
FAN_IN, FAN_OUT = 576, 1152


@pytest.mark.parametrize("fn, expected_std, bound", [
    (lambda t: init.kaiming_uniform_(t), math.sqrt(2 / FAN_IN), math.sqrt(6 / FAN_IN)),       # a=0: relu gain
    (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)), 1 / math.sqrt(3 * FAN_IN), 1 / math.sqrt(FAN_IN)),
    (lambda t: init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / FAN_OUT), None),
    (lambda t: init.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2 / FAN_IN), None),
    (lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / FAN_OUT), None),
    (lambda t: init.xavier_uniform_(t), math.sqrt(2 / (FAN_IN + FAN_OUT)), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    (lambda t: init.xavier_uniform_(t, gain=init.calculate_gain("tanh")),
     5 / 3 * math.sqrt(2 / (FAN_IN + FAN_OUT)), None),
    (lambda t: init.xavier_normal_(t, gain=2.0), 2 * math.sqrt(2 / (FAN_IN + FAN_OUT)), None),
    (lambda t: init.normal_(t, 0.0, 0.01), 0.01, None),
    (lambda t: init.uniform_(t, -0.5, 0.5), 1 / math.sqrt(12), 0.5),
])
def test_sample_statistics_match_the_formulas(fn, expected_std, bound):
    t = empty(*SHAPE)
    array = t.data
    assert fn(t) is t and t.data is array                    # in place, returns the tensor
    values = t.data.astype(np.float64)
    assert t.dtype == np.float32
    assert values.std() == pytest.approx(expected_std, rel=0.02)
    assert abs(values.mean()) < 0.02 * expected_std * 3
    if bound is not None:                                     # uniform: inside the bound, and reaching near it
        assert np.abs(values).max() <= bound * (1 + 1e-6)
        assert np.abs(values).max() > 0.99 * bound


def test_uniform_and_normal_parameters():
    t = init.uniform_(empty(20000), 2.0, 3.0)
    assert t.data.min() >= 2.0 and t.data.max() < 3.0 and t.data.mean() == pytest.approx(2.5, abs=0.01)
    t = init.normal_(empty(20000), mean=5.0, std=2.0)
    assert t.data.mean() == pytest.approx(5.0, abs=0.05) and t.data.std() == pytest.approx(2.0, rel=0.02)
    with pytest.raises(ValueError):
        init.uniform_(empty(3), 1.0, 0.0)
    with pytest.raises(ValueError):
        init.normal_(empty(3), 0.0, -1.0)


def test_constant_zeros_ones():
    t = empty(2, 3)
    np.testing.assert_array_equal(init.constant_(t, 0.25).data, np.full((2, 3), 0.25))
    np.testing.assert_array_equal(init.ones_(t).data, np.ones((2, 3)))
    np.testing.assert_array_equal(init.zeros_(t).data, np.zeros((2, 3)))
    assert t.dtype == np.float32


def test_trunc_normal():
    t = init.trunc_normal_(empty(50000, dtype=np.float64))              # N(0, 1) cut to [-2, 2]
    assert t.data.min() >= -2 and t.data.max() <= 2
    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)                        # density at 2
    mass = math.erf(2 / math.sqrt(2))
    assert t.data.std() == pytest.approx(math.sqrt(1 - 4 * phi2 / mass), rel=0.02)     # 0.8796
    t = init.trunc_normal_(empty(256, 64, 3, 3), mean=0.0, std=0.01, a=-2, b=2)      # GoogLeNet's: no cut
    assert t.dtype == np.float32 and t.data.std() == pytest.approx(0.01, rel=0.02)
    t = init.trunc_normal_(empty(20000), mean=1.0, std=1.0, a=0.5, b=3.0)            # asymmetric cut
    assert t.data.min() >= 0.5 and t.data.max() <= 3.0
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(empty(3), a=1, b=-1)
    with pytest.raises(ValueError, match="less than 1%"):
        init.trunc_normal_(empty(3), a=10, b=11)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtype_is_kept(dtype):
    for fn in (init.uniform_, init.normal_, init.trunc_normal_, init.xavier_uniform_, init.xavier_normal_,
               init.kaiming_uniform_, init.kaiming_normal_, init.zeros_, init.ones_):
        t = empty(8, 4, 3, 3, dtype=dtype)
        assert fn(t).dtype == dtype
        assert np.isfinite(t.data).all()


def test_seeded_and_drawn_in_place():
    minicnn.manual_seed(7)
    a = init.kaiming_uniform_(empty(16, 8))
    minicnn.manual_seed(7)
    same = empty(16, 8)
    array = same.data
    init.kaiming_uniform_(same)
    assert same.data is array                                            # filled in place, no new array
    np.testing.assert_array_equal(a.data, same.data)                     # same seed, same draws
    c = init.kaiming_uniform_(empty(16, 8))
    assert not np.array_equal(a.data, c.data)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(init.normal_(empty(5), generator=g1).data, init.normal_(empty(5), generator=g2).data)


def test_works_on_parameters_and_empty_tensors():
    p = nn.Parameter(np.zeros((4, 3), np.float32))
    init.xavier_uniform_(p)
    assert isinstance(p, nn.Parameter) and p.requires_grad and p.grad is None and (p.data != 0).all()
    assert init.kaiming_uniform_(empty(0, 3)).shape == (0, 3)


def test_layer_default_initialisation_is_pytorchs():
    conv = nn.Conv2d(16, 32, 3)
    bound = 1 / math.sqrt(16 * 9)
    for p in (conv.weight, conv.bias):
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.9 * bound
    assert conv.weight.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    lin = nn.Linear(400, 120)
    bound = 1 / math.sqrt(400)
    for p in (lin.weight, lin.bias):
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.9 * bound
    bn = nn.BatchNorm2d(8)
    np.testing.assert_array_equal(bn.weight.data, np.ones(8))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(8))
    sub = nn.Subsampling(6, kernel_size=2)
    assert np.abs(sub.weight.data).max() <= 0.5 and np.abs(sub.bias.data).max() <= 0.5


def test_layer_initialisation_is_seeded():
    minicnn.manual_seed(1)
    a = nn.Conv2d(3, 8, 3)
    minicnn.manual_seed(1)
    b = nn.Conv2d(3, 8, 3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)


def test_init_on_device(device):
    t = empty(32, 16, 3, 3, device=device)
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert t.device == device and t.dtype == np.float32
    assert float(t.data.std()) == pytest.approx(math.sqrt(2 / (32 * 9)), rel=0.05)
    init.trunc_normal_(t, std=0.5, a=-0.5, b=0.5)
    assert float(abs(t.data).max()) <= 0.5
    layer = nn.Linear(5, 3, device=device, dtype=np.float64)
    assert layer.weight.device == device and layer.bias.dtype == np.float64
