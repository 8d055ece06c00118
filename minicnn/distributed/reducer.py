"""The gradient buckets of ``DistributedDataParallel`` and the :class:`Reducer` that all-reduces them
during ``backward()`` (PyTorch's ``torch.distributed.Reducer``).

**Buckets.** The parameters, in reverse order (the order their gradients become final in a backward
pass), are cut into buckets of about ``bucket_cap_mb`` MB, one dtype and device each. A bucket travels
as one flat array: the gradients one after the other, then one slot per parameter that counts the
ranks which had a gradient for it (a parameter no rank reached keeps ``grad = None``). After the
all-reduce each gradient becomes a view of its bucket (a fresh array every step, so no gradient a
caller still holds ever changes).

**Inside backward.** Every parameter has a post-accumulate-grad hook. In a backward pass that
follows a forward pass through the DDP module (outside ``no_sync()``), a bucket's all-reduce starts
(non-blocking: ``MPI_Iallreduce``, or NCCL on its own CUDA stream) as soon as the gradients of all
its parameters are final, while the rest of the backward pass runs; a callback queued with
``queue_callback`` starts the buckets still waiting (parameters this pass did not reach), waits for
them all at the end of the pass, and divides by the number of ranks. Buckets start strictly in
order, so that every rank starts the same collectives in the same order (MPI and NCCL need that)
even when the ranks reach different parameters.

**Which gradients are averaged.** The reducer remembers each gradient it averaged. A gradient
accumulated in any other way (a backward pass of a loss not computed through the DDP module, or
under ``no_sync()``) is local: ``average_gradients()`` averages those, and an optimizer step on
one raises :class:`UnaveragedGradientsError` on the process that would diverge.
"""
from __future__ import annotations

import time
import weakref

import numpy as np

from .. import backend
from ..autograd import queue_callback


class UnaveragedGradientsError(RuntimeError):
    """An optimizer step on gradients of a ``DistributedDataParallel`` model that were not averaged."""


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


class _Pass:
    """The state of one backward pass that is being reduced."""

    def __init__(self, buckets, where):
        self.buckets, self.where = buckets, where
        self.missing = [len(b.params) for b in buckets]        # parameters not final yet, per bucket
        self.final = set()                                      # ids of the parameters final so far
        self.started = []                                       # (bucket, flat, work), in bucket order


_reducers = weakref.WeakSet()          # every live Reducer: a parameter belongs to the newest one


def _remove_all(handles):
    for handle in handles:
        handle.remove()


class Reducer:
    """Averages the gradients of ``params`` over ``group`` inside backward (see the module's docstring)."""

    def __init__(self, params, group, cap_bytes):
        self.params = [p for p in params if p.requires_grad]
        self.group, self.cap_bytes = group, int(cap_bytes)
        self._buckets, self._bucket_key, self._where = None, None, {}
        self._averaged = {}            # id(param) -> weak reference to the gradient Tensor it averaged
        self.mode = None               # "sync" / "local": what the next backward pass does; set by forward
        self._pass = None
        self.last_bytes_all_reduced = 0
        self.last_wait_seconds = 0.0   # of the latest reduction: the part not hidden behind backward
        self.last_started_early = 0
        self.last_done_early = 0       # and those whose all-reduce had finished by the end of the pass
        ids = {id(p) for p in self.params}
        for other in list(_reducers):  # a model wrapped again: the new wrapper alone reduces its gradients
            other._forget(ids)
        mine = weakref.ref(self)

        def hook(p):                   # a weak reference: the parameters do not keep the reducer alive
            reducer = mine()
            if reducer is not None:
                reducer._on_grad(p)
        self._handles = {id(p): p.register_post_accumulate_grad_hook(hook) for p in self.params}
        weakref.finalize(self, _remove_all, list(self._handles.values()))
        _reducers.add(self)

    def _forget(self, ids):
        for i in ids & self._handles.keys():
            self._handles.pop(i).remove()
        self.params = [p for p in self.params if id(p) in self._handles]
        self._bucket_key = None

    def buckets(self):
        """The buckets for the parameters as they are now (remade when a dtype or device changed)."""
        key = tuple((id(p), p.data.dtype, backend.device_of(p.data)) for p in self.params)
        if key != self._bucket_key:
            self._buckets, self._bucket_key = make_buckets(self.params, self.cap_bytes), key
            self._where = {id(p): i for i, b in enumerate(self._buckets) for p in b.params}
        return self._buckets

    def prepare(self, mode):
        """Called by every forward pass with gradients: ``"sync"`` (the next backward pass averages) or
        ``"local"`` (under ``no_sync()``: it accumulates locally)."""
        self.mode, self._pass = mode, None

    # ------------------------------------------------------------------ during backward

    def _on_grad(self, p):
        """The post-accumulate-grad hook: ``p.grad`` is final for the running backward pass."""
        if self.mode != "sync":
            self._averaged.pop(id(p), None)          # a local gradient now
            return
        st = self._pass
        if st is None:
            st = self._pass = _Pass(self.buckets(), self._where)
            queue_callback(self._finish)
        if id(p) in st.final or id(p) not in st.where:
            return
        st.final.add(id(p))
        st.missing[st.where[id(p)]] -= 1
        n = len(st.started)
        while n < len(st.buckets) and st.missing[n] == 0:    # start the buckets now complete, in order
            self._start(st, n)
            n += 1
        for _, _, work in st.started:
            if work is not None:
                work.poll()

    def _start(self, st, index):
        bucket = st.buckets[index]
        if self.group.world_size == 1:
            st.started.append((bucket, None, None))
            return
        flat = bucket.flatten()
        st.started.append((bucket, flat, self.group.all_reduce_start(flat)))

    def _finish(self):
        """Queued at the first hook of the pass: start what is left, wait for everything, average."""
        start = time.perf_counter()
        st, self._pass, self.mode = self._pass, None, None
        self.last_started_early = len(st.started)        # buckets started while the pass still ran
        self.last_done_early = sum(work is not None and work.test() for _, _, work in st.started)
        for index in range(len(st.started), len(st.buckets)):
            self._start(st, index)
        self.last_bytes_all_reduced = 0
        for bucket, flat, work in st.started:
            if work is not None:
                work.wait()
                bucket.unflatten(flat, self.group.world_size)
                self.last_bytes_all_reduced += flat.nbytes
        self._mark_averaged()
        self.last_wait_seconds = time.perf_counter() - start

    def _mark_averaged(self):
        self._averaged = {id(p): weakref.ref(p.grad) for p in self.params if p.grad is not None}

    # ------------------------------------------------------------------ by hand, and the check

    def is_averaged(self, p) -> bool:
        """True when ``p.grad`` is None or the gradient this reducer averaged last."""
        ref = self._averaged.get(id(p))
        return p.grad is None or (ref is not None and ref() is p.grad)

    def unaveraged(self, params=None):
        """The parameters (of ``params``, default all) that hold a gradient not averaged over the ranks."""
        mine = self._handles.keys()
        return [p for p in (self.params if params is None else params) if id(p) in mine and not self.is_averaged(p)]

    def average_now(self):
        """Average every gradient not averaged yet, on every rank (nothing when every rank's are):
        ``DistributedDataParallel.average_gradients()``."""
        group = self.group
        if group.world_size > 1 and group.all_reduce_host([len(self.unaveraged())], "max")[0] == 0:
            return
        self.last_bytes_all_reduced = 0
        if group.world_size > 1:
            buckets = self.buckets()
            flats = [bucket.flatten() for bucket in buckets]
            group.all_reduce_(*flats)
            for bucket, flat in zip(buckets, flats):
                bucket.unflatten(flat, group.world_size)
            self.last_bytes_all_reduced = sum(flat.nbytes for flat in flats)
        self._mark_averaged()

    def check_step(self, params, what):
        """Raise :class:`UnaveragedGradientsError` when ``params`` hold gradients of this reducer's
        parameters that were never averaged (called before every optimizer step)."""
        bad = self.unaveraged(params)
        if bad:
            raise UnaveragedGradientsError(
                f"{what}: {len(bad)} of the {len(self.params)} parameters of a DistributedDataParallel model hold "
                f"gradients that were not averaged over the {self.group.world_size} processes (a backward() of a "
                "loss not computed through the DDP module, or under no_sync()); this rank's model would leave "
                "the others'. Compute the loss from ddp(x), or call ddp.average_gradients() before the step")


def check_step(optimizer, what):
    """Before ``optimizer``'s step: every live reducer checks the parameters it reduces."""
    reducers = list(_reducers)
    if reducers:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for reducer in reducers:
            reducer.check_step(params, what)
