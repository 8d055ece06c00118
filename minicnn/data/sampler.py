"""Which samples each process of a data-parallel job reads: :class:`DistributedSampler`.

The processes (ranks ``0 .. num_replicas - 1``) agree on one order of the whole dataset per
epoch, drawn from ``(seed, epoch)`` alone, so every rank computes the same order without talking
to the others; rank ``r`` then takes every ``num_replicas``-th sample of it, starting at ``r``::

    order of epoch e:   o0 o1 o2 o3 o4 o5 o6 o7 ...
    rank 0 (of 2):      o0    o2    o4    o6    ...
    rank 1 (of 2):         o1    o3    o5    o7 ...

The order is the one ``DataLoader(shuffle=True, seed=seed)`` serves in a single process
(:func:`epoch_permutation`). So when each of ``W`` ranks takes batches of ``B / W`` samples, the
``W`` batches of step ``k`` together are exactly the batch ``k`` of ``B`` samples that a single
process would train on: a data-parallel run sees the same global batches as a one-process run.

Training needs every rank to take the same number of steps (each step ends in a collective
all-reduce), so by default the shards are made even as PyTorch's ``DistributedSampler`` does:
the order is padded with its own first samples up to a multiple of ``num_replicas`` (or, with
``drop_last=True``, cut down to one). Evaluation wants every sample exactly once instead:
``even=False`` gives shards whose sizes differ by at most one, and nothing repeated.
"""
from __future__ import annotations

import math

import numpy as np


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The shuffled order of ``n`` samples in ``epoch``: depends only on ``(seed, epoch, n)``."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(epoch), 0))).permutation(n)


def _count(data, what) -> int:
    """The number of samples of ``data``: an int, a dataset with ``.targets``, or anything with a length."""
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        n = int(data)
    elif hasattr(data, "targets"):
        n = len(data.targets)
    elif hasattr(data, "__len__"):
        n = len(data)
    else:
        raise TypeError(f"{what}: expected a dataset or a number of samples, got {type(data).__name__}")
    if n < 0:
        raise ValueError(f"{what}: the number of samples must be >= 0, got {n}")
    return n


def _int(value, name, what) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what}: {name} must be an int, got {type(value).__name__}")
    return int(value)


class DistributedSampler:
    """The sample indices of one rank of a data-parallel job, per epoch (``torch.utils.data.DistributedSampler``).

    ``data``: a dataset (``.targets`` or ``len()``) or its number of samples. ``num_replicas``
    and ``rank``: how many processes share the data and which one this is
    (``minicnn.distributed.DistributedSampler`` fills them in from the process group).
    ``shuffle``/``seed``: the order of each epoch is drawn from ``(seed, epoch)``, the same on every
    rank. ``even`` (default): every rank gets ``ceil(n / num_replicas)`` samples, the last
    few repeated from the start of the order (``drop_last=True``: ``n // num_replicas``, the tail
    left out). ``even=False``: every sample exactly once, shards of sizes differing by at most one
    (for evaluation, whose sums are added up across ranks at the end).

    Give it to a :class:`~minicnn.data.DataLoader` as ``sampler=`` (the loader then takes the
    order from the sampler, and its ``set_epoch`` picks the epoch as usual).
    """

    def __init__(self, data, num_replicas, rank, shuffle=True, seed=0, drop_last=False, even=True):
        what = "DistributedSampler"
        self.total = _count(data, what)
        self.num_replicas = _int(num_replicas, "num_replicas", what)
        self.rank = _int(rank, "rank", what)
        self.seed = _int(seed, "seed", what)
        if self.num_replicas < 1:
            raise ValueError(f"{what}: num_replicas must be >= 1, got {self.num_replicas}")
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"{what}: rank must be in [0, {self.num_replicas}), got {self.rank}")
        if drop_last and not even:
            raise ValueError(f"{what}: drop_last=True makes the shards even; it does not go with even=False")
        self.shuffle, self.drop_last, self.even = bool(shuffle), bool(drop_last), bool(even)

    def __len__(self):
        """The number of samples this rank gets per epoch."""
        n, w = self.total, self.num_replicas
        if self.even:
            return n // w if self.drop_last else math.ceil(n / w)
        return len(range(self.rank, n, w))

    def indices(self, epoch) -> np.ndarray:
        """This rank's sample indices in ``epoch``, in the order they are served."""
        n, w = self.total, self.num_replicas
        order = epoch_permutation(self.seed, epoch, n) if self.shuffle else np.arange(n)
        if self.even and self.drop_last:
            order = order[:(n // w) * w]
        elif self.even and n % w:
            order = np.concatenate([order, np.resize(order, w - n % w)])     # pad with the first samples
        return order[self.rank::w]

    def state_dict(self):
        """The sampler's settings (plain values)."""
        return {"num_replicas": self.num_replicas, "rank": self.rank, "seed": self.seed, "shuffle": self.shuffle,
                "drop_last": self.drop_last, "even": self.even, "num_samples": self.total}

    def __repr__(self):
        return (f"DistributedSampler(n={self.total}, num_replicas={self.num_replicas}, rank={self.rank}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, even={self.even})")
