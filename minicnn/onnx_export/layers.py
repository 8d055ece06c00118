"""ONNX converters for minicnn's layers (``minicnn.nn``), one per class, in eval-mode semantics.

Where minicnn (that is, PyTorch) and ONNX define an operator differently, the converter
emits PyTorch's meaning:

* ``MaxPool2d(ceil_mode=True)``: PyTorch drops a last window that would start in the right
  padding; ONNX's ``ceil_mode`` does not (its shape inference then disagrees with the graph).  The exporter computes the
  output size PyTorch's way and writes it as explicit end padding (ignored by max pooling),
  so the ONNX node runs in floor mode. ``dilation`` becomes ONNX's ``dilations``.
* ``LocalResponseNorm`` with an even ``size``: PyTorch's window holds size//2 channels before
  c and (size-1)//2 after, ONNX's LRN floor((size-1)/2) before and ceil((size-1)/2) after (and
  onnxruntime refuses even sizes).  Odd sizes (AlexNet's 5) agree and use ONNX's LRN (both
  divide alpha by size); even sizes are written out as x * (k + alpha/size * window_sum(x^2))^-beta,
  the window sum a 1x1 convolution with a 0/1 band matrix.
* ``Subsampling`` (LeNet-5's S2/S4, no ONNX or PyTorch operator): weight[c] * (window sum) + bias[c]
  is a depthwise convolution whose kernel is filled with weight[c].
* ``AdaptiveAvgPool2d``: GlobalAveragePool for 1x1, AveragePool when the size divides evenly,
  otherwise two MatMuls with PyTorch's (overlapping) averaging bins, A_rows @ x @ A_cols^T.
* ``Dropout`` and ``Identity`` emit nothing (eval mode); ``BatchNorm`` uses its running statistics.
"""
from __future__ import annotations

import numpy as np

from .. import backend, nn
from ..architectures.lenet import MaskedConv2d
from ..checks import pair
from ..kernels.geometry import normalize_conv_padding, pool_output_size
from .graph import Value, register_converter


# --------------------------------------------------------------------------- containers

@register_converter(nn.Sequential)
def _sequential(g, module, name, x):
    for child_name, child in module._modules.items():
        x = g.call(child, f"{name}.{child_name}", x)
    return x


@register_converter(nn.Identity)
@register_converter(nn.Dropout)
def _passthrough(g, module, name, x):
    return Value(x.name, module(x.tensor))


# --------------------------------------------------------------------------- convolution, linear

def _conv_node(g, x, name, weight_name, bias_name, kernel, stride, pads, dilation, groups, y):
    inputs = [x.name, weight_name] + ([bias_name] if bias_name else [])
    return Value(g.node("Conv", inputs, name, kernel_shape=list(kernel), strides=list(stride), pads=pads,
                        dilations=list(dilation), group=groups), y)


@register_converter(nn.Conv2d)
@register_converter(MaskedConv2d)
def _conv2d(g, module, name, x):
    """Conv; LeNet-5's C3 with its connection table stores weight * mask (the weights that act)."""
    (top, bottom), (left, right) = normalize_conv_padding(module.padding, module.kernel_size, module.stride,
                                                          module.dilation, op="Conv2d")
    weight = module.weight.data
    if isinstance(module, MaskedConv2d):
        weight = weight * module.mask.data
    bias = g.param(f"{name}.bias", module.bias) if module.bias is not None else None
    return _conv_node(g, x, name, g.param(f"{name}.weight", weight), bias, module.kernel_size, module.stride,
                      [top, left, bottom, right], module.dilation, module.groups, module(x.tensor))


@register_converter(nn.Subsampling)
def _subsampling(g, module, name, x):
    """weight[c] * (sum of the window) + bias[c]: a depthwise Conv with kernel weight[c] everywhere."""
    c, (kh, kw) = module.channels, module.kernel_size
    weight = np.broadcast_to(np.asarray(_numpy(module.weight)).reshape(c, 1, 1, 1), (c, 1, kh, kw))
    return _conv_node(g, x, name, g.const(f"{name}.weight", weight), g.param(f"{name}.bias", module.bias),
                      (kh, kw), module.stride, [0, 0, 0, 0], (1, 1), c, module(x.tensor))


@register_converter(nn.Linear)
def _linear(g, module, name, x):
    y = module(x.tensor)
    if x.tensor.ndim == 2:
        inputs = [x.name, g.param(f"{name}.weight", module.weight)]
        if module.bias is not None:
            inputs.append(g.param(f"{name}.bias", module.bias))
        return Value(g.node("Gemm", inputs, name, transB=1), y)
    out = g.node("MatMul", [x.name, g.const(f"{name}.weight_t", _numpy(module.weight).T)], f"{name}.matmul")
    if module.bias is not None:
        out = g.node("Add", [out, g.param(f"{name}.bias", module.bias)], name)
    return Value(out, y)


@register_converter(nn.Flatten)
def _flatten(g, module, name, x):
    return g.flatten(x, name, module.start_dim, module.end_dim)


@register_converter(nn.ZeroPad2d)
def _zero_pad(g, module, name, x):
    left, right, top, bottom = module.padding
    lead = x.tensor.ndim - 2
    pads = [0] * lead + [top, left] + [0] * lead + [bottom, right]
    pads_name = g.const(f"{name}.pads", np.array(pads, dtype=np.int64), dtype=np.int64)
    return Value(g.node("Pad", [x.name, pads_name], name, mode="constant"), module(x.tensor))


# --------------------------------------------------------------------------- activations

@register_converter(nn.ReLU)
def _relu(g, module, name, x):
    return Value(g.node("Relu", [x.name], name), module(x.tensor))


@register_converter(nn.Tanh)
def _tanh(g, module, name, x):
    return Value(g.node("Tanh", [x.name], name), module(x.tensor))


@register_converter(nn.Sigmoid)
def _sigmoid(g, module, name, x):
    return Value(g.node("Sigmoid", [x.name], name), module(x.tensor))


@register_converter(nn.ScaledTanh)
def _scaled_tanh(g, module, name, x):
    """a * tanh(b * x) (LeCun's 1.7159 * tanh(2x/3)): Mul, Tanh, Mul."""
    inner = g.node("Mul", [x.name, g.const(f"{name}.b", module.b)], f"{name}.scale_in")
    t = g.node("Tanh", [inner], f"{name}.tanh")
    return Value(g.node("Mul", [t, g.const(f"{name}.a", module.a)], name), module(x.tensor))


@register_converter(nn.Softmax)
@register_converter(nn.LogSoftmax)
def _softmax(g, module, name, x):
    op = "Softmax" if isinstance(module, nn.Softmax) else "LogSoftmax"
    return Value(g.node(op, [x.name], name, axis=int(module.dim)), module(x.tensor))


# --------------------------------------------------------------------------- pooling

def _pool_pads(module, name, x, kernel, stride, padding, dilation=(1, 1)):
    """[top, left, bottom, right] giving PyTorch's output size with ONNX's floor rule (see the docstring).

    In floor mode both agree with the padding as given.  In ceil mode the end padding becomes
    (out - 1) * stride + dilation * (kernel - 1) + 1 - size - pad: the floor rule then gives exactly PyTorch's ``out``.
    """
    if not module.ceil_mode:
        return [padding[0], padding[1], padding[0], padding[1]]
    pads_end = []
    for axis in range(2):
        size, k, s, p, d = int(x.shape[2 + axis]), kernel[axis], stride[axis], padding[axis], dilation[axis]
        end = (pool_output_size(size, k, s, p, d, True) - 1) * s + d * (k - 1) + 1 - size - p
        if end < 0:
            raise NotImplementedError(f"onnx.export: {name}: ceil_mode with a kernel smaller than the stride "
                                      f"({k} < {s}) leaves input rows unused, which ONNX pads cannot express")
        pads_end.append(end)
    return [padding[0], padding[1], pads_end[0], pads_end[1]]


@register_converter(nn.MaxPool2d)
def _max_pool(g, module, name, x):
    kernel, padding = _pair(module.kernel_size, "kernel_size"), _pair(module.padding, "padding")
    stride, dilation = _pair(module.stride, "stride"), _pair(module.dilation, "dilation")
    if module.return_indices:
        raise NotImplementedError(f"onnx.export: {name}: MaxPool2d(return_indices=True) is not supported "
                                  "(the graph carries one tensor from layer to layer)")
    pads = _pool_pads(module, name, x, kernel, stride, padding, dilation)
    return Value(g.node("MaxPool", [x.name], name, kernel_shape=list(kernel), strides=list(stride), pads=pads,
                        dilations=list(dilation)), module(x.tensor))


@register_converter(nn.AvgPool2d)
def _avg_pool(g, module, name, x):
    kernel, padding = _pair(module.kernel_size, "kernel_size"), _pair(module.padding, "padding")
    stride = _pair(module.stride, "stride")
    pads = _pool_pads(module, name, x, kernel, stride, padding)
    extra = pads[2] > padding[0] or pads[3] > padding[1]       # ceil_mode's overhang, which PyTorch never counts
    if extra and module.count_include_pad and any(padding):
        raise NotImplementedError(f"onnx.export: {name}: AvgPool2d with ceil_mode, padding and "
                                  "count_include_pad=True has no ONNX equivalent")
    include = int(module.count_include_pad and any(padding))
    return Value(g.node("AveragePool", [x.name], name, kernel_shape=list(kernel), strides=list(stride), pads=pads,
                        count_include_pad=include), module(x.tensor))


@register_converter(nn.AdaptiveAvgPool2d)
def _adaptive_avg_pool(g, module, name, x):
    y = module(x.tensor)
    (h, w), (oh, ow) = x.shape[2:], y.shape[2:]
    if (oh, ow) == (1, 1):
        return Value(g.node("GlobalAveragePool", [x.name], name), y)
    if h % oh == 0 and w % ow == 0:
        kernel = [h // oh, w // ow]
        return Value(g.node("AveragePool", [x.name], name, kernel_shape=kernel, strides=kernel), y)
    cols = g.const(f"{name}.cols", _bins(ow, w).T)                       # (W, ow)
    rows = g.const(f"{name}.rows", _bins(oh, h))                         # (oh, H)
    t = g.node("MatMul", [x.name, cols], f"{name}.pool_cols")            # (N, C, H, ow)
    return Value(g.node("MatMul", [rows, t], name), y)                   # (N, C, oh, ow)


def _bins(n_out, size):
    """(n_out, size) matrix: row i averages input [floor(i*size/n_out), ceil((i+1)*size/n_out)), as PyTorch."""
    i = np.arange(n_out)
    start, end = (i * size) // n_out, -((-(i + 1) * size) // n_out)
    pos = np.arange(size)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return inside / (end - start)[:, None]


# --------------------------------------------------------------------------- normalisation

@register_converter(nn.BatchNorm1d)
@register_converter(nn.BatchNorm2d)
def _batch_norm(g, module, name, x):
    if module.running_mean is None:
        raise ValueError(f"onnx.export: {name}: a BatchNorm without running statistics "
                         "(track_running_stats=False) normalises with each batch's statistics even in eval mode; "
                         "ONNX's BatchNormalization needs running statistics")
    c = module.num_features
    scale = g.param(f"{name}.weight", module.weight) if module.affine else g.const(f"{name}.weight", np.ones(c))
    bias = g.param(f"{name}.bias", module.bias) if module.affine else g.const(f"{name}.bias", np.zeros(c))
    inputs = [x.name, scale, bias, g.param(f"{name}.running_mean", module.running_mean),
              g.param(f"{name}.running_var", module.running_var)]
    return Value(g.node("BatchNormalization", inputs, name, epsilon=float(module.eps)), module(x.tensor))


@register_converter(nn.LocalResponseNorm)
def _local_response_norm(g, module, name, x):
    size, y = int(module.size), module(x.tensor)
    if size % 2 == 1:
        return Value(g.node("LRN", [x.name], name, size=size, alpha=float(module.alpha), beta=float(module.beta),
                            bias=float(module.k)), y)
    c = int(x.shape[1])                      # even size: PyTorch's window, written out (see the docstring)
    band = np.zeros((c, c, 1, 1))
    for out in range(c):
        band[out, max(0, out - size // 2):min(c, out + (size - 1) // 2 + 1), 0, 0] = 1.0
    sq = g.node("Mul", [x.name, x.name], f"{name}.square")
    window = g.node("Conv", [sq, g.const(f"{name}.window", band)], f"{name}.window_sum", kernel_shape=[1, 1])
    scaled = g.node("Mul", [window, g.const(f"{name}.alpha", module.alpha / size)], f"{name}.scaled")
    base = g.node("Add", [scaled, g.const(f"{name}.k", module.k)], f"{name}.base")
    div = g.node("Pow", [base, g.const(f"{name}.minus_beta", -module.beta)], f"{name}.pow")
    return Value(g.node("Mul", [x.name, div], name), y)


def _pair(value, name):
    return pair("onnx.export", name, value)


def _numpy(tensor):
    return backend.to_numpy(tensor.data)
