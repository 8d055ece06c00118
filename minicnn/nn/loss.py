"""Loss functions as modules (``criterion = CrossEntropyLoss(); loss = criterion(logits, target)``)."""
from __future__ import annotations

from .. import functional as F
from ..autograd import Tensor
from .module import Module


class _Loss(Module):
    def __init__(self, *, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    """A loss with PyTorch's per-class ``weight`` (C,) (kept as the buffer ``weight``) and ``ignore_index``."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean"):
        if size_average is not None or reduce is not None:
            raise ValueError(f"{type(self).__name__}: size_average and reduce (deprecated in PyTorch) are not "
                             "supported; use reduction='mean', 'sum' or 'none'")
        super().__init__(reduction=reduction)
        if weight is not None and not isinstance(weight, Tensor):
            weight = Tensor(weight)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def extra_repr(self):
        extra = [super().extra_repr(), f"ignore_index={self.ignore_index}" if self.ignore_index != -100 else ""]
        return ", ".join(e for e in extra if e)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy of logits (N, C) against class indices (N,) or class probabilities (N, C);
    see ``F.cross_entropy``."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(weight, size_average, ignore_index, reduce, reduction)
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)

    def extra_repr(self):
        extra = [super().extra_repr(), f"label_smoothing={self.label_smoothing}" if self.label_smoothing else ""]
        return ", ".join(e for e in extra if e)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (N, C) (e.g. from ``LogSoftmax(dim=1)``) at class indices (N,);
    see ``F.nll_loss``."""

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error ``(input - target)^2``, reduced by ``reduction``."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)
