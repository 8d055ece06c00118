"""Activations that are ``Tensor`` methods: ``relu``, ``sigmoid``, ``tanh`` (the others, such as
LeNet's scaled tanh and softmax, are in ``minicnn.functional``).

ReLU runs through the kernels (``minicnn.kernels.relu_forward``), so that the fast path may cut
it into slices for the CPU threads while the textbook path stays one ``maximum``.
"""
from __future__ import annotations

from .. import kernels
from ..autograd import Function, Tensor
from ..backend import get_array_module


class ReLUFunction(Function):
    """max(x, 0);  dx = g*(x > 0)."""

    def forward(self, x):
        out, self.mask = kernels.relu_forward(x, need_mask=self.needs_input_grad[0])
        return out

    def backward(self, grad):
        return kernels.relu_backward(grad, self.mask)


class SigmoidFunction(Function):
    """1/(1+exp(-x)), computed stably;  dx = g*y*(1-y)."""

    def forward(self, x):
        xp = get_array_module(x)
        # exp of a non-positive number never overflows: use exp(-|x|) on both branches
        e = xp.exp(-abs(x))
        self.out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return self.out

    def backward(self, grad):
        y = self.out
        return grad * y * (1 - y)


class TanhFunction(Function):
    """tanh(x);  dx = g*(1-y^2)."""

    def forward(self, x):
        self.out = get_array_module(x).tanh(x)
        return self.out

    def backward(self, grad):
        return grad * (1 - self.out * self.out)




Tensor.relu = lambda self: ReLUFunction.apply(self)
Tensor.sigmoid = lambda self: SigmoidFunction.apply(self)
Tensor.tanh = lambda self: TanhFunction.apply(self)
