"""minicnn: a small deep-learning engine written from scratch on NumPy (CPU) and CuPy (GPU).

    import minicnn
    x = minicnn.randn(2, 3, requires_grad=True)
    y = (x * x).sum()
    y.backward()            # x.grad == 2 * x

Modules: ``backend`` (NumPy or CuPy), ``autograd`` (the engine: Tensor, Function, backward), ``ops``
(the differentiable operations), ``kernels`` (plain-array kernels: ``textbook`` and ``fast``),
``functional`` (neural-network ops), ``nn``, ``optim``, ``architectures``, ``data``, ``training``;
``gradcheck`` checks gradients numerically; ``save_weights`` / ``load_weights`` read and write
safetensors files (``weights``); ``onnx.export`` writes ONNX files (``onnx_export``).
"""
import sys as _sys

import numpy as _np

__version__ = "0.1.0"          # first, so that submodules can read it while the package loads

from .backend import cuda_available, manual_seed
from .kernels.fast.threads import get_num_threads, set_num_threads
from .kernels.fast.memory import release_memory
from .autograd import Function, Tensor, enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .ops import (add, arange, as_tensor, cat, from_numpy, full, linspace, maximum, minimum, ones, ones_like, rand,
                  randn, stack, sub, tensor, where, zeros, zeros_like)
from .gradcheck import GradcheckError, gradcheck
from .serialization import load, save
from . import functional, nn, optim, data
from .weights import load_weights, read_weights, save_weights
from . import architectures
from . import distributed
from .summary import summary
from . import onnx_export as onnx                    # minicnn.onnx.export(...); the package name avoids shadowing onnx
_sys.modules.setdefault(__name__ + ".onnx", onnx)    # so that `import minicnn.onnx` works too (as os.path does)

float16, float32, float64 = _np.float16, _np.float32, _np.float64
int32, int64, bool_ = _np.int32, _np.int64, _np.bool_

__all__ = [
    "Tensor", "Function", "tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "zeros_like", "ones_like",
    "rand", "randn", "arange", "linspace", "add", "sub", "cat", "stack", "where", "maximum", "minimum", "no_grad", "enable_grad",
    "inference_mode", "set_grad_enabled",
    "is_grad_enabled", "gradcheck", "GradcheckError", "summary", "manual_seed", "cuda_available", "get_num_threads",
    "set_num_threads", "release_memory", "functional", "nn", "optim", "data", "architectures", "distributed", "float16", "float32", "float64",
    "int32", "int64", "bool_", "save_weights", "load_weights", "read_weights", "onnx", "save", "load",
]
