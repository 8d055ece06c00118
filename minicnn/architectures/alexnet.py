"""AlexNet: A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet classification with deep
convolutional neural networks", NIPS 2012.

This is torchvision's AlexNet, module for module (so ``state_dict()`` keys match torchvision's):
the single-GPU variant from Krizhevsky's "One weird trick for parallelizing convolutional
neural networks" (2014), with 64/192/384/256/256 filters instead of the paper's 96/256/384/384/256
split over two GPUs, and no local response normalisation.

    features      0  Conv2d(3, 64, 11, stride 4, padding 2)    64 x 55 x 55   (224x224 input)
                  1  ReLU
                  2  MaxPool2d(3, stride 2)                     64 x 27 x 27   (overlapping pooling)
                  3  Conv2d(64, 192, 5, padding 2)             192 x 27 x 27
                  4  ReLU
                  5  MaxPool2d(3, stride 2)                    192 x 13 x 13
                  6  Conv2d(192, 384, 3, padding 1)            384 x 13 x 13
                  7  ReLU
                  8  Conv2d(384, 256, 3, padding 1)            256 x 13 x 13
                  9  ReLU
                 10  Conv2d(256, 256, 3, padding 1)            256 x 13 x 13
                 11  ReLU
                 12  MaxPool2d(3, stride 2)                    256 x 6 x 6
    avgpool          AdaptiveAvgPool2d((6, 6))                 256 x 6 x 6
    classifier    0  Dropout(0.5)
                  1  Linear(9216, 4096)   (9216 = 256*6*6: 37.8 M of the 61.1 M parameters)
                  2  ReLU
                  3  Dropout(0.5)
                  4  Linear(4096, 4096)
                  5  ReLU
                  6  Linear(4096, num_classes)

61,100,840 parameters with 1000 classes.  Initialisation: PyTorch's defaults (as torchvision).

``lrn=True`` adds the paper's local response normalisation after the first and second
ReLU, before pooling (section 3.3: n=5, k=2, alpha=1e-4, beta=0.75).  The paper's formula is
b = a / (k + alpha * sum of a^2 over n maps)^beta; ``nn.LocalResponseNorm`` follows PyTorch,
which divides alpha by n, so the paper's alpha=1e-4 is passed as alpha = 5 * 1e-4.  LRN has no
parameters, but it shifts the indices in ``features`` (keys then differ from torchvision's).

Input size: at least 63x63 (the three 3x3 stride-2 max pools and the stride-4 first
convolution leave 1x1 at 63x63; the adaptive pool then brings any size to 6x6).
"""
from __future__ import annotations

from .. import nn
from . import check_input, register

MIN_INPUT_SIZE = 63


class AlexNet(nn.Module):
    """torchvision's AlexNet (optionally with the paper's local response normalisation)."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5, lrn: bool = False):
        super().__init__()
        self.in_channels = in_channels

        def norm():   # the paper's LRN, written in PyTorch's convention (alpha divided by size)
            return [nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)] if lrn else []

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(),
            *norm(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            *norm(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        check_input(x, "AlexNet", self.in_channels, min_size=MIN_INPUT_SIZE)
        x = self.features(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        return self.classifier(x)


@register("alexnet", input_shape=(3, 224, 224))
def alexnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5, lrn: bool = False) -> AlexNet:
    """torchvision's AlexNet (61,100,840 parameters); ``lrn=True`` adds the paper's LRN layers."""
    return AlexNet(num_classes=num_classes, in_channels=in_channels, dropout=dropout, lrn=lrn)
