"""Datasets held in memory as whole NumPy arrays.

Each dataset loads one split completely: ``.data`` is a uint8 array
``(N, C, H, W)`` and ``.targets`` an int64 array ``(N,)``. Batches are made
by indexing these arrays (see :class:`~minicnn.data.DataLoader`), never one
sample at a time.

Files are found or downloaded by :mod:`minicnn.data.download` (look-up order:
``root``, ``$MINICNN_DATA``, ``~/.cache/minicnn``).
"""
import gzip
import math
import os
import struct
import zlib

import numpy as np

from . import download as dl
from .transforms import apply


class ArrayDataset:
    """A dataset given as arrays: ``data`` (N, ...) and ``targets`` (N,).

    ``ds[i]`` returns ``(image, label)``; ``ds[idx]`` with a slice or an index
    array returns ``(images, labels)`` batches. ``transform`` (batch-level,
    see :mod:`minicnn.data.transforms`) is applied by ``__getitem__`` and,
    unless it has its own, by the DataLoader.
    """

    def __init__(self, data, targets, classes=None, transform=None):
        data = np.asarray(data)
        targets = np.asarray(targets, dtype=np.int64)
        if len(data) != len(targets):
            raise ValueError(f'{len(data)} samples but {len(targets)} targets')
        self.data = data
        self.targets = targets
        self.classes = list(classes) if classes is not None else \
            [str(c) for c in range(int(targets.max()) + 1 if len(targets) else 0)]
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            x = self.data[index]
            if self.transform is not None:
                x = apply(self.transform, x[None])[0]
            return x, int(self.targets[index])
        x = self.data[index]
        return apply(self.transform, x), self.targets[index]

    def __repr__(self):
        return (f'{type(self).__name__}(n={len(self)}, data={self.data.shape} '
                f'{self.data.dtype}, classes={len(self.classes)})')


# ----------------------------------------------------------------------------
# MNIST and Fashion-MNIST (IDX files, gzip-compressed)
# ----------------------------------------------------------------------------

def _read_exactly(f, out, path):
    """Fill the buffer ``out`` from the file ``f``; raise if the file ends early."""
    view = memoryview(out).cast('B')
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            raise dl.DataError(f'{path}: truncated, expected {len(view)} bytes of data, got {got}')
        got += n


#: Deflate never compresses better than about 1032 to 1: a gzip file of n bytes holds at most this many times n.
MAX_GZIP_RATIO = 1100


def read_idx(path):
    """Read a (gzip-compressed) IDX file of unsigned bytes into a uint8 array.

    The header is big-endian: magic ``0x0000 08 <ndim>`` then ``ndim`` sizes.
    The array is writable and read straight into its buffer (no extra copy).
    A file that is not IDX, is cut short, or declares more data than it can hold (checked
    before anything is allocated) raises :class:`~minicnn.data.DataError` naming the file.
    """
    path = os.fspath(path)
    gz = path.endswith('.gz')
    try:
        with (gzip.open if gz else open)(path, 'rb') as f:
            head = f.read(4)
            if len(head) != 4 or head[:3] != b'\x00\x00\x08':
                raise dl.DataError(f'{path}: not an unsigned-byte IDX file (header {head.hex()})')
            ndim = head[3]
            sizes = f.read(4 * ndim)
            if len(sizes) != 4 * ndim:
                raise dl.DataError(f'{path}: truncated in its header ({ndim} sizes announced)')
            dims = struct.unpack(f'>{ndim}I', sizes)
            holds = os.path.getsize(path) * (MAX_GZIP_RATIO if gz else 1)
            if math.prod(dims) > holds:
                raise dl.DataError(f'{path}: its header declares a {"x".join(map(str, dims))} array, more '
                                   f'data than the file can hold (corrupt or not an IDX file)')
            out = np.empty(dims, dtype=np.uint8)
            _read_exactly(f, out, path)
            if f.read(1):
                raise dl.DataError(f'{path}: extra bytes after the {dims} array')
    except (OSError, EOFError, zlib.error) as e:      # gzip.BadGzipFile is an OSError
        if isinstance(e, FileNotFoundError):
            raise
        raise dl.DataError(f'{path}: cannot be read ({type(e).__name__}: {e}); the file is damaged: '
                           f'delete it and let it download again (or put a good copy in its place)') from e
    return out


class _IDXDataset(ArrayDataset):
    """MNIST-format dataset: one split read from the four canonical IDX .gz files."""

    name = None       # key in download.RESOURCES
    classes = None    # class names

    def __init__(self, root=None, train=True, download=True, transform=None):
        self.train = bool(train)
        prefix = 'train' if self.train else 't10k'
        files = [f'{prefix}-images-idx3-ubyte.gz', f'{prefix}-labels-idx1-ubyte.gz']
        paths = dl.find_files(self.name, files, root=root, download=download)
        images = read_idx(paths[files[0]])
        labels = read_idx(paths[files[1]])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise dl.DataError(f'{self.name}: inconsistent files, images {images.shape}, '
                               f'labels {labels.shape}')
        self.root = os.path.dirname(paths[files[0]])
        super().__init__(images[:, None], labels.astype(np.int64), type(self).classes, transform)

    def __repr__(self):
        split = 'train' if self.train else 'test'
        return f'{type(self).__name__}({split}, n={len(self)}, root={self.root!r})'


class MNIST(_IDXDataset):
    """MNIST handwritten digits: 60000 train / 10000 test images, uint8 (N, 1, 28, 28)."""

    name = 'mnist'
    classes = [str(d) for d in range(10)]


class FashionMNIST(_IDXDataset):
    """Fashion-MNIST (Zalando): 60000 train / 10000 test clothing images, uint8 (N, 1, 28, 28)."""

    name = 'fashion-mnist'
    classes = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
               'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']


# ----------------------------------------------------------------------------
# CIFAR-10 (the binary version: fixed-size records inside cifar-10-binary.tar.gz)
# ----------------------------------------------------------------------------

CIFAR_RECORD = 1 + 3 * 32 * 32     # one label byte, then 1024 red, 1024 green, 1024 blue pixel bytes


def read_cifar_batch(path):
    """Read one CIFAR-10 binary batch: ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``.

    The file is a run of 3,073-byte records (10,000 in the published batches): a label byte in
    0..9, then the image's red, green and blue planes, each 32x32 bytes row by row.
    """
    size = os.path.getsize(path)
    if size == 0 or size % CIFAR_RECORD:
        raise dl.DataError(f'{path}: {size} bytes is not a whole number of {CIFAR_RECORD}-byte CIFAR-10 records; '
                           f'the file is damaged: delete it and let it download again')
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise dl.DataError(f'{path}: record {bad} has label {labels[bad]}, not a class 0-9; the file is damaged')
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def read_label_names(path, expected):
    """The class names in ``batches.meta.txt`` (one per line; blank lines ignored), which must be ``expected``.

    No checksum of this file is published, so its content is checked: it is plain text, and
    nothing in it is ever run.
    """
    with open(path, 'rb') as f:
        data = f.read(4097)
    try:
        names = [line.strip() for line in data.decode('ascii').splitlines() if line.strip()]
    except UnicodeDecodeError:
        names = None
    if len(data) > 4096 or names != list(expected):
        raise dl.DataError(f'{path}: expected the CIFAR-10 class names {", ".join(expected)}, one per line; '
                           f'the file is damaged or not from cifar-10-binary.tar.gz')
    return names


class CIFAR10(ArrayDataset):
    """CIFAR-10: 50000 train / 10000 test colour images, uint8 (N, 3, 32, 32), 10 classes."""

    name = 'cifar10'
    classes = ['airplane', 'automobile', 'bird', 'cat', 'deer',
               'dog', 'frog', 'horse', 'ship', 'truck']

    def __init__(self, root=None, train=True, download=True, transform=None):
        self.train = bool(train)
        batches = [f'data_batch_{i}.bin' for i in range(1, 6)] if self.train else ['test_batch.bin']
        paths = dl.find_files(self.name, batches + ['batches.meta.txt'], root=root, download=download)
        parts = [read_cifar_batch(paths[b]) for b in batches]
        classes = read_label_names(paths['batches.meta.txt'], type(self).classes)
        self.root = os.path.dirname(paths[batches[0]])
        super().__init__(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                         classes, transform)

    def __repr__(self):
        split = 'train' if self.train else 'test'
        return f'{type(self).__name__}({split}, n={len(self)}, root={self.root!r})'


# ----------------------------------------------------------------------------
# By name
# ----------------------------------------------------------------------------

DATASETS = {'mnist': MNIST, 'fashion-mnist': FashionMNIST, 'cifar10': CIFAR10}


def canonical_name(name):
    """Map spellings like 'MNIST', 'fashion_mnist', 'FashionMNIST', 'cifar-10' to a key of DATASETS."""
    key = name.lower().replace('-', '').replace('_', '')
    aliases = {'mnist': 'mnist', 'fashionmnist': 'fashion-mnist', 'fmnist': 'fashion-mnist',
               'cifar10': 'cifar10'}
    if key not in aliases:
        raise ValueError(f'unknown dataset {name!r}; choose one of {sorted(DATASETS)}')
    return aliases[key]


def get_dataset(name, root=None, train=True, download=True, transform=None, data_dir=None):
    """Return dataset ``name`` ('mnist', 'fashion-mnist' or 'cifar10'); ``data_dir`` = ``root``."""
    if root is not None and data_dir is not None:
        raise TypeError('pass root or data_dir, not both')
    cls = DATASETS[canonical_name(name)]
    return cls(root=root if root is not None else data_dir, train=train,
               download=download, transform=transform)
