"""minicnn: a small deep-learning engine written from scratch on NumPy (CPU) and CuPy (GPU).

    import minicnn
    x = minicnn.randn(2, 3, requires_grad=True)
    y = (x * x).sum()
    y.backward()            # x.grad == 2 * x

Modules: ``backend`` (NumPy or CuPy), ``autograd`` (the engine: Tensor, Function, backward), ``ops``
(the differentiable operations), ``kernels`` (plain-array kernels: ``textbook`` and ``fast``),
``functional`` (neural-network ops), ``nn``, ``optim``, ``architectures``, ``data``, ``training``;
``gradcheck`` checks gradients numerically.
"""
import numpy as _np

from .backend import cuda_available, manual_seed
from .kernels.fast.threads import get_num_threads, set_num_threads
from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from .ops import (arange, as_tensor, cat, from_numpy, full, maximum, minimum, ones, ones_like, rand, randn, stack,
                  tensor, where, zeros, zeros_like)
from .gradcheck import GradcheckError, gradcheck
from . import functional, nn, optim, data, architectures
from .summary import summary

float16, float32, float64 = _np.float16, _np.float32, _np.float64
int32, int64, bool_ = _np.int32, _np.int64, _np.bool_

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "zeros_like", "ones_like",
    "rand", "randn", "arange", "cat", "stack", "where", "maximum", "minimum", "no_grad", "enable_grad",
    "is_grad_enabled", "gradcheck", "GradcheckError", "summary", "manual_seed", "cuda_available", "get_num_threads",
    "set_num_threads", "functional", "nn", "optim", "data", "architectures", "float16", "float32", "float64",
    "int32", "int64", "bool_",
]
