"""Batch-level image transforms, vectorised with NumPy.

A transform takes a whole batch ``x`` of shape ``(N, C, H, W)`` and returns
a new batch; none of them loops over samples in Python. A single image
``(C, H, W)`` works too. Transforms never modify their input in place.

Random transforms draw from a ``numpy.random.Generator``: the one passed
when calling them (``t(x, rng=rng)``; the :class:`~minicnn.data.DataLoader`
passes a :class:`~minicnn.data.sample_random.SampleGenerator`, one stream per
sample keyed by its seed, the epoch and the sample's index, so augmentation is
reproducible and the same in any batch or process), else their own, created
from the ``rng`` argument of the constructor (a Generator or an int seed).
A random transform draws with ``size`` starting with the number of images.

Example::

    train_tf = Compose([ToFloat(), RandomCrop(32, padding=4),
                        RandomHorizontalFlip(), Normalize(CIFAR10_MEAN, CIFAR10_STD)])
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..checks import pair

#: Mean and std of the training pixels scaled to [0, 1]. MNIST and
#: Fashion-MNIST were recomputed from the canonical files (0.130660 /
#: 0.308108 and 0.2860 / 0.3530); the CIFAR-10 per-channel values are the
#: widely published ones (not recomputed here).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

#: ``(mean, std)`` per dataset name, as used by :func:`normalize_for`.
NORMALIZATION = {
    'mnist': (MNIST_MEAN, MNIST_STD),
    'fashion-mnist': (FASHION_MNIST_MEAN, FASHION_MNIST_STD),
    'cifar10': (CIFAR10_MEAN, CIFAR10_STD),
}


class Transform:
    """Base class: ``t(x, rng=None)`` maps a batch ``(N, C, H, W)`` to a new batch."""

    def __call__(self, x, rng=None):
        raise NotImplementedError

    def __repr__(self):
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items() if not k.startswith('_'))
        return f'{type(self).__name__}({args})'


def apply(transform, x, rng=None):
    """Apply ``transform`` to ``x``; plain callables (not :class:`Transform`) get no ``rng``."""
    if transform is None:
        return x
    if isinstance(transform, Transform):
        return transform(x, rng=rng)
    return transform(x)


def _per_sample(fn):
    """Let a batch transform also accept a single image ``(C, H, W)``."""
    def wrapper(self, x, rng=None):
        x = np.asarray(x)
        if x.ndim == 3:
            return fn(self, x[None], rng)[0]
        if x.ndim != 4:
            raise ValueError(f'{type(self).__name__} expects (N, C, H, W) or (C, H, W), '
                             f'got shape {x.shape}')
        return fn(self, x, rng)
    wrapper.__doc__ = fn.__doc__
    return wrapper


class Compose(Transform):
    """Apply transforms one after the other (all get the same ``rng``)."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = apply(t, x, rng)
        return x

    def __repr__(self):
        inner = ''.join(f'\n    {t!r},' for t in self.transforms)
        return f'Compose([{inner}\n])'


class ToFloat(Transform):
    """Integer pixels (0..255) -> float32 in [0, 1] (``x / 255``); floats are only cast to float32."""

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.dtype.kind in 'uib':
            out = x.astype(np.float32)
            out /= np.float32(255)
            return out
        return x.astype(np.float32)   # always a copy: never hand out the caller's array


class Normalize(Transform):
    """``(x - mean) / std`` per channel, in float32.

    ``mean`` and ``std`` are scalars or one value per channel. Integer input
    is first scaled to [0, 1] like :class:`ToFloat`, so the usual constants
    (e.g. :data:`MNIST_MEAN`) apply directly to uint8 images.
    """

    def __init__(self, mean, std):
        self.mean = mean
        self.std = std
        self._mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
        self._std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
        if np.any(self._std <= 0):
            raise ValueError(f'std must be positive, got {std}')

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.dtype.kind in 'uib':
            x = ToFloat()(x)
        out = x.astype(np.float32) - self._mean
        out /= self._std
        return out


def normalize_for(name):
    """Return the :class:`Normalize` with the standard constants of dataset ``name``."""
    mean, std = NORMALIZATION[name]
    return Normalize(mean, std)


class Pad(Transform):
    """Pad height and width with ``fill``: ``Pad(2)`` turns 28x28 into 32x32 (LeNet-5).

    ``padding`` is an int (all sides) or ``(pad_h, pad_w)``.
    """

    def __init__(self, padding, fill=0):
        self.padding = padding
        self.fill = fill

    @_per_sample
    def __call__(self, x, rng=None):
        ph, pw = pair(type(self).__name__, "padding", self.padding)
        return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=self.fill)


class RandomTransform(Transform):
    """Base of random transforms: holds a Generator, used when no ``rng`` is passed."""

    def __init__(self, rng=None):
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def _generator(self, rng):
        return self.rng if rng is None else rng


class RandomCrop(RandomTransform):
    """Crop a random ``size`` window from each image, after padding by ``padding`` with ``fill``.

    ``RandomCrop(32, padding=4)`` is the usual CIFAR-10 augmentation: each
    image gets its own offset; the batch is gathered in one indexing step.
    """

    def __init__(self, size, padding=0, fill=0, rng=None):
        super().__init__(rng)
        self.size = size
        self.padding = padding
        self.fill = fill

    @_per_sample
    def __call__(self, x, rng=None):
        rng = self._generator(rng)
        if self.padding:
            x = Pad(self.padding, self.fill)(x)
        n, _, h, w = x.shape
        ch, cw = pair(type(self).__name__, "size", self.size)
        if ch > h or cw > w:
            raise ValueError(f'crop {ch}x{cw} larger than (padded) image {h}x{w}')
        top = rng.integers(0, h - ch + 1, size=n)
        left = rng.integers(0, w - cw + 1, size=n)
        windows = sliding_window_view(x, (ch, cw), axis=(2, 3))   # (N, C, h', w', ch, cw), a view
        return windows[np.arange(n), :, top, left]                 # (N, C, ch, cw), a copy


class RandomHorizontalFlip(RandomTransform):
    """Mirror each image left-right with probability ``p``."""

    def __init__(self, p=0.5, rng=None):
        super().__init__(rng)
        self.p = p

    @_per_sample
    def __call__(self, x, rng=None):
        flip = self._generator(rng).random(x.shape[0]) < self.p
        out = x.copy()
        out[flip] = x[flip, :, :, ::-1]
        return out


def _bilinear_taps(n_in, n_out):
    """Source indices and weights for 1-D bilinear resampling (half-pixel centres)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0).astype(np.float32)
    return i0, i1, w1


class Resize(Transform):
    """Resize height and width to ``size`` (an int or ``(h, w)``).

    ``mode='nearest'`` copies pixels (an integer factor repeats each pixel);
    ``mode='bilinear'`` interpolates with half-pixel centres, like
    ``align_corners=False`` elsewhere. Integer images stay integer (rounded).
    """

    def __init__(self, size, mode='nearest'):
        if mode not in ('nearest', 'bilinear'):
            raise ValueError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")
        self.size = size
        self.mode = mode

    @_per_sample
    def __call__(self, x, rng=None):
        h, w = x.shape[2:]
        oh, ow = pair(type(self).__name__, "size", self.size)
        if self.mode == 'nearest':
            rows = np.minimum((np.arange(oh) + 0.5) * (h / oh), h - 1).astype(np.intp)
            cols = np.minimum((np.arange(ow) + 0.5) * (w / ow), w - 1).astype(np.intp)
            return x[:, :, rows[:, None], cols[None, :]]
        xf = x.astype(np.float32)
        r0, r1, wr = _bilinear_taps(h, oh)
        c0, c1, wc = _bilinear_taps(w, ow)
        wr = wr[:, None]
        xf = xf[:, :, r0, :] * (1 - wr) + xf[:, :, r1, :] * wr
        xf = xf[:, :, :, c0] * (1 - wc) + xf[:, :, :, c1] * wc
        if x.dtype.kind in 'ui':
            info = np.iinfo(x.dtype)
            return np.clip(np.rint(xf), info.min, info.max).astype(x.dtype)
        return xf.astype(x.dtype) if x.dtype.kind == 'f' else xf
