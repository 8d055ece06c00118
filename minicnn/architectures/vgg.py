"""VGG: K. Simonyan, A. Zisserman, "Very deep convolutional networks for large-scale image
recognition", ICLR 2015 (arXiv:1409.1556), configurations D (VGG-16) and E (VGG-19).

The idea: only 3x3 convolutions (stride 1, padding 1, so they keep the size) stacked two to
four deep between 2x2 max pools that halve the size; the width doubles after each pool from
64 to 512.  Two stacked 3x3 convolutions see a 5x5 window and three see 7x7, with fewer
parameters and more non-linearities than one large filter.

As in torchvision (same module names, so the same ``state_dict()`` keys):

    features     numbers are conv widths, M a MaxPool2d(2, 2); each conv is
                 Conv2d(3x3, padding 1) [+ BatchNorm2d for the _bn variants] + ReLU
                 D: 64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M
                 E: 64 64 M 128 128 M 256 256 256 256 M 512 512 512 512 M 512 512 512 512 M
    avgpool      AdaptiveAvgPool2d((7, 7))       512 x 7 x 7 (already 7x7 at 224x224)
    classifier   0 Linear(25088, 4096), 1 ReLU, 2 Dropout(0.5),
                 3 Linear(4096, 4096),  4 ReLU, 5 Dropout(0.5), 6 Linear(4096, num_classes)

Parameters (1000 classes): vgg16 138,357,544, vgg19 143,667,240, vgg16_bn 138,365,992,
vgg19_bn 143,678,248; 102.8 M of them are in the first Linear.  (The batch-norm variants are
torchvision's addition; the paper predates batch norm.)

Initialisation (torchvision's): convolutions Kaiming-normal with fan_out and ReLU gain, bias 0;
batch norm weight 1, bias 0; linear layers normal(0, 0.01), bias 0.

Input size: at least 32x32 (five halvings leave 1x1; the adaptive pool copies it to 7x7).
"""
from __future__ import annotations

from .. import nn
from . import check_input, register

MIN_INPUT_SIZE = 32

CONFIGS = {
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def make_layers(config, batch_norm: bool = False, in_channels: int = 3) -> nn.Sequential:
    """The ``features`` stack of a configuration: conv[-BN]-ReLU units and 2x2 max pools."""
    layers = []
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU())
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """A VGG network from a ``features`` stack (see ``make_layers``), as torchvision builds it."""

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5,
                 in_channels: int = 3):
        super().__init__()
        self.in_channels = in_channels
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        check_input(x, "VGG", self.in_channels, min_size=MIN_INPUT_SIZE)
        x = self.features(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        return self.classifier(x)


def _vgg(config, batch_norm, num_classes, in_channels, dropout):
    features = make_layers(CONFIGS[config], batch_norm=batch_norm, in_channels=in_channels)
    return VGG(features, num_classes=num_classes, dropout=dropout, in_channels=in_channels)


@register("vgg16", input_shape=(3, 224, 224))
def vgg16(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-16, configuration D (138,357,544 parameters)."""
    return _vgg("D", False, num_classes, in_channels, dropout)


@register("vgg16_bn", input_shape=(3, 224, 224))
def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-16 with batch norm after every convolution (138,365,992 parameters)."""
    return _vgg("D", True, num_classes, in_channels, dropout)


@register("vgg19", input_shape=(3, 224, 224))
def vgg19(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-19, configuration E (143,667,240 parameters)."""
    return _vgg("E", False, num_classes, in_channels, dropout)


@register("vgg19_bn", input_shape=(3, 224, 224))
def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-19 with batch norm after every convolution (143,678,248 parameters)."""
    return _vgg("E", True, num_classes, in_channels, dropout)
