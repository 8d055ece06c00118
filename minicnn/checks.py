"""Argument checks shared by every layer of minicnn, each written once, each with one exception type.

* ``TypeError``: an argument of the wrong kind (a float where an int is needed, a list for an array);
* ``ValueError``: the right kind with a wrong value (a negative stride, mismatched shapes);
* ``IndexError``: a dimension out of range (as PyTorch's "Dimension out of range").

Every message names the op, what was expected and what came. This module imports nothing from
minicnn, so that the kernels, the autograd ops and the layers can all use it.
"""
from __future__ import annotations

import numbers
import weakref


def check_dim(op: str, dim, ndim: int) -> int:
    """``dim`` as a non-negative index into ``ndim`` dimensions (negative counts from the end)."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    size = max(ndim, 1)                       # a 0-d tensor takes dim 0 and -1, as in PyTorch
    if not -size <= dim < size:
        raise IndexError(f"{op}: dimension {dim} is out of range for {ndim} dimensions "
                         f"(expected one in [{-size}, {size - 1}])")
    return int(dim) % size


def check_grad(op: str, grad, expected) -> None:
    """A backward kernel's ``grad`` must have its forward output's shape."""
    if tuple(grad.shape) != tuple(expected):
        raise ValueError(f"{op}: grad must have the output's shape {tuple(expected)}, got {tuple(grad.shape)}")


def check_float_array(op: str, name: str, a, ndim=None, layout: str = ""):
    """Raise a clear error unless ``a`` is a floating-point array (of ``ndim`` dimensions, when given).

    ``ndim`` is an int or a tuple of allowed ints; ``layout`` names the axes for the message,
    e.g. ``"(N, C, H, W)"``.
    """
    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        raise TypeError(f"{op}: {name} must be an array, got {type(a).__name__}")
    if a.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating-point array, got dtype {a.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            dims = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{op}: {name} must be {dims} {layout}".rstrip() + f", got shape {tuple(a.shape)}")


def check_same_dtype(op: str, x, **others):
    """Raise TypeError unless every array in ``others`` (None allowed) has the dtype of ``x``."""
    for name, a in others.items():
        if a is not None and a.dtype != x.dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype} but the input has dtype {x.dtype}; "
                            "cast them to the same floating dtype")


def pair(op: str, name: str, value, minimum: int = 0):
    """``3 -> (3, 3)``; ``(2, 3) -> (2, 3)``; ``(3,) -> (3, 3)`` (as PyTorch's); checks the values are ints >= ``minimum``."""
    if isinstance(value, numbers.Integral):
        value = (int(value), int(value))
    try:
        value = tuple(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None
    if len(value) == 1:
        value = value * 2
    if len(value) != 2 or not all(isinstance(v, numbers.Integral) for v in value):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in value):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(value[0]), int(value[1])


def channel_vector(op: str, name: str, a, channels: int, x):
    """Check that an optional per-channel parameter is a 1-D array of length ``channels`` and x's dtype."""
    if a is None:
        return
    check_float_array(op, name, a, 1, f"(C,) with C = {channels}")
    if a.shape[0] != channels:
        raise ValueError(f"{op}: {name} must have shape ({channels},) to match the {channels} channels "
                         f"of the input, got shape {tuple(a.shape)}")
    check_same_dtype(op, x, **{name: a})


def check_same_device(op, tensors):
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        shapes = ", ".join(f"{tuple(t.shape)} on {t.device}" for t in tensors)
        raise ValueError(f"{op}: all tensors must be on the same device, got {shapes}")


class InvalidGradientError(RuntimeError):
    """A ``Function.backward`` returned a gradient that does not fit its input (shape, dtype or device)."""


def check_returned_grad(fn: str, index: int, grad, shape, dtype, device: str, grad_device: str):
    """The gradient ``fn.backward`` returned for its argument ``index`` must have that argument's shape,
    a floating dtype (cast to the argument's, as PyTorch does) and its device. Returns the gradient."""
    where = f"{fn}.backward returned a gradient for its argument {index} (counting from 0)"
    if not hasattr(grad, "shape") or not hasattr(grad, "dtype"):
        raise InvalidGradientError(f"{where} that is a {type(grad).__name__}, not an array")
    got, shape = tuple(grad.shape), tuple(shape)
    if got != shape:
        hint = ""
        if len(got) >= len(shape) and all(n in (1, m) for n, m in zip(shape[::-1], got[::-1])):
            hint = ": did you forget to sum the broadcast gradient back to the input's shape?"
        raise InvalidGradientError(f"{where} of shape {got}, but the argument has shape {shape}{hint}")
    if grad.dtype.kind not in "fc":
        raise InvalidGradientError(f"{where} of dtype {grad.dtype}; a gradient must be floating-point "
                                   f"(the argument's dtype is {dtype})")
    if grad_device != device:
        raise InvalidGradientError(f"{where} on {grad_device!r}, but the argument is on {device!r}")
    return grad if grad.dtype == dtype else grad.astype(dtype)


# --------------------------------------------------------------------------- saved tensors' versions

def note_saved_versions(fn, args, result, tensor_type):
    """Remember the version of each tensor argument of ``fn`` and of its output (by weak reference: a tensor
    that is gone can't change), so that backward can tell whether an array ``fn`` kept for its backward was
    changed in place since: an error then, instead of a silently wrong gradient."""
    fn._saved = [(weakref.ref(a), a._version, i) for i, a in enumerate(args) if isinstance(a, tensor_type)]
    fn._saved.append((weakref.ref(result), 0, -1))


def _kept(fn, array) -> bool:
    """Whether ``fn`` kept ``array`` for its backward (as an attribute, or inside a tuple attribute: the
    kernels' caches are NamedTuples)."""
    return any(v is array or (isinstance(v, tuple) and any(w is array for w in v)) for v in fn.__dict__.values())


def check_saved_versions(fn):
    for ref, version, index in fn._saved:
        t = ref()
        if t is not None and t._version != version and _kept(fn, t._data):
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: the {t.dtype} tensor of shape {tuple(t.shape)} that {fn.name} saved (its "
                f"{'output' if index < 0 else f'argument {index}'}) is at version {t._version}; expected version "
                f"{version} instead. Change it out of place (x = x + y, not x += y), or clone() it first.")
