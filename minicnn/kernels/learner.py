"""A learner's kernels in the engine: ``kernels.use("./minicnn-exercises")``.

``python -m minicnn.exercises start NAME`` writes one file per exercise into a folder; this module
loads those files (or one module holding the same functions) and builds a kernel set with the
contract of ``fast`` and ``textbook`` (see the package docstring): each layer runs the learner's
functions where the learner has written them, and the textbook kernels elsewhere. A function still
raising the stub's ``NotImplementedError("... not implemented yet")`` counts as not written; what
*is* written is used as it is, passing or not (``python -m minicnn.exercises check`` says whether it
is right; a wrong backward shows as a model that does not learn). Where a call needs more than an
exercise covers (grouped or asymmetrically padded convolution, padded or dilated pooling, a
batch-norm without running statistics), that call runs on the textbook kernel.

The layering: this file knows only the *files and functions* an exercise folder may hold
(``ENGINE_FILES``), which is the interface between the two; it never imports ``minicnn.exercises``
(the command and the checks sit at the command-line level, above everything), and that package
reads ``ENGINE_FILES`` and ``load_file`` from here. The learner's files are plain Python loaded by
path (``importlib``), with their folder on ``sys.path`` while they load so that ``conv2d_forward.py``
can ``from im2col import im2col``.
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import itertools
import os
import sys
import textwrap
import types
from typing import NamedTuple

from ..backend import get_array_module
from . import textbook

#: The exercise files the engine can use, with the functions each must define, and the engine's kernels
#: they stand in for (the loss and the SGD step are read by ``functional`` and ``optim``, above this level).
#: The other exercises (numerical_derivative, mul_broadcast, topological_backward) are checked, not plugged in.
ENGINE_FILES = {
    "conv2d_forward": (("conv2d_forward",), "conv2d forward (with your im2col if it calls it)"),
    "conv2d_backward": (("conv2d_backward",), "conv2d backward"),
    "tanh_function": (("Tanh",), "LeNet-5's scaled tanh, a * Tanh(b * x)"),
    "relu": (("relu_forward", "relu_backward"), "ReLU forward and backward"),
    "max_pool": (("max_pool_forward", "max_pool_backward"), "max pooling forward and backward"),
    "avg_pool_backward": (("avg_pool_backward",), "average pooling backward, and subsampling's dx"),
    "batch_norm": (("batch_norm_forward", "batch_norm_backward"), "batch-norm forward and backward"),
    "dropout": (("dropout_forward", "dropout_backward"), "dropout forward and backward"),
    "linear": (("linear_forward", "linear_backward"), "linear forward and backward"),
    "softmax_cross_entropy": (("softmax_cross_entropy",), "the cross-entropy loss (mean, without label smoothing)"),
    "sgd_momentum": (("sgd_step",), "the SGD step (optimizer sgd, without dampening, Nesterov or maximize)"),
}
STUB_MARK = "not implemented yet"
_counter = itertools.count()


def is_written(fn) -> bool:
    """False for a function (or a class's methods) still raising the stub's NotImplementedError."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            text = ast.unparse(node.exc)
            if "NotImplementedError" in text and STUB_MARK in text:
                return False
    return True


def load_file(path, name=None):
    """The module of the Python file ``path``, its folder on ``sys.path`` while it loads; a sibling
    it imports (``from im2col import im2col``) is dropped from ``sys.modules`` afterwards, so that
    another folder's file of the same name loads afresh."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    name = name or f"minicnn_learner_{next(_counter)}_{os.path.splitext(os.path.basename(path))[0]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
        for key in set(sys.modules) - before:
            file = getattr(sys.modules[key], "__file__", None) or ""
            if os.path.dirname(os.path.abspath(file)) == folder:
                del sys.modules[key]
    return module


class LearnerCache(NamedTuple):
    """What a learner-set forward keeps: which kernel, the learner's own cache (or the inputs), and the
    set that made it (the backward runs there)."""
    kernel: str
    data: object
    kset: object


def _same_dtype(a, like):
    return a if a is None or a.dtype == like.dtype else a.astype(like.dtype)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class LearnerKernels(types.SimpleNamespace):
    """A kernel set: the textbook kernels, with the learner's where they wrote them (``mine`` maps an
    exercise file to its module). ``describe()`` says which kernels are whose."""

    def __init__(self, mine: dict, source: str):
        super().__init__()
        self.mine, self.source = mine, source
        for name in dir(textbook):
            if not name.startswith("_"):
                setattr(self, name, getattr(textbook, name))
        own = {"conv2d_forward", "conv2d_backward", "relu_forward", "relu_backward", "max_pool2d_forward",
               "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward", "subsample_backward",
               "batch_norm_forward", "batch_norm_backward", "dropout_forward", "dropout_backward",
               "linear_forward", "linear_backward", "scaled_tanh_forward", "scaled_tanh_backward"}
        for name in own:
            setattr(self, name, getattr(self, "_" + name))
        for exercise, name in (("softmax_cross_entropy", "softmax_cross_entropy"), ("sgd_momentum", "sgd_step")):
            if exercise in mine:             # read by functional.cross_entropy and optim.SGD (absent: their own code)
                setattr(self, name, getattr(mine[exercise], name))

    def __repr__(self):
        return f"LearnerKernels({self.source!r}, yours: {sorted(self.mine)})"

    def describe(self) -> str:
        """Lines saying which kernels are the learner's and which the textbook's."""
        yours = [f"  yours:    {ENGINE_FILES[k][1]} ({k}.py)" for k in ENGINE_FILES if k in self.mine]
        theirs = [k for k in ENGINE_FILES if k not in self.mine]
        return "\n".join([f"kernels from {self.source}: {len(yours)} of {len(ENGINE_FILES)} exercise kernels are yours"]
                         + yours + ([f"  textbook: {', '.join(theirs)}"] if theirs else []))

    def _fn(self, exercise, name):
        module = self.mine.get(exercise)
        return None if module is None else getattr(module, name)

    # ---- convolution: groups == 1 and symmetric padding; else the textbook's
    def _conv2d_forward(self, x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1),
                        groups=1):
        (t, b), (l, r) = padding
        simple = groups == 1 and t == b and l == r
        if not simple or ("conv2d_forward" not in self.mine and "conv2d_backward" not in self.mine):
            return textbook.conv2d_forward(x, weight, bias, stride, padding, dilation, groups)
        args = (_pair(stride), (t, l), _pair(dilation))
        forward = self._fn("conv2d_forward", "conv2d_forward")
        if forward is None:
            out, cache = textbook.conv2d_forward(x, weight, bias, stride, padding, dilation, groups)
        else:
            out, cache = _same_dtype(forward(x, weight, bias, *args), x), None
        return out, LearnerCache("conv2d", (x, weight, bias, args, padding, cache), self)

    def _conv2d_backward(self, grad, cache, need_x=True, need_w=True, need_b=True):
        x, weight, bias, args, padding, tcache = cache.data
        backward = self._fn("conv2d_backward", "conv2d_backward")
        if backward is None:
            if tcache is None:
                tcache = textbook.conv2d_forward(x, weight, bias, args[0], padding, args[2])[1]
            return textbook.conv2d_backward(grad, tcache, need_x, need_w, need_b)
        dx, dw, db = backward(grad, x, weight, *args)
        return (_same_dtype(dx, x) if need_x else None, _same_dtype(dw, weight) if need_w else None,
                _same_dtype(db, grad) if need_b and bias is not None else None)

    # ---- element-wise, fully connected
    def _relu_forward(self, x, need_mask=True):
        if "relu" not in self.mine:
            return textbook.relu_forward(x, need_mask)
        out, c = self.mine["relu"].relu_forward(x)
        return _same_dtype(out, x), LearnerCache("relu", c, self)

    def _relu_backward(self, grad, cache):
        if not isinstance(cache, LearnerCache):
            return textbook.relu_backward(grad, cache)
        return _same_dtype(self.mine["relu"].relu_backward(grad, cache.data), grad)

    def _scaled_tanh_forward(self, x, a, b):
        if "tanh_function" not in self.mine:
            return textbook.scaled_tanh_forward(x, a, b)
        fn = self.mine["tanh_function"].Tanh()
        fn.needs_input_grad = (True,)
        return _same_dtype(a * fn.forward(x * b), x), LearnerCache("scaled_tanh", (fn, a * b), self)

    def _scaled_tanh_backward(self, grad, cache):
        if not isinstance(cache, LearnerCache):
            return textbook.scaled_tanh_backward(grad, cache)
        fn, ab = cache.data
        return _same_dtype(ab * fn.backward(grad), grad)

    def _linear_forward(self, x, weight, bias=None):
        if "linear" not in self.mine:
            return textbook.linear_forward(x, weight, bias)
        from_rows = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        out = self.mine["linear"].linear_forward(from_rows, weight, bias)
        return _same_dtype(out.reshape(*x.shape[:-1], weight.shape[0]), x), \
            LearnerCache("linear", (x, weight, bias is not None), self)

    def _linear_backward(self, grad, cache, need_x=True, need_w=True, need_b=True):
        if not isinstance(cache, LearnerCache):
            return textbook.linear_backward(grad, cache, need_x, need_w, need_b)
        x, weight, has_bias = cache.data
        rows = grad.reshape(-1, grad.shape[-1]) if grad.ndim != 2 else grad
        dx, dw, db = self.mine["linear"].linear_backward(rows, x.reshape(-1, x.shape[-1]), weight)
        return (_same_dtype(dx.reshape(x.shape), x) if need_x else None, _same_dtype(dw, weight) if need_w else None,
                _same_dtype(db, grad) if need_b and has_bias else None)

    def _dropout_forward(self, x, p, training, rng):
        if "dropout" not in self.mine:
            return textbook.dropout_forward(x, p, training, rng)
        out, mask = self.mine["dropout"].dropout_forward(x, p, training, rng)
        return _same_dtype(out, x), LearnerCache("dropout", mask, self)

    def _dropout_backward(self, grad, mask):
        if not isinstance(mask, LearnerCache):
            return textbook.dropout_backward(grad, mask)
        return _same_dtype(self.mine["dropout"].dropout_backward(grad, mask.data), grad)

    # ---- pooling: no padding, dilation or ceil_mode; else the textbook's
    def _max_pool2d_forward(self, x, kernel_size, stride=None, padding=0, ceil_mode=False, dilation=1):
        if "max_pool" not in self.mine or _pair(padding) != (0, 0) or _pair(dilation) != (1, 1) or ceil_mode:
            return textbook.max_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, dilation)
        k = _pair(kernel_size)
        out, c = self.mine["max_pool"].max_pool_forward(x, k, k if stride is None else _pair(stride))
        return _same_dtype(out, x), LearnerCache("max_pool", c, self)

    def _max_pool2d_backward(self, grad, cache):
        if not isinstance(cache, LearnerCache):
            return textbook.max_pool2d_backward(grad, cache)
        return _same_dtype(self.mine["max_pool"].max_pool_backward(grad, cache.data), grad)

    def _avg_pool2d_forward(self, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                            divisor_override=None):
        out, cache = textbook.avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                                 divisor_override)
        if "avg_pool_backward" not in self.mine or _pair(padding) != (0, 0) or ceil_mode \
                or divisor_override is not None:
            return out, cache
        k = _pair(kernel_size)
        return out, LearnerCache("avg_pool", (x.shape, k, k if stride is None else _pair(stride)), self)

    def _avg_pool2d_backward(self, grad, cache):
        if not isinstance(cache, LearnerCache):
            return textbook.avg_pool2d_backward(grad, cache)
        return _same_dtype(self.mine["avg_pool_backward"].avg_pool_backward(grad, *cache.data), grad)

    def _subsample_backward(self, grad, cache):
        """LeNet-5's subsampling: out = coeff * (window sum) + bias, so dx = avg_pool_backward(grad * coeff * kH*kW)."""
        dx, dcoeff, dbias = textbook.subsample_backward(grad, cache)
        if "avg_pool_backward" in self.mine:
            (_, coeff, _), g = cache
            if g.pad_widths == ((0, 0), (0, 0)):
                scale = coeff.reshape(-1, 1, 1) * (g.kernel[0] * g.kernel[1])
                dx = _same_dtype(self.mine["avg_pool_backward"].avg_pool_backward(
                    grad * scale, (g.N, g.C, g.H, g.W), tuple(g.kernel), tuple(g.stride)), grad)
        return dx, dcoeff, dbias

    # ---- batch normalisation, with running statistics
    def _batch_norm_forward(self, x, running_mean, running_var, weight=None, bias=None, training=True,
                            momentum=0.1, eps=1e-5):
        if "batch_norm" not in self.mine or running_mean is None or momentum is None:
            return textbook.batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps)
        gamma = weight if weight is not None else get_array_module(x).ones(x.shape[1], dtype=x.dtype)
        beta = bias if bias is not None else 0 * gamma
        out, c = self.mine["batch_norm"].batch_norm_forward(x, gamma, beta, running_mean, running_var, training,
                                                            momentum, eps)
        return _same_dtype(out, x), LearnerCache("batch_norm", (c, weight is not None, bias is not None), self)

    def _batch_norm_backward(self, grad, cache, need_x=True, need_w=True, need_b=True):
        if not isinstance(cache, LearnerCache):
            return textbook.batch_norm_backward(grad, cache, need_x, need_w, need_b)
        c, has_w, has_b = cache.data
        dx, dgamma, dbeta = self.mine["batch_norm"].batch_norm_backward(grad, c)
        return (_same_dtype(dx, grad) if need_x else None, _same_dtype(dgamma, grad) if need_w and has_w else None,
                _same_dtype(dbeta, grad) if need_b and has_b else None)


def _siblings_written(module, folder) -> bool:
    """False when the file uses a function of another file of the folder that is still a stub (conv2d_forward
    calling an unwritten im2col): the textbook kernel runs instead, not a NotImplementedError mid-training."""
    folder = os.path.abspath(folder)
    for value in vars(module).values():
        code = getattr(value, "__code__", None)
        if code is not None and os.path.dirname(os.path.abspath(code.co_filename)) == folder and not is_written(value):
            return False
    return True


def load(source) -> LearnerKernels:
    """The kernel set of an exercise folder (a path) or of a module holding the exercises' functions.
    Raises ``ValueError`` naming the file for a folder that is missing or a file that does not load."""
    mine = {}
    if isinstance(source, types.ModuleType):
        for exercise, (functions, _) in ENGINE_FILES.items():
            found = [getattr(source, f, None) for f in functions]
            if all(f is not None and is_written(f) for f in found):
                mine[exercise] = source
        return LearnerKernels(mine, getattr(source, "__name__", "a module"))
    folder = os.fspath(source)
    if not os.path.isdir(folder):
        raise ValueError(f"kernels.use: expected 'fast' or 'textbook', got {source!r} (nor is it a folder of "
                         f"exercise files or a module)")
    for exercise, (functions, _) in ENGINE_FILES.items():
        path = os.path.join(folder, exercise + ".py")
        if not os.path.exists(path):
            continue
        try:
            module = load_file(path)
        except Exception as exc:   # the learner's file: any error it raises while loading
            raise ValueError(f"kernels.use: {path} does not load: {type(exc).__name__}: {exc}") from exc
        missing = [f for f in functions if not hasattr(module, f)]
        if missing:
            raise ValueError(f"kernels.use: {path} does not define {', '.join(missing)} (the exercise's "
                             f"function{'s' if len(missing) > 1 else ''}; start it again in another folder to see the stub)")
        if all(is_written(getattr(module, f)) for f in functions) and _siblings_written(module, folder):
            mine[exercise] = module
    return LearnerKernels(mine, folder)
