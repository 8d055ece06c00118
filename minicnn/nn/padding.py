"""``ZeroPad2d``: pad the borders of an (N, C, H, W) batch with zeros."""
from __future__ import annotations

import numbers

from .. import functional as F
from ._utils import check_input
from .module import Module


class ZeroPad2d(Module):
    """Zero padding of the last two dimensions.

    ``padding`` is an int (the same on all four sides) or ``(left, right, top, bottom)``;
    the output has shape (N, C, H + top + bottom, W + left + right).
    """

    def __init__(self, padding):
        super().__init__()
        if isinstance(padding, numbers.Integral):
            padding = (padding,) * 4
        if not (isinstance(padding, (tuple, list)) and len(padding) == 4
                and all(isinstance(p, numbers.Integral) and p >= 0 for p in padding)):
            raise ValueError(f"ZeroPad2d: padding must be a non-negative int or (left, right, top, bottom), "
                             f"got {padding!r}")
        self.padding = tuple(int(p) for p in padding)

    def forward(self, input):
        check_input(f"ZeroPad2d({self.padding})", input, "(N, C, H, W) or (C, H, W)", ndims=(3, 4))
        return F.pad(input, self.padding)

    def extra_repr(self):
        return str(self.padding)
