"""Small helpers shared by the layers: argument normalisation and input checks."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Tensor
from .parameter import Parameter


def check_input(layer: str, x, expected: str, ndims, dim=None, size=None) -> None:
    """Raise a clear error naming the layer unless ``x`` is a Tensor with ``x.ndim in ndims``
    (any rank >= 1 when ``ndims`` is None) and, when ``dim`` is given, ``x.shape[dim] == size``.

    ``layer`` is the layer's short description, e.g. ``"Conv2d(3, 64, kernel_size=(3, 3))"``;
    ``expected`` describes the shape, e.g. ``"(N, 3, H, W)"``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer}: expected a minicnn Tensor, got {type(x).__name__} "
                        "(wrap arrays with minicnn.tensor(...))")
    bad_rank = x.ndim == 0 if ndims is None else x.ndim not in ndims
    if bad_rank or (dim is not None and x.shape[dim] != size):
        raise ValueError(f"{layer}: expected input of shape {expected}, got {tuple(x.shape)}")


def check_dtype(layer, x, weight) -> None:
    """Inputs must have the parameters' dtype (as in PyTorch, nothing is promoted silently)."""
    if weight is not None and x.dtype != weight.dtype:
        raise TypeError(f"{layer}: input dtype {np.dtype(x.dtype)} does not match the parameter dtype "
                        f"{np.dtype(weight.dtype)} (convert one of them: model.to(dtype) or x.to(dtype))")


def empty_parameter(shape, device=None, dtype=None) -> Parameter:
    """An uninitialised ``Parameter`` (the layer's ``reset_parameters`` fills it)."""
    return Parameter(backend.array_module(device).empty(shape, dtype=backend.as_dtype(dtype)))
