"""Argument checks and output sizes shared by the textbook and the fast kernels: both sets accept
exactly the same arguments and raise the same errors.

* convolutions: ``normalize_conv_padding``, ``conv_output_size``, ``conv_geometry`` (a ``ConvGeometry``);
* pooling: ``pool_output_size`` (PyTorch's ``ceil_mode`` rule), ``pool_geometry`` (a ``PoolGeometry``),
  ``adaptive_output_size``, ``avg_pool_divisor_override``, ``window_offset_to_flat`` (max pooling's indices);
* batch-norm: ``check_batch_norm``; fully connected layers: ``check_linear``.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

from ..backend import get_array_module as _array_module
from ..checks import channel_vector, check_float_array, check_same_dtype, pair


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


# --------------------------------------------------------------------------- convolution


def normalize_conv_padding(padding, kernel_size, stride=1, dilation=1, op: str = "conv2d"):
    """Turn any padding spec into ``((top, bottom), (left, right))``.

    Accepts an int, a pair ``(ph, pw)``, ``"valid"`` (no padding), ``"same"`` (output size = input
    size; stride 1 only, as in PyTorch; when the total d*(k-1) is odd the extra row/column goes on
    the bottom/right, as in PyTorch), a 4-tuple ``(top, bottom, left, right)``, or the nested form.
    """
    kh, kw = pair(op, "kernel_size", kernel_size, 1)
    sh, sw = pair(op, "stride", stride, 1)
    dh, dw = pair(op, "dilation", dilation, 1)
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                                 f"(stride {(sh, sw)}); give explicit padding")
            th, tw = dh * (kh - 1), dw * (kw - 1)
            return (th // 2, th - th // 2), (tw // 2, tw - tw // 2)
        raise ValueError(f"{op}: padding must be an int, a pair, a 4-tuple, 'valid' or 'same', got {padding!r}")
    if isinstance(padding, numbers.Integral):
        padding = (padding, padding)
    try:
        items = tuple(padding)
    except TypeError:
        raise TypeError(f"{op}: padding must be an int, a pair, a 4-tuple, 'valid' or 'same', got {padding!r}") from None
    if len(items) == 2 and all(isinstance(v, numbers.Integral) for v in items):
        flat = (items[0], items[0], items[1], items[1])
    elif len(items) == 4 and all(isinstance(v, numbers.Integral) for v in items):
        flat = items
    elif len(items) == 2 and all(isinstance(v, (tuple, list)) and len(v) == 2 for v in items):
        flat = (*items[0], *items[1])
    else:
        raise ValueError(f"{op}: padding must be an int, a pair (ph, pw), a 4-tuple (top, bottom, left, right), "
                         f"((top, bottom), (left, right)), 'valid' or 'same', got {padding!r}")
    if not all(isinstance(v, numbers.Integral) for v in flat) or any(v < 0 for v in flat):
        raise ValueError(f"{op}: padding must be non-negative ints, got {padding!r}")
    t, b, l, r = (int(v) for v in flat)
    return (t, b), (l, r)


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, dilation: int) -> int:
    """floor((size + pads - dilation*(kernel-1) - 1) / stride) + 1  (may be <= 0 when the kernel does not fit)."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def _norm_pad_pairs(op, padding):
    try:
        (t, b), (l, r) = padding
    except (TypeError, ValueError):
        raise ValueError(f"{op}: padding must be normalised to ((top, bottom), (left, right)) "
                         f"(see normalize_conv_padding), got {padding!r}") from None
    if not all(isinstance(v, numbers.Integral) and v >= 0 for v in (t, b, l, r)):
        raise ValueError(f"{op}: padding must be non-negative ints, got {padding!r}")
    return (int(t), int(b)), (int(l), int(r))


class ConvGeometry(NamedTuple):
    """Every size a convolution needs, checked once."""
    N: int
    C: int
    H: int
    W: int
    O: int
    kh: int
    kw: int
    Ho: int
    Wo: int
    stride: tuple
    padding: tuple      # ((top, bottom), (left, right))
    dilation: tuple
    groups: int

    @property
    def pointwise(self) -> bool:
        """A 1x1 kernel with stride 1 and no padding: the convolution is a plain matrix product."""
        return (self.kh, self.kw) == (1, 1) and self.stride == (1, 1) and self.padding == ((0, 0), (0, 0))

    @property
    def full_window(self) -> bool:
        """The kernel covers the whole (unpadded) input, one group: a fully connected layer on x.reshape(N, -1)
        (LeNet-5's C5)."""
        return ((self.kh, self.kw) == (self.H, self.W) and self.padding == ((0, 0), (0, 0))
                and self.dilation == (1, 1) and self.groups == 1)


def conv_geometry(x, weight, bias, stride, padding, dilation, groups, op="conv2d") -> ConvGeometry:
    """Validate the arguments of a convolution and work out its sizes."""
    check_float_array(op, "x", x, 4, "(N, C, H, W)")
    check_float_array(op, "weight", weight, 4, "(out_channels, in_channels/groups, kH, kW)")
    check_same_dtype(op, x, weight=weight, bias=bias)
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    N, C, H, W = (int(s) for s in x.shape)
    O, Cg, kh, kw = (int(s) for s in weight.shape)
    if C % groups:
        raise ValueError(f"{op}: in_channels ({C}) must be divisible by groups ({groups})")
    if O % groups:
        raise ValueError(f"{op}: out_channels ({O}, weight.shape[0]) must be divisible by groups ({groups})")
    if Cg != C // groups:
        raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} expects {Cg * groups} input channels "
                         f"(in_channels/groups = {Cg}, groups = {groups}), but x has {C} channels")
    if min(O, Cg, kh, kw) < 1:
        raise ValueError(f"{op}: weight must have non-zero sizes, got shape {tuple(weight.shape)}")
    if bias is not None:
        check_float_array(op, "bias", bias, 1, "(out_channels,)")
        if bias.shape[0] != O:
            raise ValueError(f"{op}: bias must have shape ({O},) (one per output channel), got {tuple(bias.shape)}")
    stride = pair(op, "stride", stride, 1)
    dilation = pair(op, "dilation", dilation, 1)
    (pt, pb), (pl, pr) = _norm_pad_pairs(op, padding)
    Ho = conv_output_size(H, kh, stride[0], pt, pb, dilation[0])
    Wo = conv_output_size(W, kw, stride[1], pl, pr, dilation[1])
    if Ho < 1 or Wo < 1:
        raise ValueError(f"{op}: kernel ({kh}x{kw}, dilation {dilation}) is larger than the padded input "
                         f"({H + pt + pb}x{W + pl + pr} = {H}x{W} plus padding {((pt, pb), (pl, pr))})")
    return ConvGeometry(N, C, H, W, O, kh, kw, Ho, Wo, stride, ((pt, pb), (pl, pr)), dilation, groups)


# --------------------------------------------------------------------------- pooling


def pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil_mode: bool = False) -> int:
    """PyTorch's pooling output size: floor (or ceil) of (size + 2*pad - dilation*(kernel-1) - 1)/stride + 1;
    with ``ceil_mode`` a last window starting at or beyond size + pad (in the right padding) is dropped."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


class PoolGeometry(NamedTuple):
    """Sizes of a pooling window sweep, checked once."""
    N: int
    C: int
    H: int
    W: int
    kernel: tuple
    stride: tuple
    padding: tuple      # (ph, pw), symmetric as in PyTorch
    dilation: tuple
    Ho: int
    Wo: int

    @property
    def pad_widths(self):
        """((top, bottom), (left, right)) that make every window lie inside the padded array
        (bottom/right may be larger than the padding with ceil_mode, or negative: unused rows cropped)."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel, self.stride, self.padding, self.dilation
        need_h = (self.Ho - 1) * sh + dh * (kh - 1) + 1
        need_w = (self.Wo - 1) * sw + dw * (kw - 1) + 1
        return (ph, need_h - self.H - ph), (pw, need_w - self.W - pw)

    def offsets(self):
        """Yield (index, rows, cols) for every kernel offset (i, j), index = i*kW + j:
        ``xpad[:, :, rows, cols]`` is element (i, j) of every window."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        for i in range(kh):
            for j in range(kw):
                yield (i * kw + j, slice(i * dh, i * dh + sh * (self.Ho - 1) + 1, sh),
                       slice(j * dw, j * dw + sw * (self.Wo - 1) + 1, sw))


def pool_geometry(op, x, kernel_size, stride, padding, dilation, ceil_mode, check_padding=True) -> PoolGeometry:
    """Validate pooling arguments (PyTorch's rules) and work out the output size."""
    check_float_array(op, "x", x, 4, "(N, C, H, W)")
    kernel = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) \
        else pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    dilation = pair(op, "dilation", dilation, 1)
    if check_padding:
        for p, k, d in zip(padding, kernel, dilation):
            if p > (d * (k - 1) + 1) // 2:
                raise ValueError(f"{op}: padding should be at most half of the (effective) kernel size, "
                                 f"got padding {padding} for kernel {kernel} with dilation {dilation}")
    N, C, H, W = (int(s) for s in x.shape)
    Ho = pool_output_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    Wo = pool_output_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"{op}: input of spatial size {H}x{W} (padding {padding}) is too small for kernel "
                         f"{kernel} (dilation {dilation}, stride {stride}): output size would be {Ho}x{Wo}")
    return PoolGeometry(N, C, H, W, kernel, stride, padding, dilation, Ho, Wo)


def window_offset_to_flat(argmax, g: PoolGeometry):
    """Max pooling's winners as PyTorch's indices: the kernel-offset index i*kW + j of each output's
    window (N, C, Ho, Wo) -> the flat index h*W + w into its input plane (int64), where
    h = oh*sh - ph + i*dh and w = ow*sw - pw + j*dw."""
    xp = _array_module(argmax)
    (_, kw), (sh, sw), (ph, pw), (dh, dw) = g.kernel, g.stride, g.padding, g.dilation
    index = argmax.astype(xp.int64)
    h = xp.arange(g.Ho, dtype=xp.int64)[:, None] * sh - ph + (index // kw) * dh
    w = xp.arange(g.Wo, dtype=xp.int64)[None, :] * sw - pw + (index % kw) * dw
    return h * g.W + w
