"""Numerical gradient checking: compare ``backward()`` with central finite differences.

``gradcheck(fn, *inputs)`` evaluates ``fn`` on the inputs, contracts its output with a random
upstream gradient ``u`` (random, never all ones: with all ones a softmax would pass
vacuously, since its outputs always sum to one), and compares the analytic gradient of
``sum(u * fn(x))`` with ``(f(x + eps) - f(x - eps)) / (2 eps)`` for every element of every
input that requires a gradient.  Run it in float64: in float32 the rounding error of the
differences swamps the comparison.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd import Tensor, no_grad
from .checks import InvalidGradientError


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when the analytic and numerical gradients disagree."""


def _outputs(result):
    outs = result if isinstance(result, (tuple, list)) else (result,)
    return [o for o in outs if isinstance(o, Tensor)]


def _contract(result, upstream):
    """sum_k sum(u_k * out_k) as a Python float."""
    return float(sum(float((backend.to_numpy(o.data).astype(np.float64) * u).sum())
                     for o, u in zip(_outputs(result), upstream)))


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """Check the gradients of ``fn(*inputs)`` against central finite differences.

    ``inputs`` may mix tensors and other arguments; every float64 tensor with
    ``requires_grad=True`` is checked.  An element passes when both values are finite and
    ``|analytic - numeric| <= atol + rtol * |numeric|`` (a NaN or infinity on either side fails).

    Returns ``True``; on failure raises ``GradcheckError`` listing, for each failing input,
    its worst element (the first non-finite one, else the largest difference: index, analytic and
    numeric value), or saying that a backward returned a gradient of the wrong shape, dtype or
    device; or returns ``False`` when ``raise_exception=False``.  ``fn`` must be deterministic (seed any dropout inside it).
    """
    checked = [(i, x) for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input tensor has requires_grad=True")
    for i, x in checked:
        if x.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} has dtype {x.dtype}; use float64 tensors "
                            "(finite differences are too inaccurate in float32)")
        x.data = backend.get_array_module(x.data).ascontiguousarray(x.data)

    rng = np.random.default_rng(seed)
    result = fn(*inputs)
    outs = _outputs(result)
    if not outs:
        raise TypeError("gradcheck: fn must return a Tensor or a tuple of Tensors")
    upstream = [rng.uniform(0.5, 1.5, o.shape) * rng.choice([-1.0, 1.0], o.shape) for o in outs]

    # analytic: backward of sum(u * out); keep any gradients the caller had
    saved = [x.grad for _, x in checked]
    for _, x in checked:
        x.grad = None
    surrogate = sum((o * Tensor(backend.to_device(u.astype(o.dtype), o.device))).sum()
                    for o, u in zip(outs, upstream) if o.requires_grad)
    try:
        if isinstance(surrogate, Tensor):
            surrogate.backward()
        analytic = [x.grad.numpy() if x.grad is not None else np.zeros(x.shape) for _, x in checked]
    except InvalidGradientError as exc:       # a backward returned a gradient that does not fit its input
        return _fail(f" the analytic gradient has the wrong form: {exc}", raise_exception)
    finally:
        for (_, x), g in zip(checked, saved):
            x.grad = g
    for (i, x), a in zip(checked, analytic):
        if a.shape != x.shape or a.dtype.kind != "f":
            return _fail(f" the analytic gradient of input {i} has shape {a.shape} and dtype {a.dtype}; "
                         f"expected shape {tuple(x.shape)} and a floating dtype", raise_exception)

    failures = []
    with no_grad():
        for (i, x), a in zip(checked, analytic):
            flat = x.data.reshape(-1)           # a view: perturbing it perturbs x
            numeric = np.empty(flat.size)
            for k in range(flat.size):
                orig = flat[k].item()
                flat[k] = orig + eps
                f_plus = _contract(fn(*inputs), upstream)
                flat[k] = orig - eps
                f_minus = _contract(fn(*inputs), upstream)
                flat[k] = orig
                numeric[k] = (f_plus - f_minus) / (2 * eps)
            numeric = numeric.reshape(x.shape)
            with np.errstate(invalid="ignore"):
                err = np.abs(a - numeric)
                nonfinite = ~(np.isfinite(a) & np.isfinite(numeric))   # NaN compares False: test it apart
                bad = nonfinite | (err > atol + rtol * np.abs(numeric))
            if bad.any():
                worst = np.unravel_index(np.argmax(nonfinite) if nonfinite.any()
                                         else np.argmax(np.where(bad, err, -1)), x.shape)
                failures.append(f"input {i} (shape {tuple(x.shape)}): {int(bad.sum())} of {x.numel()} elements "
                                f"differ; worst at index {tuple(int(w) for w in worst)}: analytic "
                                f"{a[worst]:.8g}, numeric {numeric[worst]:.8g}, |diff| {err[worst]:.3g}")
    if failures:
        return _fail("\n  " + "\n  ".join(failures), raise_exception)
    return True


def _fail(message, raise_exception):
    if raise_exception:
        raise GradcheckError("gradcheck failed:" + message)
    return False
