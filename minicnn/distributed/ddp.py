"""``DistributedDataParallel``: one model per process, each on its own part of the batch, kept equal
by averaging the gradients inside every backward pass (``torch.nn.parallel.DistributedDataParallel``).

    group = distributed.init_process_group()            # under mpiexec -n N
    ddp = distributed.DistributedDataParallel(model)    # rank 0's parameters and buffers go to every rank
    loss = F.cross_entropy(ddp(x_part), y_part)         # this rank's share of the global batch
    loss.backward()                                     # gradients := their mean over the ranks
    optimizer.step()                                    # the same step on every rank

As in PyTorch, the averaging is part of ``backward()``: the gradient buckets are all-reduced while
the backward pass runs, each as soon as its gradients are final (``reducer.py``). Under
``with ddp.no_sync():`` the backward passes of the forward passes made inside accumulate locally;
the first backward pass after it averages the sum (or ``ddp.average_gradients()``, which averages
only what was not averaged yet, so calling it after a backward pass never averages twice). An
optimizer step on gradients that were never averaged raises :class:`UnaveragedGradientsError`.

**Dropout** (not in PyTorch): in a training forward pass each rank draws the dropout masks of the
whole global batch and keeps rows ``rank, rank + world_size, ...`` (``backend.batch_shard``), the
rows that ``DistributedSampler``'s shards hold, so with seeded generators (``training.fit``) a job
draws the masks one process draws; with another split of the batch the masks are other, equally random ones.

**BatchNorm.** As in PyTorch's default (no ``SyncBatchNorm``), each rank normalises with the
statistics of its own part of the batch; with ``broadcast_buffers=True`` (the default, as in
PyTorch) rank 0's buffers (running mean and variance) overwrite the others' before each
training forward pass, so the running statistics are rank 0's, updated from rank 0's batches.
"""
from __future__ import annotations

import contextlib

import numpy as np

from .. import backend
from ..autograd import is_grad_enabled
from ..nn import Module
from ..optim import register_optimizer_step_pre_hook
from .group import default_group
from .reducer import Bucket, Reducer, UnaveragedGradientsError, check_step, make_buckets

__all__ = ["DistributedDataParallel", "Bucket", "make_buckets", "UnaveragedGradientsError"]


def _flat_groups(tensors):
    """``tensors`` grouped by (dtype, device): a list of (tensors, flat copy of their values)."""
    groups = {}
    for t in tensors:
        groups.setdefault((t.data.dtype, backend.device_of(t.data)), []).append(t)
    out = []
    for ts in groups.values():
        xp = backend.get_array_module(ts[0].data)
        out.append((ts, xp.concatenate([xp.asarray(t.data).reshape(-1) for t in ts])))
    return out


def _unflatten_into(tensors, flat):
    """Write the values of ``flat`` back into ``tensors``' arrays, in place (optimizers keep theirs)."""
    n = 0
    for t in tensors:
        size = int(np.prod(t.shape))
        t.data[...] = flat[n:n + size].reshape(t.shape)
        n += size


class DistributedDataParallel(Module):
    """Data-parallel training of ``module`` over the processes of ``process_group`` (see the module's
    docstring). At construction every rank checks that it holds the same parameters (names, shapes,
    dtypes) and takes rank 0's parameter and buffer values. ``bucket_cap_mb``: the size of a bucket of
    gradients. ``broadcast_buffers``: rank 0's buffers (BatchNorm's running statistics) go to every rank
    before each training forward pass. ``state_dict()`` names the entries ``module.<name>``, as
    PyTorch's does; save ``ddp.module.state_dict()`` for the plain names.
    """

    def __init__(self, module, process_group=None, bucket_cap_mb=4.0, broadcast_buffers=True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a minicnn.nn.Module, got {type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be a number > 0, got {bucket_cap_mb!r}")
        self.module = module
        self.process_group = process_group if process_group is not None else default_group()
        self.bucket_cap_bytes = int(bucket_cap_mb * 2**20)
        self.broadcast_buffers = bool(broadcast_buffers)
        self.require_backward_grad_sync = True        # False inside no_sync()
        self._check_same_parameters()
        self.sync_parameters()
        self.reducer = Reducer(self.module.parameters(), self.process_group, self.bucket_cap_bytes)

    def forward(self, *args, **kwargs):
        if is_grad_enabled():          # the backward pass of this forward pass averages, or accumulates locally
            self.reducer.prepare("sync" if self.require_backward_grad_sync else "local")
            if self.broadcast_buffers and self.training:
                self.sync_buffers()
        if self.training:              # dropout: this rank's rows of the global batch's masks
            with backend.batch_shard(self.process_group.rank, self.process_group.world_size):
                return self.module(*args, **kwargs)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """``with ddp.no_sync():`` the backward passes of the forward passes made inside accumulate the
        gradients locally, without communication (gradient accumulation over micro-batches); the
        first backward pass of a forward pass made after it averages the sum, as in PyTorch."""
        previous, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    @property
    def last_bytes_all_reduced(self) -> int:
        """The bytes of gradient buckets this process all-reduced in the latest reduction."""
        return self.reducer.last_bytes_all_reduced

    # ------------------------------------------------------------------ keeping the ranks equal

    def _check_same_parameters(self):
        group = self.process_group
        mine = [[name, list(p.shape), str(p.dtype)] for name, p in self.module.named_parameters()]
        mine += [[name, list(b.shape), str(b.dtype)] for name, b in self.module.named_buffers()]
        theirs = group.broadcast_object(mine if group.rank == 0 else None)
        differs = int(group.all_reduce_host([mine != theirs])[0])
        if differs:
            detail = next((f" (rank {group.rank} has {a}, rank 0 has {b})" for a, b in zip(mine, theirs) if a != b),
                          f" (rank {group.rank} has {len(mine)} parameters and buffers, rank 0 {len(theirs)})"
                          if mine != theirs else "")
            raise ValueError(f"DistributedDataParallel: {differs} of the {group.world_size} ranks hold a model other "
                             f"than rank 0's{detail}: build the same model on every rank")

    def sync_parameters(self):
        """Give every rank rank 0's parameter and buffer values (in place)."""
        tensors = list(self.module.parameters()) + [b for b in self.module.buffers() if b is not None]
        self._broadcast(tensors)

    def sync_buffers(self):
        """Give every rank rank 0's buffer values, e.g. BatchNorm's running statistics (in place)."""
        self._broadcast([b for b in self.module.buffers() if b is not None])

    def _broadcast(self, tensors):
        if self.process_group.world_size == 1 or not tensors:
            return
        groups = _flat_groups(tensors)
        self.process_group.broadcast_(*[flat for _, flat in groups], root=0)
        for ts, flat in groups:
            _unflatten_into(ts, flat)

    def buckets(self):
        """The gradient buckets for the parameters as they are now (remade when a dtype or device changed)."""
        return self.reducer.buckets()

    def average_gradients(self):
        """Average the gradients that are not averaged yet over the ranks (one all-reduce per bucket, in
        place): after backward passes under :meth:`no_sync`, or outside the DDP module. After an
        ordinary backward pass it does nothing (that pass averaged them). Call it on every rank."""
        self.reducer.average_now()

    def extra_repr(self):
        group = self.process_group
        return (f"rank={group.rank}, world_size={group.world_size}, bucket_cap_mb={self.bucket_cap_bytes / 2**20:g}, "
                f"broadcast_buffers={self.broadcast_buffers}")


def _check_before_step(optimizer, args, kwargs):
    check_step(optimizer, f"{type(optimizer).__name__}.step()")


register_optimizer_step_pre_hook(_check_before_step)
