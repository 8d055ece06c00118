"""The five classic CNNs, built from ``minicnn.nn``, and a registry to build them by name.

    from minicnn import architectures
    architectures.names()                      # ['alexnet', 'googlenet', 'lenet5', ...]
    model = architectures.get("resnet18", num_classes=10, in_channels=1)

One file per family, each readable top to bottom with the paper it follows:

* ``lenet``     LeNet-5 (LeCun et al. 1998) and the popular Keras variant;
* ``alexnet``   AlexNet (Krizhevsky et al. 2012), torchvision's single-GPU version;
* ``vgg``       VGG-16 / VGG-19 with and without batch norm (Simonyan & Zisserman 2014);
* ``googlenet`` GoogLeNet / Inception v1 (Szegedy et al. 2014) with its auxiliary classifiers;
* ``resnet``    ResNet-18/34/50/101/152 (He et al. 2015), with ``stem="small"`` for 32x32 images;
* ``resnet_cifar`` the paper's CIFAR ResNet-20/32/44/56/110 (option A or B shortcuts).

Every model that torchvision also has uses torchvision's module names, so ``state_dict()``
keys, shapes and order are the same as torchvision's (pretrained weights converted to
NumPy load without renaming).  Each builder accepts ``num_classes`` and ``in_channels``.

Adding a model: decorate its builder with ``@register("name", input_shape=(C, H, W))``;
``input_shape`` is the size the model was designed for (used by ``python -m minicnn.summary``).
"""
from __future__ import annotations

import inspect
from typing import Callable

from ..weights import load_weights

_REGISTRY: dict[str, Callable] = {}
_INPUT_SHAPES: dict[str, tuple] = {}


def register(name: str, input_shape: tuple = (3, 224, 224)):
    """Decorator: make a model builder available as ``get(name, ...)``."""
    def decorate(builder):
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is already registered")
        _REGISTRY[name] = builder
        _INPUT_SHAPES[name] = tuple(input_shape)
        return builder
    return decorate


def names() -> list[str]:
    """The registered architecture names, sorted."""
    return sorted(_REGISTRY)


def _lookup(name):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; available: {', '.join(names())}") from None


def get(name: str, num_classes: int | None = None, weights=None, **options):
    """Build architecture ``name``; ``num_classes`` defaults to the model's own (1000, or 10 for LeNet).

    ``options`` go to the builder: ``in_channels`` for all, plus per-model ones
    (``c3_table``, ``lrn``, ``aux_logits``, ``zero_init_residual``, ...).
    ``weights``: a safetensors file (torchvision's names) loaded with ``minicnn.load_weights``
    (strict), as torchvision's ``resnet18(weights=...)``; for timm's names build the model, then
    ``load_weights(model, path, mapping="timm")``.  The model must be built to fit the file
    (``num_classes``, ``aux_logits``, ...): a mismatch raises an error naming the keys.
    """
    builder = _lookup(name)
    if num_classes is not None:
        options["num_classes"] = num_classes
    model = builder(**options)
    if weights is not None:
        load_weights(model, weights)
    return model


def builder_options(name: str) -> dict:
    """The options ``get(name, ...)`` takes, with their defaults (``num_classes`` and ``in_channels`` included)."""
    parameters = inspect.signature(_lookup(name)).parameters.values()
    return {p.name: p.default for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty}


def default_input_shape(name: str) -> tuple:
    """The (C, H, W) input the architecture was designed for, e.g. (1, 32, 32) for ``lenet5``."""
    _lookup(name)
    return _INPUT_SHAPES[name]


# --------------------------------------------------------------------------- helpers shared by the families

def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of parameter values, PyTorch-style, minus weights fixed at zero by a connection mask.

    A module may define ``masked_parameter_count`` (e.g. LeNet-5's C3 with the paper's
    partial connection table): those entries are stored but are not free parameters.
    Counts from shapes: nothing is allocated.
    """
    total = sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
    return total - sum(getattr(m, "masked_parameter_count", 0) for m in model.modules())


def check_input(x, model_name: str, in_channels: int, min_size: int | None = None,
                exact_size: int | None = None, hint: str = ""):
    """Raise a clear ``ValueError`` if ``x`` is not an (N, in_channels, H, W) batch the model can take."""
    shape = tuple(x.shape)
    if len(shape) != 4 or shape[1] != in_channels:
        raise ValueError(f"{model_name}: expected input of shape (N, {in_channels}, H, W), got {shape}"
                         + (" (add a batch dimension with x.unsqueeze(0))" if len(shape) == 3 else ""))
    h, w = shape[2:]
    if exact_size is not None and (h, w) != (exact_size, exact_size):
        raise ValueError(f"{model_name}: expected {exact_size}x{exact_size} images, got {h}x{w}. {hint}".rstrip())
    if min_size is not None and (h < min_size or w < min_size):
        raise ValueError(f"{model_name}: images must be at least {min_size}x{min_size}, got {h}x{w}. "
                         f"{hint}".rstrip())


# Importing the family modules registers their builders; they use register() and check_input() above,
# so these imports come after them (E402).
from . import alexnet as alexnet, googlenet as googlenet, lenet as lenet, resnet as resnet, vgg as vgg  # noqa: E402
from . import resnet_cifar as resnet_cifar  # noqa: E402
from .alexnet import AlexNet as AlexNet  # noqa: E402
from .googlenet import GoogLeNet as GoogLeNet, googlenet_loss as googlenet_loss  # noqa: E402
from .lenet import LeNet5 as LeNet5, LeNet5Keras as LeNet5Keras  # noqa: E402
from .resnet import BasicBlock as BasicBlock, Bottleneck as Bottleneck, ResNet as ResNet  # noqa: E402
from .resnet_cifar import CifarResNet as CifarResNet, ShortcutA as ShortcutA  # noqa: E402
from .vgg import VGG as VGG  # noqa: E402

__all__ = ["register", "names", "get", "builder_options", "default_input_shape", "count_parameters", "check_input",
           "LeNet5", "LeNet5Keras", "AlexNet", "VGG", "GoogLeNet", "googlenet_loss",
           "ResNet", "BasicBlock", "Bottleneck", "CifarResNet", "ShortcutA"]
