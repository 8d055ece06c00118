"""ONNX converters for the five architecture families: each follows its model's eval-mode ``forward``.

They are the forward methods of ``minicnn.architectures`` written against the graph builder:
``g.call(sub_module, path, x)`` where the forward calls a sub-module, ``g.add``, ``g.relu``,
``g.concat`` and ``g.flatten`` where it uses tensor operations.  ``export`` checks the result
against the model's own forward, so a change to a forward that is not mirrored here fails
loudly at export time.  GoogLeNet's auxiliary classifiers only run in training mode, so an
exported GoogLeNet (built with or without them) has the main logits as its only output.
"""
from __future__ import annotations

import numpy as np

from ..architectures import AlexNet, BasicBlock, Bottleneck, CifarResNet, GoogLeNet, LeNet5, LeNet5Keras, ResNet, ShortcutA, VGG
from ..architectures.googlenet import BasicConv2d, Inception
from .graph import Value, register_converter


@register_converter(LeNet5)
def _lenet5(g, m, name, x):
    for layer in ("c1", "s2", "c3", "s4", "c5"):
        x = g.call(m.act, f"{name}.act", g.call(getattr(m, layer), f"{name}.{layer}", x))
    x = g.call(m.flatten, f"{name}.flatten", x)
    x = g.call(m.act, f"{name}.act", g.call(m.f6, f"{name}.f6", x))
    return g.call(m.output, f"{name}.output", x)


@register_converter(LeNet5Keras)
def _lenet5_keras(g, m, name, x):
    x = g.call(m.pool1, f"{name}.pool1", g.call(m.relu, f"{name}.relu", g.call(m.conv1, f"{name}.conv1", x)))
    x = g.call(m.pool2, f"{name}.pool2", g.call(m.relu, f"{name}.relu", g.call(m.conv2, f"{name}.conv2", x)))
    x = g.call(m.relu, f"{name}.relu", g.call(m.fc1, f"{name}.fc1", g.call(m.flatten, f"{name}.flatten", x)))
    return g.call(m.fc2, f"{name}.fc2", x)


@register_converter(AlexNet)
@register_converter(VGG)
def _features_pool_classifier(g, m, name, x):
    """AlexNet and VGG: features, adaptive average pool, flatten(1), classifier."""
    x = g.call(m.avgpool, f"{name}.avgpool", g.call(m.features, f"{name}.features", x))
    return g.call(m.classifier, f"{name}.classifier", g.flatten(x, f"{name}.flatten"))


# --------------------------------------------------------------------------- GoogLeNet

@register_converter(BasicConv2d)
def _basic_conv(g, m, name, x):
    return g.relu(g.call(m.bn, f"{name}.bn", g.call(m.conv, f"{name}.conv", x)), f"{name}.relu")


@register_converter(Inception)
def _inception(g, m, name, x):
    branches = [g.call(getattr(m, b), f"{name}.{b}", x) for b in ("branch1", "branch2", "branch3", "branch4")]
    return g.concat(branches, 1, f"{name}.concat")


@register_converter(GoogLeNet)
def _googlenet(g, m, name, x):
    for layer in ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
                  "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
                  "inception5a", "inception5b", "avgpool"):
        x = g.call(getattr(m, layer), f"{name}.{layer}", x)
    x = g.call(m.dropout, f"{name}.dropout", g.flatten(x, f"{name}.flatten"))
    return g.call(m.fc, f"{name}.fc", x)


# --------------------------------------------------------------------------- ResNet

@register_converter(BasicBlock)
def _basic_block(g, m, name, x):
    out = g.call(m.relu, f"{name}.relu", g.call(m.bn1, f"{name}.bn1", g.call(m.conv1, f"{name}.conv1", x)))
    out = g.call(m.bn2, f"{name}.bn2", g.call(m.conv2, f"{name}.conv2", out))
    identity = x if m.downsample is None else g.call(m.downsample, f"{name}.downsample", x)
    return g.call(m.relu, f"{name}.relu", g.add(out, identity, f"{name}.add"))


@register_converter(Bottleneck)
def _bottleneck(g, m, name, x):
    out = g.call(m.relu, f"{name}.relu", g.call(m.bn1, f"{name}.bn1", g.call(m.conv1, f"{name}.conv1", x)))
    out = g.call(m.relu, f"{name}.relu", g.call(m.bn2, f"{name}.bn2", g.call(m.conv2, f"{name}.conv2", out)))
    out = g.call(m.bn3, f"{name}.bn3", g.call(m.conv3, f"{name}.conv3", out))
    identity = x if m.downsample is None else g.call(m.downsample, f"{name}.downsample", x)
    return g.call(m.relu, f"{name}.relu", g.add(out, identity, f"{name}.add"))


@register_converter(ResNet)
def _resnet(g, m, name, x):
    x = g.call(m.relu, f"{name}.relu", g.call(m.bn1, f"{name}.bn1", g.call(m.conv1, f"{name}.conv1", x)))
    for layer in ("maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"):
        x = g.call(getattr(m, layer), f"{name}.{layer}", x)
    return g.call(m.fc, f"{name}.fc", g.flatten(x, f"{name}.flatten"))


# --------------------------------------------------------------------------- the ResNet paper's CIFAR networks

@register_converter(ShortcutA)
def _shortcut_a(g, m, name, x):
    """Option A: Slice with steps (the stride-2 subsample), then Pad the channel axis with zeros."""
    def ints(hint, values):
        return g.const(f"{name}.{hint}", np.array(values, dtype=np.int64), dtype=np.int64)

    y, out = x.name, m(x.tensor)
    if m.stride != 1:
        big = np.iinfo(np.int64).max
        y = g.node("Slice", [y, ints("starts", [0, 0]), ints("ends", [big, big]), ints("axes", [2, 3]),
                             ints("steps", [m.stride, m.stride])], f"{name}.subsample")
    if m.extra:
        before = m.extra // 2
        y = g.node("Pad", [y, ints("pads", [0, before, 0, 0, 0, m.extra - before, 0, 0])], f"{name}.pad",
                   mode="constant")
    return Value(y, out)


@register_converter(CifarResNet)
def _cifar_resnet(g, m, name, x):
    x = g.call(m.relu, f"{name}.relu", g.call(m.bn1, f"{name}.bn1", g.call(m.conv1, f"{name}.conv1", x)))
    for layer in ("layer1", "layer2", "layer3", "avgpool"):
        x = g.call(getattr(m, layer), f"{name}.{layer}", x)
    return g.call(m.fc, f"{name}.fc", g.flatten(x, f"{name}.flatten"))
