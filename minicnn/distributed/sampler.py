"""``DistributedSampler`` with its rank and number of replicas taken from the default process group."""
from __future__ import annotations

from ..data import sampler as _sampler
from .group import default_group


class DistributedSampler(_sampler.DistributedSampler):
    """:class:`minicnn.data.DistributedSampler` whose ``num_replicas`` and ``rank`` default to the
    default process group's (``init_process_group()`` first)."""

    def __init__(self, data, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False, even=True):
        if num_replicas is None or rank is None:
            group = default_group()
            num_replicas = group.world_size if num_replicas is None else num_replicas
            rank = group.rank if rank is None else rank
        super().__init__(data, num_replicas, rank, shuffle=shuffle, seed=seed, drop_last=drop_last, even=even)
