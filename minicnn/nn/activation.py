"""Activation layers: thin ``Module`` wrappers around the functions in ``minicnn.functional``."""
from __future__ import annotations

from .. import functional as F
from .module import Module


class ReLU(Module):
    """max(x, 0), elementwise.

    ``inplace`` is accepted for PyTorch compatibility and ignored: minicnn never modifies
    its input (the result is always a new tensor; the memory saving of PyTorch's in-place
    ReLU does not apply).
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise."""

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, input):
        return F.tanh(input)


class ScaledTanh(Module):
    """LeCun's squashing function ``a * tanh(b * x)``, by default 1.7159 * tanh(2x/3) (LeNet-5, 1998).

    With these constants f(1) = 1 and f(-1) = -1, and the gain is largest around |x| = 1.
    No PyTorch equivalent.
    """

    def __init__(self, a: float = 1.7159, b: float = 2.0 / 3.0):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, input):
        return F.scaled_tanh(input, self.a, self.b)

    def extra_repr(self):
        return f"a={self.a}, b={self.b:.4g}"


class Softmax(Module):
    """Softmax along ``dim``: exp(x) / sum(exp(x)).  ``dim`` must be given (e.g. ``Softmax(dim=1)``)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log(softmax(x)) along ``dim``, computed stably (pair it with ``NLLLoss``)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
