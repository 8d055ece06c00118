"""LeNet-5: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to
document recognition", Proc. IEEE 86(11), 1998 (section II.B, Fig. 2, Table I).

LeNet-5 as the paper describes it (input: one 32x32 image; MNIST's 28x28 digits are padded
by 2 pixels on each side, as in the paper):

    layer   what                                              output     parameters
    C1      conv 6 maps, 5x5                                  6x28x28    6*(1*25+1)  =    156
    S2      trainable 2x2 subsampling: (sum of 4) * w + b     6x14x14    6*2         =     12
    C3      conv 16 maps, 5x5 over the 6 S2 maps              16x10x10   16*(6*25+1) =  2,416
            (paper's Table I connects each C3 map to only 3, 4 or 6 S2 maps:
             60 connections -> 60*25+16 = 1,516 parameters; ``c3_table=True``)
    S4      trainable 2x2 subsampling                         16x5x5     16*2        =     32
    C5      conv 120 maps, 5x5 (covers the whole 5x5 input)   120x1x1    120*(16*25+1) = 48,120
    F6      fully connected 120 -> 84                         84         84*(120+1)  = 10,164
    output  fully connected 84 -> 10                          10         10*(84+1)   =    850
                                                                          total       61,750
                                                          (with the C3 table: 60,850)

Every layer but the output is followed by LeCun's squashing function
f(a) = 1.7159 * tanh(2a/3) (Appendix A), chosen so that f(1) = 1 and f(-1) = -1.

Departures from the paper, kept deliberately small:

* the output layer is a plain ``Linear(84, 10)`` giving logits for cross-entropy, where the
  paper uses Euclidean radial-basis-function units with fixed bitmap codes;
* the subsampling coefficient and bias are per map, as in the paper (``nn.Subsampling``).

Initialisation (Appendix A of the paper): every weight and bias is drawn uniformly from
(-2.4/F, 2.4/F), where F is the fan-in of the unit it feeds (the number of inputs, bias
excluded: 25 for C1, 4 for S2 and S4, 75/100/150 for the C3 maps with the table, 150
without, 400 for C5, 120 for F6, 84 for the output).

``LeNet5Keras`` is the popular Keras "LeNet" (20 and 50 5x5 'same' convolutions with ReLU and
2x2 max pooling, then dense 500 and dense 10); it is not the paper's network, and has about
26 times as many parameters, almost all of them in the first dense layer.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor
from . import check_input, register

# Table I of the paper: which S2 maps (rows) each C3 map (columns) is connected to.
# Maps 0-5 take 3 contiguous S2 maps, 6-11 take 4 contiguous ones, 12-14 take 4
# non-contiguous ones, and map 15 takes all six.
C3_TABLE = np.array([
    # C3 map: 0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
    [1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1],   # S2 map 0
    [1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1],   # S2 map 1
    [1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1],   # S2 map 2
    [0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1],   # S2 map 3
    [0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1],   # S2 map 4
    [0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1],   # S2 map 5
], dtype=np.float32)


class MaskedConv2d(nn.Conv2d):
    """A ``Conv2d`` whose input-to-output map connections are switched on or off by a fixed 0/1 table.

    ``table[i, o] = 1`` connects input map i to output map o.  The forward pass convolves with
    ``weight * mask``, so a switched-off weight never affects the output and its gradient is
    exactly zero.  The mask is a non-persistent buffer (not in ``state_dict()``: it is part of
    the architecture, not of the learned state), and the switched-off weights are not counted
    as parameters (``masked_parameter_count``).
    """

    def __init__(self, in_channels, out_channels, kernel_size, table, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        table = np.asarray(table, dtype=np.float32)
        if table.shape != (in_channels // self.groups, out_channels):
            raise ValueError(f"MaskedConv2d: table must have shape ({in_channels // self.groups}, "
                             f"{out_channels}), got {table.shape}")
        mask = table.T[:, :, None, None]                        # (out, in, 1, 1), broadcasts over kh, kw
        self.register_buffer("mask", _tensor_like(mask, self.weight), persistent=False)
        kh, kw = self.weight.shape[2:]
        self.masked_parameter_count = int((table == 0).sum()) * kh * kw
        self.weight.data *= self.mask.data                      # stored weights agree with the mask

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding,
                        self.dilation, self.groups)

    def extra_repr(self):
        return super().extra_repr() + f", connections={int(self.mask.data.sum())}"


def _tensor_like(array, like):
    return Tensor(array, device=like.device)


def _lecun_uniform_(tensor, fan_in):
    """Uniform(-2.4/F, 2.4/F); ``fan_in`` is a number or one value per output map (first dimension)."""
    nn.init.uniform_(tensor, -1.0, 1.0)
    bound = 2.4 / np.asarray(fan_in, dtype=np.float32)
    if bound.ndim:       # one bound per output map: an array on the weight's device
        bound = Tensor(bound.reshape((-1,) + (1,) * (tensor.ndim - 1)), device=tensor.device).data
    tensor.data *= bound


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998): 1x32x32 -> 10 class scores. See the module docstring."""

    input_size = 32

    def __init__(self, num_classes: int = 10, in_channels: int = 1, c3_table: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.c1 = nn.Conv2d(in_channels, 6, kernel_size=5)
        self.s2 = nn.Subsampling(6, kernel_size=2, stride=2)
        self.c3 = (MaskedConv2d(6, 16, kernel_size=5, table=C3_TABLE) if c3_table
                   else nn.Conv2d(6, 16, kernel_size=5))
        self.s4 = nn.Subsampling(16, kernel_size=2, stride=2)
        self.c5 = nn.Conv2d(16, 120, kernel_size=5)
        self.flatten = nn.Flatten()
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)
        self.act = nn.ScaledTanh()             # 1.7159 * tanh(2x/3), shared: it has no state
        self.reset_parameters()

    def reset_parameters(self):
        """LeCun's initialisation: uniform in +-2.4 / fan-in of the receiving unit."""
        c3_fan_in = (C3_TABLE.sum(axis=0) * 25 if isinstance(self.c3, MaskedConv2d) else 6 * 25)
        fan_ins = [(self.c1, self.in_channels * 25), (self.s2, 4), (self.c3, c3_fan_in), (self.s4, 4),
                   (self.c5, 16 * 25), (self.f6, 120), (self.output, 84)]
        for layer, fan_in in fan_ins:
            _lecun_uniform_(layer.weight, fan_in)
            _lecun_uniform_(layer.bias, fan_in)
        if isinstance(self.c3, MaskedConv2d):
            self.c3.weight.data *= self.c3.mask.data

    def forward(self, x):
        check_input(x, "LeNet5", self.in_channels, exact_size=32,
                    hint="Pad 28x28 MNIST digits by 2 pixels on each side (as the paper does).")
        x = self.act(self.c1(x))        # 6 x 28 x 28
        x = self.act(self.s2(x))        # 6 x 14 x 14
        x = self.act(self.c3(x))        # 16 x 10 x 10
        x = self.act(self.s4(x))        # 16 x 5 x 5
        x = self.act(self.c5(x))        # 120 x 1 x 1
        x = self.flatten(x)             # 120
        x = self.act(self.f6(x))        # 84
        return self.output(x)           # num_classes logits


class LeNet5Keras(nn.Module):
    """The Keras "LeNet": conv 20@5x5 same, ReLU, max-pool 2; conv 50@5x5 same, ReLU, max-pool 2;
    dense 500, ReLU; dense num_classes (logits; Keras ends with a softmax, which belongs in the loss here).

    ``input_size`` (32 by default; 28 for raw MNIST) fixes the first dense layer: (input_size // 4)^2 * 50 inputs,
    2,450 at 28x28 (1,256,080 parameters in all) and 3,200 at 32x32 (1,631,080).
    Initialised like Keras: Glorot-uniform weights, zero biases.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 32):
        super().__init__()
        if input_size < 4:
            raise ValueError(f"LeNet5Keras: input_size must be at least 4, got {input_size}")
        self.in_channels, self.input_size = in_channels, input_size
        side = input_size // 2 // 2
        self.conv1 = nn.Conv2d(in_channels, 20, kernel_size=5, padding=2)    # 'same'
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(20, 50, kernel_size=5, padding=2)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(50 * side * side, 500)
        self.fc2 = nn.Linear(500, num_classes)
        self.relu = nn.ReLU()
        for layer in (self.conv1, self.conv2, self.fc1, self.fc2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        check_input(x, "LeNet5Keras", self.in_channels, exact_size=self.input_size,
                    hint=f"(build with input_size={x.shape[-1]} for other sizes)" if x.ndim == 4 else "")
        x = self.pool1(self.relu(self.conv1(x)))
        x = self.pool2(self.relu(self.conv2(x)))
        x = self.relu(self.fc1(self.flatten(x)))
        return self.fc2(x)


@register("lenet5", input_shape=(1, 32, 32))
def lenet5(num_classes: int = 10, in_channels: int = 1, c3_table: bool = False) -> LeNet5:
    """LeNet-5 as in LeCun et al. 1998 (61,750 parameters; 60,850 with ``c3_table=True``)."""
    return LeNet5(num_classes=num_classes, in_channels=in_channels, c3_table=c3_table)


@register("lenet5_keras", input_shape=(1, 32, 32))
def lenet5_keras(num_classes: int = 10, in_channels: int = 1, input_size: int = 32) -> LeNet5Keras:
    """The Keras LeNet variant: 1,631,080 parameters at the default 32x32 (LeNet-5's input size,
    and the count the article quotes); 1,256,080 with ``input_size=28`` for raw MNIST digits."""
    return LeNet5Keras(num_classes=num_classes, in_channels=in_channels, input_size=input_size)
