"""From a dataset's uint8 images to the batches a model takes: channel conversion (grey <-> RGB),
random augmentation, resizing to the model's input size, then float conversion and normalisation.

``make_transform(config, train)`` builds the whole pipeline from a run's options (``dataset``,
``in_channels``, ``input_size``, ``augment``, ``mean``, ``std``); the training CLI and ``predict``
both use it, so an image is prepared the same way for training and for prediction.
"""
from __future__ import annotations

import numpy as np

from . import transforms as T
from .datasets import ArrayDataset, get_dataset

#: Native image size and channels of each dataset.
DATASET_SHAPES = {"mnist": (1, 28), "fashion-mnist": (1, 28), "cifar10": (3, 32)}


class ToChannels(T.Transform):
    """Give a uint8 batch ``channels`` channels: grey -> RGB repeats, RGB -> grey uses ITU-R 601 weights."""

    def __init__(self, channels):
        self.channels = int(channels)

    def __call__(self, x, rng=None):
        c = x.shape[1]
        if c == self.channels:
            return x
        if c == 1:
            return np.repeat(x, self.channels, axis=1)
        if c == 3 and self.channels == 1:
            grey = np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), x.astype(np.float32), axes=([0], [1]))
            return np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, None]
        raise ValueError(f"cannot turn {c}-channel images into {self.channels}-channel ones")


def normalization(dataset: str, in_channels: int):
    """``(mean, std)`` lists (one value per model input channel) for ``dataset``.

    Grey data fed to an RGB model repeats its constants; RGB data turned grey uses the
    601-weighted means of the channel constants (an approximation of the grey statistics).
    """
    mean, std = T.NORMALIZATION[dataset]
    mean, std = np.atleast_1d(mean).astype(float), np.atleast_1d(std).astype(float)
    if len(mean) == in_channels:
        return mean.tolist(), std.tolist()
    if len(mean) == 1:
        return [float(mean[0])] * in_channels, [float(std[0])] * in_channels
    w = np.array([0.299, 0.587, 0.114])
    return [float(w @ mean)], [float(w @ std)]


def resize_transform(native: int, size: int):
    """Fit ``native`` x ``native`` images to ``size`` x ``size``.

    A small growth (at most 8 pixels, as MNIST 28 -> 32 for LeNet-5) pads with background,
    which keeps strokes as they are; anything else resamples bilinearly.
    """
    if size == native:
        return None
    grow = size - native
    if 0 < grow <= 8 and grow % 2 == 0:
        return T.Pad(grow // 2)
    return T.Resize(size, mode="bilinear")


def augmentation(config):
    """The random transforms for training, on uint8 images at the dataset's native size."""
    kind = config["augment"]
    native = DATASET_SHAPES[config["dataset"]][1]
    if kind == "none":
        return []
    shift = 4 if native >= 32 else 2
    out = [T.RandomCrop(native, padding=shift)]
    if kind == "crop-flip":
        out.append(T.RandomHorizontalFlip())
    return out


def make_transform(config, train: bool):
    """The batch transform: channels, [augmentation], size, then float + normalisation."""
    native = DATASET_SHAPES[config["dataset"]][1]
    steps = [ToChannels(config["in_channels"])]
    if train:
        steps += augmentation(config)
    resize = resize_transform(native, config["input_size"])
    if resize is not None:
        steps.append(resize)
    steps.append(T.Normalize(config["mean"], config["std"]))
    return T.Compose(steps)


def load_data(config):
    """Train and test datasets (cut to ``limit_train`` / ``limit_test`` images when given)."""
    data = []
    for train, limit in ((True, config["limit_train"]), (False, config["limit_test"])):
        ds = get_dataset(config["dataset"], root=config["data_dir"], train=train)
        if limit is not None:
            ds = ArrayDataset(ds.data[:limit], ds.targets[:limit], ds.classes)
        data.append(ds)
    return data
