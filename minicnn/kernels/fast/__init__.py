"""The fast kernels: the same functions as ``minicnn.kernels.textbook``, computing the same numbers,
written for speed (minicnn's CPU threads, arrays recycled from step to step and reused scratch
buffers, channels-last and whole-row gathers, shortcuts for 1x1, whole-input and tiny-map
convolutions and for kernel taps that read only padding, CuPy RawKernels on a GPU). Tested against
the textbook set.
"""
from .conv import col2im, conv2d_backward, conv2d_forward, im2col
from .misc import (linear_backward, linear_forward, parameter_updates, relu_backward, relu_forward, scaled_tanh_backward,
                    scaled_tanh_forward)
from .norm import batch_norm_backward, batch_norm_forward
from .pool import (adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward, avg_pool2d_backward,
                    avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward, max_pool2d_indices, subsample_backward,
                    subsample_forward)
from ..textbook import dropout_backward, dropout_forward, local_response_norm_backward, local_response_norm_forward

__all__ = ["im2col", "col2im", "conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward",
           "max_pool2d_indices",
           "avg_pool2d_forward", "avg_pool2d_backward", "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
           "subsample_forward", "subsample_backward", "batch_norm_forward", "batch_norm_backward",
           "local_response_norm_forward", "local_response_norm_backward", "dropout_forward", "dropout_backward",
           "linear_forward", "linear_backward", "relu_forward", "relu_backward", "scaled_tanh_forward",
           "scaled_tanh_backward", "parameter_updates"]
