#!/usr/bin/env python
"""Where a minicnn train step spends its time, op by op: wall time of every autograd Function's
forward and backward, summed per Function class, averaged over the timed steps.

    python bench/op_profile.py W1                 # a workload of bench/run.py (train ones: W1-W4, W7, W8)
    python bench/op_profile.py W2 --steps 5 --threads 1
    python bench/op_profile.py W3 --device cuda --batch-scale 4   # on the GPU (as run.py --device cuda)

The step is bench/run.py's (zero_grad, forward, cross-entropy, backward, SGD with momentum), on the
same fixed random batch. Each op is timed in the calling thread around the whole op, so work it
hands to minicnn's worker threads counts once, as wall time. "other" is the rest of the step
(the optimizer, zero_grad, the autograd bookkeeping between ops). On the GPU every timed region
starts and ends with a stream synchronisation, so an op's time is its kernels' time plus its launch
overhead; the step time without those synchronisations is printed too.
"""
from __future__ import annotations

import collections
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))
from run import WORKLOADS, OneLineParser  # noqa: E402  (bench/run.py: the standard library only at import)


def main(argv=None):
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workload", help="a train workload id of bench/run.py, e.g. W1")
    p.add_argument("--steps", type=int, default=10, help="timed steps (after 3 warm-up steps)")
    p.add_argument("--threads", type=int, default=None, help="minicnn threads (default: as configured)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--batch-scale", type=int, default=None, help="multiply the batch (default: 1 on cpu, 4 on cuda)")
    p.add_argument("--stat", choices=["mean", "median", "min"], default="mean",
                   help="how the timed steps are summarised, per op and for the step (median or min on a busy machine)")
    args = p.parse_args(argv)

    import numpy as np
    import minicnn
    import minicnn.functional as F
    from minicnn import architectures, autograd, backend, optim
    from minicnn.kernels.fast.memory import tune_malloc

    workload = args.workload.upper()
    if workload not in WORKLOADS:
        p.error(f"argument workload: unknown workload {args.workload!r}; choose from {', '.join(WORKLOADS)}")
    spec = dict(WORKLOADS[workload])
    spec["batch"] *= args.batch_scale or (4 if args.device == "cuda" else 1)
    if spec["mode"] != "train":
        p.error(f"{workload} is an inference workload; this tool times train steps")
    tune_malloc()
    if args.threads:
        minicnn.set_num_threads(args.threads)
    minicnn.manual_seed(0)
    model = architectures.get(spec["model"], num_classes=spec["classes"], in_channels=spec["input"][0],
                              **spec["options"]).to(args.device)
    rng = np.random.default_rng(0)
    x = minicnn.tensor(rng.standard_normal((spec["batch"], *spec["input"])).astype(np.float32), device=args.device)
    y = minicnn.tensor(rng.integers(0, spec["classes"], spec["batch"]), device=args.device)
    if args.device == "cuda":
        stream = backend.array_module("cuda").cuda.get_current_stream()
        sync = stream.synchronize
    else:
        def sync():
            pass
    opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    times = collections.defaultdict(float)
    apply = autograd.Function.apply.__func__

    def timed_apply(cls, *a, **k):       # forward of every op (an op built from others counts them too)
        sync()
        t0 = time.perf_counter()
        try:
            return apply(cls, *a, **k)
        finally:
            sync()
            times[(cls.__name__, "forward")] += time.perf_counter() - t0

    def timed(backward, name):
        def wrapper(self, *a, **k):
            sync()
            t0 = time.perf_counter()
            try:
                return backward(self, *a, **k)
            finally:
                sync()
                times[(name, "backward")] += time.perf_counter() - t0
        return wrapper

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    untimed_apply, untimed_backward = vars(autograd.Function)["apply"], {}
    timed_classes = [cls for cls in set(subclasses(autograd.Function)) if "backward" in vars(cls)]
    for cls in timed_classes:
        untimed_backward[cls] = vars(cls)["backward"]
        cls.backward = timed(vars(cls)["backward"], cls.__name__)
    autograd.Function.apply = classmethod(timed_apply)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    summary = {"mean": statistics.fmean, "median": statistics.median, "min": min}[args.stat]
    per_step = []                        # the ops' times of every timed step

    def run_steps():
        steps = []
        for _ in range(args.steps):
            times.clear()
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            steps.append((time.perf_counter() - t0) * 1e3)
            per_step.append(dict(times))
        return summary(steps)

    for _ in range(3):
        step()
    plain_apply, plain_backward = vars(autograd.Function)["apply"], {c: vars(c)["backward"] for c in timed_classes}
    autograd.Function.apply = untimed_apply
    for c in timed_classes:
        c.backward = untimed_backward[c]
    untimed = run_steps()
    autograd.Function.apply = plain_apply
    for c in timed_classes:
        c.backward = plain_backward[c]
    per_step.clear()
    total = run_steps()
    keys = {key for times_of_step in per_step for key in times_of_step}
    per_op = {key: summary([s.get(key, 0.0) for s in per_step]) * 1e3 for key in keys}
    print(f"{workload} ({spec['model']}, batch {spec['batch']}, {minicnn.get_num_threads()} minicnn threads): "
          f"{total:.1f} ms per train step, {args.stat} of {args.steps} (ops: {args.stat} of their time per step), "
          f"on {args.device}"
          + (f" ({untimed:.1f} ms without the per-op synchronisations)" if args.device == "cuda" else "") + "\n")
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
