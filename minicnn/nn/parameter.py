"""``Parameter``: a tensor that a ``Module`` learns.

A ``Parameter`` is an ordinary leaf ``Tensor`` with two differences: it requires a gradient
by default, and assigning one to a module attribute (``self.weight = Parameter(...)``)
registers it, so that ``module.parameters()`` finds it and an optimizer can update it.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Tensor


class Parameter(Tensor):
    """A leaf tensor with ``requires_grad=True`` by default (``torch.nn.Parameter``).

    ``Parameter(t)`` shares ``t``'s array (no copy), as in PyTorch.  ``Parameter()`` holds an
    empty float32 array.  Results of operations on a parameter are plain ``Tensor``s.
    """

    __slots__ = ()          # Tensor uses __slots__; keep Parameter as light as Tensor

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty(0, dtype=np.float32)
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
