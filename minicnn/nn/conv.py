"""Convolution layers: ``Conv2d`` and LeNet-5's trainable ``Subsampling``."""
from __future__ import annotations

import math

from .. import functional as F
from . import init
from ..checks import pair
from ._utils import check_dtype, check_input, empty_parameter
from .module import Module


class Conv2d(Module):
    """2-D convolution (cross-correlation, as in every framework) of an (N, C_in, H, W) batch.

    Output (N, C_out, H_out, W_out) with H_out = floor((H + 2*padding - dilation*(kh-1) - 1) / stride) + 1.
    Parameters: ``weight`` (out_channels, in_channels/groups, kh, kw) and ``bias`` (out_channels,),
    initialised as in PyTorch (``kaiming_uniform_(a=sqrt(5))``: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    with fan_in = in_channels/groups * kh * kw, and the bias from the same distribution).
    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are ints or (h, w) pairs; ``padding``
    may also be ``'valid'`` (none) or ``'same'`` (stride 1 only).  Only zero padding
    (``padding_mode='zeros'``) is supported.  One unbatched image (C_in, H, W) gives (C_out, H_out, W_out).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__()
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                             f"divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"Conv2d: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(type(self).__name__, "kernel_size", kernel_size)
        self.stride = pair(type(self).__name__, "stride", stride)
        if isinstance(padding, str):                     # 'valid' (no padding) or 'same' (output size = input size)
            if padding not in ("valid", "same"):
                raise ValueError(f"Conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
            if padding == "same" and pair(type(self).__name__, "stride", stride) != (1, 1):
                raise ValueError("Conv2d: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = pair(type(self).__name__, "padding", padding)
        self.dilation = pair(type(self).__name__, "dilation", dilation)
        self.groups, self.padding_mode = groups, padding_mode
        self.weight = empty_parameter((out_channels, in_channels // groups) + self.kernel_size, device, dtype)
        if bias:
            self.bias = empty_parameter((out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_(self.weight, self.bias)

    def forward(self, input):
        name = f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})"
        check_input(name, input, f"(N, {self.in_channels}, H, W) or ({self.in_channels}, H, W)", ndims=(3, 4), dim=-3,
                    size=self.in_channels)
        check_dtype(name, input, self.weight)
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0, 0), "valid"):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Subsampling(Module):
    """LeNet-5's trainable sub-sampling layer (LeCun et al., 1998; layers S2 and S4).

    Each output unit is the SUM of a ``kernel_size`` window of one channel, times a trainable
    coefficient of that channel, plus a trainable bias of that channel:

        y[n, c, i, j] = weight[c] * sum(x[n, c, window(i, j)]) + bias[c]

    Parameters: ``weight`` (C,) and ``bias`` (C,), both initialised from U(-1/sqrt(kh*kw), 1/sqrt(kh*kw))
    (PyTorch's default rule for a layer whose units each see kh*kw inputs).  No PyTorch equivalent;
    LeNet-5 follows it with a squashing function (``ScaledTanh``).
    """

    def __init__(self, channels: int, kernel_size=2, stride=2, device=None, dtype=None):
        super().__init__()
        self.channels = channels
        self.kernel_size = pair(type(self).__name__, "kernel_size", kernel_size)
        self.stride = pair(type(self).__name__, "stride", stride)
        self.weight = empty_parameter((channels,), device, dtype)
        self.bias = empty_parameter((channels,), device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.kernel_size[0] * self.kernel_size[1])
        init.uniform_(self.weight, -bound, bound)
        init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        name = f"Subsampling({self.channels}, kernel_size={self.kernel_size})"
        check_input(name, input, f"(N, {self.channels}, H, W)", ndims=(4,), dim=1, size=self.channels)
        check_dtype(name, input, self.weight)
        return F.subsample(input, self.weight, self.bias, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"{self.channels}, kernel_size={self.kernel_size}, stride={self.stride}"
