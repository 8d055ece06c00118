"""Weight initialisation, like ``torch.nn.init``.

Every function fills ``tensor.data`` **in place** (same array, same dtype, same device) and
returns the tensor.  Random numbers come from the device's default generator
(``backend.generator``), so ``minicnn.manual_seed(s)`` makes initialisation reproducible;
the random ones also take ``generator=`` (a NumPy/CuPy ``Generator`` on the tensor's device).
Samples are drawn straight into the tensor's own array, in its dtype (as PyTorch does), with no
full-size temporaries: initialising VGG-16's 102M-weight layer must not cost another 800 MB.

The scaled initialisations keep the variance of activations roughly constant across layers:

* Xavier/Glorot (2010):  std = gain * sqrt(2 / (fan_in + fan_out));
* Kaiming/He (2015):     std = gain / sqrt(fan),  gain = calculate_gain(nonlinearity, a);

and a uniform distribution U(-bound, bound) has std = bound / sqrt(3).
For a conv weight (out, in/groups, kh, kw): fan_in = in/groups * kh * kw, fan_out = out * kh * kw.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    linear, conv*, sigmoid: 1;  tanh: 5/3;  relu: sqrt(2);  selu: 3/4;
    leaky_relu: sqrt(2 / (1 + negative_slope^2)), ``param`` = negative slope (default 0.01).
    """
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight: (out, in) for Linear, (out, in/groups, kh, kw) for Conv2d."""
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions "
                         f"(got shape {tuple(tensor.shape)})")
    receptive_field = int(np.prod(tensor.shape[2:]))     # kh * kw for a conv weight, 1 for Linear
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _generator(tensor, generator):
    """``generator`` if given, else the default generator of the tensor's device."""
    return generator if generator is not None else backend.generator(tensor.device)


def _draw(tensor, generator, method):
    """Fill ``tensor.data`` in place with ``generator.<method>`` samples (``random``: U[0, 1),
    ``standard_normal``: N(0, 1)), drawn directly in float32/float64; other dtypes go via float32."""
    gen, data = _generator(tensor, generator), tensor.data
    if data.dtype in (np.float32, np.float64) and data.flags.c_contiguous:
        getattr(gen, method)(data.shape, dtype=data.dtype, out=data)   # CuPy: no size = ONE value
    else:
        data[...] = getattr(gen, method)(data.shape, dtype=np.float32)
    return data


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with samples of U(a, b)."""
    if not a <= b:
        raise ValueError(f"uniform_: expected a <= b, got a={a}, b={b}")
    data = _draw(tensor, generator, "random")       # U[0, 1), then scaled in place
    data *= b - a
    data += a
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with samples of N(mean, std^2)."""
    if std < 0:
        raise ValueError(f"normal_: std must be non-negative, got {std}")
    data = _draw(tensor, generator, "standard_normal")
    data *= std
    data += mean
    return tensor


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0, generator=None):
    """Fill with N(mean, std^2) samples redrawn until they lie in [a, b].

    ``a`` and ``b`` are absolute bounds, as in PyTorch (with ``std=0.01`` the default [-2, 2]
    cuts nothing off).  Sampling is by rejection: draw, then redraw the samples outside [a, b];
    an interval holding less than 1% of the distribution is refused rather than looping.
    """
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    if std <= 0:
        raise ValueError(f"trunc_normal_: std must be positive, got {std}")

    def cdf(v):      # cumulative distribution function of N(mean, std^2)
        return 0.5 * (1 + math.erf((v - mean) / (std * math.sqrt(2))))

    if cdf(b) - cdf(a) < 0.01:
        raise ValueError(f"trunc_normal_: [{a}, {b}] holds less than 1% of N({mean}, {std}^2); "
                         "choose bounds closer to the mean")
    normal_(tensor, mean, std, generator)
    x, gen = tensor.data, _generator(tensor, generator)
    outside = (x < a) | (x > b)
    while outside.any():
        x[outside] = mean + std * gen.standard_normal(int(outside.sum()), dtype=np.float32)
        outside = (x < a) | (x > b)
    return tensor


def constant_(tensor, val: float):
    """Fill with ``val``."""
    tensor.data[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """Glorot uniform: U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None):
    """He uniform: U(-bound, bound), bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).

    ``a`` is the negative slope of a leaky ReLU.  PyTorch's default for Conv2d and Linear
    weights is ``kaiming_uniform_(w, a=sqrt(5))``: gain = sqrt(1/3), so bound = 1/sqrt(fan_in).
    """
    fan = _calculate_correct_fan(tensor, mode)
    if fan == 0:
        return tensor                                   # an empty tensor: nothing to fill
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None):
    """He normal: N(0, std^2), std = gain / sqrt(fan) (ResNet uses ``mode='fan_out', nonlinearity='relu'``)."""
    fan = _calculate_correct_fan(tensor, mode)
    if fan == 0:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


def default_(weight, bias=None):
    """PyTorch's default initialisation of ``Conv2d`` and ``Linear``: ``kaiming_uniform_(w, a=sqrt(5))``,
    i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias uniform in the same bounds (zero when fan_in is 0)."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)
    return weight
