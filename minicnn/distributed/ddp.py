"""``DistributedDataParallel``: one model per process, each on its own part of the batch, kept equal
by averaging the gradients after every backward pass (``torch.nn.parallel.DistributedDataParallel``).

    group = distributed.init_process_group()            # under mpiexec -n N
    ddp = distributed.DistributedDataParallel(model)    # rank 0's parameters and buffers go to every rank
    loss = F.cross_entropy(ddp(x_part), y_part)         # this rank's share of the global batch
    loss.backward()
    ddp.average_gradients()                             # gradients := their mean over the ranks
    optimizer.step()                                    # the same step on every rank

``minicnn.training.fit`` and ``python -m minicnn.train --distributed`` make the call themselves.
minicnn's autograd has no hooks, so the averaging is one explicit call after ``backward()``,
not overlapped with it as in PyTorch.

**Buckets.** The gradients are copied into a few flat arrays of about ``bucket_cap_mb`` MB each
(parameters in reverse order, one dtype and device per bucket), and each bucket is one all-reduce,
in place, started together and waited for together: a few large messages instead of one per
parameter. Each gradient then becomes a view of its bucket (a fresh array every step, so no
gradient a caller still holds ever changes). A bucket ends with one slot per parameter that counts
the ranks which had a gradient for it: a parameter no rank reached keeps ``grad = None``.
On the GPU, buckets are CuPy arrays, all-reduced by NCCL on the devices (``init_process_group("nccl")``).

**BatchNorm.** As in PyTorch's default (no ``SyncBatchNorm``), each rank normalises with the
statistics of its own part of the batch; with ``broadcast_buffers=True`` (the default, as in
PyTorch) rank 0's buffers (running mean and variance) overwrite the others' before each
training forward pass, so the running statistics are rank 0's, updated from rank 0's batches.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import is_grad_enabled
from ..nn import Module
from .group import default_group


class Bucket:
    """Some parameters of one dtype and device whose gradients travel as one flat array: the
    gradients one after the other, then one count per parameter (1 where this rank has a gradient)."""

    def __init__(self, params):
        if not params:
            raise ValueError("Bucket: needs at least one parameter")
        self.params = list(params)
        self.offsets, n = [], 0
        for p in self.params:
            self.offsets.append((n, n + p.numel()))
            n += p.numel()
        self.numel = n
        self.size = n + len(self.params)          # gradients, then the counts

    @property
    def dtype(self):
        return self.params[0].data.dtype

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def flatten(self):
        """A new flat array (on the parameters' device) holding the gradients and the counts."""
        xp = backend.get_array_module(self.params[0].data)
        flat = xp.empty(self.size, dtype=self.dtype)
        counts = np.zeros(len(self.params), dtype=self.dtype)
        for i, (p, (lo, hi)) in enumerate(zip(self.params, self.offsets)):
            if p.grad is None:
                flat[lo:hi] = 0
            else:
                flat[lo:hi] = p.grad.data.reshape(-1)
                counts[i] = 1
        flat[self.numel:] = xp.asarray(counts)
        return flat

    def unflatten(self, flat, world_size):
        """Divide the summed gradients of ``flat`` by ``world_size`` and make each parameter's gradient
        a view of it (``None`` where no rank had one)."""
        grads = flat[:self.numel]
        grads *= 1.0 / world_size
        counts = backend.to_numpy(flat[self.numel:])
        for p, (lo, hi), count in zip(self.params, self.offsets, counts):
            p.grad = grads[lo:hi].reshape(p.shape) if count > 0 else None


def make_buckets(params, cap_bytes):
    """Cut ``params`` (taken in reverse order, as gradients become ready in a backward pass) into
    buckets of at most ``cap_bytes`` bytes of gradients (a larger parameter gets one to itself),
    never mixing dtypes or devices."""
    buckets, current, size, key = [], [], 0, None
    for p in reversed(list(params)):
        p_key = (p.data.dtype, backend.device_of(p.data))
        nbytes = p.numel() * p.data.dtype.itemsize
        if current and (p_key != key or size + nbytes > cap_bytes):
            buckets.append(Bucket(current))
            current, size = [], 0
        current.append(p)
        size += nbytes
        key = p_key
    if current:
        buckets.append(Bucket(current))
    return buckets


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
        self._buckets, self._bucket_key = None, None
        self.last_bytes_all_reduced = 0        # of the latest average_gradients()
        self._check_same_parameters()
        self.sync_parameters()

    def forward(self, *args, **kwargs):
        if self.broadcast_buffers and self.training and is_grad_enabled():
            self.sync_buffers()
        return self.module(*args, **kwargs)

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
        params = [p for p in self.module.parameters() if p.requires_grad]
        key = tuple((id(p), p.data.dtype, backend.device_of(p.data)) for p in params)
        if key != self._bucket_key:
            self._buckets, self._bucket_key = make_buckets(params, self.bucket_cap_bytes), key
        return self._buckets

    def average_gradients(self):
        """Replace every gradient by its mean over the ranks (one all-reduce per bucket, in place).
        Call it on every rank after ``backward()`` and before the optimizer step."""
        group = self.process_group
        if group.world_size == 1:
            self.last_bytes_all_reduced = 0
            return
        buckets = self.buckets()
        flats = [bucket.flatten() for bucket in buckets]
        group.all_reduce_(*flats)
        for bucket, flat in zip(buckets, flats):
            bucket.unflatten(flat, group.world_size)
        self.last_bytes_all_reduced = sum(flat.nbytes for flat in flats)

    def extra_repr(self):
        group = self.process_group
        return (f"rank={group.rank}, world_size={group.world_size}, bucket_cap_mb={self.bucket_cap_bytes / 2**20:g}, "
                f"broadcast_buffers={self.broadcast_buffers}")
