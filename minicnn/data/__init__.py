"""Datasets, mini-batch loading and batch transforms (NumPy only).

- :class:`MNIST`, :class:`FashionMNIST`, :class:`CIFAR10`, :func:`get_dataset`:
  whole splits as uint8 arrays ``.data`` (N, C, H, W) and int64 ``.targets``.
  Files are looked for in ``root``, ``$MINICNN_DATA``, ``~/.cache/minicnn``,
  and downloaded (MD5-checked, atomically) when missing.
- :class:`DataLoader`: seeded, resumable batches made by array indexing;
  :class:`DistributedSampler`: each process's shard of a data-parallel job.
- Transforms: :class:`Compose`, :class:`ToFloat`, :class:`Normalize`,
  :class:`Pad`, :class:`RandomCrop`, :class:`RandomHorizontalFlip`,
  :class:`Resize`, plus the normalisation constants.
"""
from .download import (ChecksumError, DataError, DatasetNotFoundError, DownloadError,
                       default_cache_dir)
from .datasets import (CIFAR10, DATASETS, MNIST, ArrayDataset, FashionMNIST, get_dataset,
                       read_idx)
from .loader import DataLoader
from .sampler import DistributedSampler
from .transforms import (CIFAR10_MEAN, CIFAR10_STD, FASHION_MNIST_MEAN, FASHION_MNIST_STD,
                         MNIST_MEAN, MNIST_STD, NORMALIZATION, Compose, Normalize, Pad,
                         RandomCrop, RandomHorizontalFlip, RandomTransform, Resize, ToFloat,
                         Transform, normalize_for)

__all__ = [
    'MNIST', 'FashionMNIST', 'CIFAR10', 'ArrayDataset', 'DATASETS', 'get_dataset', 'read_idx',
    'DataLoader', 'DistributedSampler',
    'Transform', 'RandomTransform', 'Compose', 'ToFloat', 'Normalize', 'Pad', 'RandomCrop',
    'RandomHorizontalFlip', 'Resize', 'normalize_for', 'NORMALIZATION',
    'MNIST_MEAN', 'MNIST_STD', 'FASHION_MNIST_MEAN', 'FASHION_MNIST_STD',
    'CIFAR10_MEAN', 'CIFAR10_STD',
    'DataError', 'DatasetNotFoundError', 'ChecksumError', 'DownloadError', 'default_cache_dir',
]
