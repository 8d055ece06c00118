"""The autograd engine: ``Tensor``, ``Function`` and ``backward()``, and nothing else.

How it works, in four sentences.  A ``Tensor`` wraps an array (NumPy or CuPy) and, when it
was computed from tensors that require gradients, remembers the ``Function`` that made it
(``tensor.grad_fn``).  Each ``Function`` subclass has a ``forward`` (arrays in, one array
out, saving on ``self`` what the backward pass needs) and, right beside it, a ``backward``
(the gradient of the output in, one gradient per input out).  ``tensor.backward()`` sorts
the recorded graph topologically with an explicit stack (no recursion, so a 10,000-op
chain is fine), then walks it from the output back to the leaves, summing the gradients
of every path, and adds the result into each leaf's ``.grad``.  Under ``no_grad()``
nothing is recorded at all (``minicnn.grad_mode``; hooks' helpers: ``minicnn.hooks``).
This file is the whole engine. The operations themselves (``+``, ``@``, ``.sum()``,
``.reshape()``, indexing...) are ``Function`` subclasses in ``minicnn.ops``, one module per
family, which also attach the matching ``Tensor`` methods and operators when minicnn is
imported; the neural-network ops over the hand-written kernels are in ``minicnn.functional``.
"""
from __future__ import annotations

import operator
import weakref

import numpy as np

from . import backend, grad_mode, hooks
from .checks import (InvalidGradientError, check_returned_grad, check_same_device,  # noqa: F401
                     check_saved_versions, note_saved_versions)
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from .hooks import queue_callback  # noqa: F401  (minicnn.autograd.queue_callback, as PyTorch's engine has it)

# --------------------------------------------------------------------------- Function

class Function:
    """One differentiable operation: ``forward`` and ``backward`` side by side.

    Subclasses implement

    * ``forward(self, *args, **kwargs) -> array``: receives the *arrays* of tensor
      arguments (other arguments unchanged) and may save on ``self`` what backward needs;
    * ``backward(self, grad) -> grad_or_tuple``: receives dL/d(output) and returns
      dL/d(input) for every positional argument, in order (``None`` where no gradient).

    ``self.needs_input_grad[i]`` tells whether positional argument ``i`` needs a gradient,
    so that backward (and forward, when deciding what to save) can skip useless work.
    Call an op as ``MyFunction.apply(*args, **kwargs)``: it returns a ``Tensor``.
    """

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    _hooks = _retain = None     # its output's hooks {handle id: hook}; a weak reference after retain_grad()
    _saved = ()                 # (weak reference, version, argument index or -1 for the output) of what it kept

    @classmethod
    def apply(cls, *args, **kwargs):
        fn = cls()
        tensors = [a for a in args if isinstance(a, Tensor)]
        record = grad_mode.is_grad_enabled() and any(t.requires_grad for t in tensors)
        if len(tensors) > 1:
            check_same_device(cls.__name__, tensors)
        fn.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad and record for a in args)
        out = fn.forward(*[a._data if isinstance(a, Tensor) else a for a in args], **kwargs)
        result = Tensor._wrap(out)
        if record:
            note_saved_versions(fn, args, result, Tensor)
            # The graph's edges: for each argument that needs a gradient, the Function that made it,
            # or the leaf tensor itself.  Never a non-leaf Tensor: its array would stay alive until
            # backward even when no backward formula needs it.
            fn.parents = tuple((a._ctx if a._ctx is not None else a) if need else None
                               for a, need in zip(args, fn.needs_input_grad))
            fn.meta = (out.shape, out.dtype, type(out))      # what a gradient for this output must fit
            result.requires_grad = True
            result._ctx = fn
        return result

    def release(self):
        """Drop everything saved for backward (called after a backward pass without ``retain_graph``)."""
        hooks_, retain = self._hooks, self._retain          # but its output tensor's hooks stay
        self.__dict__.clear()
        self.freed = True
        if hooks_ is not None or retain is not None:
            self._hooks, self._retain = hooks_, retain

    freed = False

    name = property(lambda self: type(self).__name__)


# --------------------------------------------------------------------------- backward pass

def _topological_order(root_fn):
    """Functions reachable from ``root_fn``, each after every function that consumes its output; and for
    each leaf with hooks, [the number of edges into it, None] (its gradient waits for all of them)."""
    order, visited, waiting = [], set(), {}
    stack = [(root_fn, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        if fn.freed:
            raise RuntimeError(
                "backward: trying to backward through the graph a second time (its saved values were "
                "freed by the first backward). Pass retain_graph=True to the first backward call.")
        visited.add(id(fn))
        stack.append((fn, True))
        for parent in fn.parents:
            if isinstance(parent, Function):
                if id(parent) not in visited:
                    stack.append((parent, False))
            elif parent is not None and parent._hooks is not None:
                waiting.setdefault(id(parent), [0, None])[0] += 1
    order.reverse()   # post-order reversed: consumers before producers
    return order, waiting


def _unshared(g, handed):
    """``g``, or a copy of it when its memory already went to another leaf's ``.grad`` in this pass
    (``a + b`` hands the same array to both): in-place edits of one ``.grad`` never change another."""
    owner = g if g.base is None else g.base
    if id(owner) in handed:
        g = g.copy()
        owner = g
    handed.add(id(owner))
    return g


def _checked(fn, i, g, parent):
    """The gradient ``g`` that ``fn.backward`` returned for its argument ``i``, checked against it."""
    shape, dtype, kind = (parent.shape, parent.dtype, type(parent._data)) if isinstance(parent, Tensor) else parent.meta
    if type(g) is kind and g.shape == shape and (g.dtype is dtype or g.dtype == dtype):
        return g
    device = "cuda" if kind.__module__.startswith("cupy") else "cpu"
    return check_returned_grad(fn.name, i, g, shape, dtype, device, hasattr(g, "shape") and backend.device_of(g))


def backward(tensor, grad=None, retain_graph=False):
    """Accumulate d(tensor)/d(leaf) into ``leaf.grad`` for every leaf that requires a gradient.

    ``grad`` is the upstream gradient (same shape as ``tensor``); it may be omitted only for
    a tensor with one element.  Gradients *add up* over calls: call ``zero_grad()`` between steps.
    The graph's saved arrays are freed afterwards unless ``retain_graph=True``.
    """
    if not tensor.requires_grad:
        raise RuntimeError("backward: the tensor does not require grad and has no grad_fn "
                           "(was it computed under no_grad(), or from tensors without requires_grad=True?)")
    xp = backend.get_array_module(tensor.data)
    handed = set()                              # memory already given to a leaf's .grad in this pass
    if grad is None:
        if tensor.data.size != 1:
            raise ValueError(f"backward: a gradient must be given for a non-scalar output of shape "
                             f"{tuple(tensor.shape)} (grad can be implicitly created only for one element)")
        grad = xp.ones_like(tensor.data)
    else:
        grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=tensor.dtype)
        if grad.shape != tensor.shape:
            raise ValueError(f"backward: gradient of shape {tuple(grad.shape)} does not match "
                             f"the output's shape {tuple(tensor.shape)}")
        handed.add(id(grad if grad.base is None else grad.base))    # the caller's array: never a .grad
    def give(leaf, g):                          # into a leaf's .grad (or a retained one)
        leaf._accumulate(_unshared(g, handed))
    with hooks.running_backward():              # then the callbacks queued meanwhile
        if tensor._ctx is None:                 # backward() on a leaf
            hooks.deliver(tensor, grad, give, Tensor._wrap)
        else:
            _run_graph(tensor._ctx, grad, give, retain_graph)


def _run_graph(root, grad, give, retain_graph):
    order, waiting = _topological_order(root)   # waiting: the leaves with hooks
    grads = {id(root): grad}                    # dL/d(output of fn), keyed by fn
    for fn in order:
        g = grads.pop(id(fn), None)
        if g is not None:
            if fn._hooks is not None or fn._retain is not None:
                g = hooks.output_hooks(fn, g, give, Tensor._wrap)
            if fn._saved:
                check_saved_versions(fn)
            input_grads = fn.backward(g)
            input_grads = input_grads if isinstance(input_grads, tuple) else (input_grads,)
            for i, (parent, pg) in enumerate(zip(fn.parents, input_grads)):
                if parent is None:
                    continue
                if pg is not None:
                    pg = _checked(fn, i, pg, parent)
                if isinstance(parent, Function):
                    if pg is not None:
                        key = id(parent)
                        grads[key] = grads[key] + pg if key in grads else pg
                elif parent._hooks is not None:         # a leaf with hooks: after its last edge
                    hooks.arrive(waiting, parent, pg, give, Tensor._wrap)
                elif pg is not None:                    # a leaf: its .grad accumulates
                    give(parent, pg)
        elif waiting:
            for parent in fn.parents:
                if isinstance(parent, Tensor) and parent._hooks is not None:
                    hooks.arrive(waiting, parent, None, give, Tensor._wrap)
        if not retain_graph:
            fn.release()


# --------------------------------------------------------------------------- Tensor

class Tensor:
    """An n-dimensional array with an optional gradient, on the CPU (NumPy) or a GPU (CuPy).

    ``data`` is the array; ``grad`` is ``None`` until a backward pass reaches this tensor,
    then a ``Tensor`` of the same shape, dtype and device (that never requires a gradient).
    Operators (``+ - * / ** @``, comparisons, indexing) and methods follow PyTorch: they are
    attached by ``minicnn.ops``; see ``minicnn.functional`` for the neural-network ops.
    """

    __slots__ = ("_data", "_grad", "requires_grad", "_ctx", "_version", "_hooks", "__weakref__")
    __array_priority__ = 1000   # numpy_array + tensor -> Tensor.__radd__, not an object array

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        """Wrap ``data`` (shares an array's memory when no conversion is needed; ``minicnn.tensor`` copies)."""
        if isinstance(data, Tensor):
            data = data.data
        if isinstance(data, np.ndarray) or backend.device_of(data) == "cuda":     # a NumPy or CuPy array
            array = data if dtype is None else data.astype(dtype, copy=False)
            array = backend.to_device(array, device) if device is not None else array
        else:   # lists, Python and NumPy scalars: Python floats become the default float32
            array = np.asarray(data, dtype=dtype)
            if dtype is None and array.dtype == np.float64 and not isinstance(data, np.generic):
                array = array.astype(backend.DEFAULT_DTYPE)
            array = backend.to_device(array, device or "cpu")
        self._data, self._grad, self._ctx, self.requires_grad, self._version, self._hooks = array, None, None, False, 0, None
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array):
        """Fast constructor for op results (no conversion, no checks)."""
        t = object.__new__(cls)
        t._data, t._grad, t.requires_grad, t._ctx, t._version, t._hooks = array, None, False, None, 0, None
        return t

    def _set_data(self, value):
        if isinstance(value, Tensor):
            value = value._data
        elif isinstance(value, np.generic):
            value = np.asarray(value)
        elif not isinstance(value, np.ndarray) and backend.device_of(value) != "cuda":
            raise TypeError(f"Tensor.data: expected an array or a Tensor, got {type(value).__name__}")
        self._data = value

    data = property(operator.attrgetter("_data"), _set_data, doc="The array (NumPy or CuPy). Assigning a Tensor "
                    "stores its array; changes through .data are not seen by autograd (as in PyTorch).")

    # ---- what it is
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: backend.device_of(self.data), doc="'cpu' or 'cuda'")
    grad_fn = property(lambda self: self._ctx, doc="The Function that made this tensor (None for leaves).")
    is_leaf = property(lambda self: self._ctx is None)

    __hash__ = object.__hash__      # (== is elementwise, attached by minicnn.ops)

    # ---- gradients
    def requires_grad_(self, flag=True):
        if flag and not backend.is_floating(self.dtype):
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    @property
    def grad(self):
        """The gradient that ``backward()`` accumulated here: a ``Tensor`` (shape, dtype and device of
        this one, ``requires_grad=False``), or ``None`` before any backward pass reached this tensor."""
        return self._grad

    @grad.setter
    def grad(self, value):
        # PyTorch accepts only a Tensor here; minicnn also takes a NumPy/CuPy array (wrapped, not copied).
        if value is None:
            self._grad = None
            return
        if not isinstance(value, Tensor):
            if not hasattr(value, "shape") or not hasattr(value, "dtype"):
                raise TypeError(f"Tensor.grad: expected a Tensor, an array or None, got {type(value).__name__}")
            value = Tensor._wrap(value)
        if value.shape != self.shape:
            raise ValueError(f"Tensor.grad: assigned gradient has shape {tuple(value.shape)}, "
                             f"the tensor has shape {tuple(self.shape)}")
        if value.dtype != self.dtype:
            raise TypeError(f"Tensor.grad: assigned gradient has dtype {value.dtype}, the tensor has dtype {self.dtype}")
        if value.device != self.device:
            raise ValueError(f"Tensor.grad: assigned gradient is on {value.device!r}, the tensor on {self.device!r}")
        self._grad = value

    def _accumulate(self, g):
        """Add the array ``g`` into ``self.grad`` (out of place: a gradient the caller still holds never changes)."""
        if g.dtype != self.dtype:
            g = g.astype(self.dtype)
        self._grad = Tensor._wrap(g if self._grad is None else self._grad.data + g)

    def backward(self, gradient=None, retain_graph=False):
        """Backpropagate from this tensor; see ``minicnn.autograd.backward``."""
        backward(self, gradient, retain_graph=retain_graph)

    def zero_grad(self):
        self.grad = None

    # ---- hooks (see minicnn.hooks)
    def register_hook(self, hook):
        """``hook(grad) -> Tensor or None`` runs when the gradient with respect to this tensor has been summed
        in a backward pass (for a leaf: before it is added into ``.grad``); a returned tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._ctx is None:
            return hooks.add_hook(self._leaf_hooks()[0], hook, "register_hook")
        if self._ctx._hooks is None:
            self._ctx._hooks = {}
        return hooks.add_hook(self._ctx._hooks, hook, "register_hook")

    def register_post_accumulate_grad_hook(self, hook):
        """``hook(tensor)`` runs as soon as this leaf's ``.grad`` is final in a backward pass."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._ctx is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        return hooks.add_hook(self._leaf_hooks()[1], hook, "register_post_accumulate_grad_hook")

    def _leaf_hooks(self):
        if self._hooks is None:
            self._hooks = ({}, {})      # gradient hooks, post-accumulate hooks
        return self._hooks

    def retain_grad(self):
        """A non-leaf keeps its ``.grad`` after backward (a leaf always does)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._ctx is not None:
            self._ctx._retain = weakref.ref(self)

    retains_grad = property(lambda self: self._ctx is not None and self._ctx._retain is not None)

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data)
