"""Argument checks and output sizes shared by the textbook and the fast kernels: both sets accept
exactly the same arguments and raise the same errors.

* convolutions: ``normalize_conv_padding``, ``conv_output_size``, ``conv_geometry`` (a ``ConvGeometry``);
* pooling: ``pool_output_size`` (PyTorch's ``ceil_mode`` rule), ``pool_geometry`` (a ``PoolGeometry``),
  ``adaptive_output_size``, ``avg_pool_divisor_override``;
* batch-norm: ``check_batch_norm``; fully connected layers: ``check_linear``.
"""
from __future__ import annotations

import numbers

from ..checks import channel_vector, check_float_array, check_same_dtype
from .conv import ConvGeometry, conv_geometry, conv_output_size, normalize_conv_padding  # noqa: F401
from .pool import PoolGeometry, pool_geometry, pool_output_size  # noqa: F401


def adaptive_output_size(x, output_size):
    """Check an adaptive pooling call: -> (N, C, H, W, Ho, Wo); ``output_size`` is an int or a pair,
    ``None`` keeping that input size."""
    op = "adaptive_avg_pool2d"
    check_float_array(op, "x", x, 4, "(N, C, H, W)")
    N, C, H, W = (int(s) for s in x.shape)
    if output_size is None or isinstance(output_size, numbers.Integral):
        output_size = (output_size, output_size)
    try:
        oh, ow = output_size
    except (TypeError, ValueError):
        raise TypeError(f"{op}: output_size must be an int or a pair (None keeps the input size), "
                        f"got {output_size!r}") from None
    Ho, Wo = (H if oh is None else oh), (W if ow is None else ow)
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in (Ho, Wo)):
        raise ValueError(f"{op}: output_size must be positive ints, got {output_size!r}")
    if H < 1 or W < 1:
        raise ValueError(f"{op}: input must have non-empty spatial size, got shape {tuple(x.shape)}")
    return N, C, H, W, int(Ho), int(Wo)


def avg_pool_divisor_override(op, divisor_override):
    """``None``, or the override as a checked non-zero int."""
    if divisor_override is None:
        return None
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral) or divisor_override == 0:
        raise ValueError(f"{op}: divisor_override must be a non-zero int, got {divisor_override!r}")
    return int(divisor_override)


def check_linear(x, weight, bias):
    """x (*, in), weight (out, in), bias (out,) or None, all of one floating dtype."""
    op = "linear"
    check_float_array(op, "x", x)
    if x.ndim < 1:
        raise ValueError(f"{op}: x must have at least 1 dimension (*, in_features), got shape {tuple(x.shape)}")
    check_float_array(op, "weight", weight, 2, "(out_features, in_features)")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"{op}: x has {x.shape[-1]} features in its last dimension but weight expects "
                         f"{weight.shape[1]} (weight shape {tuple(weight.shape)}, x shape {tuple(x.shape)})")
    check_same_dtype(op, x, weight=weight)
    if bias is not None:
        check_float_array(op, "bias", bias, 1, "(out_features,)")
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"{op}: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
        check_same_dtype(op, x, bias=bias)


def check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps):
    """Check a batch-norm call: -> (momentum, eps, batch_stats), batch_stats True when the batch's
    own statistics are used (training, or no running statistics)."""
    op = "batch_norm"
    check_float_array(op, "x", x, None)
    if x.ndim < 2:
        raise ValueError(f"{op}: x must be (N, C) or (N, C, *), got shape {tuple(x.shape)}")
    C = x.shape[1]
    for name, a in (("running_mean", running_mean), ("running_var", running_var)):
        if a is not None:
            check_float_array(op, name, a, 1, f"(C,) with C = {C}")
            if a.shape[0] != C:
                raise ValueError(f"{op}: {name} must have shape ({C},), got {tuple(a.shape)}")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    channel_vector(op, "weight", weight, C, x)
    channel_vector(op, "bias", bias, C, x)
    if not isinstance(momentum, numbers.Real) or not isinstance(eps, numbers.Real) or eps < 0:
        raise ValueError(f"{op}: momentum and eps must be real numbers (eps >= 0), got {momentum!r}, {eps!r}")
    batch_stats = training or running_mean is None
    if batch_stats and (x.size // C if C else 0) <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, "
                         f"got input of shape {tuple(x.shape)}")
    return float(momentum), float(eps), batch_stats
