"""ResNet: K. He, X. Zhang, S. Ren, J. Sun, "Deep residual learning for image recognition",
CVPR 2016 (arXiv:1512.03385).

The idea: each block learns a residual F(x) and outputs relu(F(x) + x), so a deep stack can
fall back to the identity and the gradient has a short path to every layer.  When a block
changes the size or the width, the shortcut is a 1x1 convolution + batch norm
(``downsample``; the paper's option B).

Two kinds of block (as in torchvision, whose module names are used here, so the
``state_dict()`` keys are the same):

    BasicBlock (ResNet-18/34)    conv1 3x3 (stride s) - bn1 - relu - conv2 3x3 - bn2, + shortcut, relu
    Bottleneck (ResNet-50/101/152, expansion 4)
                                 conv1 1x1 - bn1 - relu - conv2 3x3 (stride s) - bn2 - relu
                                 - conv3 1x1 (4x wider) - bn3, + shortcut, relu

The stride sits on the Bottleneck's 3x3 convolution ("ResNet v1.5", torchvision's choice;
the paper puts it on the first 1x1).  The network:

    conv1     7x7/2, 64, no bias; bn1; relu          64 x 112 x 112   (224x224 input)
    maxpool   3x3/2, padding 1                        64 x 56 x 56
    layer1    blocks of width 64,  stride 1           64 (BasicBlock) / 256 (Bottleneck) x 56 x 56
    layer2    blocks of width 128, first stride 2     x 28 x 28
    layer3    blocks of width 256, first stride 2     x 14 x 14
    layer4    blocks of width 512, first stride 2     x 7 x 7
    avgpool   adaptive to 1x1;  fc -> num_classes

    blocks per layer: 18 [2, 2, 2, 2], 34 [3, 4, 6, 3], 50 [3, 4, 6, 3], 101 [3, 4, 23, 3], 152 [3, 8, 36, 3]
    parameters (1000 classes): 11,689,512 / 21,797,672 / 25,557,032 / 44,549,160 / 60,192,808

Initialisation (torchvision's): convolutions Kaiming-normal (fan_out, ReLU gain), batch norm
weight 1 and bias 0, fc PyTorch's default.  ``zero_init_residual=True`` sets the last batch
norm weight of every block to 0, so each block starts as the identity (Goyal et al. 2017).

Small images (``stem="small"``): the stem above shrinks a 32x32 image to 8x8 before layer1 and to
1x1 in layer4.  ``stem="small"`` is the variant CIFAR training scripts use with ResNet-18: conv1 is
a 3x3 stride-1 convolution (padding 1) and there is no max-pool (``maxpool`` is an ``nn.Identity``),
so layer1 sees 32x32 maps and layer4 4x4 ones.  Every ``state_dict`` key stays torchvision's, and
every shape too except ``conv1.weight`` (64, C, 3, 3) instead of (64, C, 7, 7): 11,681,832 parameters
for ResNet-18 (1000 classes; 11,173,962 with 10).  It costs 16x the ImageNet stem's work at a given size.

Input size: anything from 1x1 works structurally (the adaptive pool absorbs the rest);
at 32x32 the last stage is 1x1, so training with batch norm then needs a batch of 2 or more.
"""
from __future__ import annotations

from .. import nn
from . import check_input, register


def conv3x3(in_planes, out_planes, stride=1):
    """3x3 convolution with padding 1, no bias (batch norm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand (x4), and a shortcut."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        width = planes
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet: ``block`` is BasicBlock or Bottleneck, ``layers`` the blocks per stage."""

    def __init__(self, block, layers, num_classes: int = 1000, zero_init_residual: bool = False,
                 in_channels: int = 3, stem: str = "imagenet"):
        super().__init__()
        if stem not in ("imagenet", "small"):
            raise ValueError(f"ResNet: stem must be 'imagenet' (7x7/2 conv and max-pool) or 'small' (3x3/1 conv, "
                             f"no max-pool, for 32x32 images), got {stem!r}")
        self.in_channels, self.stem = in_channels, stem
        self.inplanes = 64
        if stem == "small":
            self.conv1 = conv3x3(in_channels, self.inplanes)
        else:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:   # each residual branch starts at zero: every block is the identity
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block, planes, blocks, stride=1) -> nn.Sequential:
        """One stage: the first block may change stride and width (with a 1x1 conv shortcut)."""
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        check_input(x, "ResNet", self.in_channels)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x).flatten(1)
        return self.fc(x)


def _resnet(block, layers, num_classes, in_channels, zero_init_residual, stem):
    return ResNet(block, layers, num_classes=num_classes, zero_init_residual=zero_init_residual,
                  in_channels=in_channels, stem=stem)


@register("resnet18", input_shape=(3, 224, 224))
def resnet18(num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False,
             stem: str = "imagenet") -> ResNet:
    """ResNet-18: BasicBlock x [2, 2, 2, 2] (11,689,512 parameters)."""
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, zero_init_residual, stem)


@register("resnet34", input_shape=(3, 224, 224))
def resnet34(num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False,
             stem: str = "imagenet") -> ResNet:
    """ResNet-34: BasicBlock x [3, 4, 6, 3] (21,797,672 parameters)."""
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, zero_init_residual, stem)


@register("resnet50", input_shape=(3, 224, 224))
def resnet50(num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False,
             stem: str = "imagenet") -> ResNet:
    """ResNet-50: Bottleneck x [3, 4, 6, 3] (25,557,032 parameters)."""
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, zero_init_residual, stem)


@register("resnet101", input_shape=(3, 224, 224))
def resnet101(num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False,
              stem: str = "imagenet") -> ResNet:
    """ResNet-101: Bottleneck x [3, 4, 23, 3] (44,549,160 parameters)."""
    return _resnet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels, zero_init_residual, stem)


@register("resnet152", input_shape=(3, 224, 224))
def resnet152(num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False,
              stem: str = "imagenet") -> ResNet:
    """ResNet-152: Bottleneck x [3, 8, 36, 3] (60,192,808 parameters)."""
    return _resnet(Bottleneck, [3, 8, 36, 3], num_classes, in_channels, zero_init_residual, stem)
