"""Chapter 4 (LeNet-5 and training): linear, softmax_cross_entropy, sgd_momentum."""
from __future__ import annotations

import numpy as np

from ..kernels import textbook
from .common import Exercise, Wrong, array_of, check_grad, compare, unmodified

# --------------------------------------------------------------------------- linear

STUB_LINEAR = '''"""Exercise linear (chapter 4): a fully connected layer, forward and backward.

Check it with:  python -m minicnn.exercises check linear
"""
import numpy as np


def linear_forward(x, weight, bias):
    """x (N, in), weight (out, in) (PyTorch's layout), bias (out,) or None  ->  out (N, out), x's dtype:

        out = x @ weight.T + bias
    """
    raise NotImplementedError("linear_forward: not implemented yet")


def linear_backward(grad, x, weight):
    """grad (N, out) = dL/d out  ->  (dx (N, in), dweight (out, in), dbias (out,)):

        dx = grad @ weight;   dweight = grad.T @ x;   dbias = grad summed over the batch (axis 0)
    Each gradient has the shape of what it is the gradient of.
    """
    raise NotImplementedError("linear_backward: not implemented yet")
'''


def _linear_bw(mod, grad, x, w):
    result = mod.linear_backward(grad, x, w)
    if not isinstance(result, tuple) or len(result) != 3:
        raise Wrong("linear_backward must return a tuple (dx, dweight, dbias)")
    dx, dw, db = result
    n_out, n_in = w.shape
    if isinstance(dw, np.ndarray) and dw.shape == (n_in, n_out) and n_in != n_out:
        raise Wrong(f"dweight has shape {dw.shape} (in, out): it must match weight's ({n_out}, {n_in}): "
                    f"dweight = grad.T @ x")
    if isinstance(db, np.ndarray) and db.shape == grad.shape and db.ndim == 2 and grad.shape[0] > 1:
        raise Wrong(f"dbias has shape {db.shape} (N, out): sum grad over the batch (axis 0), to ({n_out},)")
    return result


def _linear_stage1(mod):
    rng = np.random.default_rng(0)
    x, w, b = (rng.normal(size=s).astype(np.float32) for s in ((4, 3), (5, 3), (5,)))
    grad = np.ones((4, 5), np.float32)
    copies = [a.copy() for a in (x, w, b, grad)]
    array_of("linear_forward(x (4, 3), weight (5, 3), bias (5,))", mod.linear_forward(x, w, b), (4, 5), np.float32)
    dx, dw, db = _linear_bw(mod, grad, x, w)
    for what, a, shape in (("dx", dx, x.shape), ("dweight", dw, w.shape), ("dbias", db, (5,))):
        array_of(what, a, shape, np.float32)
    for name, a, c in zip(("x", "weight", "bias", "grad"), (x, w, b, grad), copies):
        unmodified(name, c, a)


def _linear_check(mod, x, w, b, grad, what):
    out, cache = textbook.linear_forward(x, w, b)
    compare("out" + what, out, mod.linear_forward(x, w, b), [
        (x @ w + (0 if b is None else b) if w.shape[0] == w.shape[1] else None,
         "weight is (out, in): out = x @ weight.T"),
        (x @ w.T if b is not None else None, "the bias is missing: out = x @ weight.T + bias")])
    if b is None:
        return
    e_dx, e_dw, e_db = textbook.linear_backward(grad, cache)
    dx, dw, db = _linear_bw(mod, grad, x, w)
    compare("dx" + what, e_dx, dx, [(grad @ w.T if w.shape[0] == w.shape[1] else None,
                                     "dx = grad @ weight (weight is (out, in)), not grad @ weight.T")])
    compare("dweight" + what, e_dw, dw, [(x.T @ grad if w.shape[0] == w.shape[1] else None,
                                          "dweight = grad.T @ x, of weight's shape (out, in); x.T @ grad is its transpose")])
    compare("dbias" + what, e_db, db, [(grad.mean(0), "sum grad over the batch, do not average")])


def _linear_stage2(mod):
    x, w, b = np.array([[1.0, 2.0]]), np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0.0, 1.0, 2.0])
    _linear_check(mod, x, w, b, np.array([[1.0, 0.0, -1.0]]),
                  " for x = [[1, 2]], weight = [[1, 0], [0, 1], [1, 1]], bias = [0, 1, 2], grad = [[1, 0, -1]]")


def _linear_stage3(mod):
    rng = np.random.default_rng(19)
    for n, i, o in [(4, 3, 5), (1, 6, 2), (3, 4, 4), (7, 1, 1)]:
        x, w, b = rng.normal(size=(n, i)), rng.normal(size=(o, i)), rng.normal(size=o)
        what = f" for x ({n}, {i}), weight ({o}, {i})"
        _linear_check(mod, x, w, b, rng.normal(size=(n, o)), what)
        _linear_check(mod, x, w, None, None, what + " and bias None")


def _linear_stage4(mod):
    rng = np.random.default_rng(20)
    x, w, b, u = rng.normal(size=(3, 4)), rng.normal(size=(2, 4)), rng.normal(size=2), rng.normal(size=(3, 2))
    dx, dw, db = _linear_bw(mod, u, x, w)

    def f():
        return float(((x @ w.T + b) * u).sum())
    check_grad("dx", dx, f, x)
    check_grad("dweight", dw, f, w)
    check_grad("dbias", db, f, b)


# --------------------------------------------------------------------------- softmax_cross_entropy

STUB_SOFTMAX_CE = '''"""Exercise softmax_cross_entropy (chapter 4): the loss of a classifier and its gradient.

Check it with:  python -m minicnn.exercises check softmax_cross_entropy
"""
import numpy as np


def softmax_cross_entropy(logits, target):
    """logits (N, C) scores, target (N,) integer classes  ->  (loss, dlogits).

    p = softmax(logits) per row: p[n, j] = exp(logits[n, j]) / sum over k of exp(logits[n, k]);
    loss = mean over the batch of -log p[n, target[n]]   (a float);
    dlogits = (p - y) / N, y the one-hot target (1 at [n, target[n]]): the gradient of the MEAN loss.

    Numerically stable: exp(1000) overflows, so subtract each row's maximum from it first (softmax is
    unchanged by a constant shift), and compute log p as shifted - log(sum(exp(shifted))).
    dlogits has logits' dtype.
    """
    raise NotImplementedError("softmax_cross_entropy: not implemented yet")
'''


def _ce_expected(logits, target):
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(target)
    y = np.zeros_like(logp)
    y[np.arange(n), target] = 1
    return float(-logp[np.arange(n), target].mean()), np.exp(logp), y


def _ce_check(mod, logits, target, what):
    result = mod.softmax_cross_entropy(logits, target)
    if not isinstance(result, tuple) or len(result) != 2:
        raise Wrong("softmax_cross_entropy must return a pair (loss, dlogits)")
    loss, d = result
    e_loss, p, y = _ce_expected(logits.astype(np.float64), target)
    n = len(target)
    if not np.all(np.isfinite(np.asarray(loss, dtype=np.float64))) or \
            (isinstance(d, np.ndarray) and not np.all(np.isfinite(d))):
        raise Wrong(f"softmax overflows for large logits{what}: subtract the row maximum first (softmax is unchanged "
                    f"by a constant shift per row)")
    compare("loss" + what, e_loss, np.asarray(loss, dtype=np.float64).reshape(()), [
        (e_loss * n if n > 1 else None, "the loss is the MEAN over the batch, not the sum")], rtol=1e-5)
    compare("dlogits" + what, (p - y) / n, d, [
        (p - y if n > 1 else None, "dlogits is N times too large: the loss is a mean, so divide (p - y) by N"),
        ((y - p) / n, "the sign is reversed: dlogits = (p - y) / N"),
        (p / n, "subtract the one-hot target: dlogits = (p - y) / N")], rtol=1e-4, atol=1e-6)


def _ce_stage1(mod):
    logits = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    target = np.array([0, 3, 4, 1])
    copies = logits.copy(), target.copy()
    result = mod.softmax_cross_entropy(logits, target)
    if not isinstance(result, tuple) or len(result) != 2:
        raise Wrong("softmax_cross_entropy must return a pair (loss, dlogits)")
    loss, d = result
    if np.ndim(loss) != 0:
        raise Wrong(f"the loss must be one number (the mean over the batch), got an array of shape {np.shape(loss)}")
    array_of("dlogits", d, logits.shape, np.float32)
    unmodified("logits", copies[0], logits)
    unmodified("target", copies[1], target)


def _ce_stage2(mod):
    _ce_check(mod, np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]), np.array([2, 0]),
              " for logits [[1, 2, 3], [1, 1, 1]] and target [2, 0]")


def _ce_stage3(mod):
    rng = np.random.default_rng(21)
    _ce_check(mod, np.array([[1000.0, 0.0, -1000.0], [-800.0, 900.0, 0.0]]), np.array([0, 2]),
              " for logits [[1000, 0, -1000], [-800, 900, 0]]")
    for n, c in [(1, 10), (8, 3), (5, 2)]:
        _ce_check(mod, rng.normal(scale=3, size=(n, c)), rng.integers(0, c, n), f" for logits ({n}, {c})")


def _ce_stage4(mod):
    rng = np.random.default_rng(22)
    logits, target = rng.normal(size=(4, 3)), np.array([0, 2, 1, 2])
    _, d = mod.softmax_cross_entropy(logits, target)
    check_grad("dlogits", d, lambda: _ce_expected(logits, target)[0], logits)


# --------------------------------------------------------------------------- sgd_momentum

STUB_SGD = '''"""Exercise sgd_momentum (chapter 4): one step of SGD with momentum and weight decay, as torch.optim.SGD.

Check it with:  python -m minicnn.exercises check sgd_momentum
"""
import numpy as np


def sgd_step(param, grad, buf, lr, momentum, weight_decay):
    """Update param IN PLACE (param -= ...: the model holds that array) and return the new momentum buffer.

    param, grad: arrays of one shape; buf: the buffer returned by the previous step, None at the first.
    PyTorch's semantics (dampening 0, no Nesterov):
        g = grad + weight_decay * param               (L2 weight decay, added to the gradient first)
        buf = g (a copy) at the first step, else buf = momentum * buf + g
        param -= lr * buf                             (with momentum == 0: param -= lr * g, return None)
    The buffer is in gradient units, and lr multiplies at the end: a new lr (a schedule) acts at once.
    Do not change grad.
    """
    raise NotImplementedError("sgd_step: not implemented yet")
'''


def _sgd_reference(param, grad, buf, lr, momentum, wd):
    g = grad + wd * param
    if momentum:
        buf = g.copy() if buf is None else momentum * buf + g
        g = buf
    return param - lr * g, buf


def _sgd_run(mod, p0, grads, lrs, momentum, wd, variants=False):
    """Run the learner's steps and the reference (and, with ``variants``, the usual wrong versions)."""
    param, buf = p0.copy(), None
    for grad, lr in zip(grads, lrs):
        before = grad.copy()
        returned = mod.sgd_step(param, grad, buf, lr, momentum, wd)
        unmodified("grad", before, grad)
        buf = returned
    ref = [p0.copy(), None]
    kinds = {"late_decay": [p0.copy(), None], "ema": [p0.copy(), None], "classic": [p0.copy(), None],
             "no_decay": [p0.copy(), None]}
    for grad, lr in zip(grads, lrs):
        ref = list(_sgd_reference(ref[0], grad, ref[1], lr, momentum, wd))
        if variants:
            p, b = kinds["late_decay"]                          # decay applied after the momentum
            b = grad.copy() if b is None else momentum * b + grad
            kinds["late_decay"] = [p - lr * (b + wd * p), b]
            p, b = kinds["ema"]                                 # buf = m*buf + (1-m)*g
            g = grad + wd * p
            b = g.copy() if b is None else momentum * b + (1 - momentum) * g
            kinds["ema"] = [p - lr * b, b]
            p, b = kinds["classic"]                             # v = m*v - lr*g; p += v
            g = grad + wd * p
            b = -lr * g if b is None else momentum * b - lr * g
            kinds["classic"] = [p + b, b]
            kinds["no_decay"] = list(_sgd_reference(kinds["no_decay"][0], grad, kinds["no_decay"][1], lr,
                                                    momentum, 0.0))
    return param, buf, ref, kinds


def _sgd_stage1(mod):
    p0 = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    param = p0.copy()
    grad = np.ones_like(param)
    buf = mod.sgd_step(param, grad, None, 0.1, 0.9, 0.0)
    if np.array_equal(param, p0):
        raise Wrong("param is unchanged: update it in place (param -= lr * ...), the model holds that array "
                    "(param = param - ... only rebinds your local name)")
    if buf is None:
        raise Wrong("sgd_step returned None with momentum 0.9: return the momentum buffer, the next step needs it")
    array_of("the momentum buffer", buf, param.shape, np.float32)
    if param.dtype != np.float32:
        raise Wrong("param changed dtype")


def _sgd_stage2(mod):
    p0 = np.array([1.0, -2.0])
    grads, lrs = [np.array([0.5, 0.5]), np.array([0.5, -1.0]), np.array([0.0, 1.0])], [0.1, 0.05, 0.05]
    param, buf, (e_param, e_buf), kinds = _sgd_run(mod, p0, grads, lrs, 0.9, 0.1, variants=True)
    what = " after 3 steps from param [1, -2] (grads [0.5, 0.5], [0.5, -1], [0, 1]; lr 0.1, 0.05, 0.05; momentum 0.9, " \
           "weight_decay 0.1)"
    compare("param" + what, e_param, param, [
        (kinds["late_decay"][0], "PyTorch's SGD adds weight_decay * param to the gradient BEFORE the momentum"),
        (kinds["no_decay"][0], "the weight decay is missing: g = grad + weight_decay * param"),
        (kinds["ema"][0], "PyTorch's buffer is momentum * buf + g (no (1 - momentum) factor: dampening is 0)"),
        (kinds["classic"][0], "PyTorch keeps the buffer in gradient units: buf = momentum * buf + g, then "
                              "param -= lr * buf (with a buffer v = momentum * v - lr * g, a change of lr acts late)")])
    compare("the returned buffer" + what, e_buf, buf)


def _sgd_stage3(mod):
    rng = np.random.default_rng(23)
    for shape, momentum, wd in [((5,), 0.9, 5e-4), ((2, 3, 4), 0.5, 0.0), ((7, 1), 0.0, 0.01), ((3,), 0.0, 0.0)]:
        p0 = rng.normal(size=shape)
        grads = [rng.normal(size=shape) for _ in range(4)]
        lrs = [0.1, 0.1, 0.03, 0.01]
        param, buf, (e_param, e_buf), _ = _sgd_run(mod, p0, grads, lrs, momentum, wd)
        what = f" after 4 steps, param {shape}, momentum {momentum}, weight_decay {wd}"
        compare("param" + what, e_param, param)
        if momentum == 0 and buf is not None:
            raise Wrong("with momentum 0 there is no buffer: return None")
        if momentum:
            compare("the returned buffer" + what, e_buf, buf)


EXERCISES = [
    Exercise("linear", 4, "forward and backward", ("linear_forward", "linear_backward"), STUB_LINEAR,
             ("forward: out = x @ weight.T, plus bias when it is not None.",
              "backward: dx = grad @ weight; dweight = grad.T @ x; dbias = grad.sum(axis=0)."),
             ("minicnn.kernels.textbook:linear_forward", "minicnn.kernels.textbook:linear_backward"),
             ((1, _linear_stage1), (2, _linear_stage2), (3, _linear_stage3), (4, _linear_stage4))),
    Exercise("softmax_cross_entropy", 4, "stable forward, backward (p - y)/N", ("softmax_cross_entropy",),
             STUB_SOFTMAX_CE,
             ("shifted = logits - logits.max(axis=1, keepdims=True); logp = shifted - "
              "np.log(np.exp(shifted).sum(axis=1, keepdims=True)).",
              "loss = -logp[np.arange(N), target].mean().",
              "d = np.exp(logp); d[np.arange(N), target] -= 1; d /= N."),
             ("minicnn.functional:CrossEntropyFunction",),
             ((1, _ce_stage1), (2, _ce_stage2), (3, _ce_stage3), (4, _ce_stage4))),
    Exercise("sgd_momentum", 4, "one SGD step with momentum and weight decay, PyTorch's semantics", ("sgd_step",),
             STUB_SGD,
             ("g = grad + weight_decay * param (a new array: never modify grad).",
              "if momentum: buf = g.copy() if buf is None else momentum * buf + g; g = buf.",
              "param -= lr * g (in place); return buf (None without momentum)."),
             ("minicnn.optim.optimizers:SGD._update",),
             ((1, _sgd_stage1), (2, _sgd_stage2), (3, _sgd_stage3))),
]
