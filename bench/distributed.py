#!/usr/bin/env python
"""Data-parallel scaling: a workload's train step on 1 process, then on N processes under mpiexec.

    python bench/distributed.py                                  # W3 (resnet18, 32 px) on 1 and 2 processes
    python bench/distributed.py --markdown bench/RESULTS-distributed.md --json bench/results-distributed.json
    python bench/distributed.py --workload W1 --iters 3 --warmup 1 --quiet

What is measured (bench/README.md has the rest):

* a **train step** as bench/run.py's (zero_grad, forward, cross-entropy, backward, SGD with
  momentum 0.9), float32 on synthetic data, each process with its own random batch, plus, on N > 1
  processes, ``DistributedDataParallel``'s work: rank 0's BatchNorm buffers broadcast before the
  forward pass and the gradients averaged inside the backward pass (buckets of 4 MB, each
  all-reduced by a non-blocking MPI all-reduce as soon as its gradients are final);
* every process runs **one thread** (``MINICNN_NUM_THREADS``, ``OMP_NUM_THREADS``... = 1), so N
  processes use N cores: on a 2-core machine, 2 processes are the whole machine;
* **strong scaling**: the workload's batch (W3: 64) is the global batch, split among the processes;
  **weak scaling**: every process takes the whole batch (the global batch grows N times);
* images/s = global batch / median step time (of rank 0; the all-reduce keeps the ranks in step;
  with ``--repeat N``, the fastest of N runs, the configurations alternating);
  efficiency = images/s on N processes / (N x images/s on 1); ``sync`` = the median time that the
  end of the backward pass spends on the buckets (starting those left, waiting for the all-reduces,
  unflattening: the communication not hidden behind the backward pass, and waiting for the slower rank);
  the bytes each process all-reduces and broadcasts per step are counted by the process group.

Each configuration runs in its own processes (``--worker``), which print one JSON line
(``BENCH_RESULT {...}``). Only the standard library is imported at module level, so the thread
environment is set before NumPy loads.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))
from run import WORKLOADS  # noqa: E402  (bench/run.py: the workloads' definitions)

RESULT_MARKER = "BENCH_RESULT "
THREAD_VARIABLES = ("MINICNN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------- one configuration (a worker)

def worker(args) -> None:
    import numpy as np

    import minicnn
    import minicnn.functional as F
    from minicnn import architectures, distributed, optim
    from minicnn.kernels.fast.memory import tune_malloc

    tune_malloc()                          # as the training CLI and bench/run.py do
    w = WORKLOADS[args.workload]
    group = distributed.init_process_group() if args.distributed else None
    rank, world = (group.rank, group.world_size) if group else (0, 1)
    batch = w["batch"] // world if args.scaling == "strong" else w["batch"]
    minicnn.manual_seed(0)
    model = architectures.get(w["model"], num_classes=w["classes"], **w["options"])
    net = distributed.DistributedDataParallel(model) if group else model
    opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    rng = np.random.default_rng(rank)
    x = minicnn.tensor(rng.standard_normal((batch, *w["input"])).astype(np.float32))
    y = minicnn.tensor(rng.integers(0, w["classes"], batch))
    net.train()
    steps, syncs, reduced, broadcast, early = [], [], [], [], []
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for i in range(args.warmup + args.iters):
        if i == args.warmup:
            cpu0, wall0 = time.process_time(), time.perf_counter()
        before_r, before_b = (group.bytes_all_reduced, group.bytes_broadcast) if group else (0, 0)
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()                    # DistributedDataParallel averages the gradients in here
        opt.step()
        t3 = time.perf_counter()
        if i >= args.warmup:
            steps.append(t3 - t0)
            syncs.append(net.reducer.last_wait_seconds if group else 0.0)
            early.append(net.reducer.last_done_early if group else 0)
            if group:
                reduced.append(group.bytes_all_reduced - before_r)
                broadcast.append(group.bytes_broadcast - before_b)
    cores = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    median = statistics.median(steps)
    result = dict(workload=args.workload, model=w["model"], scaling=args.scaling, processes=world,
                  threads=minicnn.get_num_threads(), batch_per_process=batch, global_batch=batch * world,
                  iters=args.iters, warmup=args.warmup, step_ms=[round(s * 1e3, 2) for s in steps],
                  median_ms=median * 1e3, images_per_s=batch * world / median,
                  sync_median_ms=statistics.median(syncs) * 1e3,
                  bytes_all_reduced_per_step=max(reduced, default=0), bytes_broadcast_per_step=max(broadcast, default=0),
                  buckets=len(net.buckets()) if group else 0,
                  buckets_done_in_backward=statistics.median(early) if early else 0,
                  parameters=sum(p.numel() for p in model.parameters()), cores_used=cores,
                  peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if group is not None:     # every rank's own view: the slowest one sets the pace
        result["cores_used_per_rank"] = group.comm.gather(cores, root=0)
    if rank == 0:
        print(RESULT_MARKER + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- the driver

def run_config(args, processes, scaling):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update({name: "1" for name in THREAD_VARIABLES})
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--workload", args.workload,
               "--scaling", scaling, "--iters", str(args.iters), "--warmup", str(args.warmup)]
    if processes > 1:
        command = [args.mpiexec, "-n", str(processes), *command, "--distributed"]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command[:4])}... exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return json.loads(lines[-1][len(RESULT_MARKER):])


def markdown(report) -> str:
    rows = report["results"]
    base = next(r for r in rows if r["processes"] == 1)
    w = WORKLOADS[report["meta"]["workload"]]
    lines = [f"## Data-parallel scaling of {report['meta']['workload']} ({w['model']}, "
             f"{'x'.join(map(str, w['input']))}, batch {w['batch']}): 1 thread per process", "",
             "| scaling | processes | batch per process | global batch | step ms (median) | images/s | efficiency "
             "| sync ms | all-reduced per step | broadcast per step | buckets | done in backward | cores used |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        eff = r["images_per_s"] / (r["processes"] * base["images_per_s"])
        lines.append(f"| {r['scaling'] if r['processes'] > 1 else '-'} | {r['processes']} | {r['batch_per_process']} | "
                     f"{r['global_batch']} | {r['median_ms']:.0f} | {r['images_per_s']:.1f} | {eff:.2f} | "
                     f"{r['sync_median_ms']:.1f} | {r['bytes_all_reduced_per_step'] / 2**20:.2f} MiB | "
                     f"{r['bytes_broadcast_per_step'] / 2**10:.1f} KiB | {r['buckets']} | "
                     f"{r.get('buckets_done_in_backward', 0):g} | "
                     f"{'/'.join(f'{c:.2f}' for c in r.get('cores_used_per_rank', [r['cores_used']]))} |")
    lines += ["", f"{base['parameters']:,} parameters (float32: {base['parameters'] * 4 / 2**20:.2f} MiB of gradients). "
              "Efficiency = images/s / (processes x images/s of 1 process). sync = the end of the backward pass "
              "(the all-reduces not hidden behind it, unflattening, and any wait for the other rank); done in backward = the "
              "buckets (median) whose all-reduce had finished when the backward pass reached its end. all-reduced = the gradient "
              "buckets (gradients + one count per parameter); broadcast = rank 0's BatchNorm buffers. "
              "cores used = CPU time / wall time of the timed steps, per rank.",
              "", f"Machine: {report['meta']['machine']}; {report['meta']['command']}"]
    return "\n".join(lines) + "\n"


def make_parser():
    from minicnn import cli
    p = cli.ArgumentParser(prog="python bench/distributed.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default="W3", choices=[k for k, v in WORKLOADS.items() if v["mode"] == "train"])
    p.add_argument("--processes", default="1,2", help="process counts, comma-separated, starting with 1 (default 1,2)")
    p.add_argument("--scaling", default="strong,weak", help="strong, weak or both (default strong,weak)")
    p.add_argument("--iters", type=cli.positive_int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=cli.nonneg_int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--repeat", type=cli.positive_int, default=1,
                   help="run every configuration this many times, alternating, and keep the fastest (default 1)")
    p.add_argument("--timeout", type=cli.positive_int, default=900, help="seconds per configuration (default 900)")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--markdown", metavar="PATH")
    p.add_argument("--quiet", action="store_true", help="do not print the table")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    from minicnn import cli, fileio
    try:
        counts = [int(n) for n in args.processes.split(",")]
    except ValueError:
        parser.error(f"argument --processes: expected counts such as 1,2, got {args.processes!r}")
    if counts[0] != 1 or any(n < 1 for n in counts):
        parser.error(f"argument --processes: must start with 1 (the baseline), got {args.processes}")
    scalings = args.scaling.split(",")
    if not set(scalings) <= {"strong", "weak"}:
        parser.error(f"argument --scaling: expected strong, weak or strong,weak, got {args.scaling!r}")
    args.mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if len(counts) > 1 and args.mpiexec is None:
        return cli.report(parser.prog, "mpiexec not found: install the MPI extra: pip install -e '.[mpi]'")

    def body():
        configs = [(1, "strong")] + [(n, scaling) for n in counts[1:] for scaling in scalings]
        runs = {}
        for _ in range(args.repeat):          # alternating, so that a drift of the machine's load hits all alike
            for n, scaling in configs:
                runs.setdefault((n, scaling), []).append(run_config(args, n, scaling))
        results = []
        for key in configs:
            best = min(runs[key], key=lambda r: r["median_ms"])
            best["repeats_median_ms"] = [r["median_ms"] for r in runs[key]]
            results.append(best)
        cpu = platform.processor() or platform.machine()
        meta = dict(workload=args.workload, command="python bench/distributed.py " + " ".join(argv or sys.argv[1:]),
                    machine=f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                    date=time.strftime("%Y-%m-%d %H:%M"))
        report = dict(meta=meta, results=results)
        text = markdown(report)
        if args.json:
            fileio.atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")
        if args.markdown:
            fileio.atomic_write_text(args.markdown, text)
        if not args.quiet:
            print(text, end="")
        return 0
    return cli.run_reporting(parser.prog, False, body, expected=(RuntimeError, subprocess.TimeoutExpired))


if __name__ == "__main__":
    sys.exit(main())
