#!/usr/bin/env python
"""Where a minicnn train step spends its time, op by op: wall time of every autograd Function's
forward and backward, summed per Function class, averaged over the timed steps.

    python bench/op_profile.py W1                 # a workload of bench/run.py (train ones: W1-W4, W7)
    python bench/op_profile.py W2 --steps 5 --threads 1

The step is bench/run.py's (zero_grad, forward, cross-entropy, backward, SGD with momentum), on the
same fixed random batch. Each op is timed in the calling thread around the whole op, so work it
hands to minicnn's worker threads counts once, as wall time. "other" is the rest of the step
(the optimizer, zero_grad, the autograd bookkeeping between ops).
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workload", help="a train workload id of bench/run.py, e.g. W1")
    p.add_argument("--steps", type=int, default=10, help="timed steps (after 3 warm-up steps)")
    p.add_argument("--threads", type=int, default=None, help="minicnn threads (default: as configured)")
    args = p.parse_args(argv)

    import numpy as np
    import minicnn
    import minicnn.functional as F
    from minicnn import architectures, autograd, backend, optim
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    from run import WORKLOADS

    spec = WORKLOADS[args.workload]
    if spec["mode"] != "train":
        p.error(f"{args.workload} is an inference workload; this tool times train steps")
    backend.tune_malloc()
    if args.threads:
        backend.set_num_threads(args.threads)
    minicnn.manual_seed(0)
    model = architectures.get(spec["model"], num_classes=spec["classes"], in_channels=spec["input"][0],
                              **spec["options"])
    rng = np.random.default_rng(0)
    x = minicnn.tensor(rng.standard_normal((spec["batch"], *spec["input"])).astype(np.float32))
    y = minicnn.tensor(rng.integers(0, spec["classes"], spec["batch"]))
    opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    times = collections.defaultdict(float)
    apply = autograd.Function.apply.__func__

    def timed_apply(cls, *a, **k):       # forward of every op (an op built from others counts them too)
        t0 = time.perf_counter()
        try:
            return apply(cls, *a, **k)
        finally:
            times[(cls.__name__, "forward")] += time.perf_counter() - t0

    def timed(backward, name):
        def wrapper(self, *a, **k):
            t0 = time.perf_counter()
            try:
                return backward(self, *a, **k)
            finally:
                times[(name, "backward")] += time.perf_counter() - t0
        return wrapper

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    for cls in set(subclasses(autograd.Function)):
        if "backward" in vars(cls):
            cls.backward = timed(vars(cls)["backward"], cls.__name__)
    autograd.Function.apply = classmethod(timed_apply)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    times.clear()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    total = (time.perf_counter() - t0) / args.steps * 1e3
    per_op = {key: t / args.steps * 1e3 for key, t in times.items()}
    print(f"{args.workload} ({spec['model']}, batch {spec['batch']}, {backend.get_num_threads()} minicnn threads): "
          f"{total:.1f} ms per train step, mean of {args.steps}\n")
    print("| op | forward ms | backward ms | share of the step |\n|---|---:|---:|---:|")
    names = sorted({name for name, _ in per_op}, key=lambda n: -(per_op.get((n, "forward"), 0)
                                                                  + per_op.get((n, "backward"), 0)))
    for name in names:
        f, b = per_op.get((name, "forward"), 0.0), per_op.get((name, "backward"), 0.0)
        if f + b >= 0.05:
            print(f"| {name} | {f:.2f} | {b:.2f} | {100 * (f + b) / total:.0f}% |")
    other = total - sum(per_op.values())
    print(f"| other | | | {100 * max(other, 0) / total:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
