"""Hand-written kernels: plain-array functions with the forward and the backward pass side by side.

Two sets, one interface
-----------------------
``textbook`` (``textbook.py``) writes every kernel the way a course teaches it; ``fast`` (``fast/``)
computes the same numbers for speed. ``fast`` is the default; ``MINICNN_KERNELS=textbook`` in the
environment, ``minicnn.kernels.use("textbook")``, or ``with minicnn.kernels.use("textbook"): ...``
switch every layer of every model to the textbook set. The functions below run the *active* set's
forward; a backward runs the set that made its ``cache`` (so switching between a forward and its
backward is harmless).
``kernels.use("./minicnn-exercises")`` (a folder of ``python -m minicnn.exercises`` files, or a module)
makes a third kind of set, the learner's (``learner.py``): their kernels where written, textbook elsewhere.

Every kernel takes NumPy or CuPy arrays (the library is found with ``get_array_module``, so the
same code runs on both devices), returns arrays of the dtype it was given (float32 in, float32
out), never touches autograd, and raises a ``ValueError``/``TypeError`` naming the op on bad input.

The contract
------------
``*_forward(...) -> (out, cache)`` and ``*_backward(grad_out, cache, ...) -> gradients``:

* ``cache`` is an opaque small ``NamedTuple`` (its fields are documented on each class) holding
  what the backward pass needs.  Keep it from the forward call and pass it, unchanged, to the
  backward call; it may be used for several backward calls.  Caches hold *references* to the
  inputs (never copies): do not modify an input in place between forward and backward.
* A backward returns one gradient per differentiable input, in the forward's argument order,
  and ``None`` for the ones that were not asked for (``need_x=False`` ...) or whose input was
  ``None`` (no bias).
* ``grad_out`` must have the output's shape and dtype.

The kernels
-----------
conv (``conv.py``)
    ``normalize_conv_padding(padding, kernel_size, stride=1, dilation=1) -> ((top, bottom), (left, right))``
    ``conv2d_forward(x, weight, bias, stride, padding, dilation, groups) -> (out, ConvCache)``
        x (N, C, H, W), weight (O, C/groups, kH, kW), bias (O,) or None; stride, dilation (sh, sw)
        pairs or ints; padding ((top, bottom), (left, right)) as normalised above.
    ``conv2d_backward(grad, cache, need_x=True, need_w=True, need_b=True) -> (dx, dweight, dbias)``
    ``im2col(x, kernel_size, stride, padding, dilation) -> cols (C, kH, kW, N, Ho, Wo)`` and its
    adjoint ``col2im(cols, x_shape, kernel_size, stride, padding, dilation) -> dx`` (exposed to learn from).
pooling (``pool.py``)
    ``max_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, dilation=1) -> (out, MaxPoolCache)``
    ``max_pool2d_backward(grad, cache) -> dx``                       (gradient to the FIRST arg-max)
    ``max_pool2d_indices(cache) -> indices``   (int64 (N, C, Ho, Wo): flat h*W + w of each winner, as PyTorch's)
    ``avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None) -> (out, AvgPoolCache)``;  ``avg_pool2d_backward(grad, cache) -> dx``
    ``adaptive_avg_pool2d_forward(x, output_size) -> (out, AdaptiveAvgPoolCache)``;  ``..._backward(grad, cache) -> dx``
    ``subsample_forward(x, coeff, bias=None, kernel=2, stride=2) -> (out, SubsampleCache)``
    ``subsample_backward(grad, cache) -> (dx, dcoeff, dbias)``      (LeNet-5's trainable subsampling)
normalisation (``norm.py``)
    ``batch_norm_forward(x, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1,
    eps=1e-5) -> (out, BatchNormCache)``  (x (N, C) or (N, C, *); running stats updated in place)
    ``batch_norm_backward(grad, cache, need_x=True, need_w=True, need_b=True) -> (dx, dweight, dbias)``
    ``local_response_norm_forward(x, size, alpha=1e-4, beta=0.75, k=1.0) -> (out, LRNCache)``
    ``local_response_norm_backward(grad, cache) -> dx``
misc (``misc.py``)
    ``dropout_forward(x, p, training, rng) -> (out, mask or None)``;  ``dropout_backward(grad, mask) -> dx``
    ``linear_forward(x, weight, bias=None) -> (out, LinearCache)``  (x (*, in), weight (out, in))
    ``linear_backward(grad, cache, need_x=True, need_w=True, need_b=True) -> (dx, dweight, dbias)``

``reference.py`` has slow loop versions of each kernel (for reading, and for the tests);
``cuda.py`` has the CuPy ``RawKernel``s of the fast set (im2col, col2im, max pooling, batch-norm,
the SGD step), used automatically for CuPy arrays. ``relu_*`` and ``scaled_tanh_*`` follow the same
contract; ``dropout_*`` and ``local_response_norm_*`` are shared by both sets.
"""

from __future__ import annotations

import contextlib
import os
import types

from .. import cli
from . import fast, learner, textbook
from .fast.threads import environment_error as _threads_environment_error
from .geometry import conv_output_size, normalize_conv_padding, pool_output_size

MODES = {"fast": fast, "textbook": textbook}


def environment_error():
    """What is wrong with the kernels' settings in the environment (``MINICNN_KERNELS``,
    ``MINICNN_NUM_THREADS``), or None. The command lines report it as a usage error; a library
    user meets it as a ``ValueError`` at the first kernel call, not at ``import minicnn``."""
    text = os.environ.get("MINICNN_KERNELS", "").strip().lower()
    if text and text not in MODES:
        return f"MINICNN_KERNELS must be 'fast' or 'textbook', got {os.environ['MINICNN_KERNELS']!r}"
    return _threads_environment_error()


_mode = os.environ.get("MINICNN_KERNELS", "").strip().lower() or "fast"   # checked by mode()
cli.ENVIRONMENT_CHECKS.append(environment_error)


def mode() -> str:
    """The active kernel set: ``"fast"``, ``"textbook"``, or ``"learner"`` (an exercise folder's)."""
    if isinstance(_mode, learner.LearnerKernels):
        return "learner"
    if _mode not in MODES:
        raise ValueError(environment_error())
    return _mode


class use:
    """Switch the kernel set: ``kernels.use("textbook")`` for the rest of the program, or
    ``with kernels.use("textbook"): ...`` for a block (the previous set comes back after it).

    ``kernels.use("./minicnn-exercises")`` (a folder of exercise files, or a module holding their
    functions) runs every layer on the learner's kernels where they are written and the textbook
    kernels elsewhere (see ``kernels.learner``); ``use(...).kernels.describe()`` says which are whose."""

    def __init__(self, name):
        global _mode
        if isinstance(name, str) and name in MODES:
            self.kernels = MODES[name]
        elif isinstance(name, (str, os.PathLike, types.ModuleType)):
            self.kernels = learner.load(name)
        else:
            raise ValueError(f"kernels.use: expected 'fast', 'textbook', a folder of exercise files or a module, "
                             f"got {name!r}")
        self.previous, _mode = _mode, (name if isinstance(name, str) and name in MODES else self.kernels)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _mode
        _mode = self.previous
        return False


def for_command_line(folder, report=print):
    """``train --kernels DIR``: the context that runs on DIR's kernels, after ``report``-ing which are
    the learner's (a file that does not load is a one-line ``cli.CommandError``); no-op for None."""
    if folder is None:
        return contextlib.nullcontext()
    try:
        switch = use(folder)
    except ValueError as exc:
        raise cli.CommandError(str(exc).removeprefix("kernels.use: ")) from exc
    report(switch.kernels.describe())
    return switch


def active():
    """The active kernel set (``kernels.fast``, ``kernels.textbook`` or a learner's ``LearnerKernels``)."""
    return _mode if isinstance(_mode, learner.LearnerKernels) else MODES[mode()]


def _owner(cache):
    """The kernel set whose forward made ``cache`` (a NamedTuple of one set's module, or a learner
    set's ``LearnerCache``); the active set for caches the sets share (dropout's and ReLU's masks, LRN's cache)."""
    if isinstance(cache, learner.LearnerCache):
        return cache.kset
    return textbook if getattr(type(cache), "__module__", None) == textbook.__name__ else active()


def _dispatch(name: str, backward: bool):
    if name.endswith("_indices"):                   # reads a cache: the set that made it
        def kernel(cache):
            return getattr(_owner(cache), name)(cache)
    elif backward:
        def kernel(grad, cache, *args, **kwargs):
            return getattr(_owner(cache), name)(grad, cache, *args, **kwargs)
    else:
        def kernel(*args, **kwargs):
            return getattr(active(), name)(*args, **kwargs)
    kernel.__name__ = kernel.__qualname__ = name
    kernel.__doc__ = f"``{name}`` of the {'set that made the cache' if backward else 'active kernel set'} (see the module docstring)."
    return kernel


for _name in fast.__all__:
    globals()[_name] = _dispatch(_name, _name.endswith("_backward"))

__all__ = ["mode", "use", "active", "for_command_line", "learner", "fast", "textbook", "normalize_conv_padding", "conv_output_size",
           "pool_output_size", *fast.__all__]
