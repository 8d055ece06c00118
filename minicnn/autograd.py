"""Reverse-mode automatic differentiation: ``Tensor``, ``Function``, ``backward()``, ``no_grad()``.

How it works, in four sentences.  A ``Tensor`` wraps an array (NumPy or CuPy) and, when it
was computed from tensors that require gradients, remembers the ``Function`` that made it
(``tensor.grad_fn``).  Each ``Function`` subclass has a ``forward`` (arrays in, one array
out, saving on ``self`` what the backward pass needs) and, right beside it, a ``backward``
(the gradient of the output in, one gradient per input out).  ``tensor.backward()`` sorts
the recorded graph topologically with an explicit stack (no recursion, so a 10,000-op
chain is fine), then walks it from the output back to the leaves, summing the gradients
of every path, and adds the result into each leaf's ``.grad``.  Under ``no_grad()``
nothing is recorded at all.

The differentiable ops that ``Tensor`` methods and operators need live in this file
(arithmetic, reductions, reshaping, indexing, ``cat``/``stack``/``where``); the neural-network
ops built on the hand-written kernels live in ``minicnn.functional``.
"""
from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from . import backend
from .backend import get_array_module

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

    @property
    def name(self) -> str:
        return type(self).__name__


def _check_same_device(op, tensors):
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        shapes = ", ".join(f"{tuple(t.shape)} on {t.device}" for t in tensors)
        raise ValueError(f"{op}: all tensors must be on the same device, got {shapes}")


def _unbroadcast(grad, shape):
    """Sum ``grad`` over the axes along which an input of ``shape`` was broadcast."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes).reshape(shape) if axes else grad.reshape(shape)


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
    xp = get_array_module(tensor.data)
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

def _scalar_operand(value):
    """A Python scalar stays a (weakly typed) Python scalar so float32 stays float32 (NumPy 2 rules)."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


class Tensor:
    """An n-dimensional array with an optional gradient, on the CPU (NumPy) or a GPU (CuPy).

    ``data`` is the array; ``grad`` is ``None`` until a backward pass reaches this tensor,
    then an array of the same shape, dtype and device.  Operators (``+ - * / ** @``,
    comparisons, indexing) and methods follow PyTorch; see ``minicnn.functional`` for the
    neural-network ops.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "__weakref__")
    __array_priority__ = 1000   # numpy_array + tensor -> Tensor.__radd__, not an object array

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
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
        self.data = array
        self.grad = None
        self._ctx = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array):
        """Fast constructor for op results (no conversion, no checks)."""
        t = object.__new__(cls)
        t.data, t.grad, t.requires_grad, t._ctx = array, None, False, None
        return t

    # ---- properties
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def grad_fn(self):
        """The ``Function`` that produced this tensor (``None`` for leaves)."""
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def dim(self) -> int:
        return self.ndim

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        extra = ""
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        if self.dtype != backend.DEFAULT_DTYPE:
            extra += f", dtype={self.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        body = np.array2string(backend.to_numpy(self.data), separator=", ", prefix="tensor(")
        return f"tensor({body}{extra})"

    __hash__ = object.__hash__

    # ---- gradients
    def requires_grad_(self, flag=True):
        if flag and not backend.is_floating(self.dtype):
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def _accumulate(self, g):
        """Add ``g`` into ``self.grad`` (out of place, so an array the caller still holds is never changed)."""
        if g.dtype != self.dtype:
            g = g.astype(self.dtype)
        self.grad = g if self.grad is None else self.grad + g

    def backward(self, gradient=None, retain_graph=False):
        """Backpropagate from this tensor; see ``minicnn.autograd.backward``."""
        backward(self, gradient, retain_graph=retain_graph)

    def zero_grad(self):
        self.grad = None

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data)

    # ---- conversion
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory on the CPU, copies from a GPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted to a Python scalar, got shape {tuple(self.shape)}")
        return self.data.reshape(()).item()

    def tolist(self):
        return backend.to_numpy(self.data).tolist()

    def to(self, device=None, dtype=None):
        """Move to a device (``"cpu"``/``"cuda"``) and/or cast (``minicnn.float64``...). Differentiable."""
        if isinstance(device, (np.dtype, type)) or (isinstance(device, str) and device not in ("cpu", "cuda", "gpu") and not device.startswith("cuda:")):
            device, dtype = None, device
        out = self
        if dtype is not None and np.dtype(dtype) != self.dtype:
            out = Cast.apply(out, np.dtype(dtype))
        if device is not None and backend.normalize_device(device) != self.device:
            out = ToDevice.apply(out, backend.normalize_device(device))
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def long(self):
        return Tensor._wrap(self.data.astype(np.int64))

    def clone(self):
        return Clone.apply(self)

    def contiguous(self):
        return self

    # ---- in-place helpers (on .data; use them on leaves, e.g. for initialisation)
    def zero_(self):
        self.data[...] = 0
        return self

    def fill_(self, value):
        self.data[...] = value
        return self

    def copy_(self, other):
        src = other.data if isinstance(other, Tensor) else other
        self.data[...] = backend.to_device(src, self.device) if hasattr(src, "shape") else src
        return self

    # ---- arithmetic (operands may be tensors, arrays or Python/NumPy scalars)
    def _operand(self, other):
        if isinstance(other, Tensor):
            return other
        other = _scalar_operand(other)
        if isinstance(other, numbers.Number):
            return other
        return Tensor(other, device=self.device)

    def __add__(self, other): return Add.apply(self, self._operand(other))
    def __radd__(self, other): return Add.apply(self._operand(other), self)
    def __sub__(self, other): return Sub.apply(self, self._operand(other))
    def __rsub__(self, other): return Sub.apply(self._operand(other), self)
    def __mul__(self, other): return Mul.apply(self, self._operand(other))
    def __rmul__(self, other): return Mul.apply(self._operand(other), self)
    def __truediv__(self, other): return Div.apply(self, self._operand(other))
    def __rtruediv__(self, other): return Div.apply(self._operand(other), self)
    def __pow__(self, other): return Pow.apply(self, self._operand(other))
    def __rpow__(self, other): return Pow.apply(self._operand(other), self)
    def __matmul__(self, other): return MatMul.apply(self, self._operand(other))
    def __rmatmul__(self, other): return MatMul.apply(self._operand(other), self)
    def __neg__(self): return Neg.apply(self)
    def __pos__(self): return self
    def __abs__(self): return Abs.apply(self)

    # comparisons: boolean tensors, no gradient
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else _scalar_operand(other)
        return Tensor._wrap(op(self.data, other))

    def __lt__(self, other): return self._compare(other, lambda a, b: a < b)
    def __le__(self, other): return self._compare(other, lambda a, b: a <= b)
    def __gt__(self, other): return self._compare(other, lambda a, b: a > b)
    def __ge__(self, other): return self._compare(other, lambda a, b: a >= b)
    def __eq__(self, other): return self._compare(other, lambda a, b: a == b)
    def __ne__(self, other): return self._compare(other, lambda a, b: a != b)

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __getitem__(self, index):
        return GetItem.apply(self, _unwrap_index(index, get_array_module(self.data)))

    # ---- elementwise math
    def exp(self): return Exp.apply(self)
    def log(self): return Log.apply(self)
    def sqrt(self): return Sqrt.apply(self)
    def abs(self): return Abs.apply(self)
    def relu(self): return ReLU.apply(self)
    def sigmoid(self): return Sigmoid.apply(self)
    def tanh(self): return Tanh.apply(self)

    def clamp(self, min=None, max=None):  # noqa: A002  (PyTorch's argument names)
        return Clamp.apply(self, min, max)

    clip = clamp

    # ---- reductions (``axis``/``keepdims`` or PyTorch's ``dim``/``keepdim``)
    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return Sum.apply(self, *_reduce_args(axis, keepdims, dim, keepdim, self.ndim))

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return Mean.apply(self, *_reduce_args(axis, keepdims, dim, keepdim, self.ndim))

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Maximum over ``axis``. Unlike ``torch.max(dim=...)`` it returns the values only."""
        return Max.apply(self, *_reduce_args(axis, keepdims, dim, keepdim, self.ndim))

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Minimum over ``axis`` (values only; see ``max``)."""
        return Min.apply(self, *_reduce_args(axis, keepdims, dim, keepdim, self.ndim))

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _reduce_args(axis, keepdims, dim, keepdim, self.ndim)
        return Tensor._wrap(_arg_extremum(self.data, axis, keepdims, "argmax"))

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _reduce_args(axis, keepdims, dim, keepdim, self.ndim)
        return Tensor._wrap(_arg_extremum(self.data, axis, keepdims, "argmin"))

    # ---- shape
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Reshape.apply(self, tuple(shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge dims ``start_dim..end_dim`` into one (``torch.flatten``)."""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = _check_dim("flatten", start_dim, self.ndim), _check_dim("flatten", end_dim, self.ndim)
        shape = self.shape[:start] + (math.prod(self.shape[start:end + 1]),) + self.shape[end + 1:]   # not -1: N=0
        return Reshape.apply(self, shape)

    def transpose(self, dim0, dim1):
        """Swap two dimensions (``torch.transpose``)."""
        axes = list(range(self.ndim))
        dim0, dim1 = _check_dim("transpose", dim0, self.ndim), _check_dim("transpose", dim1, self.ndim)
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return Permute.apply(self, tuple(axes))

    def permute(self, *dims):
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return Permute.apply(self, tuple(_check_dim("permute", d, self.ndim) for d in dims))

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(n for n in self.shape if n != 1)
        else:
            dim = _check_dim("squeeze", dim, self.ndim)
            shape = self.shape[:dim] + self.shape[dim + 1:] if self.shape[dim] == 1 else self.shape
        return Reshape.apply(self, shape)

    def unsqueeze(self, dim):
        dim = _check_dim("unsqueeze", dim, self.ndim + 1)
        return Reshape.apply(self, self.shape[:dim] + (1,) + self.shape[dim:])

    def expand(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        shape = tuple(s if n == -1 else n for n, s in zip(shape, (None,) * (len(shape) - self.ndim) + self.shape))
        return BroadcastTo.apply(self, shape)


def _check_dim(op, dim, ndim):
    """``dim`` as a non-negative index into ``ndim`` dimensions, or an IndexError naming the op (no wrap-around)."""
    if not -ndim <= dim < ndim:
        raise IndexError(f"{op}: dimension {dim} is out of range for {ndim} dimensions "
                         f"(expected one in [{-ndim}, {ndim - 1}])")
    return dim % ndim


def _unwrap_index(index, xp):
    """Tensors inside an index become their arrays (indices carry no gradient); lists and index
    arrays go to the indexed tensor's device (``xp``), so that backward's scatter-add stays there."""
    if isinstance(index, tuple):
        return tuple(_unwrap_index(i, xp) for i in index)
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, list) or (isinstance(index, np.ndarray) and xp is not np):
        return xp.asarray(index)
    return index


def _reduce_args(axis, keepdims, dim, keepdim, ndim):
    """Normalise reduction arguments to (tuple of non-negative axes or None, keepdims)."""
    if dim is not None:
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    if axis is None:
        return None, bool(keepdims)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"reduction: axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % max(ndim, 1) for a in axes)), bool(keepdims)


# --------------------------------------------------------------------------- tensor creation

def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Make a tensor from a list, scalar, NumPy or CuPy array (``torch.tensor``).

    Python floats become float32 (the default dtype); arrays keep their dtype.
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = backend.array_module(device)
    return Tensor(xp.zeros(_shape_arg(shape), dtype=backend.as_dtype(dtype)), requires_grad=requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = backend.array_module(device)
    return Tensor(xp.ones(_shape_arg(shape), dtype=backend.as_dtype(dtype)), requires_grad=requires_grad)


def _scalar_dtype(value):
    """PyTorch's dtype for a Python scalar: bool, int64, or the default float32."""
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(bool)
    return np.dtype(np.int64) if isinstance(value, numbers.Integral) else backend.DEFAULT_DTYPE


def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value as in PyTorch (int64, bool, float32)."""
    xp = backend.array_module(device)
    dtype = _scalar_dtype(fill_value) if dtype is None else np.dtype(dtype)
    return Tensor(xp.full(tuple(shape), fill_value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples from the device's default generator (see ``minicnn.manual_seed``)."""
    dtype = backend.as_dtype(dtype)
    data = backend.generator(device).standard_normal(_shape_arg(shape), dtype=dtype)
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1)."""
    dtype = backend.as_dtype(dtype)
    data = backend.generator(device).random(_shape_arg(shape), dtype=dtype)
    return Tensor(data, requires_grad=requires_grad)


def arange(*args, dtype=None, device=None) -> Tensor:
    """Evenly spaced values (``torch.arange``): int64 for integer arguments, else float32."""
    xp = backend.array_module(device)
    if dtype is None:
        dtype = np.int64 if all(isinstance(a, numbers.Integral) for a in args) else backend.DEFAULT_DTYPE
    return Tensor(xp.arange(*args, dtype=dtype))


# --------------------------------------------------------------------------- binary arithmetic

class _Binary(Function):
    """Elementwise op of two operands with NumPy broadcasting; backward sums over broadcast axes.

    Only the ops whose gradient needs the operands' values keep them (``keeps_operands``): a
    residual ``out + identity`` must not keep ``out`` alive until the backward pass.
    """

    keeps_operands = True

    def forward(self, a, b):
        self.shapes = (np.shape(a), np.shape(b))
        if self.keeps_operands:
            self.a, self.b = a, b
        try:
            return self.compute(a, b)
        except ValueError as exc:
            if "broadcast" not in str(exc):
                raise
            raise ValueError(f"{self.name.lower()}: shapes {self.shapes[0]} and {self.shapes[1]} "
                             f"do not broadcast") from None

    def backward(self, grad):
        ga, gb = self.grads(grad)
        need_a, need_b = self.needs_input_grad
        return (_unbroadcast(ga, self.shapes[0]) if need_a else None,
                _unbroadcast(gb, self.shapes[1]) if need_b else None)


class Add(_Binary):
    """a + b;  da = g, db = g."""

    keeps_operands = False

    def compute(self, a, b):
        return a + b

    def grads(self, g):
        return g, g


class Sub(_Binary):
    """a - b;  da = g, db = -g."""

    keeps_operands = False

    def compute(self, a, b):
        return a - b

    def grads(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(_Binary):
    """a * b;  da = g*b, db = g*a."""

    def compute(self, a, b):
        return a * b

    def grads(self, g):
        return (g * self.b if self.needs_input_grad[0] else None,
                g * self.a if self.needs_input_grad[1] else None)


class Div(_Binary):
    """a / b;  da = g/b, db = -g*a/b^2."""

    def compute(self, a, b):
        return a / b

    def grads(self, g):
        a, b = self.a, self.b
        ga = g / b if self.needs_input_grad[0] else None
        gb = -g * a / (b * b) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(_Binary):
    """a ** b;  da = g*b*a^(b-1), db = g*a^b*log(a)."""

    def compute(self, a, b):
        self.out = a ** b
        return self.out

    def grads(self, g):
        a, b = self.a, self.b
        ga = g * b * a ** (b - 1) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            log_a = math.log(a) if isinstance(a, numbers.Number) else get_array_module(a).log(a)
            gb = g * self.out * log_a
        return ga, gb


class Maximum(_Binary):
    """max(a, b) elementwise; the gradient goes to ``a`` where a >= b (ties to the first operand)."""

    def compute(self, a, b):
        return get_array_module(a, b).maximum(a, b)

    def grads(self, g):
        first = self.a >= self.b
        return g * first, g * ~first


class Minimum(_Binary):
    """min(a, b) elementwise; the gradient goes to ``a`` where a <= b (ties to the first operand)."""

    def compute(self, a, b):
        return get_array_module(a, b).minimum(a, b)

    def grads(self, g):
        first = self.a <= self.b
        return g * first, g * ~first


class MatMul(Function):
    """a @ b with NumPy semantics (1-D operands, batched broadcasting);
    da = g @ b^T, db = a^T @ g (summed over broadcast batch dims)."""

    def forward(self, a, b):
        a, b = _as_array_like(a, b), _as_array_like(b, a)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands must have at least one dimension, "
                             f"got shapes {tuple(a.shape)} and {tuple(b.shape)}")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not aligned "
                             f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})")
        self.a, self.b = a, b
        try:
            return a @ b
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of {tuple(a.shape)} and {tuple(b.shape)} "
                             "do not broadcast") from None

    def backward(self, grad):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a              # (n,) -> (1, n)
        b2 = b[:, None] if b.ndim == 1 else b              # (n,) -> (n, 1)
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        g2 = grad.reshape(batch + (a2.shape[-2], b2.shape[-1]))   # as if neither operand were 1-D
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = _unbroadcast(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = _unbroadcast(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


def _as_array_like(value, like):
    """A Python scalar operand as an array of ``like``'s dtype (only matmul needs this)."""
    if isinstance(value, numbers.Number):
        return get_array_module(like).asarray(value, dtype=like.dtype)
    return value


# --------------------------------------------------------------------------- unary elementwise

class Neg(Function):
    """-x;  dx = -g."""

    def forward(self, x):
        return -x

    def backward(self, grad):
        return -grad


class Exp(Function):
    """exp(x);  dx = g*exp(x)."""

    def forward(self, x):
        self.out = get_array_module(x).exp(x)
        return self.out

    def backward(self, grad):
        return grad * self.out


class Log(Function):
    """log(x);  dx = g/x."""

    def forward(self, x):
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, grad):
        return grad / self.x


class Sqrt(Function):
    """sqrt(x);  dx = g/(2*sqrt(x))."""

    def forward(self, x):
        self.out = get_array_module(x).sqrt(x)
        return self.out

    def backward(self, grad):
        return grad / (2 * self.out)


class Abs(Function):
    """|x|;  dx = g*sign(x) (0 at x = 0)."""

    def forward(self, x):
        self.x = x
        return abs(x)

    def backward(self, grad):
        return grad * get_array_module(self.x).sign(self.x)


class Clamp(Function):
    """clamp(x, lo, hi);  dx = g where lo <= x <= hi, else 0."""

    def forward(self, x, lo=None, hi=None):
        if lo is None and hi is None:
            raise ValueError("clamp: at least one of min and max must be given")
        xp = get_array_module(x)
        self.inside = xp.ones(x.shape, dtype=bool)
        out = x
        if lo is not None:
            self.inside &= x >= lo
            out = xp.maximum(out, lo)
        if hi is not None:
            self.inside &= x <= hi
            out = xp.minimum(out, hi)
        return out.astype(x.dtype, copy=False)

    def backward(self, grad):
        return grad * self.inside


class ReLU(Function):
    """max(x, 0);  dx = g*(x > 0)."""

    def forward(self, x):
        xp = get_array_module(x)
        out = xp.empty_like(x)
        if self.needs_input_grad[0]:
            self.mask = xp.empty(x.shape, dtype=bool)
            backend.elementwise(lambda o, m, x: (xp.maximum(x, 0, out=o), xp.greater(o, 0, out=m)),
                                out, self.mask, x)
        else:
            backend.elementwise(lambda o, x: xp.maximum(x, 0, out=o), out, x)
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        dx = xp.empty(grad.shape, dtype=grad.dtype)
        backend.elementwise(lambda d, g, m: xp.multiply(g, m, out=d), dx, grad, self.mask)
        return dx


class Sigmoid(Function):
    """1/(1+exp(-x)), computed stably;  dx = g*y*(1-y)."""

    def forward(self, x):
        xp = get_array_module(x)
        # exp of a non-positive number never overflows: use exp(-|x|) on both branches
        e = xp.exp(-abs(x))
        self.out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return self.out

    def backward(self, grad):
        y = self.out
        return grad * y * (1 - y)


class Tanh(Function):
    """tanh(x);  dx = g*(1-y^2)."""

    def forward(self, x):
        self.out = get_array_module(x).tanh(x)
        return self.out

    def backward(self, grad):
        return grad * (1 - self.out * self.out)


class Where(Function):
    """where(cond, a, b);  da = g where cond, db = g elsewhere (cond carries no gradient)."""

    def forward(self, cond, a, b):
        xp = get_array_module(cond, a, b)
        self.cond, self.shapes = cond, (np.shape(a), np.shape(b))
        return xp.where(cond, a, b)

    def backward(self, grad):
        xp = get_array_module(grad)
        zero = xp.zeros((), dtype=grad.dtype)
        ga = _unbroadcast(xp.where(self.cond, grad, zero), self.shapes[0]) if self.needs_input_grad[1] else None
        gb = _unbroadcast(xp.where(self.cond, zero, grad), self.shapes[1]) if self.needs_input_grad[2] else None
        return None, ga, gb


class Cast(Function):
    """x.astype(dtype);  dx = g cast back to x's dtype."""

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, grad):
        return grad.astype(self.dtype)


class ToDevice(Function):
    """Copy to another device;  dx = g copied back."""

    def forward(self, x, device):
        self.device = backend.device_of(x)
        return backend.to_device(x, device)

    def backward(self, grad):
        return backend.to_device(grad, self.device)


class Clone(Function):
    """A copy of x;  dx = g."""

    def forward(self, x):
        return x.copy()

    def backward(self, grad):
        return grad


# --------------------------------------------------------------------------- reductions

def _keep(grad, shape, axis, keepdims):
    """Reshape a reduced gradient so it broadcasts against the input of ``shape``."""
    if axis is None:
        return grad.reshape((1,) * len(shape))
    if keepdims:
        return grad
    return grad.reshape(tuple(1 if i in axis else n for i, n in enumerate(shape)))


def _spread(grad, shape):
    """A fresh (writable) array of ``shape`` filled with the broadcast ``grad``."""
    out = get_array_module(grad).empty(shape, dtype=grad.dtype)
    out[...] = grad
    return out


class Sum(Function):
    """sum over ``axis``;  dx = g broadcast back to x's shape."""

    def forward(self, x, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, grad):
        return _spread(_keep(grad, self.shape, self.axis, self.keepdims), self.shape)


class Mean(Function):
    """mean over ``axis``;  dx = g/n broadcast back (n = number of averaged elements)."""

    def forward(self, x, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        self.count = x.size if axis is None else int(np.prod([x.shape[a] for a in axis]))
        return x.mean(axis=axis, keepdims=keepdims)

    def backward(self, grad):
        return _spread(_keep(grad, self.shape, self.axis, self.keepdims) / self.count, self.shape)


def _arg_extremum(x, axis, keepdims, which):
    """argmax/argmin over several axes: the flat index within the reduced axes (first on ties)."""
    if axis is None:
        idx = getattr(x.reshape(-1), which)()
        return idx.reshape((1,) * x.ndim) if keepdims else idx
    if len(axis) == 1:
        return getattr(x, which)(axis=axis[0], keepdims=keepdims)
    kept = [a for a in range(x.ndim) if a not in axis]
    moved = x.transpose(kept + list(axis)).reshape([x.shape[a] for a in kept] + [-1])
    idx = getattr(moved, which)(axis=-1)
    return idx.reshape(_keep(idx, x.shape, axis, False).shape) if keepdims else idx


class _Extremum(Function):
    """max/min over ``axis``; the gradient goes to the FIRST arg-extremum of each reduced group.

    (PyTorch's ``max(dim)`` routes to its returned index too; its full ``max()`` splits the
    gradient evenly among ties, which we do not.)
    """

    which = "argmax"

    def forward(self, x, axis=None, keepdims=False):
        if x.size == 0:
            raise ValueError(f"{self.which[3:]}: reduction of an empty tensor of shape {tuple(x.shape)}")
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        self.index = _arg_extremum(x, axis, False, self.which)
        reduce = x.max if self.which == "argmax" else x.min
        return reduce(axis=axis, keepdims=keepdims)

    def backward(self, grad):
        xp = get_array_module(grad)
        shape, axis = self.shape, self.axis
        if axis is None:   # (index stays an array: int() would wait for a GPU)
            out = xp.zeros(int(np.prod(shape)), dtype=grad.dtype)
            out[self.index.reshape(1)] = grad.reshape(1)
            return out.reshape(shape)
        kept = [a for a in range(len(shape)) if a not in axis]
        flat = xp.zeros([shape[a] for a in kept] + [int(np.prod([shape[a] for a in axis]))], dtype=grad.dtype)
        g = grad.reshape([shape[a] for a in kept])
        xp.put_along_axis(flat, self.index[..., None], g[..., None], axis=-1)
        moved = flat.reshape([shape[a] for a in kept] + [shape[a] for a in axis])
        inverse = np.argsort(kept + list(axis))
        return xp.ascontiguousarray(moved.transpose(inverse))


class Max(_Extremum):
    which = "argmax"


class Min(_Extremum):
    which = "argmin"


# --------------------------------------------------------------------------- shape ops

class Reshape(Function):
    """x.reshape(shape) (a view when possible);  dx = g.reshape(x.shape)."""

    def forward(self, x, shape):
        self.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} "
                             f"({x.size} elements) into shape {tuple(shape)}") from None

    def backward(self, grad):
        return grad.reshape(self.shape)


class Permute(Function):
    """x.transpose(axes);  dx = g.transpose(inverse axes)."""

    def forward(self, x, axes):
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of the {x.ndim} dimensions of shape {tuple(x.shape)}")
        self.axes = axes
        return x.transpose(axes)

    def backward(self, grad):
        return grad.transpose(np.argsort(self.axes))


class BroadcastTo(Function):
    """broadcast x to ``shape`` (a read-only view);  dx = g summed over the broadcast axes."""

    def forward(self, x, shape):
        self.shape = x.shape
        return get_array_module(x).broadcast_to(x, shape)

    def backward(self, grad):
        return _unbroadcast(grad, self.shape)


def _is_basic_index(index):
    """True for indices made only of ints, slices, None and Ellipsis (NumPy 'basic' indexing)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


class GetItem(Function):
    """x[index] (basic slicing or integer-array / boolean indexing);
    dx = zeros with g added at the indexed positions (repeated indices add up)."""

    def forward(self, x, index):
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        try:
            return x[index]
        except IndexError as exc:
            raise IndexError(f"getitem: {exc} (tensor of shape {tuple(x.shape)})") from None

    def backward(self, grad):
        xp = get_array_module(grad)
        out = xp.zeros(self.shape, dtype=grad.dtype)
        if _is_basic_index(self.index):
            out[self.index] = grad           # basic indices never repeat an element
        else:
            xp.add.at(out, self.index, grad)  # scatter-add: repeated indices accumulate
        return out


class Cat(Function):
    """concatenate along ``dim``;  each input gets its slice of g."""

    def forward(self, *arrays, dim=0):
        xp = get_array_module(*arrays)
        self.dim = dim
        self.sizes = [a.shape[dim] for a in arrays]
        try:
            return xp.concatenate(arrays, axis=dim)
        except ValueError:
            shapes = ", ".join(str(tuple(a.shape)) for a in arrays)
            raise ValueError(f"cat: shapes must match except in dimension {dim}, got {shapes}") from None

    def backward(self, grad):
        bounds = np.cumsum([0] + self.sizes)
        index = [slice(None)] * grad.ndim
        grads = []
        for i, need in enumerate(self.needs_input_grad):
            index[self.dim] = slice(bounds[i], bounds[i + 1])
            grads.append(grad[tuple(index)] if need else None)
        return tuple(grads)


class Stack(Function):
    """stack along a new ``dim``;  each input gets its slice of g."""

    def forward(self, *arrays, dim=0):
        xp = get_array_module(*arrays)
        self.dim = dim
        try:
            return xp.stack(arrays, axis=dim)
        except ValueError:
            shapes = ", ".join(str(tuple(a.shape)) for a in arrays)
            raise ValueError(f"stack: all tensors must have the same shape, got {shapes}") from None

    def backward(self, grad):
        return tuple(grad.take(i, axis=self.dim) if need else None
                     for i, need in enumerate(self.needs_input_grad))


# --------------------------------------------------------------------------- free functions

def cat(tensors, dim=0) -> Tensor:
    """Concatenate tensors along an existing dimension (``torch.cat``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    dim = _check_dim("cat", dim, tensors[0].ndim)
    return Cat.apply(*tensors, dim=dim)


def stack(tensors, dim=0) -> Tensor:
    """Stack same-shape tensors along a new dimension (``torch.stack``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    dim = _check_dim("stack", dim, tensors[0].ndim + 1)
    return Stack.apply(*tensors, dim=dim)


def _operands(a, b):
    """Tensors stay; NumPy scalars and 0-d arrays become (weakly typed) Python scalars, so float32 stays float32."""
    return (a if isinstance(a, Tensor) else _scalar_operand(a)), (b if isinstance(b, Tensor) else _scalar_operand(b))


def where(condition, a, b) -> Tensor:
    """Elementwise ``a if condition else b`` (``torch.where``); differentiable in ``a`` and ``b``."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    return Where.apply(cond, *_operands(a, b))


def maximum(a, b) -> Tensor:
    """Elementwise maximum of two tensors.

    On ties the whole gradient goes to ``a`` (``torch.maximum`` splits it, half to each).
    """
    return Maximum.apply(*_operands(a, b))


def minimum(a, b) -> Tensor:
    """Elementwise minimum of two tensors; on ties the whole gradient goes to ``a`` (PyTorch splits it)."""
    return Minimum.apply(*_operands(a, b))
