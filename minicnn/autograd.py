"""The autograd engine: ``Tensor``, ``Function``, ``backward()`` and ``no_grad()``, and nothing else.

How it works, in four sentences.  A ``Tensor`` wraps an array (NumPy or CuPy) and, when it
was computed from tensors that require gradients, remembers the ``Function`` that made it
(``tensor.grad_fn``).  Each ``Function`` subclass has a ``forward`` (arrays in, one array
out, saving on ``self`` what the backward pass needs) and, right beside it, a ``backward``
(the gradient of the output in, one gradient per input out).  ``tensor.backward()`` sorts
the recorded graph topologically with an explicit stack (no recursion, so a 10,000-op
chain is fine), then walks it from the output back to the leaves, summing the gradients
of every path, and adds the result into each leaf's ``.grad``.  Under ``no_grad()``
nothing is recorded at all.

This file is the whole engine. The operations themselves (``+``, ``@``, ``.sum()``,
``.reshape()``, indexing...) are ``Function`` subclasses in ``minicnn.ops``, one module per
family, which also attach the matching ``Tensor`` methods and operators when minicnn is
imported; the neural-network ops over the hand-written kernels are in ``minicnn.functional``.
"""
from __future__ import annotations

import functools

import numpy as np

from . import backend

# --------------------------------------------------------------------------- grad mode

_grad_enabled = True


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()``."""
    return _grad_enabled


class _GradMode:
    """Context manager and decorator that sets whether operations are recorded."""

    enabled = True

    def __enter__(self):
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = self.enabled
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with type(self)():
                return func(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """``with minicnn.no_grad():`` (or ``@minicnn.no_grad()``): record no graph; results need no gradient."""

    enabled = False


class enable_grad(_GradMode):
    """Re-enable recording inside a ``no_grad`` block."""

    enabled = True


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

    @classmethod
    def apply(cls, *args, **kwargs):
        fn = cls()
        tensors = [a for a in args if isinstance(a, Tensor)]
        record = _grad_enabled and any(t.requires_grad for t in tensors)
        if len(tensors) > 1:
            _check_same_device(cls.__name__, tensors)
        fn.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad and record for a in args)
        out = fn.forward(*[a.data if isinstance(a, Tensor) else a for a in args], **kwargs)
        result = Tensor._wrap(out)
        if record:
            # The graph's edges: for each argument that needs a gradient, the Function that made it,
            # or the leaf tensor itself.  Never a non-leaf Tensor: its array would stay alive until
            # backward even when no backward formula needs it.
            fn.parents = tuple((a._ctx if a._ctx is not None else a) if need else None
                               for a, need in zip(args, fn.needs_input_grad))
            result.requires_grad = True
            result._ctx = fn
        return result

    def release(self):
        """Drop everything saved for backward (called after a backward pass without ``retain_graph``)."""
        self.__dict__.clear()
        self.freed = True

    freed = False

    name = property(lambda self: type(self).__name__)


def _check_same_device(op, tensors):
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        shapes = ", ".join(f"{tuple(t.shape)} on {t.device}" for t in tensors)
        raise ValueError(f"{op}: all tensors must be on the same device, got {shapes}")


# --------------------------------------------------------------------------- backward pass

def _topological_order(root_fn):
    """Functions reachable from ``root_fn``, each after every function that consumes its output."""
    order, visited = [], set()
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
            if isinstance(parent, Function) and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()   # post-order reversed: consumers before producers
    return order


def _unshared(g, handed):
    """``g``, or a copy of it when its memory already went to another leaf's ``.grad`` in this pass
    (``a + b`` hands the same array to both): in-place edits of one ``.grad`` never change another."""
    owner = g if g.base is None else g.base
    if id(owner) in handed:
        g = g.copy()
        owner = g
    handed.add(id(owner))
    return g


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
    if tensor._ctx is None:                     # backward() on a leaf
        tensor._accumulate(grad)
        return

    grads = {id(tensor._ctx): grad}             # dL/d(output of fn), keyed by fn
    handed = set()                              # memory already given to a leaf's .grad in this pass
    for fn in _topological_order(tensor._ctx):
        g = grads.pop(id(fn), None)
        if g is not None:
            input_grads = fn.backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for parent, pg in zip(fn.parents, input_grads):
                if parent is None or pg is None:
                    continue
                if isinstance(parent, Tensor):          # a leaf: its .grad accumulates
                    parent._accumulate(_unshared(pg, handed))
                else:
                    key = id(parent)
                    grads[key] = grads[key] + pg if key in grads else pg
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

    __slots__ = ("data", "_grad", "requires_grad", "_ctx", "__weakref__")
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
        self.data, self._grad, self._ctx, self.requires_grad = array, None, None, False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array):
        """Fast constructor for op results (no conversion, no checks)."""
        t = object.__new__(cls)
        t.data, t._grad, t.requires_grad, t._ctx = array, None, False, None
        return t

    # ---- what it is
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: backend.device_of(self.data), doc="'cpu' or 'cuda'")
    grad_fn = property(lambda self: self._ctx, doc="The Function that made this tensor (None for leaves).")
    is_leaf = property(lambda self: self._ctx is None)

    def __repr__(self):
        extra = "" if self.device == "cpu" else f", device='{self.device}'"
        if self.dtype != backend.DEFAULT_DTYPE:
            extra += f", dtype={self.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        body = np.array2string(backend.to_numpy(self.data), separator=", ", prefix="tensor(")
        return f"tensor({body}{extra})"

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

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data)

    # ---- out to Python and NumPy
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory on the CPU, copies from a GPU)."""
        return backend.to_numpy(self.data)

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)`` for a CPU tensor (shares memory). A GPU tensor refuses, as in PyTorch:
        copying to the host is always explicit (``t.numpy()`` or ``t.cpu()``)."""
        if self.device != "cpu":
            raise TypeError("can't convert a cuda tensor to a NumPy array implicitly: "
                            "use t.numpy() (copies to the host) or t.cpu()")
        return np.array(self.data, dtype=dtype, copy=True) if copy else np.asarray(self.data, dtype=dtype)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted to a Python scalar, got shape {tuple(self.shape)}")
        return self.data.reshape(()).item()

    def tolist(self):
        return backend.to_numpy(self.data).tolist()

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.data)

    def __float__(self): return float(self.item())
    def __int__(self): return int(self.item())
