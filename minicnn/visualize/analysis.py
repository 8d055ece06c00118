"""The numbers behind the figures, without matplotlib: a model from a run folder or by name, the test
images prepared as in training, the first layer's filters, the maps of one input through each stage,
the input gradient (saliency), predictions and the confusion matrix.

Only public pieces are used: ``minicnn.checkpoint.load`` and a run's saved ``config``,
``minicnn.architectures.get``, ``minicnn.data``. The test-time preparation of the images (channels,
size, normalisation) follows what the training CLI records in ``config.json``: ``in_channels``,
``image_size`` (the dataset's native size), ``input_size``, ``mean`` and ``std``.
"""
from __future__ import annotations

import os

import numpy as np

from .. import architectures, checkpoint, nn
from ..autograd import Tensor, no_grad
from ..backend import manual_seed
from ..data import NORMALIZATION, get_dataset
from ..data import transforms as T

#: Modules that act on each value (or each channel) and keep the shape: their output is shown
#: merged with the stage before them ("c1+act"), not as a stage of its own.
POINTWISE = (nn.ReLU, nn.ScaledTanh, nn.Tanh, nn.Sigmoid, nn.BatchNorm2d, nn.Dropout, nn.LocalResponseNorm)

#: Native (channels, size) of the datasets minicnn reads.
DATASET_SHAPES = {"mnist": (1, 28), "fashion-mnist": (1, 28), "cifar10": (3, 32)}


# --------------------------------------------------------------------------- models

def find_checkpoint(path: str) -> str:
    """A run folder -> its ``best.npz`` (else ``last.npz``); a file -> itself."""
    if os.path.isdir(path):
        for name in ("best.npz", "last.npz"):
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name)
        raise checkpoint.CheckpointError(f"{path}: no best.npz or last.npz in this folder; pass a run folder "
                                         "written by `python -m minicnn.train` or a checkpoint file")
    return path


def build(config: dict):
    """The model a run's ``config`` describes (architecture, classes, channels, options), on the CPU."""
    options = dict(config.get("model_options") or {})
    if "input_size" in architectures.builder_options(config["arch"]):   # lenet5_keras sizes its dense layer
        options.setdefault("input_size", config["input_size"])
    return architectures.get(config["arch"], num_classes=config["num_classes"],
                             in_channels=config["in_channels"], **options)


def load_run(path: str):
    """``(model in eval mode, config, checkpoint path, epoch)`` of a run folder or checkpoint file."""
    path = find_checkpoint(path)
    state = checkpoint.load(path)
    checkpoint.require(state, ["model", "config"], path)
    config = state["config"]
    missing = [k for k in ("arch", "dataset", "num_classes", "in_channels", "input_size", "mean", "std")
               if not isinstance(config, dict) or k not in config]
    if missing:
        raise checkpoint.CheckpointError(f"checkpoint {path}: its config lacks {', '.join(missing)}. Pass a "
                                         "last.npz or best.npz written by `python -m minicnn.train`.")
    try:
        model = build(config)
        model.load_state_dict(state["model"])
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise checkpoint.CheckpointError(f"checkpoint {path}: its weights do not fit the {config['arch']} model of "
                                         f"its own config ({exc}). Pass a checkpoint of `python -m minicnn.train`.") from exc
    return model.eval(), config, path, state.get("epoch")


def untrained(arch: str, dataset: str = "mnist", input_size: int | None = None, in_channels: int | None = None,
              seed: int = 0):
    """``(model in eval mode, config)``: architecture ``arch`` as initialised with ``seed``, for ``dataset``.

    ``input_size`` defaults to the architecture's design size; ``in_channels`` to its design
    channels (grey images are repeated for an RGB model).
    """
    design = architectures.default_input_shape(arch)
    channels, native = DATASET_SHAPES[dataset]
    mean, std = NORMALIZATION[dataset]
    config = dict(arch=arch, dataset=dataset, num_classes=10, in_channels=in_channels or design[0],
                  image_size=native, input_size=input_size or design[1], model_options={},
                  mean=list(np.atleast_1d(mean).astype(float)), std=list(np.atleast_1d(std).astype(float)))
    manual_seed(seed)
    return build(config).eval(), config


# --------------------------------------------------------------------------- images

def test_set(config: dict, data_dir=None, limit=None):
    """``(uint8 images (N, C, H, W), labels (N,), class names)`` of the test split of the config's dataset."""
    ds = get_dataset(config["dataset"], root=data_dir, train=False)
    n = len(ds) if limit is None else min(limit, len(ds))
    return ds.data[:n], ds.targets[:n], list(ds.classes)


def prepare(images, config: dict) -> np.ndarray:
    """uint8 images at the dataset's size -> the float32 batch the model takes (as the training CLI
    prepares test images: channels, then padding (a growth of at most 8 pixels) or a bilinear resize,
    then (x / 255 - mean) / std)."""
    x = np.asarray(images)
    channels = config["in_channels"]
    if x.shape[1] == 1 and channels == 3:
        x = np.repeat(x, 3, axis=1)
    elif x.shape[1] == 3 and channels == 1:
        grey = np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), x.astype(np.float32), axes=([0], [1]))
        x = np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, None]
    native, size = x.shape[-1], config["input_size"]
    grow = size - native
    if 0 < grow <= 8 and grow % 2 == 0:
        x = T.Pad(grow // 2)(x)
    elif grow:
        x = T.Resize(size, mode="bilinear")(x)
    mean, std = config["mean"], config["std"]
    if len(mean) != channels:           # grey statistics for an RGB model (an untrained one)
        mean, std = list(mean) * channels, list(std) * channels
    return T.Normalize(mean, std)(x)


# --------------------------------------------------------------------------- what the model computes

def first_conv(model):
    """``(name, Conv2d)``: the model's first convolution (in module order)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ValueError(f"{type(model).__name__} has no Conv2d layer: there are no filters to draw")


def _stage_modules(model, prefix=""):
    """The modules whose outputs are the stages: the model's children, containers opened one level."""
    for name, child in model.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and not prefix:
            yield from _stage_modules(child, full + ".")
        else:
            yield full, child


def stage_outputs(model, x, max_stages: int = 8):
    """Run ``model`` on the batch ``x`` and return ``[(label, array (N, C, H, W)), ...]``, one per stage.

    A stage is one call of a child module (containers opened) whose output is an image batch larger
    than 1x1; a pointwise module (activation, batch-norm...) merges into the stage before it
    ("c1+act"). With more than ``max_stages``, the last stage of each spatial size is kept.
    """
    calls, wrapped = [], []
    for name, module in _stage_modules(model):
        def forward(*args, _original=module.forward, _name=name, _module=module, **kwargs):
            out = _original(*args, **kwargs)
            if isinstance(out, Tensor) and out.ndim == 4:
                calls.append((_name, _module, out.numpy().copy()))
            return out
        module.forward = forward
        wrapped.append(module)
    try:
        with no_grad():
            model(Tensor(x))
    finally:
        for module in wrapped:
            del module.forward
    stages = []
    for name, module, out in calls:
        if stages and isinstance(module, POINTWISE) and out.shape == stages[-1][1].shape:
            stages[-1] = (f"{stages[-1][0]}+{name}", out)
        elif out.shape[2] * out.shape[3] > 1:
            stages.append((name, out))
    if len(stages) > max_stages:
        last_of_size = {}
        for k, (_, out) in enumerate(stages):
            last_of_size[out.shape[2:]] = k
        keep = sorted(last_of_size.values())
        if len(keep) > max_stages:
            keep = [keep[round(i * (len(keep) - 1) / (max_stages - 1))] for i in range(max_stages)]
        stages = [stages[k] for k in keep]
    return stages


def saliency(model, x):
    """Input gradients: ``(|d score / d x| max over channels (N, H, W), predicted class (N,), probabilities (N, K))``.

    The score is the logit of the class the model predicts for each image (Simonyan et al. 2013),
    with the model in eval mode, so batch-norm uses its running statistics in the backward pass too.
    """
    xt = Tensor(np.ascontiguousarray(x, dtype=np.float32), requires_grad=True)
    logits = model(xt)
    scores = logits.numpy()
    pred = scores.argmax(axis=1)
    pick = np.zeros_like(scores)
    pick[np.arange(len(pred)), pred] = 1.0
    (logits * Tensor(pick)).sum().backward()
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return np.abs(xt.grad.numpy()).max(axis=1), pred, e / e.sum(axis=1, keepdims=True)


def on_image_grid(maps, config: dict):
    """Maps (N, S, S) over the model's input, cut back to the dataset's pixels when ``prepare`` padded them
    (a padded border is not part of the image); resized inputs are returned as they are."""
    grow = config["input_size"] - config["image_size"]
    if 0 < grow <= 8 and grow % 2 == 0 and maps.shape[-1] == config["input_size"]:
        b = grow // 2
        return maps[..., b:-b, b:-b]
    return maps


def predict(model, x, batch_size: int = 500) -> np.ndarray:
    """Softmax probabilities (N, K) of the prepared batch ``x``, ``batch_size`` images at a time."""
    parts = []
    with no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(Tensor(x[start:start + batch_size])).numpy().astype(np.float64)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            parts.append(e / e.sum(axis=1, keepdims=True))
    return np.concatenate(parts) if parts else np.zeros((0, 0))


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """``m[t, p]`` = how many images of true class t were predicted as p."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(labels), np.asarray(predictions)), 1)
    return m
