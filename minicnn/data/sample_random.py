"""Per-sample random numbers for augmentation: what sample ``i`` draws in epoch ``e`` depends only on
``(seed, e, i)``, never on the batch it lands in, its place in that batch, or which process loads it.

So one process, or any number of data-parallel processes with any sharding, augment every sample
alike: a random crop of image 1234 in epoch 3 is the same crop everywhere.

Each sample gets its own stream: SplitMix64 (Steele, Lea and Flood, 2014) started from a 64-bit state
mixed from the epoch's key (NumPy's ``SeedSequence(seed, spawn_key=(epoch, 2))``) and the sample's
index. The streams of a batch advance together, one vectorised array operation per draw::

    rng = SampleGenerator(seed=0, epoch=3, indices=[1234, 7, 99])
    rng.integers(0, 5, size=3)     # one offset per sample: row k belongs to sample indices[k]
    rng.random((3, 2))             # two more numbers per sample, the next ones of each stream

The first axis of every ``size`` is the samples; a draw of shape ``(n, m...)`` takes the next
``m...`` values of each stream. Supported: ``random``, ``integers``, ``uniform``, ``normal``: the
methods of ``numpy.random.Generator`` that batch transforms use, with its argument names.
"""
from __future__ import annotations

import math

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(z):
    """SplitMix64's output function on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


class SampleGenerator:
    """Random numbers for a batch of samples, one independent stream per sample (see the module)."""

    def __init__(self, seed, epoch, indices):
        key = np.random.SeedSequence(int(seed), spawn_key=(int(epoch), 2)).generate_state(2, np.uint64)
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if self.indices.size and self.indices.min() < 0:
            raise ValueError("SampleGenerator: sample indices must be >= 0")
        with np.errstate(over="ignore"):
            self._state = _mix(_mix(self.indices.astype(np.uint64) ^ key[0]) + key[1])
        self._drawn = 0          # values drawn so far from each stream

    def __len__(self):
        return self.indices.size

    def _shape(self, size, what):
        shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size) if size is not None else ()
        if not shape or shape[0] != self.indices.size:
            raise ValueError(f"SampleGenerator.{what}: size must start with the number of samples "
                             f"({self.indices.size}), one row per sample; got size={size!r}")
        return shape

    def _bits(self, shape):
        """The next ``prod(shape[1:])`` 64-bit values of every sample's stream, shaped ``shape``."""
        per = math.prod(shape[1:])
        steps = np.arange(self._drawn + 1, self._drawn + per + 1, dtype=np.uint64)
        self._drawn += per
        with np.errstate(over="ignore"):
            return _mix(self._state[:, None] + steps[None, :] * _GOLDEN).reshape(shape)

    def random(self, size=None, dtype=np.float64):
        """Floats uniform in [0, 1) (float64 from 53 bits, float32 from 24)."""
        bits = self._bits(self._shape(size, "random"))
        if np.dtype(dtype) == np.float32:
            return (bits >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)
        if np.dtype(dtype) != np.float64:
            raise TypeError(f"SampleGenerator.random: dtype must be float32 or float64, got {np.dtype(dtype)}")
        return (bits >> np.uint64(11)).astype(np.float64) * 2.0 ** -53

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        """Integers in [low, high) (``endpoint=True``: [low, high]); ``integers(n, size=...)``: [0, n)."""
        if high is None:
            low, high = 0, low
        low, high = np.asarray(low, dtype=np.int64), np.asarray(high, dtype=np.int64) + bool(endpoint)
        if np.any(high <= low):
            raise ValueError(f"SampleGenerator.integers: high must be > low, got low={low}, high={high}")
        u = self.random(size)
        return np.minimum(low + np.floor(u * (high - low)).astype(np.int64), high - 1).astype(dtype)

    def uniform(self, low=0.0, high=1.0, size=None):
        """Floats uniform in [low, high)."""
        return low + (high - low) * self.random(size)

    def normal(self, loc=0.0, scale=1.0, size=None):
        """Normal samples (Box-Muller on two uniforms per value)."""
        shape = self._shape(size, "normal")
        u1, u2 = np.split(self.random(shape[:1] + (2 * math.prod(shape[1:]),)), 2, axis=1)
        z = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
        return loc + scale * z.reshape(shape)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(f"SampleGenerator has no {name}(): per-sample augmentation draws with random, "
                             "integers, uniform or normal (size's first axis: the samples)")

    def __repr__(self):
        return f"SampleGenerator(samples={self.indices.size}, drawn={self._drawn})"
