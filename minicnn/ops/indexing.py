"""Indexing: ``t[index]`` with basic slices or integer/boolean arrays; the backward scatters the
gradient back (adding where an index repeats).
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, Tensor
from ..backend import get_array_module


def _is_basic_index(index):
    """True for indices made only of ints, slices, None and Ellipsis (NumPy 'basic' indexing)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


class GetItemFunction(Function):
    """x[index] (basic slicing or integer-array / boolean indexing);
    dx = zeros with g added at the indexed positions (repeated indices add up)."""

    def forward(self, x, index):
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        try:
            return x[index]
        except IndexError as exc:
            raise IndexError(f"getitem: {exc} (tensor of shape {tuple(x.shape)})") from None

    def backward(self, grad):
        xp = get_array_module(grad)
        out = xp.zeros(self.shape, dtype=grad.dtype)
        if _is_basic_index(self.index):
            out[self.index] = grad           # basic indices never repeat an element
        else:
            xp.add.at(out, self.index, grad)  # scatter-add: repeated indices accumulate
        return out




def unwrap_index(index, xp):
    """Tensors inside an index become their arrays (indices carry no gradient); lists and index
    arrays go to the indexed tensor's device (``xp``), so that backward's scatter-add stays there."""
    if isinstance(index, tuple):
        return tuple(unwrap_index(i, xp) for i in index)
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, list) or (isinstance(index, np.ndarray) and xp is not np):
        return xp.asarray(index)
    return index


Tensor.__getitem__ = lambda self, index: GetItemFunction.apply(self, unwrap_index(index, get_array_module(self.data)))
