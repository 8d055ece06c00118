"""Losses with ``torch.nn.functional``'s names and semantics: ``cross_entropy`` (class indices or class
probabilities, ``weight``, ``ignore_index``, ``label_smoothing``), ``nll_loss`` and ``mse_loss``.

Shapes: input (N, C), (N, C, d1, ...) or one unbatched sample (C,); class-index targets (N,),
(N, d1, ...) or () (integers); class-probability targets the input's shape (floats).
"""
from __future__ import annotations

import numpy as np

from .. import kernels as K
from ..autograd import Function, Tensor
from ..backend import get_array_module
from ..kernels.fast import fused_loss

_REDUCTIONS = ("mean", "sum", "none")


def _log_softmax_rows(logits, xp):
    logp = logits - logits.max(axis=1, keepdims=True)
    logp -= xp.log(xp.exp(logp).sum(axis=1, keepdims=True))
    return logp


def _row_weights(xp, target, weight, ignore_index, num_classes, dtype, may_ignore=True):
    """``(safe_target, row_weight, valid)`` for class-index targets (n,).

    ``row_weight[i]`` = weight[t_i] (1 without ``weight``), 0 where t_i == ignore_index; ``valid[i]`` is
    1 where the row counts, 0 where it is ignored. Both are None when every row counts with weight 1
    (the common case, kept free of extra work: ``may_ignore=False`` says no target is ``ignore_index``).
    On a GPU the targets are not read on the host: a target outside [0, C) that is not ``ignore_index``
    gets row weight NaN, so it shows up as a NaN loss."""
    if xp is np and weight is None and not may_ignore:
        return target, None, None
    valid = target != ignore_index if ignore_index is not None else xp.ones(target.shape, dtype=bool)
    if xp is np:
        if weight is None and bool(valid.all()):
            return target, None, None
        in_range = valid
    else:
        in_range = valid & (target >= 0) & (target < num_classes)
    safe = xp.where(in_range, target, 0)
    row_weight = (weight[safe] if weight is not None else xp.ones(target.shape, dtype=dtype)) * valid
    if xp is not np:
        row_weight = xp.where(valid & ~in_range, float("nan"), row_weight)
    return safe, row_weight.astype(dtype, copy=False), valid.astype(dtype)


class CrossEntropyFunction(Function):
    """Softmax cross-entropy of logits (n, C) against class indices (n,), fused for stability.

    With row weights r_i = weight[t_i] (0 where t_i == ignore_index), v_i = 1 unless ignored, and label
    smoothing e:  loss_i = (1-e) r_i (-logp[i, t_i]) + (e/C) v_i (-sum_j w_j logp_ij);
    dx_ij = (1-e) r_i (p_ij - [j == t_i]) + (e/C) v_i (p_ij sum_k w_k - w_j).  'mean' divides by sum_i r_i.
    """

    def forward(self, logits, target, weight, ignore_index, reduction, label_smoothing):
        xp = get_array_module(logits)
        n, c = logits.shape
        plain = weight is None and ignore_index is None          # every row counts with weight 1
        self.gpu = weight is None and xp is not np and logits.dtype.kind == "f" and K.mode() == "fast"
        if self.gpu:                                              # one fused kernel each way
            rows, self.logp, self.target = fused_loss.cross_entropy_forward(
                xp.ascontiguousarray(logits), target, label_smoothing, ignore_index)
            self.reduction, self.smoothing, self.ignore_index = reduction, label_smoothing, ignore_index
            self.count = rows[1, :1]                              # the backward's divisor for 'mean'
            if reduction == "none":
                return rows[0]
            if reduction == "sum":
                return rows[0].sum()
            sums = rows.sum(axis=1)                               # [total loss, rows that count]
            self.count = sums[1:]                                 # (slices: views, no launch)
            return (sums[:1] / self.count).reshape(())            # every row ignored: NaN, as PyTorch
        mine = getattr(K.active(), "softmax_cross_entropy", None)    # a learner's exercise (kernels.use(folder))
        if mine is not None and plain and reduction == "mean" and not label_smoothing:
            loss, self.mine = mine(logits, target)
            return xp.asarray(loss, dtype=logits.dtype)
        logp = _log_softmax_rows(logits, xp)
        target, row_weight, valid = _row_weights(xp, target, weight, ignore_index, c, logits.dtype,
                                                 ignore_index is not None)
        loss = -logp[xp.arange(n), target]
        if row_weight is not None:
            loss *= row_weight
        if label_smoothing:
            smooth = -(logp.sum(axis=1) if weight is None else logp @ weight)
            if valid is not None:
                smooth *= valid
            loss = (1 - label_smoothing) * loss + (label_smoothing / c) * smooth
        self.logp, self.target, self.weight, self.reduction, self.smoothing = logp, target, weight, reduction, label_smoothing
        self.row_weight, self.valid = row_weight, valid
        self.count = n if row_weight is None else row_weight.sum()
        if reduction == "none":
            return loss
        total = loss.sum()
        if reduction == "sum" or row_weight is None:
            return total if reduction == "sum" else total / n
        with np.errstate(invalid="ignore", divide="ignore"):      # every row ignored: NaN, as PyTorch
            return (total / self.count).astype(logits.dtype)

    def backward(self, grad):
        if hasattr(self, "mine"):                                    # the learner's dlogits, (p - y) / N
            return (self.mine * grad).astype(grad.dtype, copy=False), None
        if self.gpu:
            return fused_loss.cross_entropy_backward(grad, self.logp, self.target, self.smoothing, self.reduction,
                                                     self.count, self.ignore_index), None
        xp = get_array_module(grad)
        logp, target, eps, r, w = self.logp, self.target, self.smoothing, self.row_weight, self.weight
        n, c = logp.shape
        rows = xp.arange(n)
        dx = xp.exp(logp)                                   # softmax
        if r is None:                                       # every row counts with weight 1
            dx[rows, target] -= 1 - eps
            if eps:
                dx -= eps / c
        else:
            coef = (1 - eps) * r
            if eps:
                coef = coef + (eps / c) * (c if w is None else w.sum()) * self.valid
            dx *= coef[:, None]
            dx[rows, target] -= (1 - eps) * r
            if eps:
                dx -= (eps / c) * self.valid[:, None] * (1 if w is None else w[None, :])
        if self.reduction == "none":
            dx *= grad[:, None]
        elif self.reduction == "sum" or r is None:
            dx *= grad / n if self.reduction == "mean" else grad
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                dx *= grad / self.count
        return dx, None


class SoftTargetCrossEntropyFunction(Function):
    """Cross-entropy of logits (n, C) against class probabilities q (n, C) (smoothed: q(1-e) + e/C), weighted:
    loss_i = -sum_j w_j q_ij logp_ij;  dx_ij = p_ij sum_k w_k q_ik - w_j q_ij;  dq_ij = -(1-e) w_j logp_ij.
    'mean' divides by n (PyTorch's rule for probability targets, weights or not)."""

    def forward(self, logits, target, weight, reduction, label_smoothing):
        xp = get_array_module(logits)
        n, c = logits.shape
        logp = _log_softmax_rows(logits, xp)
        q = target * (1 - label_smoothing) + label_smoothing / c if label_smoothing else target
        wq = q if weight is None else q * weight
        loss = -(wq * logp).sum(axis=1)
        self.logp, self.wq, self.weight, self.n, self.reduction = logp, wq, weight, n, reduction
        self.eps = label_smoothing
        if reduction == "none":
            return loss
        with np.errstate(invalid="ignore", divide="ignore"):
            return loss.sum() if reduction == "sum" else (loss.sum() / n).astype(logits.dtype)

    def backward(self, grad):
        xp = get_array_module(grad)
        scale = grad[:, None] if self.reduction == "none" else (grad / self.n if self.reduction == "mean" else grad)
        dx = (xp.exp(self.logp) * self.wq.sum(axis=1, keepdims=True) - self.wq) * scale
        dq = None
        if self.needs_input_grad[1]:
            dq = -(1 - self.eps) * self.logp * (1 if self.weight is None else self.weight) * scale
        return dx, dq


def check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _class_weight(op, weight, input):
    """``weight`` (C,) as an array of the input's dtype and device, or None."""
    if weight is None:
        return None
    array = weight.data if isinstance(weight, Tensor) else weight
    array = get_array_module(input.data).asarray(array, dtype=input.dtype)
    if array.shape != (input.shape[1],):
        raise ValueError(f"{op}: weight must have shape ({input.shape[1]},) (one per class) for input of shape "
                         f"{tuple(input.shape)}, got {tuple(array.shape)}")
    return array


def _class_target(op, input, target, ignore_index):
    """Check logits/log-probabilities (N, C, d1, ...) against integer class indices (N, d1, ...);
    return the target as an array on the input's device, and whether some target may be ``ignore_index``
    (False only where the host targets were read and none is)."""
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (C,), (N, C) or (N, C, d1, ...), got {tuple(input.shape)}")
    target = target.data if isinstance(target, Tensor) else target
    if get_array_module(target) is np:       # host data (NumPy, lists): checked here, before any copy
        target = np.asarray(target)
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"{op}: expected a target of shape {expected} for input of shape "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype}")
    # The range check reads the targets on the host. For targets already on a GPU it would cost
    # a device-to-host synchronisation per training step: there an out-of-range class makes its
    # loss (and gradient) NaN instead (``_row_weights``), which the training loop reports.
    may_ignore = True
    if isinstance(target, np.ndarray):
        low, high = (int(target.min()), int(target.max())) if target.size else (0, -1)
        may_ignore = low <= ignore_index <= high
        if low < 0 or high >= input.shape[1]:
            counted = target[target != ignore_index]           # ignore_index may lie outside [0, C)
            if counted.size and (int(counted.min()) < 0 or int(counted.max()) >= input.shape[1]):
                raise ValueError(f"{op}: target values must be in [0, {input.shape[1]}) (or ignore_index="
                                 f"{ignore_index}), got min {int(counted.min())} and max {int(counted.max())}")
    return get_array_module(input.data).asarray(target), may_ignore


def _class_dim_last(input, target):
    """(N, C, d1, ...) input and (N, d1, ...) targets (or (N, C, d1, ...) probabilities) as (N*d1*..., C)
    and (N*d1*...,) (or (N*d1*..., C))."""
    perm = (0,) + tuple(range(2, input.ndim)) + (1,)
    flat = input.permute(*perm).reshape(-1, input.shape[1])
    if target.ndim == input.ndim:
        target = (target.permute(*perm) if isinstance(target, Tensor) else target.transpose(perm))
        return flat, target.reshape(-1, input.shape[1])
    return flat, target.reshape(-1)


def _unbatched(op, input, target):
    """An unbatched sample (C,) with a 0-d target (or a (C,) probability vector) as a batch of one."""
    if input.ndim != 1:
        return input, target, False
    shape = tuple(getattr(target, "shape", np.shape(target)))
    if shape not in ((), tuple(input.shape)):
        raise ValueError(f"{op}: expected a target of shape () (or {tuple(input.shape)} probabilities) for "
                         f"input of shape {tuple(input.shape)}, got {shape}")
    if isinstance(target, Tensor):
        target = target.unsqueeze(0)
    else:
        target = np.asarray(target)[None] if get_array_module(target) is np else target[None]
    return input.unsqueeze(0), target, True


def _is_probability_target(input, target):
    shape = tuple(getattr(target, "shape", np.shape(target)))
    dtype = getattr(target, "dtype", None)
    if dtype is None:
        dtype = np.asarray(target).dtype
    return shape == tuple(input.shape) and np.dtype(dtype).kind == "f"


def cross_entropy(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy between logits ``input`` (N, C) (or (N, C, d1, ...), or (C,)) and ``target``:
    class indices (N,) (integers) or class probabilities of the input's shape (floats), as
    ``torch.nn.functional.cross_entropy``.

    ``weight`` (C,) rescales each class; with class indices 'mean' is PyTorch's weighted mean
    (divided by the sum of the targets' weights) and targets equal to ``ignore_index`` count for
    nothing. ``size_average``/``reduce`` (deprecated in PyTorch) are not supported.
    """
    _check_deprecated("cross_entropy", size_average, reduce)
    check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    input, target, unbatched = _unbatched("cross_entropy", input, target)
    if input.ndim < 2:
        raise ValueError(f"cross_entropy: expected input of shape (C,), (N, C) or (N, C, d1, ...), "
                         f"got {tuple(input.shape)}")
    weight = _class_weight("cross_entropy", weight, input)
    if _is_probability_target(input, target):
        if not isinstance(target, Tensor):
            target = Tensor(get_array_module(input.data).asarray(target, dtype=input.dtype))
        flat, flat_target = _class_dim_last(input, target) if input.ndim > 2 else (input, target)
        loss = SoftTargetCrossEntropyFunction.apply(flat, flat_target, weight, reduction, float(label_smoothing))
        shape = (input.shape[0],) + tuple(input.shape[2:])
    else:
        target, may_ignore = _class_target("cross_entropy", input, target, ignore_index)
        flat, flat_target = _class_dim_last(input, target) if input.ndim > 2 else (input, target)
        loss = CrossEntropyFunction.apply(flat, flat_target, weight, int(ignore_index) if may_ignore else None,
                                          reduction, float(label_smoothing))
        shape = target.shape
    if reduction != "none":
        return loss
    return loss.reshape(()) if unbatched else loss.reshape(shape)


def nll_loss(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C) (or (N, C, d1, ...), or (C,) with a
    0-d target) at integer ``target``: -weight[t] * input[t], 'mean' divided by the sum of the
    targets' weights; targets equal to ``ignore_index`` count for nothing (``torch.nn.functional.nll_loss``).
    """
    _check_deprecated("nll_loss", size_average, reduce)
    check_reduction(reduction, "nll_loss")
    if isinstance(target, Tensor) and target.ndim == input.ndim == 1:
        raise ValueError(f"nll_loss: expected a target of shape () for input of shape {tuple(input.shape)}, "
                         f"got {tuple(target.shape)}")
    input, target, unbatched = _unbatched("nll_loss", input, target)
    weight = _class_weight("nll_loss", weight, input)
    target, may_ignore = _class_target("nll_loss", input, target, ignore_index)
    flat, flat_target = _class_dim_last(input, target) if input.ndim > 2 else (input, target)
    xp = get_array_module(flat.data)
    flat_target, row_weight, _ = _row_weights(xp, flat_target, weight, int(ignore_index), flat.shape[1], flat.dtype,
                                              may_ignore)
    picked = -flat[xp.arange(flat.shape[0]), flat_target]
    if row_weight is not None:
        picked = picked * Tensor(row_weight)
    if reduction == "none":
        return picked.reshape(()) if unbatched else picked.reshape(target.shape)
    if reduction == "sum" or row_weight is None:
        return picked.sum() if reduction == "sum" else picked.mean()
    with np.errstate(invalid="ignore", divide="ignore"):      # every target ignored: NaN, as PyTorch
        return picked.sum() / Tensor(row_weight.sum())


def _check_deprecated(op, size_average, reduce):
    if size_average is not None or reduce is not None:
        raise ValueError(f"{op}: size_average and reduce (deprecated in PyTorch) are not supported; "
                         "use reduction='mean', 'sum' or 'none'")


def mse_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)^2`` reduced by ``reduction``."""
    _check_deprecated("mse_loss", size_average, reduce)
    check_reduction(reduction, "mse_loss")
    if not isinstance(target, Tensor):    # arrays and lists take the input's dtype and device
        target = Tensor(get_array_module(input.data).asarray(target, dtype=input.dtype))
    if target.shape != input.shape:
        raise ValueError(f"mse_loss: input shape {tuple(input.shape)} and target shape "
                         f"{tuple(target.shape)} differ")
    diff = input - target
    sq = diff * diff
    return sq if reduction == "none" else (sq.sum() if reduction == "sum" else sq.mean())
