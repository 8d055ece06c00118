#!/usr/bin/env python
"""What two threads get out of this machine: memory bandwidth and small matrix products,
one thread alone against two threads at once (each on its own arrays).

    python bench/machine.py

minicnn's CPU threads (``minicnn.set_num_threads``) run the slices of a kernel at the same time;
this shows how much of a second core that can buy when the work is a copy (im2col, element-wise
passes) or a skinny GEMM (the weight gradient of a convolution with few channels, K = 25 for LeNet's
first layer), as opposed to a big GEMM. BLAS is held at one thread, as it is while minicnn runs.
"""
from __future__ import annotations

import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits


def one_and_two(work, reps):
    """(seconds per call with one thread, seconds per pair of calls run by two threads at once)."""
    work(0)
    t0 = time.perf_counter()
    for _ in range(reps):
        work(0)
    one = (time.perf_counter() - t0) / reps

    def loop(i):
        for _ in range(reps):
            work(i)
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return one, (time.perf_counter() - t0) / reps


def main():
    rng = np.random.default_rng(0)
    threadpool_limits(1, user_api="blas")
    print("| work | one thread | two threads at once | speed-up |\n|---|---:|---:|---:|")
    for mib in (1, 12, 48):
        n = (mib << 20) // 4
        src = [rng.standard_normal(n, dtype=np.float32) for _ in range(2)]
        dst = [np.empty(n, np.float32) for _ in range(2)]
        one, two = one_and_two(lambda i, dst=dst, src=src: np.copyto(dst[i], src[i]), 20)
        moved = 2 * (mib << 20) / 1e9      # GB read + written per copy
        print(f"| copy {mib} MiB float32 | {moved / one:.1f} GB/s | {2 * moved / two:.1f} GB/s in all | "
              f"{2 * one / two:.2f}x |")
    for m, k, n in ((6, 100_352, 25), (16, 12_800, 150), (50, 500, 4096), (512, 512, 512)):
        a = [rng.standard_normal((m, k), dtype=np.float32) for _ in range(2)]
        b = [rng.standard_normal((k, n), dtype=np.float32) for _ in range(2)]
        out = [np.empty((m, n), np.float32) for _ in range(2)]
        one, two = one_and_two(lambda i, a=a, b=b, out=out: np.matmul(a[i], b[i], out=out[i]), 20)
        flop = 2 * m * k * n / 1e9
        print(f"| GEMM {m}x{k} @ {k}x{n} | {flop / one:.0f} GFLOP/s | {2 * flop / two:.0f} GFLOP/s in all | "
              f"{2 * one / two:.2f}x |")


if __name__ == "__main__":
    main()
