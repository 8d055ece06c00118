"""A micro autograd engine on Python floats, for the exercise ``topological_backward``.

Each :class:`Node` holds a ``value``, a ``grad`` and the nodes it was computed from (``parents``), with the
local derivative d(self)/d(parent) for each (``local_grads``). ``node._backward()`` passes ``node.grad``
on to the parents by the chain rule. What is missing is the traversal that calls ``_backward`` on every
node in the right order: that is the exercise (minicnn's own is ``minicnn.autograd.backward``).
"""
from __future__ import annotations

import math


class Node:
    """A scalar value in a graph: ``a = Node(2.0); b = a * a + a; backward(b)`` then ``a.grad == 5.0``."""

    def __init__(self, value, parents=(), local_grads=(), label=""):
        self.value, self.grad = float(value), 0.0
        self.parents, self.local_grads, self.label = tuple(parents), tuple(local_grads), label

    def _backward(self):
        """The chain rule for one node: each parent's grad += d(self)/d(parent) * self.grad."""
        for parent, local in zip(self.parents, self.local_grads):
            parent.grad += local * self.grad

    def __add__(self, other):
        other = other if isinstance(other, Node) else type(self)(other)
        return type(self)(self.value + other.value, (self, other), (1.0, 1.0))

    def __mul__(self, other):
        other = other if isinstance(other, Node) else type(self)(other)
        return type(self)(self.value * other.value, (self, other), (other.value, self.value))

    __radd__, __rmul__ = __add__, __mul__

    def tanh(self):
        t = math.tanh(self.value)
        return type(self)(t, (self,), (1.0 - t * t,))

    def __repr__(self):
        name = f"{self.label}=" if self.label else ""
        return f"Node({name}{self.value:g}, grad={self.grad:g})"
