"""The GPU paths of the kernels.

1. Every kernel run on each device (``device`` fixture from conftest: 'cuda' is skipped with a
   reason when CuPy or a GPU is missing) and compared with the loop references.
2. The CUDA C sources of ``minicnn.kernels.fast.cuda`` compiled as plain C++ for the CPU (a few macros
   stand in for ``__global__``, ``blockIdx``...; one "thread" runs the whole grid-stride loop) and
   compared with NumPy, so their index arithmetic is tested even on machines without a GPU.
   Skipped when no C++ compiler is installed.
"""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from minicnn import backend
from minicnn.kernels.fast import cuda as cuda_kernels
from minicnn.kernels import reference as R
from minicnn.kernels import (adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward, avg_pool2d_backward,
                             avg_pool2d_forward, batch_norm_backward, batch_norm_forward, col2im, conv2d_backward,
                             conv2d_forward, dropout_forward, im2col, local_response_norm_backward,
                             local_response_norm_forward, max_pool2d_backward, max_pool2d_forward)
from minicnn.kernels.geometry import pool_geometry

# --------------------------------------------------------------------------- 1. kernels on each device

CONV_CASES = [  # x shape, weight shape, stride, padding, dilation, groups
    ((2, 4, 7, 6), (6, 4, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((3, 4, 9, 8), (4, 2, 3, 2), (2, 3), ((0, 2), (1, 0)), (2, 1), 2),
    ((2, 3, 11, 11), (3, 1, 5, 5), (2, 2), ((2, 2), (2, 2)), (1, 1), 3),     # depthwise
    ((2, 5, 6, 6), (7, 5, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),       # 1x1
    ((3, 6, 5, 4), (4, 3, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 2),       # 1x1, two groups
]


def to_dev(a, device):
    return backend.to_device(a, device)


def host(a):
    return backend.to_numpy(a)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_on_device(device, case, dtype):
    xs, ws, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype), rng.standard_normal(ws[0]).astype(dtype)
    out, cache = conv2d_forward(to_dev(x, device), to_dev(w, device), to_dev(b, device), stride, padding, dilation, groups)
    assert backend.device_of(out) == device and out.dtype == dtype
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(host(out), R.conv2d(x, w, b, stride, padding, dilation, groups), **tol)
    g = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = conv2d_backward(to_dev(g, device), cache)
    rdx, rdw, rdb = R.conv2d_backward(g, x, w, stride, padding, dilation, groups)
    for got, want in ((dx, rdx), (dw, rdw), (db, rdb)):
        assert backend.device_of(got) == device and got.dtype == dtype
        np.testing.assert_allclose(host(got), want, **tol)


def test_im2col_col2im_on_device(device):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 5))
    args = (3, 2), (2, 1), ((1, 2), (0, 1)), (1, 2)
    cols = im2col(to_dev(x, device), *args)
    np.testing.assert_array_equal(host(cols), im2col(x, *args))
    c = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(host(col2im(to_dev(c, device), x.shape, *args)), col2im(c, x.shape, *args), rtol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,dilation", [
    (3, 2, 1, False, 1), (2, 2, 0, True, 1), ((3, 2), (1, 2), (1, 0), True, (2, 1))])
def test_pooling_on_device(device, kernel, stride, padding, ceil_mode, dilation):
    rng = np.random.default_rng(2)
    x = (rng.permutation(2 * 3 * 9 * 8).reshape(2, 3, 9, 8) * 0.5).astype(np.float32)
    out, cache = max_pool2d_forward(to_dev(x, device), kernel, stride, padding, ceil_mode, dilation)
    expected, argmax = R.max_pool2d(x, *(pool_geometry("t", x, kernel, stride, padding, dilation, ceil_mode)[4:8]),
                                    ceil_mode)
    np.testing.assert_array_equal(host(out), expected)
    g = rng.standard_normal(out.shape).astype(np.float32)
    np.testing.assert_allclose(host(max_pool2d_backward(to_dev(g, device), cache)),
                               R.max_pool2d_backward(g, x.shape, argmax), rtol=1e-6)
    if dilation == 1:
        out, cache = avg_pool2d_forward(to_dev(x, device), kernel, stride, padding, ceil_mode, False)
        np.testing.assert_allclose(host(out), R.avg_pool2d(x, *pool_geometry("t", x, kernel, stride, padding, 1,
                                                                              ceil_mode)[4:7], ceil_mode, False),
                                   rtol=1e-5)
        np.testing.assert_allclose(host(avg_pool2d_backward(to_dev(g, device), cache)),
                                   R.avg_pool2d_backward(g, x.shape, *pool_geometry("t", x, kernel, stride, padding, 1,
                                                                                    ceil_mode)[4:7], ceil_mode, False),
                                   rtol=1e-5, atol=1e-6)


def test_max_pool_ties_on_device(device):
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, 1.0, 2.0], [0.0, 2.0, 2.0]]]])
    out, cache = max_pool2d_forward(to_dev(x, device), 2, 1)
    dx = max_pool2d_backward(to_dev(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]), device), cache)
    np.testing.assert_array_equal(host(dx), [[[[10.0, 0.0, 0.0], [0.0, 0.0, 60.0], [0.0, 30.0, 0.0]]]])


def test_norms_adaptive_and_dropout_on_device(device):
    """Forward against the loop references; every backward (dx, and batch-norm's dweight and dbias)
    against finite differences of the references, with a random upstream gradient (float64)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5, 6))
    out, cache = adaptive_avg_pool2d_forward(to_dev(x, device), (3, 4))
    np.testing.assert_allclose(host(out), R.adaptive_avg_pool2d(x, (3, 4)), rtol=1e-12)
    g = rng.standard_normal(out.shape)
    np.testing.assert_allclose(host(adaptive_avg_pool2d_backward(to_dev(g, device), cache)),
                               R.numerical_gradient(lambda t: R.adaptive_avg_pool2d(t, (3, 4)), x, g), rtol=1e-6, atol=1e-8)

    weight, bias = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    rm, rv = to_dev(np.zeros(3), device), to_dev(np.ones(3), device)
    out, cache = batch_norm_forward(to_dev(x, device), rm, rv, to_dev(weight, device), to_dev(bias, device), training=True)
    mean, var = R.batch_stats(x)
    np.testing.assert_allclose(host(out), R.batch_norm(x, mean, var, weight, bias), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(host(rm), 0.1 * mean, rtol=1e-10)
    g = rng.standard_normal(x.shape)
    dx, dw, db = batch_norm_backward(to_dev(g, device), cache)

    def bn(t, w=weight, b=bias):
        m, v = R.batch_stats(t)
        return R.batch_norm(t, m, v, w, b)
    np.testing.assert_allclose(host(dx), R.numerical_gradient(bn, x, g), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(host(dw), R.numerical_gradient(lambda w: bn(x, w=w), weight, g), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(host(db), R.numerical_gradient(lambda b: bn(x, b=b), bias, g), rtol=1e-6, atol=1e-8)
    dx, _, _ = batch_norm_backward(to_dev(np.ones(x.shape), device), cache)
    np.testing.assert_allclose(host(dx), 0, atol=1e-10)          # a constant gradient is normalised away

    out, cache = local_response_norm_forward(to_dev(x, device), 3, alpha=0.5)    # a large alpha: a real effect
    np.testing.assert_allclose(host(out), R.local_response_norm(x, 3, alpha=0.5), rtol=1e-12)
    g = rng.standard_normal(x.shape)
    np.testing.assert_allclose(host(local_response_norm_backward(to_dev(g, device), cache)),
                               R.numerical_gradient(lambda t: R.local_response_norm(t, 3, alpha=0.5), x, g),
                               rtol=1e-6, atol=1e-8)

    out, mask = dropout_forward(to_dev(x, device), 0.5, True, backend.generator(device))
    assert backend.device_of(out) == device and backend.device_of(mask) == device
    np.testing.assert_allclose(host(out), x * host(mask))
    assert set(np.unique(host(mask))) == {0.0, 2.0} and 0.3 < (host(mask) == 0).mean() < 0.7


@pytest.mark.parametrize("shape", [(8, 3, 16, 16), (5, 4), (3, 2, 7), (2, 6, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("affine,running,training", [(True, True, True), (False, True, True), (True, False, True),
                                                     (True, True, False), (False, False, False)])
def test_batch_norm_on_device_matches_the_cpu_kernel(device, shape, dtype, affine, running, training):
    """The CUDA batch-norm kernels (many values per channel: several partial sums each) against the
    CPU kernel: output, running statistics, and the three gradients, with and without affine."""
    rng = np.random.default_rng(4)
    C = shape[1]
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)            # an offset mean: the shifted sums matter
    w, b = (rng.uniform(0.5, 1.5, C).astype(dtype), rng.standard_normal(C).astype(dtype)) if affine else (None, None)
    g = rng.standard_normal(shape).astype(dtype)
    rm0, rv0 = rng.standard_normal(C).astype(dtype), rng.uniform(1, 2, C).astype(dtype)
    results = []
    for dev in ("cpu", device):
        rm, rv = (to_dev(rm0.copy(), dev), to_dev(rv0.copy(), dev)) if running else (None, None)
        out, cache = batch_norm_forward(to_dev(x, dev), rm, rv, None if w is None else to_dev(w, dev),
                                        None if b is None else to_dev(b, dev), training=training, momentum=0.3)
        dx, dw, db = batch_norm_backward(to_dev(g, dev), cache)
        results.append([host(a) if a is not None else None for a in (out, rm, rv, dx, dw, db)])
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-4)
    for got, want in zip(results[1], results[0]):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_allclose(got, want, **tol)


# --------------------------------------------------------------------------- 2. CUDA sources emulated on the CPU

_EMULATION = r"""
#include <cmath>
struct Dim3 { long long x, y, z; };
static Dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0}, blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#define __global__
#define __restrict__ __restrict
"""


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """The CUDA kernels compiled for the CPU with g++: {(name, dtype): ctypes function}."""
    compiler = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler to compile the CUDA sources for the CPU")
    functions = {}
    folder = tmp_path_factory.mktemp("cuda_emulation")
    for dtype, ctype in cuda_kernels._CTYPES.items():
        for name, source in cuda_kernels._SOURCES.items():
            src = folder / f"{name}_{ctype}.cpp"
            lib = folder / f"{name}_{ctype}.so"
            src.write_text(_EMULATION + f"typedef {ctype} T;\n" + cuda_kernels._GRID_STRIDE + cuda_kernels._BITS + source)
            done = subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-o", str(lib), str(src)],
                                  capture_output=True, text=True)
            assert done.returncode == 0, f"{name} ({ctype}) does not compile:\n{done.stderr}"
            functions[(name, dtype)] = getattr(ctypes.CDLL(str(lib)), name)
    return functions


def call(functions, name, arrays, ints):
    """Run an emulated kernel: pointers to the (contiguous) arrays, then the long long arguments."""
    f = functions[(name, arrays[0].dtype)]
    f.restype = None
    f.argtypes = [ctypes.c_void_p] * len(arrays) + [ctypes.c_longlong] * len(ints)
    f(*[a.ctypes.data for a in arrays], *ints)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kernel,stride,pad,dilation", [
    ((2, 3, 7, 6), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    ((1, 2, 9, 8), (3, 2), (2, 3), ((0, 2), (2, 1)), (2, 1)),
    ((2, 1, 5, 5), (5, 5), (1, 1), ((-1, 1), (2, -1)), (1, 1)),        # negative padding crops
])
def test_emulated_im2col_and_col2im_kernels(emulated, dtype, shape, kernel, stride, pad, dilation):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(dtype)
    expected = im2col(x, kernel, stride, pad, dilation)
    cols = np.full(expected.shape, np.nan, dtype)
    N, C, H, W = shape
    Ho, Wo = expected.shape[-2:]
    geometry = (N, C, H, W, *kernel, *stride, pad[0][0], pad[1][0], *dilation, Ho, Wo)
    call(emulated, "im2col_kernel", [x, cols], (*geometry, cols.size))
    np.testing.assert_array_equal(cols, expected)
    c = rng.standard_normal(expected.shape).astype(dtype)
    dx = np.full(shape, np.nan, dtype)
    call(emulated, "col2im_kernel", [c, dx], (*geometry, dx.size))
    if min(pad[0] + pad[1]) >= 0:
        np.testing.assert_allclose(dx, col2im(c, shape, kernel, stride, pad, dilation), rtol=1e-5)
    # the adjoint property holds in every case, cropping included
    np.testing.assert_allclose(np.sum(expected.astype(np.float64) * c), np.sum(x.astype(np.float64) * dx), rtol=1e-5)


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,dilation", [
    (3, 2, 1, False, 1), (2, 2, 0, True, 1), ((3, 2), (1, 2), (1, 0), True, (2, 1)), (2, 1, 0, False, 1)])
def test_emulated_max_pool_kernels(emulated, kernel, stride, padding, ceil_mode, dilation):
    rng = np.random.default_rng(5)
    x = (rng.permutation(2 * 3 * 9 * 8).reshape(2, 3, 9, 8) * 0.5).astype(np.float32)
    if kernel == 2 and stride == 1:
        x = np.round(x / 40).astype(np.float32)       # many ties: the first arg-max must win
    g = pool_geometry("t", x, kernel, stride, padding, dilation, ceil_mode)
    out = np.full((g.N, g.C, g.Ho, g.Wo), np.nan, np.float32)
    argmax = np.full(out.shape, -7, np.int64)
    ints = (g.N, g.C, g.H, g.W, *g.kernel, *g.stride, *g.padding, *g.dilation, g.Ho, g.Wo)
    call(emulated, "max_pool_fwd_kernel", [x, out, argmax], (*ints, out.size))
    expected, ref_arg = R.max_pool2d(x, g.kernel, g.stride, g.padding, g.dilation, ceil_mode)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(argmax, ref_arg[..., 0] * g.W + ref_arg[..., 1])
    grad = rng.standard_normal(out.shape).astype(np.float32)
    dx = np.full(x.shape, np.nan, np.float32)
    call(emulated, "max_pool_bwd_kernel", [grad, argmax, dx], (*ints, dx.size))
    np.testing.assert_allclose(dx, R.max_pool2d_backward(grad, x.shape, ref_arg), rtol=1e-6, atol=1e-6)


def test_emulated_max_pool_propagates_nan(emulated):
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    out = np.zeros((1, 1, 2, 2), np.float32)
    argmax = np.zeros(out.shape, np.int64)
    call(emulated, "max_pool_fwd_kernel", [x, out, argmax],
         (1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 1, 1, 2, 2, out.size))
    assert np.isnan(out[0, 0, 0, 0]) and out[0, 0, 1, 1] == 15
    cpu, _ = max_pool2d_forward(x, 2)
    np.testing.assert_array_equal(np.isnan(cpu), np.isnan(out))
    np.testing.assert_array_equal(cpu[~np.isnan(cpu)], out[~np.isnan(out)])
