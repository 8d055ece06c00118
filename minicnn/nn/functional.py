"""``minicnn.nn.functional``: the same functions as ``minicnn.functional``, under PyTorch's path.

So that ``import minicnn.nn.functional as F`` works as ``import torch.nn.functional as F`` does.
"""
from ..functional import *  # noqa: F401,F403
from .. import functional as _functional

# every public function and Function class defined in minicnn.functional
__all__ = getattr(_functional, "__all__", None) or sorted(
    name for name, value in vars(_functional).items()
    if not name.startswith("_") and callable(value) and getattr(value, "__module__", None) == _functional.__name__)
