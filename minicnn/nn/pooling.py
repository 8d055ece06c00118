"""Pooling layers: ``MaxPool2d``, ``AvgPool2d`` and ``AdaptiveAvgPool2d`` (no parameters)."""
from __future__ import annotations

from .. import functional as F
from ..checks import pair
from ._utils import check_input
from .module import Module


class MaxPool2d(Module):
    """Maximum over each ``kernel_size`` window of an (N, C, H, W) batch, moved by ``stride``
    (default: ``kernel_size``, non-overlapping windows).

    Padding adds -inf borders (never chosen); ``ceil_mode=True`` rounds the output size up,
    keeping a last partial window.  ``dilation`` and ``return_indices`` are accepted for
    PyTorch compatibility with their default values only.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        if pair(type(self).__name__, "dilation", dilation) != (1, 1) or return_indices:
            raise ValueError("MaxPool2d: dilation != 1 and return_indices=True are not supported")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        check_input(f"MaxPool2d({self.extra_repr()})", input, "(N, C, H, W)", ndims=(4,))
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Mean over each ``kernel_size`` window of an (N, C, H, W) batch, moved by ``stride``
    (default: ``kernel_size``).

    With ``count_include_pad=True`` (default) the zero padding counts in the divisor.
    ``divisor_override`` is accepted for PyTorch compatibility as ``None`` only.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__()
        if divisor_override is not None:
            raise ValueError("AvgPool2d: divisor_override is not supported")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        check_input(f"AvgPool2d({self.extra_repr()})", input, "(N, C, H, W)", ndims=(4,))
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                            count_include_pad=self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed ``output_size`` (int or (h, w); ``None`` keeps that input size).

    Output cell (i, j) averages input rows floor(i*H/h) to ceil((i+1)*H/h) (and columns
    likewise), so any input size works: GoogLeNet and ResNet use ``AdaptiveAvgPool2d((1, 1))``
    as global average pooling.
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        check_input(f"AdaptiveAvgPool2d(output_size={self.output_size})", input, "(N, C, H, W)", ndims=(4,))
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"
