"""Mini-batches from a dataset held in memory as arrays.

The :class:`DataLoader` never loops over samples: each batch is one
fancy-indexing step on the whole arrays, then the (batch-level) transform.

Order is reproducible: with ``shuffle=True`` the permutation of epoch ``e``
depends only on ``(seed, e)``, and the random augmentation of sample ``i`` in
epoch ``e`` only on ``(seed, e, i)`` (:class:`~minicnn.data.sample_random.SampleGenerator`):
not on its batch or on the process that loads it, so data-parallel processes
augment every sample as one process does. And ``state_dict()`` /
``load_state_dict()`` can resume a run exactly, even in the middle of an epoch::

    loader = DataLoader(MNIST(), batch_size=64, shuffle=True, seed=0,
                        transform=Compose([ToFloat(), Normalize(0.1307, 0.3081)]))
    for epoch in range(3):
        for x, y in loader:   # x float32 (64, 1, 28, 28), y int64 (64,)
            ...
"""
import math

import numpy as np

from .sample_random import SampleGenerator
from .sampler import epoch_permutation
from .transforms import ToFloat, apply


def _arrays_of(data):
    """Return ``(x, y, transform)`` from a dataset with .data/.targets or an ``(x, y)`` pair."""
    if hasattr(data, 'data') and hasattr(data, 'targets'):
        return np.asarray(data.data), np.asarray(data.targets), getattr(data, 'transform', None)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return np.asarray(data[0]), np.asarray(data[1]), None
    raise TypeError('DataLoader needs a dataset with .data and .targets arrays, '
                    f'or an (x, y) pair of arrays; got {type(data).__name__}')


class DataLoader:
    """Iterate over ``(x, y)`` batches: x float32 after ``transform``, y int64.

    ``data`` is a dataset with ``.data`` / ``.targets`` arrays (its
    ``.transform`` is used when ``transform`` is None) or an ``(x, y)`` pair.
    Without any transform, integer images are scaled to [0, 1] (:class:`ToFloat`).
    ``seed=None`` draws a random seed, kept in ``.seed`` and the state dict.

    Each ``iter(loader)`` runs the next epoch (0, 1, 2, ...); ``set_epoch``
    picks one, ``load_state_dict`` resumes at a saved batch.

    ``sampler``: which samples, in which order, per epoch (an object with
    ``indices(epoch)`` and ``len()``, e.g. :class:`DistributedSampler`, which gives
    each process of a data-parallel job its shard). It replaces ``shuffle``. Random
    transforms draw per sample (:meth:`sample_rng`), so a sample is augmented alike
    whichever rank loads it.
    """

    def __init__(self, data, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 transform=None, sampler=None):
        x, y, data_transform = _arrays_of(data)
        if len(x) != len(y):
            raise ValueError(f'{len(x)} samples but {len(y)} targets')
        if int(batch_size) < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        if sampler is not None:
            if shuffle:
                raise ValueError('DataLoader: sampler and shuffle=True exclude each other '
                                 '(the sampler decides the order, e.g. DistributedSampler(shuffle=True))')
            if getattr(sampler, 'total', len(x)) != len(x):
                raise ValueError(f'DataLoader: the sampler is for {sampler.total} samples, the data has {len(x)}')
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.sampler = sampler
        self.shuffle = bool(shuffle) if sampler is None else bool(getattr(sampler, 'shuffle', True))
        self.drop_last = bool(drop_last)
        if seed is None and sampler is not None:
            seed = getattr(sampler, 'seed', None)      # augmentation as reproducible as the order
        self.seed = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        self.transform = transform if transform is not None else data_transform
        self._next_epoch = 0    # epoch that the next iter() runs
        self._resume_batch = 0  # batch it starts at (set by load_state_dict)
        self._epoch = None      # epoch of the pass in progress (None: none started)
        self._batch = 0         # number of batches handed out in that pass

    def __len__(self):
        """Number of batches per epoch."""
        n = len(self.x) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_samples(self):
        """Number of samples in the data."""
        return len(self.x)

    def order(self, epoch):
        """Return the sample indices of ``epoch`` in the order they are served."""
        if self.sampler is not None:
            return np.asarray(self.sampler.indices(epoch))
        n = len(self.x)
        if not self.shuffle:
            return np.arange(n)
        return epoch_permutation(self.seed, epoch, n)

    def sample_rng(self, epoch, indices):
        """The generator that random transforms draw from for the samples ``indices`` (their indices in
        the dataset) in ``epoch``: one stream per sample, keyed by ``(seed, epoch, index)``."""
        return SampleGenerator(self.seed, epoch, indices)

    def _make_batch(self, idx, epoch):
        """Gather samples ``idx`` (index array or slice) and transform them."""
        x = self.x[idx]
        if self.transform is None:
            x = ToFloat()(x)
        else:
            indices = np.arange(*idx.indices(len(self.x))) if isinstance(idx, slice) else idx
            x = apply(self.transform, x, rng=self.sample_rng(epoch, indices))
            x = np.asarray(x, dtype=np.float32)
        if np.may_share_memory(x, self.x):   # a view of the data: never hand that out
            x = x.copy()
        return x, np.asarray(self.y[idx], dtype=np.int64)

    def __iter__(self):
        epoch, start = self._next_epoch, self._resume_batch
        self._next_epoch, self._resume_batch = epoch + 1, 0
        self._epoch, self._batch = epoch, start
        order = self.order(epoch)
        n, bs = len(order), self.batch_size
        for b in range(start, len(self)):
            lo, hi = b * bs, min((b + 1) * bs, n)
            idx = order[lo:hi] if self.shuffle or self.sampler is not None else slice(lo, hi)
            self._batch = b + 1
            yield self._make_batch(idx, epoch)

    def set_epoch(self, epoch):
        """Make the next ``iter()`` run epoch ``epoch`` from its first batch."""
        self._next_epoch, self._resume_batch = int(epoch), 0
        self._epoch, self._batch = None, 0

    @property
    def epoch(self):
        """The epoch in progress, or the next one if none is in progress."""
        return self.state_dict()['epoch']

    def state_dict(self):
        """Return where the loader is: ``{'seed', 'epoch', 'batch', ...}`` (plain ints, JSON-able).

        ``batch`` is the number of batches of ``epoch`` already handed out;
        loading the state later makes the next ``iter()`` continue from there.
        """
        if self._epoch is not None and self._batch < len(self):
            epoch, batch = self._epoch, self._batch
        else:
            epoch, batch = self._next_epoch, self._resume_batch
        state = {'seed': self.seed, 'epoch': epoch, 'batch': batch, 'shuffle': self.shuffle,
                 'batch_size': self.batch_size, 'num_samples': len(self.x)}
        if self.sampler is not None and hasattr(self.sampler, 'state_dict'):
            state['sampler'] = self.sampler.state_dict()
        return state

    def load_state_dict(self, state):
        """Resume from a :meth:`state_dict`: the next ``iter()`` continues that epoch."""
        for key in ('batch_size', 'num_samples', 'shuffle'):
            if key in state and state[key] != self.state_dict()[key]:
                raise ValueError(f'state has {key}={state[key]!r} but this loader has '
                                 f'{self.state_dict()[key]!r}')
        self.seed = int(state['seed'])
        epoch, batch = int(state['epoch']), int(state['batch'])
        if batch >= len(self):          # saved just after an epoch's last batch
            epoch, batch = epoch + 1, 0
        self._next_epoch, self._resume_batch = epoch, batch
        self._epoch, self._batch = None, 0

    def __repr__(self):
        return (f'DataLoader(n={len(self.x)}, batch_size={self.batch_size}, '
                f'shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed}'
                + (f', sampler={self.sampler!r})' if self.sampler is not None else ')'))
