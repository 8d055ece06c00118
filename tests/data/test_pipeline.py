"""The training pipeline's normalisation constants, by hand: RGB data turned grey (``--dataset cifar10
--in-channels 1``) and grey data fed to an RGB model."""
import numpy as np
import pytest

from minicnn import train
from minicnn.data import pipeline


def test_cifar10_turned_grey_uses_the_601_weighted_channel_constants():
    # mean 0.299*0.4914 + 0.587*0.4822 + 0.114*0.4465 = 0.1469286 + 0.2830514 + 0.0509010 = 0.4808810
    # std  0.299*0.2470 + 0.587*0.2435 + 0.114*0.2616 = 0.0738530 + 0.1429345 + 0.0298224 = 0.2466099
    mean, std = pipeline.normalization("cifar10", 1)
    assert mean == [pytest.approx(0.4808810, abs=1e-7)] and std == [pytest.approx(0.2466099, abs=1e-7)]
    config = train.resolve_config(train.make_parser().parse_args(["lenet5", "--dataset", "cifar10",
                                                                  "--in-channels", "1"]))
    assert config["mean"] == mean and config["std"] == std
    # pixels (255, 0, 0), (10, 200, 30), (255, 255, 255) turn grey 76 (76.245), 124 (123.81) and 255; normalised:
    # (76/255 - 0.4808810) / 0.2466099 = -0.741421, (124/255 - ...) = 0.021871, (1 - ...) = 2.105021
    rgb = np.zeros((1, 3, 32, 32), np.uint8)
    rgb[0, :, 0, 0], rgb[0, :, 0, 1], rgb[0, :, 0, 2] = (255, 0, 0), (10, 200, 30), (255, 255, 255)
    out = pipeline.make_transform(dict(config, augment="none", input_size=32), train=False)(rgb)
    assert out.shape == (1, 1, 32, 32)
    np.testing.assert_allclose(out[0, 0, 0, :3], [-0.741421, 0.021871, 2.105021], atol=2e-6)
    np.testing.assert_allclose(out[0, 0, 1, 0], -0.4808810 / 0.2466099, atol=2e-6)          # a black pixel


def test_grey_data_for_an_rgb_model_repeats_its_constants():
    assert pipeline.normalization("mnist", 3) == ([0.1307] * 3, [0.3081] * 3)
    assert pipeline.normalization("cifar10", 3) == ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])
