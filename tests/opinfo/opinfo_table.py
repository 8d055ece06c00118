"""Which of PyTorch's OpInfo entries minicnn has, and how to call minicnn for one of its samples.

``OPS`` maps an OpInfo key (``name`` or ``name.variant``) to ``call(mc, x, *args, **kwargs)``, where ``mc`` is
the ``minicnn`` module and the arguments are the sample's, already converted to minicnn (tensors become
minicnn Tensors, torch dtypes NumPy dtypes, ``torch.Size`` a tuple). ``NO_GRAD`` lists the keys whose outputs
carry no gradient (comparisons, arg-max ...); ``RANDOM`` the ones whose values are random (dropout: shapes only).

``REFUSED`` is the allowlist: samples minicnn deliberately does not support, each with the exception type and
a regular expression its message must match ("... is not supported", naming the argument).
"""
from __future__ import annotations


import minicnn.functional as F


def _dims(kwargs):
    return {("dim" if k == "dim" else k): v for k, v in kwargs.items()}


def _reduce(name):
    def call(mc, x, *args, **kwargs):
        if args:                                   # torch.sum(x, dim, keepdim)
            kwargs["dim"] = args[0]
            if len(args) > 1:
                kwargs["keepdim"] = args[1]
        return getattr(x, name)(**kwargs)
    return call


def _method(name):
    return lambda mc, x, *args, **kwargs: getattr(x, name)(*args, **kwargs)


def _clamp(mc, x, min=None, max=None):
    return x.clamp(min, max)


def _batch_norm(mc, x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    return F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)


OPS = {
    # elementwise, unary
    "abs": lambda mc, x: x.abs(),
    "exp": lambda mc, x: x.exp(),
    "log": lambda mc, x: x.log(),
    "sqrt": lambda mc, x: x.sqrt(),
    "neg": lambda mc, x: -x,
    "positive": lambda mc, x: +x,
    "sigmoid": lambda mc, x: x.sigmoid(),
    "tanh": lambda mc, x: x.tanh(),
    "nn.functional.relu": lambda mc, x: F.relu(x),
    # elementwise, binary
    "add": lambda mc, x, y, alpha=None: x + y if alpha is None else x.add(y, alpha=alpha),
    "sub": lambda mc, x, y, alpha=None: x - y if alpha is None else x.sub(y, alpha=alpha),
    "mul": lambda mc, x, y: x * y,
    "div.no_rounding_mode": lambda mc, x, y: x / y,
    "true_divide": lambda mc, x, y: x / y,
    "pow": lambda mc, x, y: x ** y,
    "__radd__": lambda mc, x, y: y + x,
    "__rsub__": lambda mc, x, y: y - x,
    "__rmul__": lambda mc, x, y: y * x,
    "__rdiv__": lambda mc, x, y: y / x,
    "__rpow__": lambda mc, x, y: y ** x,
    "__rmatmul__": lambda mc, x, y: y @ x,
    "maximum": lambda mc, x, y: mc.maximum(x, y),
    "minimum": lambda mc, x, y: mc.minimum(x, y),
    "where": lambda mc, x, condition, other: mc.where(condition, x, other),
    "clamp": _clamp,
    "eq": lambda mc, x, y: x == y,
    "ne": lambda mc, x, y: x != y,
    "lt": lambda mc, x, y: x < y,
    "le": lambda mc, x, y: x <= y,
    "gt": lambda mc, x, y: x > y,
    "ge": lambda mc, x, y: x >= y,
    # matrix products
    "matmul": lambda mc, x, y: x @ y,
    "mm": lambda mc, x, y: x @ y,
    "bmm": lambda mc, x, y: x @ y,
    "mv": lambda mc, x, y: x @ y,
    "dot": lambda mc, x, y: x @ y,
    # reductions
    "sum": _reduce("sum"),
    "mean": _reduce("mean"),
    "max.reduction_no_dim": lambda mc, x: x.max(),
    "min.reduction_no_dim": lambda mc, x: x.min(),
    "max.reduction_with_dim": _reduce("max"),
    "min.reduction_with_dim": _reduce("min"),
    "argmax": _reduce("argmax"),
    "argmin": _reduce("argmin"),
    "any": _reduce("any"),
    "all": _reduce("all"),
    # shapes
    "reshape": lambda mc, x, shape: x.reshape(shape),
    "view": lambda mc, x, shape: x.view(shape),
    "flatten": _method("flatten"),
    "transpose": _method("transpose"),
    "permute": lambda mc, x, dims: x.permute(*dims),
    "squeeze": _method("squeeze"),
    "squeeze.multiple": _method("squeeze"),
    "unsqueeze": _method("unsqueeze"),
    "expand": lambda mc, x, shape: x.expand(*shape),
    "cat": lambda mc, xs, dim=0: mc.cat(xs, dim),
    "stack": lambda mc, xs, dim=0: mc.stack(xs, dim),
    "__getitem__": lambda mc, x, index: x[index],
    "clone": lambda mc, x: x.clone(),
    "contiguous": lambda mc, x: x.contiguous(),
    "T": lambda mc, x: x.T,
    # neural-network ops
    "softmax": lambda mc, x, dim, dtype=None: F.softmax(x, dim, dtype=dtype),
    "log_softmax": lambda mc, x, dim, dtype=None: F.log_softmax(x, dim, dtype=dtype),
    "softmax.with_dtype": lambda mc, x, dim, dtype=None: F.softmax(x, dim, dtype=dtype),
    "log_softmax.with_dtype": lambda mc, x, dim, dtype=None: F.log_softmax(x, dim, dtype=dtype),
    "nn.functional.conv2d": lambda mc, x, *a, **k: F.conv2d(x, *a, **k),
    "nn.functional.max_pool2d": lambda mc, x, *a, **k: F.max_pool2d(x, *a, **k),
    "nn.functional.avg_pool2d": lambda mc, x, *a, **k: F.avg_pool2d(x, *a, **k),
    "nn.functional.adaptive_avg_pool2d": lambda mc, x, *a, **k: F.adaptive_avg_pool2d(x, *a, **k),
    "nn.functional.max_unpool2d": lambda mc, x, *a, **k: F.max_unpool2d(x, *a, **k),
    "nn.functional.max_unpool2d.grad": lambda mc, x, *a, **k: F.max_unpool2d(x, *a, **k),
    "nn.functional.batch_norm": _batch_norm,
    "nn.functional.dropout": lambda mc, x, *a, **k: F.dropout(x, *a, **k),
    "nn.functional.linear": lambda mc, x, *a, **k: F.linear(x, *a, **k),
    "nn.functional.cross_entropy": lambda mc, x, *a, **k: F.cross_entropy(x, *a, **k),
    "nn.functional.nll_loss": lambda mc, x, *a, **k: F.nll_loss(x, *a, **k),
    "nn.functional.mse_loss": lambda mc, x, *a, **k: F.mse_loss(x, *a, **k),
    "nn.functional.pad.constant": lambda mc, x, *a, **k: F.pad(x, *a, **k),
    "nn.functional.local_response_norm": lambda mc, x, *a, **k: F.local_response_norm(x, *a, **k),
}

NO_GRAD = {"eq", "ne", "lt", "le", "gt", "ge", "argmax", "argmin", "any", "all"}
RANDOM = {"nn.functional.dropout"}

#: Samples per op at most (every k-th sample, deterministic), to keep the test within its time budget.
MAX_SAMPLES = {"nn.functional.max_pool2d": 1440, "nn.functional.max_unpool2d": 288}


def _shape(s):
    return tuple(s.input.shape)


# The allowlist: (op key, which samples (a predicate of the torch SampleInput), exception type, message regex).
# Every entry is a deliberate difference listed in the README ("Where minicnn differs from PyTorch").
REFUSED = [
    # F.batch_norm takes 2-, 3- and 4-D inputs (PyTorch also takes 5-D and more, and a 1-D empty input).
    ("nn.functional.batch_norm", lambda s: s.input.ndim not in (2, 3, 4), ValueError,
     r"^batch_norm: input of \d dimensions is not supported"),
]
