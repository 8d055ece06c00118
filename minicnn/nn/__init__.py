"""Neural-network layers and models, like ``torch.nn``.

    import minicnn.nn as nn

    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 12 * 12, 10))
    logits = model(minicnn.randn(8, 1, 28, 28))
    np.savez("model.npz", **model.state_dict())         # state_dict values are NumPy arrays

Files: ``module.py`` (``Module``: registration, ``parameters()``, ``state_dict()``, ``to()``...),
``parameter.py``, ``container.py`` (``Sequential``, ``ModuleList``), one file per family of
layers, ``loss.py``, ``init.py`` (weight initialisation), ``utils.py`` (gradient clipping) and
``functional.py`` (an alias of ``minicnn.functional``).
"""
from . import functional, init, utils
from .activation import LogSoftmax, ReLU, ScaledTanh, Sigmoid, Softmax, Tanh
from .container import ModuleList, Sequential
from .conv import Conv2d, Subsampling
from .dropout import Dropout
from .linear import Flatten, Identity, Linear
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .module import IncompatibleKeys, Module, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from .padding import ZeroPad2d
from .parameter import Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList", "IncompatibleKeys", "StateDictError",
    "Conv2d", "Subsampling", "Linear", "Identity", "Flatten", "ZeroPad2d",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "BatchNorm1d", "BatchNorm2d", "LocalResponseNorm", "Dropout",
    "ReLU", "Sigmoid", "Tanh", "ScaledTanh", "Softmax", "LogSoftmax",
    "CrossEntropyLoss", "NLLLoss", "MSELoss",
    "functional", "init", "utils",
]
