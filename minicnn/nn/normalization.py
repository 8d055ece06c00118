"""Normalisation layers: ``BatchNorm1d``, ``BatchNorm2d`` and AlexNet's ``LocalResponseNorm``."""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor
from . import init
from ._utils import check_dtype, check_input, empty_parameter
from .module import Module


class _BatchNorm(Module):
    """Batch normalisation (Ioffe & Szegedy, 2015) over every dimension but the channels (dim 1).

    Training mode: normalise with the batch's mean and (biased) variance per channel, then
    update the buffers ``running_mean`` and ``running_var`` (the latter with the *unbiased*
    batch variance):  running = (1 - momentum) * running + momentum * batch_statistic,
    and count the batch in ``num_batches_tracked`` (int64).  With ``momentum=None`` the
    running statistics are plain averages over all batches seen (momentum = 1/num_batches_tracked).
    Evaluation mode: normalise with the running statistics (deterministic).
    Then y = weight * x_hat + bias per channel (``affine=True``: weight starts at 1, bias at 0).
    With ``track_running_stats=False`` there are no buffers and batch statistics are used in
    both modes.
    """

    _expected_shape = "(N, C, ...)"       # subclasses: the accepted input shapes, for error messages
    _expected_ndims = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = empty_parameter((num_features,), device, dtype)
            self.bias = empty_parameter((num_features,), device, dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            xp, float_dtype = backend.array_module(device), backend.as_dtype(dtype)
            self.register_buffer("running_mean", Tensor(xp.zeros(num_features, dtype=float_dtype)))
            self.register_buffer("running_var", Tensor(xp.ones(num_features, dtype=float_dtype)))
            self.register_buffer("num_batches_tracked", Tensor(xp.zeros((), dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, input):
        name = f"{type(self).__name__}({self.num_features})"
        check_input(name, input, self._expected_shape.format(C=self.num_features), ndims=self._expected_ndims,
                    dim=1, size=self.num_features)
        check_dtype(name, input, self.weight if self.affine else self.running_mean)
        if self.training and input.numel() // self.num_features <= 1:
            raise ValueError(f"{name}: expected more than 1 value per channel when training, "
                             f"got input of shape {tuple(input.shape)}")

        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:                      # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.item())
        # batch statistics when training, or when there are no running statistics to use
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if track else None, self.running_var if track else None,
                            self.weight, self.bias, use_batch_stats, momentum, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs (after a ``Linear`` layer: (N, C))."""

    _expected_shape = "(N, {C}) or (N, {C}, L)"
    _expected_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, one mean/variance per channel over N, H and W."""

    _expected_shape = "(N, {C}, H, W)"
    _expected_ndims = (4,)


class LocalResponseNorm(Module):
    """AlexNet's local response normalisation across channels (Krizhevsky et al., 2012):

        b[c] = a[c] / (k + alpha/size * sum(a[c']^2 for the ``size`` channels c' around c)) ** beta

    (PyTorch's convention: alpha is divided by ``size``; AlexNet used size=5, alpha=1e-4,
    beta=0.75, k=2).  No parameters.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        check_input(f"LocalResponseNorm({self.size})", input, "(N, C, H, W)", ndims=(4,))
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
