"""Benchmark of the hand-written kernels (prints figures; not a test).

    python bench/kernels.py [--repeat 5] [--dtype float32] [--only resnet] [--products]

For each convolution shape it prints the forward and backward (dx, dweight, dbias) times, the
achieved GFLOP/s, forward + backward as a fraction of this machine's float32 GEMM rate measured
in the same run (a 2048x2048 matmul, best of several), and the share of the convolution time
spent in im2col + col2im (for stride-1 layers the backward's im2col of the gradient, which
replaces col2im, is counted).  Times are the minimum over ``--repeat`` runs (the median is
printed too): other processes share the cores, and the minimum is the least disturbed figure.
FLOPs: forward 2*N*O*Ho*Wo*(C/groups)*kH*kW (a multiply-add is 2), backward twice that.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minicnn.kernels.fast import conv as conv_module
from minicnn.kernels import (conv2d_backward, conv2d_forward, max_pool2d_backward, max_pool2d_forward,
                             normalize_conv_padding)

# name, batch, channels in, channels out, size, kernel, stride, padding
CONV_SHAPES = [
    ("LeNet C3 5x5", 256, 6, 16, 14, 5, 1, 0),
    ("ResNet 3x3 64ch 56px", 64, 64, 64, 56, 3, 1, 1),
    ("ResNet 3x3 128ch 28px", 8, 128, 128, 28, 3, 1, 1),
    ("ResNet 3x3 256ch 14px", 8, 256, 256, 14, 3, 1, 1),
    ("ResNet 3x3 512ch 7px", 8, 512, 512, 7, 3, 1, 1),
    ("1x1 256ch 56px", 8, 256, 256, 56, 1, 1, 0),
    ("AlexNet conv1 11x11/4", 16, 3, 64, 224, 11, 4, 2),
]
POOL_SHAPE = ("max-pool 3x3/2 64ch 112px", 8, 64, 112, 3, 2, 1)


def gemm_rate(dtype=np.float32, n=2048, repeat=7):
    """Best GFLOP/s of an n x n x n matmul."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)
    np.matmul(a, b, out=c)
    best = min(_timed(lambda: np.matmul(a, b, out=c)) for _ in range(repeat))
    return 2 * n ** 3 / best / 1e9


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


class _Stopwatch:
    """Wraps conv.im2col / conv.col2im to add up the time spent inside them."""

    def __init__(self):
        self.total = 0.0
        self.saved = {}

    def __enter__(self):
        for name in ("im2col", "col2im"):
            original = self.saved[name] = getattr(conv_module, name)

            def timed(*args, _f=original, **kwargs):
                t = time.perf_counter()
                try:
                    return _f(*args, **kwargs)
                finally:
                    self.total += time.perf_counter() - t
            setattr(conv_module, name, timed)
        return self

    def __exit__(self, *exc):
        for name, f in self.saved.items():
            setattr(conv_module, name, f)


def bench_conv(shape, dtype, repeat):
    name, n, cin, cout, size, k, s, p = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, cin, size, size)).astype(dtype)
    w = (rng.standard_normal((cout, cin, k, k)) * 0.1).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    padding = normalize_conv_padding(p, k, s)
    out, cache = conv2d_forward(x, w, b, s, padding)
    g = rng.standard_normal(out.shape).astype(dtype)
    conv2d_backward(g, cache)                                  # warm up (workspaces, BLAS threads)
    fwd, bwd = [], []
    for _ in range(repeat):
        fwd.append(_timed(lambda: conv2d_forward(x, w, b, s, padding)))
        bwd.append(_timed(lambda: conv2d_backward(g, cache)))
    with _Stopwatch() as sw:                                    # one separate, instrumented pass
        t_all = _timed(lambda: conv2d_backward(g, conv2d_forward(x, w, b, s, padding)[1]))
    flops = 2.0 * n * cout * out.shape[2] * out.shape[3] * cin * k * k
    return dict(name=name, shape=f"{n}x{cin}->{cout}x{size}x{size} k{k} s{s} p{p}", flops=flops,
                fwd=min(fwd), bwd=min(bwd), fwd_med=statistics.median(fwd), bwd_med=statistics.median(bwd),
                col_share=sw.total / t_all)


def bench_pool(dtype, repeat):
    name, n, c, size, k, s, p = POOL_SHAPE
    x = np.random.default_rng(0).standard_normal((n, c, size, size)).astype(dtype)
    out, cache = max_pool2d_forward(x, k, s, p)
    g = np.ones(out.shape, dtype)
    fwd = [_timed(lambda: max_pool2d_forward(x, k, s, p)) for _ in range(repeat)]
    bwd = [_timed(lambda: max_pool2d_backward(g, cache)) for _ in range(repeat)]
    return name, (n, c, size), min(fwd), min(bwd), x.nbytes


def compare_products(dtype, repeat):
    """The conv forward's product for ResNet 3x3 128ch 28px, written the ways NumPy allows.
    minicnn uses the first: one 2-D GEMM on (C*kH*kW, N*Ho*Wo) columns (then one copy to NCHW)."""
    n, c, o, size = 8, 128, 128, 28
    rng = np.random.default_rng(0)
    k, pixels = c * 9, size * size
    w = rng.standard_normal((o, k)).astype(dtype)
    cols = rng.standard_normal((k, n * pixels)).astype(dtype)
    cols_nkl = np.ascontiguousarray(cols.reshape(k, n, pixels).transpose(1, 0, 2))   # per-image columns
    variants = {
        "matmul (O,K)@(K,N*L), + copy to NCHW": lambda: np.ascontiguousarray(
            (w @ cols).reshape(o, n, pixels).transpose(1, 0, 2)),
        "tensordot over K, + copy to NCHW": lambda: np.ascontiguousarray(
            np.tensordot(w, cols, axes=(1, 0)).reshape(o, n, pixels).transpose(1, 0, 2)),
        "einsum 'ok,kp->op' (optimize), + copy": lambda: np.ascontiguousarray(
            np.einsum("ok,kp->op", w, cols, optimize=True).reshape(o, n, pixels).transpose(1, 0, 2)),
        "batched matmul (O,K)@(N,K,L) -> NCHW": lambda: np.matmul(w, cols_nkl),
        "einsum 'ok,nkl->nol' (optimize)": lambda: np.einsum("ok,nkl->nol", w, cols_nkl, optimize=True),
    }
    flops = 2.0 * o * k * n * pixels
    print("\n| product (forward of ResNet 3x3 128ch 28px) | ms | GFLOP/s |\n|---|---:|---:|")
    for name, f in variants.items():
        f()
        t = min(_timed(f) for _ in range(repeat))
        print(f"| {name} | {t * 1e3:.1f} | {flops / t / 1e9:.0f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per shape (the minimum is reported)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--only", default="", help="run only the shapes whose name contains this text")
    parser.add_argument("--products", action="store_true",
                        help="also time the ways of writing the conv product (matmul, tensordot, einsum)")
    args = parser.parse_args(argv)
    dtype = np.dtype(args.dtype)

    gemm_before = gemm_rate()
    rows = [bench_conv(shape, dtype, args.repeat) for shape in CONV_SHAPES if args.only.lower() in shape[0].lower()]
    gemm_after = gemm_rate()
    gemm = max(gemm_before, gemm_after)
    print(f"float32 GEMM (2048^3 matmul, best of 7): {gemm_before:.0f} GFLOP/s before, {gemm_after:.0f} after; "
          f"fractions below use {gemm:.0f}.  dtype {dtype}, {os.cpu_count()} CPUs, NumPy {np.__version__}.\n")
    print("| conv | shape | fwd ms | bwd ms | fwd GFLOP/s | bwd GFLOP/s | fwd+bwd GFLOP/s | of GEMM | im2col+col2im |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        total = 3 * r["flops"] / (r["fwd"] + r["bwd"]) / 1e9
        print(f"| {r['name']} | {r['shape']} | {r['fwd'] * 1e3:.1f} (med {r['fwd_med'] * 1e3:.1f}) "
              f"| {r['bwd'] * 1e3:.1f} (med {r['bwd_med'] * 1e3:.1f}) | {r['flops'] / r['fwd'] / 1e9:.0f} "
              f"| {2 * r['flops'] / r['bwd'] / 1e9:.0f} | {total:.0f} | {total / gemm:.0%} | {r['col_share']:.0%} |")
    if not args.only or args.only.lower() in POOL_SHAPE[0].lower():
        name, (n, c, size), fwd, bwd, nbytes = bench_pool(dtype, args.repeat)
        print(f"\n| pool | input | fwd ms | bwd ms | input GB/s fwd |\n|---|---|---:|---:|---:|\n"
              f"| {name} | {n}x{c}x{size}x{size} | {fwd * 1e3:.1f} | {bwd * 1e3:.1f} | {nbytes / fwd / 1e9:.1f} |")
    if args.products:
        compare_products(dtype, args.repeat)


if __name__ == "__main__":
    main()
