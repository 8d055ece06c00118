"""Count the GPU kernel launches of a training step (or an inference batch) under the CuPy stand-in.

    FAKECUPY_API=../shared/tools/fakecupy/api14.json PYTHONPATH=../shared/tools/fakecupy:$PWD \
        python bench/launches.py [W1,W3,W6] [--batch 2] [--top 12] [--profile]

The stand-in (``../shared/tools/fakecupy``) estimates in ``cupy.OPS`` the kernels a real GPU would
launch (a ufunc, a reduction, a copy, a RawKernel, a GEMM; views count nothing) and counts host
transfers in ``cupy.SYNCS``. A step is the one ``bench/run.py`` times: ``zero_grad``, forward,
cross-entropy, backward and an SGD step (momentum 0.9) for training workloads; one forward pass under
``no_grad`` in eval mode for inference workloads. The counts are taken on the third training step (the first
two warm up: lazily made buffers, the optimizer's momentum), the second inference batch. They do not depend on the batch size, so
a batch of 2 is the default (the input size does matter: it is the workload's).

``--profile`` also reports the host time per launch: the step's wall time under cProfile, less the
time spent inside the stand-in's own array work (``cupy`` and NumPy: what a real GPU would do), per
launch. ``tests/test_launch_counts.py`` pins the counts through :func:`count`.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)

from run import WORKLOADS  # noqa: E402  (bench/run.py's workload table)

DEFAULT_WORKLOADS = ("W1", "W3", "W6")


def build(workload: str, batch: int = 2, cuda_graph: bool = False):
    """(step, model) for a workload on device "cuda": ``step()`` runs one step as bench/run.py does."""
    import numpy as np
    import minicnn
    import minicnn.functional as F
    from minicnn import architectures, optim
    spec = WORKLOADS[workload]
    minicnn.manual_seed(0)
    model = architectures.get(spec["model"], num_classes=spec["classes"], in_channels=spec["input"][0],
                              **spec["options"]).to("cuda")
    rng = np.random.default_rng(0)
    x = minicnn.tensor(rng.standard_normal((batch, *spec["input"])).astype(np.float32), device="cuda")
    y = minicnn.tensor(rng.integers(0, spec["classes"], batch), device="cuda")
    if spec["mode"] != "train":
        model.eval()

        def infer():
            with minicnn.no_grad():
                return model(x)
        return infer, model
    model.train()
    opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return train, model


def count(workload: str, batch: int = 2, warmup: int = None):
    """(launches, syncs, by_name) of one step of ``workload`` after ``warmup`` steps (default: 2 for training,
    whose optimizer starts its state at the first step; 1 for inference) (stand-in only)."""
    import cupy
    step, _ = build(workload, batch)
    if warmup is None:
        warmup = 2 if WORKLOADS[workload]["mode"] == "train" else 1
    for _ in range(warmup):
        step()
    cupy.OPS.clear()
    cupy.SYNCS.clear()
    step()
    return sum(cupy.OPS.values()), sum(cupy.SYNCS.values()), dict(cupy.OPS)


def host_us_per_launch(workload: str, batch: int = 2, steps: int = 3):
    """(µs of host time per launch, launches per step, wall seconds per step, profile stats) of ``workload``:
    the host time is what cProfile sees spent in minicnn's own code and in the functions (built-ins, NumPy,
    the standard library) that minicnn calls directly; the stand-in's work (what the GPU and CuPy would
    do) is left out. cProfile inflates Python time and a loaded machine more so: compare runs made back to
    back, not with a real GPU's figures."""
    import cupy
    step, _ = build(workload, batch)
    for _ in range(2):
        step()
    cupy.OPS.clear()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    wall = time.perf_counter() - t0
    launches = sum(cupy.OPS.values()) / steps
    stats = pstats.Stats(prof)
    ours = os.path.join(REPO, "minicnn") + os.sep
    host = 0.0
    for (filename, _, _), (_, _, own, _, callers) in stats.stats.items():
        if filename.startswith(ours):
            host += own
        elif not filename.startswith(os.path.dirname(cupy.__file__)):     # called by minicnn: its share
            host += sum(v[2] for c, v in callers.items() if c[0].startswith(ours))
    return 1e6 * host / steps / max(launches, 1), launches, wall / steps, stats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench/launches.py", description=__doc__.split("\n\n")[0])
    p.add_argument("workloads", nargs="?", default=",".join(DEFAULT_WORKLOADS))
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--top", type=int, default=12, help="how many launch names to list per workload")
    p.add_argument("--profile", action="store_true", help="also the host time per launch (cProfile)")
    args = p.parse_args(argv)
    try:
        import cupy
    except ImportError:
        p.error("needs the CuPy stand-in on PYTHONPATH (see the docstring)")
    if not hasattr(cupy, "OPS"):
        p.error("this is a real CuPy: launch counts need the stand-in (../shared/tools/fakecupy)")
    for w in args.workloads.split(","):
        w = w.strip().upper()
        if w not in WORKLOADS:
            p.error(f"unknown workload {w!r}")
        launches, syncs, names = count(w, args.batch)
        top = sorted(names.items(), key=lambda kv: -kv[1])[:args.top]
        print(f"{w} {WORKLOADS[w]['model']} {WORKLOADS[w]['mode']}: {launches} launches, {syncs} host syncs; "
              + ", ".join(f"{k} {v}" for k, v in top))
        if args.profile:
            us, n, wall, stats = host_us_per_launch(w, args.batch)
            print(f"  host time: {us:.1f} µs per launch ({n:.0f} launches, {1e3 * wall:.1f} ms a step under cProfile)")
            stats.sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
