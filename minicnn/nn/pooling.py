"""Pooling layers: ``MaxPool2d``, ``MaxUnpool2d``, ``AvgPool2d`` and ``AdaptiveAvgPool2d`` (no parameters).

Each takes a batch (N, C, H, W) or one unbatched image (C, H, W), as PyTorch's do."""
from __future__ import annotations

from .. import functional as F
from ._utils import check_input
from .module import Module


class MaxPool2d(Module):
    """Maximum over each ``kernel_size`` window (elements ``dilation`` apart) of an (N, C, H, W) batch,
    moved by ``stride`` (default: ``kernel_size``, non-overlapping windows).

    Padding adds -inf borders (never chosen); ``ceil_mode=True`` rounds the output size up,
    keeping a last partial window.  ``return_indices=True`` returns ``(output, indices)`` for ``MaxUnpool2d``.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        check_input(f"MaxPool2d({self.extra_repr()})", input, "(N, C, H, W) or (C, H, W)", ndims=(3, 4))
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, ceil_mode=self.ceil_mode,
                            return_indices=self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxUnpool2d(Module):
    """The partial inverse of ``MaxPool2d``: ``unpool(output, indices)`` puts each value back where
    ``MaxPool2d(..., return_indices=True)`` found it, zeros elsewhere; ``output_size`` (a call argument)
    picks among the input sizes that pool to the same size."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding

    def forward(self, input, indices, output_size=None):
        check_input(f"MaxUnpool2d({self.extra_repr()})", input, "(N, C, H, W) or (C, H, W)", ndims=(3, 4))
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """Mean over each ``kernel_size`` window of an (N, C, H, W) batch, moved by ``stride``
    (default: ``kernel_size``).

    With ``count_include_pad=True`` (default) the zero padding counts in the divisor;
    ``divisor_override`` (an int) replaces the divisor.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        check_input(f"AvgPool2d({self.extra_repr()})", input, "(N, C, H, W) or (C, H, W)", ndims=(3, 4))
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                            count_include_pad=self.count_include_pad, divisor_override=self.divisor_override)

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
        check_input(f"AdaptiveAvgPool2d(output_size={self.output_size})", input, "(N, C, H, W) or (C, H, W)",
                    ndims=(3, 4))
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"
