"""More CUDA kernels (CuPy ``RawKernel``s, compiled by ``cuda``'s helpers): each does in one launch what
took several array operations, because on a GPU a small network's step is bound by the host's rate of
issuing launches, not by arithmetic.

* ``sgd_step_multi``: one SGD step for many parameters at once (PyTorch's ``foreach``/``fused``), each
  parameter, gradient and momentum buffer found through a device table of pointers (``optim.foreach``).
* ``bn_eval``: eval-mode batch-norm with the running statistics, scale and shift computed in the kernel
  (was astype, sqrt, divide, add and the apply: 5 launches), optionally followed by a ReLU.
* ``relu_fwd`` / ``relu_bwd``: ReLU from its output (no mask array), 1 launch each way.
* ``scaled_tanh_fwd`` / ``scaled_tanh_bwd``: LeNet's a * tanh(b x), 1 launch each way (were 3 and 4).
* ``im2col_batch`` / ``col2im_batch``: columns laid out image by image, (N, C, kH, kW, Ho, Wo), so that
  one strided-batched GEMM writes the NCHW output (no transpose copy) and reads an NCHW gradient.

Like ``cuda``, this module never imports CuPy: the ``xp`` comes from the arrays.
"""
from __future__ import annotations

import numpy as np   # host-side scalar types and the pointer table only, never applied to device arrays

from ...backend import get_array_module
from . import cuda
from .cuda import _double_bits, _i64, _kernel, _launch

_SOURCES = {
    "sgd_step_multi": r"""
// One SGD step (torch.optim.SGD's rule, as sgd_step) over `count` parameters anywhere in memory. table[0..count]
// are the running offsets of the parameters' values (table[count] = total); then, per parameter k, its data
// pointer table[count+1+k], its gradient's [2*count+1+k], its momentum buffer's [3*count+1+k] and 1 at
// [4*count+1+k] when that buffer starts at this step (buf = d).  Flags: 1 maximize, 2 nesterov, 8 momentum.
extern "C" __global__ void sgd_step_multi(const long long* __restrict__ table, long long count, long long total,
        long long lr_bits, long long momentum_bits, long long dampening_bits, long long weight_decay_bits,
        long long flags) {
    const T lr = (T)AS_DOUBLE(lr_bits), momentum = (T)AS_DOUBLE(momentum_bits);
    const T dampening = (T)AS_DOUBLE(dampening_bits), weight_decay = (T)AS_DOUBLE(weight_decay_bits);
    GRID_STRIDE_LOOP(i, total) {
        long long k = 0, hi = count;                  // the parameter k with table[k] <= i < table[k + 1]
        while (hi - k > 1) {
            const long long mid = (k + hi) / 2;
            if (table[mid] <= i) k = mid; else hi = mid;
        }
        const long long j = i - table[k];
        T* p = (T*)table[count + 1 + k];
        const T* g = (const T*)table[2 * count + 1 + k];
        T d = (flags & 1) ? -g[j] : g[j];
        if (weight_decay != (T)0) d += weight_decay * p[j];
        if (flags & 8) {
            T* buf = (T*)table[3 * count + 1 + k];
            const T b = table[4 * count + 1 + k] ? d : momentum * buf[j] + ((T)1 - dampening) * d;
            buf[j] = b;
            d = (flags & 2) ? d + momentum * b : b;
        }
        p[j] -= lr * d;
    }
}
""",
}
cuda._SOURCES.update(_SOURCES)


def sgd_step_multi(table, count, total, dtype, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """One fused SGD step over ``count`` parameters (``total`` values of ``dtype``) found through ``table``
    (a device int64 array of offsets and pointers, see the kernel): one launch."""
    flags = (1 if maximize else 0) | (2 if nesterov else 0) | (8 if momentum else 0)
    if total:
        xp = get_array_module(table)
        _launch(_kernel(xp, "sgd_step_multi", dtype), total,
                (table, *_i64(count, total), _double_bits(lr), _double_bits(momentum), _double_bits(dampening),
                 _double_bits(weight_decay), np.int64(flags)))
