"""The ResNet paper's networks for 32x32 images: K. He, X. Zhang, S. Ren, J. Sun, "Deep residual
learning for image recognition", CVPR 2016 (arXiv:1512.03385), section 4.2 and table 6.

The ImageNet ResNets (``resnet.py``) shrink a 32x32 image to 8x8 before their first block.  For
CIFAR-10 the paper uses a thinner, deeper family without a stem pooling: a 3x3 convolution of 16
channels, then three stages of ``n`` BasicBlocks (two 3x3 convolutions each) on 32x32, 16x16 and
8x8 maps of 16, 32 and 64 channels, global average pooling and one fully-connected layer:
6n + 2 weighted layers.

    layer     output (32x32 input)   made of
    conv1     16 x 32 x 32           3x3/1, 16, no bias; bn1; relu
    layer1    16 x 32 x 32           n x BasicBlock(16)           (each: 3x3 conv, bn, relu, 3x3 conv, bn, + x, relu)
    layer2    32 x 16 x 16           n x BasicBlock(32), the first with stride 2
    layer3    64 x 8 x 8             n x BasicBlock(64), the first with stride 2
    avgpool   64 x 1 x 1             global average;  fc 64 -> num_classes

    name        n    layers   parameters (10 classes, 3 input channels; shortcut "A" / "B")
    resnet20    3    20       269,722 / 272,474
    resnet32    5    32       464,154 / 466,906
    resnet44    7    44       658,586 / 661,338
    resnet56    9    56       853,018 / 855,770
    resnet110   18   110      1,727,962 / 1,730,714
    (the paper's table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M; its CIFAR-10 test errors with option A
    and its recipe: 8.75%, 7.51%, 7.17%, 6.97%, 6.43% (best of 5 for 110: mean 6.61%))

Shortcuts, when a block halves the map and doubles the width (the first block of layer2 and layer3):

* ``shortcut="A"`` (the paper's CIFAR choice, the default): the identity, subsampled with stride 2
  (``x[:, :, ::2, ::2]``) and zero-padded with the new channels, half before and half after
  (:class:`ShortcutA`); no parameters.
* ``shortcut="B"``: a 1x1 convolution with stride 2 and batch norm (torchvision's ``downsample``),
  2 x (16*32 + 32) + ... = 2,752 more parameters.

The blocks are ``resnet.BasicBlock`` (torchvision's module names: ``layer2.0.conv1.weight``,
``layer2.0.downsample.0.weight`` under option B).  Initialisation as in the paper (He et al. 2015,
"Delving deep into rectifiers", the forward case): convolutions N(0, 2 / fan_in), batch norm weight 1 and
bias 0; the fc layer keeps PyTorch's default.  Any input of at least 1x1 works structurally (the
pooling is adaptive); the paper trains on 32x32, and 28x28 Fashion-MNIST images go in unpadded
(28 -> 14 -> 7).
"""
from __future__ import annotations

from .. import functional as F, nn
from . import check_input, register
from .resnet import BasicBlock, conv1x1, conv3x3


class ShortcutA(nn.Module):
    """The paper's option A: ``x[:, :, ::stride, ::stride]`` with ``extra`` zero channels added,
    ``extra // 2`` before the input's channels and the rest after.

    Shapes: (N, C, H, W) -> (N, C + extra, ceil(H / stride), ceil(W / stride)).  Backward: the gradient
    of the kept channels, put back at the subsampled positions (zeros elsewhere).
    """

    def __init__(self, extra: int, stride: int = 2):
        super().__init__()
        self.extra, self.stride = int(extra), int(stride)

    def forward(self, x):
        s = self.stride
        if s != 1:
            x = x[:, :, ::s, ::s]
        if self.extra:
            before = self.extra // 2
            x = F.pad(x, (0, 0, 0, 0, before, self.extra - before))
        return x

    def extra_repr(self) -> str:
        return f"extra={self.extra}, stride={self.stride}"


class CifarResNet(nn.Module):
    """The paper's CIFAR ResNet with ``n`` BasicBlocks per stage (6n + 2 layers); see the module docstring."""

    def __init__(self, n: int, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A",
                 zero_init_residual: bool = False):
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError(f"CifarResNet: shortcut must be 'A' (zero-padded identity) or 'B' (1x1 projection), "
                             f"got {shortcut!r}")
        self.in_channels, self.shortcut = in_channels, shortcut
        self.inplanes = 16
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = self._make_layer(16, n)
        self.layer2 = self._make_layer(32, n, stride=2)
        self.layer3 = self._make_layer(64, n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, planes, blocks, stride=1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            if self.shortcut == "A":
                downsample = ShortcutA(planes - self.inplanes, stride)
            else:
                downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        check_input(x, "CifarResNet", self.in_channels)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


def _builder(name, n, count_a, count_b):
    def build(num_classes: int = 10, in_channels: int = 3, shortcut: str = "A",
              zero_init_residual: bool = False) -> CifarResNet:
        return CifarResNet(n, num_classes=num_classes, in_channels=in_channels, shortcut=shortcut,
                           zero_init_residual=zero_init_residual)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = (f"{name.replace('resnet', 'ResNet-')} for 32x32 images (He et al. 2016, table 6): {n} BasicBlocks "
                     f"per stage of 16/32/64 channels; {count_a:,} parameters with shortcut='A' (the paper's), "
                     f"{count_b:,} with 'B' (10 classes, 3 channels).")
    register(name, input_shape=(3, 32, 32))(build)
    return build


resnet20 = _builder("resnet20", 3, 269_722, 272_474)
resnet32 = _builder("resnet32", 5, 464_154, 466_906)
resnet44 = _builder("resnet44", 7, 658_586, 661_338)
resnet56 = _builder("resnet56", 9, 853_018, 855_770)
resnet110 = _builder("resnet110", 18, 1_727_962, 1_730_714)
