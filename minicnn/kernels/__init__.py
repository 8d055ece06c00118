"""Hand-written kernels: plain-array functions with the forward and the backward pass side by side.

Every kernel takes NumPy or CuPy arrays (the library is found with ``get_array_module``, so the
same code runs on both devices), returns arrays of the dtype it was given (float32 in, float32
out), never touches autograd, and raises a ``ValueError``/``TypeError`` naming the op on bad input.

The contract
------------
``*_forward(...) -> (out, cache)`` and ``*_backward(grad_out, cache, ...) -> gradients``:

* ``cache`` is an opaque small ``NamedTuple`` (its fields are documented on each class) holding
  what the backward pass needs.  Keep it from the forward call and pass it, unchanged, to the
  backward call; it may be used for several backward calls.  Caches hold *references* to the
  inputs (never copies): do not modify an input in place between forward and backward.
* A backward returns one gradient per differentiable input, in the forward's argument order,
  and ``None`` for the ones that were not asked for (``need_x=False`` ...) or whose input was
  ``None`` (no bias).
* ``grad_out`` must have the output's shape and dtype.

The kernels
-----------
conv (``conv.py``)
    ``normalize_conv_padding(padding, kernel_size, stride=1, dilation=1) -> ((top, bottom), (left, right))``
    ``conv2d_forward(x, weight, bias, stride, padding, dilation, groups) -> (out, ConvCache)``
        x (N, C, H, W), weight (O, C/groups, kH, kW), bias (O,) or None; stride, dilation (sh, sw)
        pairs or ints; padding ((top, bottom), (left, right)) as normalised above.
    ``conv2d_backward(grad, cache, need_x=True, need_w=True, need_b=True) -> (dx, dweight, dbias)``
    ``im2col(x, kernel_size, stride, padding, dilation) -> cols (C, kH, kW, N, Ho, Wo)`` and its
    adjoint ``col2im(cols, x_shape, kernel_size, stride, padding, dilation) -> dx`` (exposed to learn from).
pooling (``pool.py``)
    ``max_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, dilation=1) -> (out, MaxPoolCache)``
    ``max_pool2d_backward(grad, cache) -> dx``                       (gradient to the FIRST arg-max)
    ``avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None) -> (out, AvgPoolCache)``;  ``avg_pool2d_backward(grad, cache) -> dx``
    ``adaptive_avg_pool2d_forward(x, output_size) -> (out, AdaptiveAvgPoolCache)``;  ``..._backward(grad, cache) -> dx``
    ``subsample_forward(x, coeff, bias=None, kernel=2, stride=2) -> (out, SubsampleCache)``
    ``subsample_backward(grad, cache) -> (dx, dcoeff, dbias)``      (LeNet-5's trainable subsampling)
normalisation (``norm.py``)
    ``batch_norm_forward(x, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1,
    eps=1e-5) -> (out, BatchNormCache)``  (x (N, C) or (N, C, *); running stats updated in place)
    ``batch_norm_backward(grad, cache, need_x=True, need_w=True, need_b=True) -> (dx, dweight, dbias)``
    ``local_response_norm_forward(x, size, alpha=1e-4, beta=0.75, k=1.0) -> (out, LRNCache)``
    ``local_response_norm_backward(grad, cache) -> dx``
misc (``misc.py``)
    ``dropout_forward(x, p, training, rng) -> (out, mask or None)``;  ``dropout_backward(grad, mask) -> dx``
    ``linear_forward(x, weight, bias=None) -> (out, LinearCache)``  (x (*, in), weight (out, in))
    ``linear_backward(grad, cache, need_x=True, need_w=True, need_b=True) -> (dx, dweight, dbias)``

``reference.py`` has slow loop versions of each kernel (for reading, and for the tests);
``cuda.py`` has the CuPy ``RawKernel`` versions of im2col, col2im and max pooling, used
automatically for CuPy arrays.
"""
from .conv import (ConvCache, col2im, conv2d_backward, conv2d_forward, conv_output_size, im2col,
                   normalize_conv_padding)
from .misc import (LinearCache, dropout_backward, dropout_forward, linear_backward, linear_forward, relu_backward,
                   relu_forward)
from .norm import (BatchNormCache, LRNCache, batch_norm_backward, batch_norm_forward,
                   local_response_norm_backward, local_response_norm_forward)
from .pool import (AdaptiveAvgPoolCache, AvgPoolCache, MaxPoolCache, SubsampleCache, adaptive_avg_pool2d_backward,
                   adaptive_avg_pool2d_forward, avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward,
                   max_pool2d_forward, pool_output_size, subsample_backward, subsample_forward)

__all__ = [
    "normalize_conv_padding", "conv_output_size", "conv2d_forward", "conv2d_backward", "im2col", "col2im",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward", "subsample_forward", "subsample_backward",
    "pool_output_size", "batch_norm_forward", "batch_norm_backward", "local_response_norm_forward",
    "local_response_norm_backward", "dropout_forward", "dropout_backward", "linear_forward", "linear_backward", "relu_forward", "relu_backward",
    "ConvCache", "MaxPoolCache", "AvgPoolCache", "AdaptiveAvgPoolCache", "SubsampleCache", "BatchNormCache",
    "LRNCache", "LinearCache",
]
