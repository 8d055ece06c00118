"""Chapter 3 (the other layers), second part: batch_norm, dropout."""
from __future__ import annotations

import numpy as np

from ..kernels import textbook
from .common import Exercise, Wrong, array_of, check_grad, compare, unmodified

# --------------------------------------------------------------------------- batch_norm

STUB_BATCH_NORM = '''"""Exercise batch_norm (chapter 3): batch normalisation forward (training and evaluation) and backward.

Check it with:  python -m minicnn.exercises check batch_norm
"""
import numpy as np


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """x (N, C) or (N, C, H, W); gamma, beta, running_mean, running_var (C,)  ->  (out like x, cache).

    Per channel c (axis 1), over the m = N (or N*H*W) values of that channel:
      training:   mean, var = the batch's mean and BIASED variance (divide by m);
                  out = (x - mean) / sqrt(var + eps) * gamma + beta;
                  and update the running statistics IN PLACE (running_mean[...] = ...), as PyTorch:
                  running_mean = (1 - momentum) * running_mean + momentum * mean
                  running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)   (unbiased)
      evaluation (training=False): the same formula with running_mean and running_var in place of the
                  batch's, which are left unchanged.
    Keep in the cache what backward needs (xhat = (x - mean) / sqrt(var + eps), 1 / sqrt(var + eps), gamma,
    and whether batch statistics were used). out has x's dtype.
    """
    raise NotImplementedError("batch_norm_forward: not implemented yet")


def batch_norm_backward(grad, cache):
    """grad (like x)  ->  (dx like x, dgamma (C,), dbeta (C,)); sums and means per channel, over m values.

    dbeta = sum of grad;  dgamma = sum of grad * xhat;
    training:   dx = gamma / sqrt(var + eps) * (grad - mean(grad) - xhat * mean(grad * xhat))
                (the two means are the gradient flowing through the batch mean and the batch variance);
    evaluation: dx = grad * gamma / sqrt(running_var + eps).
    """
    raise NotImplementedError("batch_norm_backward: not implemented yet")
'''


def _bn(mod, x, gamma, beta, rm, rv, training, grad):
    out, cache = mod.batch_norm_forward(x, gamma, beta, rm, rv, training, 0.1, 1e-5)
    result = mod.batch_norm_backward(grad, cache)
    if not isinstance(result, tuple) or len(result) != 3:
        raise Wrong("batch_norm_backward must return a tuple (dx, dgamma, dbeta)")
    return out, result


def _bn_expected(x, gamma, beta, rm, rv, training, grad):
    rm, rv = rm.copy(), rv.copy()
    out, cache = textbook.batch_norm_forward(x, rm, rv, gamma, beta, training, 0.1, 1e-5)
    return out, rm, rv, textbook.batch_norm_backward(grad, cache)


def _bn_check(mod, x, gamma, beta, rm0, rv0, training, grad, what):
    rm, rv = rm0.copy(), rv0.copy()
    out, (dx, dgamma, dbeta) = _bn(mod, x, gamma, beta, rm, rv, training, grad)
    e_out, e_rm, e_rv, (e_dx, e_dg, e_db) = _bn_expected(x, gamma, beta, rm0, rv0, training, grad)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m = x.size // x.shape[1]
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        unbiased_norm = (x - mean.reshape(shape)) / np.sqrt(x.var(axis=axes, ddof=1).reshape(shape) + 1e-5)
        batch_only = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5) * gamma.reshape(shape) + beta.reshape(shape) \
            if x.ndim > 2 else None
        compare("out" + what, e_out, out, [
            (unbiased_norm * gamma.reshape(shape) + beta.reshape(shape),
             "normalise with the BIASED variance (np.var, dividing by m); only running_var uses the unbiased one"),
            (batch_only, "per channel: the mean and variance run over N, H and W (axes (0, 2, 3)), not over the "
                         "batch axis alone")])
        compare("running_mean" + what, e_rm, rm, [
            (0.9 * mean + 0.1 * rm0, "PyTorch's momentum weights the NEW statistic: running = (1 - momentum) * "
                                     "running + momentum * batch"),
            (rm0, "the running statistics were not updated: in training, update running_mean and running_var in "
                  "place (running_mean[...] = ...), the layer keeps those arrays")])
        compare("running_var" + what, e_rv, rv, [
            (0.9 * rv0 + 0.1 * var, "running_var uses the UNBIASED variance (var * m / (m - 1)), as PyTorch"),
            (0.9 * var * m / (m - 1) + 0.1 * rv0, "PyTorch's momentum weights the NEW statistic: running = "
                                                  "(1 - momentum) * running + momentum * batch")])
    else:
        batch = (x - x.mean(axis=axes).reshape(shape)) / np.sqrt(x.var(axis=axes).reshape(shape) + 1e-5)
        compare("out in evaluation mode" + what, e_out, out, [
            (batch * gamma.reshape(shape) + beta.reshape(shape),
             "in evaluation (training=False) normalise with running_mean and running_var, not the batch's")])
        compare("running_mean in evaluation mode" + what, rm0, rm, [], context=" (leave it unchanged in evaluation)")
        compare("running_var in evaluation mode" + what, rv0, rv, [], context=" (leave it unchanged in evaluation)")
    compare("dbeta" + what, e_db, dbeta)
    compare("dgamma" + what, e_dg, dgamma)
    inv_std = 1 / np.sqrt((x.var(axis=axes) if training else rv0) + 1e-5)
    compare("dx" + what, e_dx, dx, [
        (grad * (gamma * inv_std).reshape(shape) if training else None,
         "the batch-norm gradient misses the terms through the batch mean and variance: in training, "
         "dx = gamma / sqrt(var + eps) * (grad - mean(grad) - xhat * mean(grad * xhat))")], rtol=1e-4, atol=1e-6)


def _bn_inputs(rng, shape, dtype=np.float64):
    C = shape[1]
    return (rng.normal(1.0, 2.0, size=shape).astype(dtype), rng.normal(1, 0.5, C).astype(dtype),
            rng.normal(size=C).astype(dtype), rng.normal(size=C).astype(dtype), rng.uniform(0.5, 2, C).astype(dtype))


def _bn_stage1(mod):
    x, gamma, beta, rm, rv = _bn_inputs(np.random.default_rng(0), (4, 3, 2, 2), np.float32)
    grad = np.ones_like(x)
    copies = [a.copy() for a in (x, gamma, beta, grad)]
    out, (dx, dgamma, dbeta) = _bn(mod, x, gamma, beta, rm, rv, True, grad)
    array_of("out", out, x.shape, np.float32)
    array_of("dx", dx, x.shape, np.float32)
    if isinstance(dgamma, np.ndarray) and dgamma.shape != (3,):
        raise Wrong(f"dgamma has shape {dgamma.shape}: sum grad * xhat over every axis but the channel axis, to (3,)")
    array_of("dgamma", dgamma, (3,), np.float32)
    array_of("dbeta", dbeta, (3,), np.float32)
    for name, a, c in zip(("x", "gamma", "beta", "grad"), (x, gamma, beta, grad), copies):
        unmodified(name, c, a)


def _bn_stage2(mod):
    x, gamma, beta = np.array([[1.0], [3.0]]), np.array([2.0]), np.array([1.0])
    grad = np.array([[1.0], [0.0]])
    _bn_check(mod, x, gamma, beta, np.zeros(1), np.ones(1), True, grad,
              " for x = [[1], [3]] (N=2, C=1), gamma 2, beta 1, running stats 0 and 1, grad [[1], [0]], training")
    _bn_check(mod, x, gamma, beta, np.ones(1), np.full(1, 4.0), False, grad,
              " for x = [[1], [3]], gamma 2, beta 1, running mean 1 and var 4, grad [[1], [0]]")


def _bn_stage3(mod):
    rng = np.random.default_rng(17)
    for shape in [(8, 3), (4, 2, 3, 5), (1, 3, 2, 2), (5, 1, 1, 1)]:
        for training in (True, False):
            x, gamma, beta, rm, rv = _bn_inputs(rng, shape)
            _bn_check(mod, x, gamma, beta, rm, rv, training, rng.normal(size=shape),
                      f" for x {shape}, {'training' if training else 'evaluation'}")


def _bn_stage4(mod):
    rng = np.random.default_rng(18)
    for training in (True, False):
        x, gamma, beta, rm, rv = _bn_inputs(rng, (3, 2, 2, 2))
        u = rng.normal(size=x.shape)
        _, (dx, dgamma, dbeta) = _bn(mod, x, gamma, beta, rm.copy(), rv.copy(), training, u)

        def f(x=x, rm=rm, rv=rv, gamma=gamma, beta=beta, training=training, u=u):
            return float((textbook.batch_norm_forward(x, rm.copy(), rv.copy(), gamma, beta, training)[0] * u).sum())
        mode = " (training)" if training else " (evaluation)"
        check_grad("dx" + mode, dx, f, x)
        check_grad("dgamma" + mode, dgamma, f, gamma)
        check_grad("dbeta" + mode, dbeta, f, beta)


# --------------------------------------------------------------------------- dropout

STUB_DROPOUT = '''"""Exercise dropout (chapter 3): inverted dropout, as PyTorch.

Check it with:  python -m minicnn.exercises check dropout
"""
import numpy as np


def dropout_forward(x, p, training, rng):
    """x (any shape), p in [0, 1) the probability of DROPPING an element, rng a np.random.Generator
    ->  (out like x, mask).

    Training: draw u = rng.random(x.shape) (from the rng you are given: runs stay reproducible), keep the
    elements where u >= p, and scale the kept ones by 1 / (1 - p) ("inverted" dropout: the expected output
    equals x, so evaluation needs no rescaling):  mask = (u >= p) / (1 - p),  out = x * mask  (x's dtype).
    Evaluation (training=False), or p == 0: dropout is the identity: return (x, None).
    """
    raise NotImplementedError("dropout_forward: not implemented yet")


def dropout_backward(grad, mask):
    """dx = grad * mask (the same scaled mask), or grad itself when mask is None."""
    raise NotImplementedError("dropout_backward: not implemented yet")
'''


def _drop_stage1(mod):
    x = np.random.default_rng(0).normal(size=(20, 30)).astype(np.float32)
    before = x.copy()
    out, mask = mod.dropout_forward(x, 0.3, True, np.random.default_rng(1))
    array_of("dropout_forward(x (20, 30) float32, 0.3, training)[0]", out, x.shape, np.float32)
    unmodified("x", before, x)
    grad = np.ones_like(x)
    array_of("dropout_backward(grad, mask)", mod.dropout_backward(grad, mask), x.shape, np.float32)
    unmodified("grad", np.ones_like(x), grad)


def _drop_stage2(mod):
    x = np.ones((40, 50))
    out, mask = mod.dropout_forward(x, 0.5, True, np.random.default_rng(2))
    values = set(np.unique(np.round(out, 6)).tolist())
    if values == {0.0, 1.0}:
        raise Wrong("with p = 0.5 the kept elements of an all-ones x are 1: inverted dropout scales the kept elements "
                    "by 1 / (1 - p) in training, so that the expected output equals x")
    if values == {0.0, 0.25} or values == {0.0, 0.5} and abs(out.mean() - 0.25) < 0.05:
        raise Wrong("the kept elements are scaled by (1 - p) or less: scale them by 1 / (1 - p)")
    if values != {0.0, 2.0}:
        raise Wrong(f"with p = 0.5 an all-ones x should become 0 (dropped) or 2 (kept, times 1 / (1 - p)); got the "
                    f"values {sorted(values)[:6]}")
    for training, p in ((False, 0.5), (True, 0.0)):
        out, _ = mod.dropout_forward(x * 3, p, training, np.random.default_rng(3))
        compare(f"dropout with training={training}, p={p} (the identity)", x * 3, out, [])


def _drop_stage3(mod):
    x = np.random.default_rng(4).normal(size=(200, 100))
    for p in (0.2, 0.7):
        out, mask = mod.dropout_forward(x, p, True, np.random.default_rng(5))
        kept = float((out != 0).mean())
        if abs(kept - p) < 0.03 and abs(kept - (1 - p)) > 0.05:
            raise Wrong(f"with p = {p} you keep {kept:.0%} of the elements: p is the probability of DROPPING one, "
                        f"keep where u >= p")
        if abs(kept - (1 - p)) > 0.03:
            raise Wrong(f"with p = {p} you keep {kept:.1%} of the elements, expected about {1 - p:.0%}")
        compare(f"the kept elements with p = {p}", x[out != 0] / (1 - p), out[out != 0], [
            (x[out != 0], "scale the kept elements by 1 / (1 - p)")])
        again, _ = mod.dropout_forward(x, p, True, np.random.default_rng(5))
        if not np.array_equal(again, out):
            raise Wrong("the same rng seed gave two different masks: draw from the rng you are given "
                        "(rng.random(x.shape)), not from np.random, so that runs are reproducible")
        other, _ = mod.dropout_forward(x, p, True, np.random.default_rng(6))
        if np.array_equal(other, out):
            raise Wrong("two different rng seeds gave the same mask: draw a fresh mask from rng every call")
        grad = np.random.default_rng(7).normal(size=x.shape)
        dx = mod.dropout_backward(grad, mask)
        expected = grad * np.where(out != 0, 1 / (1 - p), 0.0)
        compare(f"dropout's dx with p = {p}", expected, dx, [
            (grad * (out != 0), "the backward multiplies by the same SCALED mask: 1 / (1 - p) where kept"),
            (grad, "the gradient of a dropped element is 0: multiply grad by the mask")])
    grad = np.ones((3, 4))
    compare("dropout_backward(grad, None) (the identity)", grad, mod.dropout_backward(grad, None))


def _drop_stage4(mod):
    rng = np.random.default_rng(8)
    x, u = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    _, mask = mod.dropout_forward(x, 0.4, True, np.random.default_rng(9))
    dx = mod.dropout_backward(u, mask)
    check_grad("dropout's dx", dx, lambda: float((mod.dropout_forward(x, 0.4, True, np.random.default_rng(9))[0] * u)
                                                 .sum()), x)


EXERCISES = [
    Exercise("batch_norm", 3, "forward (train and eval, running statistics) and backward",
             ("batch_norm_forward", "batch_norm_backward"), STUB_BATCH_NORM,
             ("axes = (0,) + tuple(range(2, x.ndim)); shape = (1, -1) + (1,) * (x.ndim - 2) broadcasts a (C,) "
              "vector over x.",
              "Training: mean, var = x.mean(axis=axes), x.var(axis=axes); m = x.size // x.shape[1]; "
              "running_var[...] = (1 - momentum) * running_var + momentum * var * m / (m - 1).",
              "Backward: with g = grad, sum_g = g.sum(axes), sum_gx = (g * xhat).sum(axes): "
              "dx = gamma * inv_std * (g - sum_g / m - xhat * sum_gx / m) (reshape the (C,) vectors)."),
             ("minicnn.kernels.textbook:batch_norm_forward", "minicnn.kernels.textbook:batch_norm_backward"),
             ((1, _bn_stage1), (2, _bn_stage2), (3, _bn_stage3), (4, _bn_stage4))),
    Exercise("dropout", 3, "inverted dropout, as PyTorch", ("dropout_forward", "dropout_backward"), STUB_DROPOUT,
             ("if not training or p == 0: return x, None.",
              "mask = (rng.random(x.shape) >= p) / (1 - p), cast to x.dtype; return x * mask, mask."),
             ("minicnn.kernels.textbook:dropout_forward", "minicnn.kernels.textbook:dropout_backward"),
             ((1, _drop_stage1), (2, _drop_stage2), (3, _drop_stage3), (4, _drop_stage4))),
]
