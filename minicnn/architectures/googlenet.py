"""GoogLeNet (Inception v1): C. Szegedy et al., "Going deeper with convolutions", CVPR 2015
(arXiv:1409.4842).

The idea: an Inception module runs four branches side by side on the same input and
concatenates their outputs along the channels:

    branch1   1x1 conv
    branch2   1x1 conv (reduce) -> 3x3 conv
    branch3   1x1 conv (reduce) -> 3x3 conv   (the paper's 5x5; torchvision uses 3x3, kept here)
    branch4   3x3 max pool (stride 1) -> 1x1 conv (pool projection)

The 1x1 "reduce" convolutions shrink the channel count before the expensive filters, which
is what lets a 22-layer network have only 6.6 M parameters.

As in torchvision (same module names, so the same ``state_dict()`` keys), every convolution
is a ``BasicConv2d``: Conv2d(bias=False) + BatchNorm2d(eps=0.001) + ReLU (batch norm is
torchvision's addition; the paper predates it):

    conv1       7x7/2, 64           64 x 112 x 112   (224x224 input)
    maxpool1    3x3/2 (ceil)        64 x 56 x 56
    conv2       1x1, 64             64 x 56 x 56
    conv3       3x3, 192           192 x 56 x 56
    maxpool2    3x3/2 (ceil)       192 x 28 x 28
    inception3a, 3b                256, 480 x 28 x 28
    maxpool3    3x3/2 (ceil)       480 x 14 x 14
    inception4a .. 4e              512, 512, 512, 528, 832 x 14 x 14
    maxpool4    2x2/2 (ceil)       832 x 7 x 7
    inception5a, 5b                832, 1024 x 7 x 7
    avgpool     adaptive to 1x1   1024
    dropout 0.2, fc 1024 -> num_classes

Two auxiliary classifiers (``InceptionAux``) read the outputs of inception4a (aux1) and
inception4d (aux2) during training only: adaptive average pool to 4x4, 1x1 conv to 128,
fc 2048 -> 1024 + ReLU, dropout 0.7, fc 1024 -> num_classes.  In training mode ``forward``
returns ``(logits, aux2, aux1)`` (torchvision's ``GoogLeNetOutputs`` order); in eval mode, or
with ``aux_logits=False``, the logits alone.  ``googlenet_loss`` is the paper's training loss,
main + 0.3 * (aux1 + aux2).

Parameters (1000 classes): 13,004,888 with the auxiliary classifiers, 6,624,904 without.
Initialisation (torchvision's): convolutions and linear weights truncated normal
(std 0.01, cut at +-2), batch norm weight 1, bias 0; linear biases keep PyTorch's default.

Input size: at least 31x31 (the four ceil-mode max pools need 3, 3, 3 and 2 pixels; at
32x32 the last stage is 1x1 and the auxiliary 4x4 pool copies 2x2 maps up); 224x224 is the
design size.
"""
from __future__ import annotations

from .. import functional as F
from .. import nn
from ..ops import cat
from . import check_input, register

MIN_INPUT_SIZE = 31


class BasicConv2d(nn.Module):
    """Conv2d without bias, then BatchNorm2d(eps=0.001), then ReLU."""

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four parallel branches, concatenated along the channels (ch1x1 + ch3x3 + ch5x5 + pool_proj)."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1),   # 3x3, as torchvision
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x):
        return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: avg pool to 4x4, 1x1 conv to 128, fc 2048 -> 1024, ReLU, dropout, fc."""

    def __init__(self, in_channels, num_classes, dropout: float = 0.7):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(x, (4, 4))     # aux1: N x 512 x 14 x 14 -> 4 x 4
        x = self.conv(x)                         # N x 128 x 4 x 4
        x = x.flatten(1)                         # N x 2048
        x = F.relu(self.fc1(x))
        x = self.dropout(x)
        return self.fc2(x)


class GoogLeNet(nn.Module):
    """torchvision's GoogLeNet; see the module docstring."""

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, in_channels: int = 3,
                 dropout: float = 0.2, dropout_aux: float = 0.7, init_weights: bool = True):
        super().__init__()
        self.in_channels, self.aux_logits = in_channels, aux_logits
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

        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout=dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout=dropout_aux)
        else:
            self.aux1 = self.aux2 = None

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

        if init_weights:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

    def forward(self, x):
        check_input(x, "GoogLeNet", self.in_channels, min_size=MIN_INPUT_SIZE)
        x = self.maxpool1(self.conv1(x))          # 64 x 56 x 56
        x = self.conv3(self.conv2(x))             # 192 x 56 x 56
        x = self.maxpool2(x)                      # 192 x 28 x 28

        x = self.inception3b(self.inception3a(x))  # 480 x 28 x 28
        x = self.maxpool3(x)                      # 480 x 14 x 14
        x = self.inception4a(x)                   # 512 x 14 x 14
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None

        x = self.inception4d(self.inception4c(self.inception4b(x)))   # 528 x 14 x 14
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None

        x = self.inception4e(x)                   # 832 x 14 x 14
        x = self.maxpool4(x)                      # 832 x 7 x 7
        x = self.inception5b(self.inception5a(x))  # 1024 x 7 x 7

        x = self.avgpool(x).flatten(1)            # 1024
        x = self.fc(self.dropout(x))              # num_classes
        if self.training and self.aux_logits:
            return x, aux2, aux1
        return x


AUX_LOSS_WEIGHT = 0.3   # Szegedy et al. 2015: "their loss is added to the total loss with a discount weight (0.3)"


def googlenet_loss(outputs, target, aux_weight: float = AUX_LOSS_WEIGHT, label_smoothing: float = 0.0):
    """The paper's training loss: cross-entropy of the main output + 0.3 * (aux1 + aux2).

    ``outputs`` is what ``GoogLeNet.forward`` returns: ``(logits, aux2, aux1)`` in training
    mode with auxiliary classifiers, or the logits alone (then the plain cross-entropy).
    """
    if not isinstance(outputs, (tuple, list)):
        return F.cross_entropy(outputs, target, label_smoothing=label_smoothing)
    logits, aux2, aux1 = outputs
    loss = F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    for aux in (aux1, aux2):
        if aux is not None:
            loss = loss + aux_weight * F.cross_entropy(aux, target, label_smoothing=label_smoothing)
    return loss


@register("googlenet", input_shape=(3, 224, 224))
def googlenet(num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = True,
              dropout: float = 0.2, dropout_aux: float = 0.7) -> GoogLeNet:
    """GoogLeNet / Inception v1 as torchvision (13,004,888 parameters; 6,624,904 with aux_logits=False)."""
    return GoogLeNet(num_classes=num_classes, aux_logits=aux_logits, in_channels=in_channels,
                     dropout=dropout, dropout_aux=dropout_aux)
