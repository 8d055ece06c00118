"""What the engine's hooks share: the handle every ``register_*hook`` returns, and the callbacks
queued during a backward pass (``minicnn.autograd.queue_callback``).

The hooks themselves live where they fire: tensor hooks in ``minicnn.autograd`` (``register_hook``,
``retain_grad``, ``register_post_accumulate_grad_hook``), module hooks in ``minicnn.nn.Module``
(``register_forward_pre_hook``, ``register_forward_hook``). This module imports nothing from minicnn.
"""
from __future__ import annotations

import itertools

_next_id = itertools.count()


class RemovableHandle:
    """Returned by every ``register_*hook``: ``handle.remove()`` unregisters the hook (PyTorch's
    ``torch.utils.hooks.RemovableHandle``); ``with handle:`` removes it at the end of the block."""

    def __init__(self, hooks: dict):
        self.id = next(_next_id)
        self._hooks = hooks

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def add_hook(hooks: dict, hook, what: str) -> RemovableHandle:
    """Register ``hook`` in the ordered dict ``hooks`` (they run in registration order)."""
    if not callable(hook):
        raise TypeError(f"{what}: the hook must be callable, got {type(hook).__name__}")
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def run_tensor_hooks(tensor_hooks: dict, g, wrap):
    """During backward: each hook in order gets the gradient ``wrap(g)`` (a Tensor) and may return a
    replacement (a Tensor or an array) of the same shape, which the next hooks and the graph then get."""
    for hook in tuple(tensor_hooks.values()):
        new = hook(wrap(g))
        if new is not None:
            new = new.data if hasattr(new, "requires_grad") else new          # a Tensor, or an array
            if tuple(new.shape) != tuple(g.shape):
                raise RuntimeError(f"hook '{getattr(hook, '__name__', hook)}' has changed the size of value: "
                                   f"it returned shape {tuple(new.shape)} for a gradient of shape {tuple(g.shape)}")
            g = new
    return g


def deliver(leaf, g, give, wrap):
    """A leaf's whole gradient of a backward pass: its hooks, then ``give(leaf, g)`` (into ``.grad``),
    then its post-accumulate hooks (``hook(leaf)``)."""
    if leaf._hooks is not None:
        g = run_tensor_hooks(leaf._hooks[0], g, wrap)
    give(leaf, g)
    if leaf._hooks is not None:
        for hook in tuple(leaf._hooks[1].values()):
            hook(leaf)


def arrive(waiting, leaf, g, give, wrap):
    """One of the edges into a leaf with hooks (``g`` None when it brought no gradient); ``waiting[id(leaf)]``
    is [edges still to come, their sum so far]. The leaf gets its gradient after the last edge."""
    entry = waiting[id(leaf)]
    if g is not None:
        entry[1] = g if entry[1] is None else entry[1] + g
    entry[0] -= 1
    if entry[0] == 0 and entry[1] is not None:
        deliver(leaf, entry[1], give, wrap)


def output_hooks(fn, g, give, wrap):
    """The gradient of a non-leaf tensor (the output of ``fn``, which keeps its hooks): its hooks, then its
    ``.grad`` when it called ``retain_grad()`` (after the hooks, as in PyTorch). Returns the gradient."""
    if fn._hooks is not None:
        g = run_tensor_hooks(fn._hooks, g, wrap)
    tensor = fn._retain() if fn._retain is not None else None
    if tensor is not None:
        give(tensor, g)
    return g


# --------------------------------------------------------------------------- callbacks after backward

_queues: list[list] = []       # one list of callbacks per running backward() (a hook may start another)


def queue_callback(callback) -> None:
    """Run ``callback()`` once, after the running ``backward()`` has finished all its work (PyTorch's
    ``Variable._execution_engine.queue_callback``); data-parallel training waits for its last bucket there.

    Only valid while a backward pass runs (from a hook): elsewhere a RuntimeError.
    """
    if not callable(callback):
        raise TypeError(f"queue_callback: expected a callable, got {type(callback).__name__}")
    if not _queues:
        raise RuntimeError("queue_callback: no backward pass is running (call it from a hook during backward())")
    _queues[-1].append(callback)


class running_backward:
    """``with running_backward():`` around one backward pass: callbacks queued inside run at its end
    (in the order queued, including callbacks queued by callbacks), unless the pass raised."""

    def __enter__(self):
        _queues.append([])

    def __exit__(self, exc_type, *exc):
        try:
            if exc_type is None:
                callbacks, i = _queues[-1], 0
                while i < len(callbacks):
                    callbacks[i]()
                    i += 1
        finally:
            _queues.pop()
        return False
