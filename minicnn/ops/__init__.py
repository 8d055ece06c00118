"""The differentiable operations behind ``Tensor``'s operators and methods, one module per family.

Each module defines its ``Function`` subclasses (forward and backward side by side, with the
one-line derivative) and then attaches the ``Tensor`` methods that call them (as DeZero's
``setup_variable`` does), so ``minicnn.autograd`` stays the engine alone. Importing ``minicnn``
imports this package.

* ``arithmetic``: ``+ - * / ** @``, ``maximum``, ``minimum``, ``where``, ``exp``, ``log``, ``sqrt``, ``abs``, ``clamp``
* ``activations``: ``relu``, ``sigmoid``, ``tanh``
* ``reductions``: ``sum``, ``mean``, ``max``, ``min``, ``argmax``, ``argmin``, ``any``, ``all``
* ``shapes``: ``reshape``, ``permute``, ``transpose``, ``expand``, ``cat``, ``stack``, ``to``, ``clone``
* ``indexing``: ``t[index]``
* ``creation``: ``tensor``, ``zeros``, ``randn``, ``arange``...
* ``conversion``: ``repr``, ``numpy()``, ``np.asarray(t)``, ``item()``, ``tolist()`` (no graph)
"""
from . import conversion  # noqa: F401  (repr, numpy(), item(), ...)
from .arithmetic import maximum, minimum, where
from .activations import ReLUFunction, SigmoidFunction, TanhFunction
from .creation import (arange, as_tensor, from_numpy, full, ones, ones_like, rand, randn, tensor, zeros,
                       zeros_like)
from .indexing import GetItemFunction
from .reductions import MaxFunction, MeanFunction, MinFunction, SumFunction
from .shapes import cat, stack

__all__ = ["maximum", "minimum", "where", "cat", "stack", "tensor", "as_tensor", "from_numpy", "zeros", "ones",
           "full", "zeros_like", "ones_like", "rand", "randn", "arange", "ReLUFunction", "SigmoidFunction",
           "TanhFunction", "GetItemFunction", "SumFunction", "MeanFunction", "MaxFunction", "MinFunction"]
