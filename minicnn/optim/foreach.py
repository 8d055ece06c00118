"""One kernel for an optimizer step over many parameters (PyTorch's ``foreach``/``fused`` optimizers).

On a GPU a small network's step is bound by launches: SGD stepping ResNet-18's 62 parameters one kernel
each was 62 launches of a 472-launch step. ``sgd_group_step`` steps a whole parameter group (one dtype, on
the GPU) with one launch of ``kernels.fast.fused.sgd_step_multi``, which finds every parameter, gradient
and momentum buffer through a small device table of pointers (PyTorch's multi-tensor apply). The
parameters stay where they are (``p.data`` is updated in place, views of it stay valid, as the other
optimizers promise); the table is uploaded again only when an address changes (a new gradient array, a
parameter's ``.data`` replaced by ``load_state_dict`` or ``.to()``, an optimizer state loaded), which a
comparison of the addresses, read in the one loop over the parameters that the step needs anyway, shows.
"""
from __future__ import annotations

import numpy as np   # the host side of the pointer table

from ..backend import get_array_module
from ..kernels.fast.fused import sgd_step_multi


class _Table:
    """The device pointer table of one parameter group, kept until an address changes."""

    def __init__(self):
        self.key, self.device = None, None

    def get(self, xp, sizes, key):
        if key != self.key:
            n = len(sizes)
            offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            host = np.concatenate([offsets, np.array(key[:4 * n], dtype=np.int64)])
            self.device, self.key = xp.asarray(host), key
        return self.device


def sgd_group_step(optimizer, group) -> bool:
    """Step one of an ``SGD``'s parameter groups with one kernel; False (nothing done) when it cannot: a
    parameter or gradient on the CPU, of another dtype, not contiguous, or two parameters sharing memory."""
    params = group["params"]
    if not params:
        return False
    first = params[0].data
    xp, dtype = get_array_module(first), first.dtype
    if xp is np or dtype.kind != "f":
        return False
    momentum = float(group["momentum"])
    state = optimizer.state
    sizes, pp, gp, bp, firsts, starting = [], [], [], [], [], []
    for p in params:
        a, grad = p.data, p.grad
        if grad is None:
            continue
        g = grad.data
        if (a.dtype != dtype or g.dtype != dtype or not a.flags.c_contiguous or not g.flags.c_contiguous
                or get_array_module(a) is not xp or get_array_module(g) is not xp):
            return False
        if a.size == 0:
            continue
        buf = None
        if momentum:
            s = state[p]
            buf = s.get("momentum_buffer")
            if buf is None:
                buf = xp.empty_like(a)
                starting.append((s, buf))
            elif buf.dtype != dtype or not buf.flags.c_contiguous or buf.shape != a.shape:
                return False
        sizes.append(a.size)
        pp.append(a.data.ptr)
        gp.append(g.data.ptr)
        bp.append(0 if buf is None else buf.data.ptr)
        firsts.append(1 if starting and starting[-1][1] is buf else 0)
    if not sizes:
        return True
    spans = sorted(zip(pp, (p + s * dtype.itemsize for p, s in zip(pp, sizes))))
    if any(start < end for (_, end), (start, _) in zip(spans, spans[1:])):
        return False                    # parameters sharing memory: stepped one by one, as before
    tables = optimizer.__dict__.setdefault("_foreach_tables", {})
    table = tables.setdefault(id(group), _Table()).get(xp, sizes, (*pp, *gp, *bp, *firsts, *sizes))
    sgd_step_multi(table, len(sizes), sum(sizes), dtype, float(group["lr"]), momentum, float(group["dampening"]),
                   float(group["weight_decay"]), group["nesterov"], group["maximize"])
    for s, buf in starting:
        s["momentum_buffer"] = buf
    return True
