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
* ``inplace``: ``+= -= *= /=``, ``add_``, ``mul_``, ``zero_``, ``fill_``, ``copy_``, ``clamp_``, ``t[i] = v``
* ``conversion``: ``repr``, ``numpy()``, ``np.asarray(t)``, ``item()``, ``tolist()`` (no graph)
"""
from . import conversion  # noqa: F401  (repr, numpy(), item(), ...)
from .arithmetic import add, maximum, minimum, sub, where
from .activations import ReLUFunction, SigmoidFunction, TanhFunction
from .creation import (arange, as_tensor, from_numpy, full, linspace, ones, ones_like, rand, randn, tensor, zeros,
                       zeros_like)
from .indexing import GetItemFunction
from .reductions import MaxFunction, MeanFunction, MinFunction, SumFunction
from .shapes import cat, stack
from . import inplace  # noqa: F401  (+=, add_, zero_, t[i] = v, ...: after the ops they reuse)

__all__ = ["add", "sub", "linspace", "maximum", "minimum", "where", "cat", "stack", "tensor", "as_tensor", "from_numpy", "zeros", "ones",
           "full", "zeros_like", "ones_like", "rand", "randn", "arange", "ReLUFunction", "SigmoidFunction",
           "TanhFunction", "GetItemFunction", "SumFunction", "MeanFunction", "MaxFunction", "MinFunction"]
