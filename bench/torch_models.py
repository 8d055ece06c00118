"""Plain-PyTorch versions of the minicnn architectures, for the benchmark's ``--compare torch``.

torchvision is not a dependency, so the models are written out here, layer for layer the same
as ``minicnn.architectures`` (and, for AlexNet, VGG, GoogLeNet and ResNet, as torchvision's):
the same convolutions, poolings, normalisations and linear layers with the same shapes, so both
frameworks do the same multiply-adds. ``bench/run.py`` checks that: it counts the parameters
and the multiply-adds of both models and flags any difference.

    model = get("resnet18", num_classes=10, in_channels=3)

Only ``torch`` is needed (and minicnn for LeNet-5's C3 table with ``c3_table=True``).
Initialisation does not matter for timing and is PyTorch's default (except BatchNorm's, which
is PyTorch's default too: weight 1, bias 0). The state_dict keys are minicnn's, so
``tests/onnx_export/test_interchange.py`` also uses these models as the source of torchvision-layout weights.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


# --------------------------------------------------------------------------- LeNet-5

class ScaledTanh(nn.Module):
    """LeCun's squashing function ``1.7159 * tanh(2x/3)``."""

    def __init__(self, a: float = 1.7159, b: float = 2.0 / 3.0):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return self.a * torch.tanh(self.b * x)


class Subsample(nn.Module):
    """LeNet-5's S2/S4: the sum of each 2x2 window (``avg_pool * 4``), times a trainable
    coefficient, plus a trainable bias, one of each per channel."""

    def __init__(self, channels: int, kernel_size: int = 2, stride: int = 2):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        s = F.avg_pool2d(x, self.kernel_size, self.stride) * float(self.kernel_size * self.kernel_size)
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) on 1x32x32: C1 conv 6@5x5 -> S2 -> C3 conv 16@5x5 -> S4
    -> C5 conv 120@5x5 -> F6 linear 84 -> output linear, scaled tanh after every hidden layer
    (the output layer a linear layer instead of the RBF units). Module names are minicnn's
    (``c1``, ``s2``, ..., ``output``), so the state_dicts of the two load into each other;
    ``c3_table=True`` masks C3's weights with the paper's connection table, as minicnn does."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, c3_table: bool = False):
        super().__init__()
        self.c1 = nn.Conv2d(in_channels, 6, 5)            # 32 -> 28
        self.s2 = Subsample(6)                            # 28 -> 14
        self.c3 = nn.Conv2d(6, 16, 5)                     # 14 -> 10
        self.s4 = Subsample(16)                           # 10 -> 5
        self.c5 = nn.Conv2d(16, 120, 5)                   # 5 -> 1
        self.flatten = nn.Flatten()
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)
        self.act = ScaledTanh()
        mask = None
        if c3_table:
            from minicnn.architectures.lenet import C3_TABLE      # (6 inputs, 16 maps) 0/1 table
            mask = torch.tensor(C3_TABLE.T[:, :, None, None].copy())
        self.register_buffer("c3_mask", mask, persistent=False)

    def forward(self, x):
        x = self.act(self.c1(x))
        x = self.act(self.s2(x))
        if self.c3_mask is None:
            x = self.act(self.c3(x))
        else:
            x = self.act(F.conv2d(x, self.c3.weight * self.c3_mask, self.c3.bias))
        x = self.act(self.s4(x))
        x = self.act(self.c5(x))
        x = self.act(self.f6(self.flatten(x)))
        return self.output(x)


class LeNet5Keras(nn.Module):
    """The Keras "LeNet" (minicnn's ``lenet5_keras``, with its module names): conv 20@5x5 'same', ReLU,
    max-pool 2; conv 50@5x5 'same', ReLU, max-pool 2; dense 500, ReLU; dense num_classes.
    ``input_size`` fixes the first dense layer ((input_size // 4)^2 * 50 inputs)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 32):
        super().__init__()
        side = input_size // 2 // 2
        self.conv1 = nn.Conv2d(in_channels, 20, 5, padding=2)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(20, 50, 5, padding=2)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(50 * side * side, 500)
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x):
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        return self.fc2(F.relu(self.fc1(self.flatten(x))))


# --------------------------------------------------------------------------- AlexNet, VGG (torchvision's)

class AlexNet(nn.Module):
    """torchvision's AlexNet; ``lrn=True`` adds the paper's LRN after the first two ReLUs, as minicnn's."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5, lrn: bool = False):
        super().__init__()
        norm = [nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)] if lrn else []
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), *norm, nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), *norm, nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


VGG_CONFIGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
VGG_CONFIGS.update({name + "_bn": config for name, config in VGG_CONFIGS.items()})


class VGG(nn.Module):
    def __init__(self, config, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5,
                 batch_norm: bool = False):
        super().__init__()
        layers, c = [], in_channels
        for v in config:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1)] + ([nn.BatchNorm2d(v)] if batch_norm else []) \
                    + [nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# --------------------------------------------------------------------------- GoogLeNet (torchvision's)

class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 0.001) -> ReLU."""

    def __init__(self, cin, cout, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """Four branches concatenated on channels: 1x1 | 1x1->3x3 | 1x1->3x3 (torchvision's '5x5'
    branch uses a 3x3 kernel) | 3x3 max-pool->1x1."""

    def __init__(self, cin, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(cin, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(cin, pool_proj, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier (training only): avg pool to 4x4, 1x1 conv to 128, fc 2048 -> 1024, fc."""

    def __init__(self, cin, num_classes, dropout: float = 0.7):
        super().__init__()
        self.conv = BasicConv2d(cin, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = torch.flatten(self.conv(F.adaptive_avg_pool2d(x, (4, 4))), 1)
        return self.fc2(self.dropout(F.relu(self.fc1(x), inplace=True)))


class GoogLeNet(nn.Module):
    """torchvision's GoogLeNet; with ``aux_logits`` the two auxiliary heads exist (their weights are
    in the state_dict) and run in training mode, returning ``(logits, aux2, aux1)`` as minicnn's."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.2,
                 aux_logits: bool = False):
        super().__init__()
        self.conv1 = BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.aux1 = InceptionAux(512, num_classes) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.inception4a(self.maxpool3(self.inception3b(self.inception3a(x))))
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.inception5b(self.inception5a(self.maxpool4(self.inception4e(x))))
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        return (x, aux2, aux1) if self.training and self.aux1 is not None else x


# --------------------------------------------------------------------------- ResNet (torchvision's, v1.5)

def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, planes, stride), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv3x3(planes, planes), nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (carries the stride, as torchvision's v1.5) -> 1x1 expanding by 4."""
    expansion = 4

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = conv1x1(cin, planes), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv3x3(planes, planes, stride), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = conv1x1(planes, planes * 4), nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes: int = 1000, in_channels: int = 3, stem: str = "imagenet"):
        super().__init__()
        self.inplanes = 64
        small = stem == "small"     # CIFAR scripts' ResNet-18: a 3x3/1 conv1 and no max-pool
        self.conv1 = conv3x3(in_channels, 64) if small else nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small else nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


RESNET_LAYERS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]), "resnet101": (Bottleneck, [3, 4, 23, 3]),
    "resnet152": (Bottleneck, [3, 8, 36, 3]),
}



# --------------------------------------------------------------------------- the ResNet paper's CIFAR networks

class ShortcutA(nn.Module):
    """Option A: the identity subsampled by ``stride`` and zero-padded with ``extra`` channels (half before)."""

    def __init__(self, extra: int, stride: int = 2):
        super().__init__()
        self.extra, self.stride = extra, stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class CifarResNet(nn.Module):
    """He et al. 2016, section 4.2: a 3x3 stem of 16, three stages of ``n`` BasicBlocks (16, 32, 64 channels)."""

    def __init__(self, n: int, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A"):
        super().__init__()
        self.inplanes, self.shortcut = 16, shortcut
        self.conv1, self.bn1 = conv3x3(in_channels, 16), nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, n)
        self.layer2 = self._make_layer(32, n, stride=2)
        self.layer3 = self._make_layer(64, n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = (ShortcutA(planes - self.inplanes, stride) if self.shortcut == "A" else
                          nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes)))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


CIFAR_RESNET_DEPTHS = {"resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9, "resnet110": 18}

# --------------------------------------------------------------------------- registry

def get(name: str, num_classes: int = 1000, in_channels: int = 3, **options) -> nn.Module:
    """Build a model by its minicnn name (``lenet5``, ``alexnet``, ``vgg16_bn``, ``googlenet``, ``resnet50``...).

    ``options`` as for ``minicnn.architectures.get``: ``c3_table`` (lenet5), ``input_size``
    (lenet5_keras), ``lrn`` (alexnet), ``dropout`` (AlexNet, VGG, GoogLeNet) and ``aux_logits``
    (GoogLeNet; False unless given, unlike minicnn's default). The state_dict keys are minicnn's
    (torchvision's for AlexNet, VGG, GoogLeNet and ResNet).
    """
    if name == "lenet5":
        return LeNet5(num_classes, in_channels, **options)
    if name == "lenet5_keras":
        return LeNet5Keras(num_classes, in_channels, **options)
    if name == "alexnet":
        return AlexNet(num_classes, in_channels, **options)
    if name in VGG_CONFIGS:
        return VGG(VGG_CONFIGS[name], num_classes, in_channels, batch_norm=name.endswith("_bn"), **options)
    if name == "googlenet":
        return GoogLeNet(num_classes, in_channels, **options)
    if name in RESNET_LAYERS:
        block, layers = RESNET_LAYERS[name]
        return ResNet(block, layers, num_classes, in_channels, **options)
    if name in CIFAR_RESNET_DEPTHS:
        return CifarResNet(CIFAR_RESNET_DEPTHS[name], num_classes, in_channels, **options)
    raise ValueError(f"torch_models: unknown model {name!r}")
