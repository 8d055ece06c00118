#!/usr/bin/env python
"""Benchmark minicnn (and, with ``--compare torch``, PyTorch) on eight fixed workloads.

    python bench/run.py                                   # all workloads, minicnn only
    python bench/run.py --compare torch --markdown bench/RESULTS.md --json results.json
    python bench/run.py --workloads W1,W3 --iters 5 --warmup 1
    python bench/run.py --device cuda --compare torch     # minicnn on CuPy, PyTorch on CUDA

What is measured (see the table below and ``bench/README.md``):

* every workload is a fixed model, mode (train step or inference), batch size and input size,
  on float32 NCHW synthetic data: one random batch, made once and reused every iteration;
* a **train step** is: zero the gradients, forward in train mode, softmax cross-entropy,
  backward, one SGD step with momentum 0.9; **infer** is a forward pass in eval mode with no
  graph recorded (``minicnn.no_grad()`` / ``torch.no_grad()``);
* each (workload, framework) pair runs in its **own subprocess**, so that its peak resident
  memory (``ru_maxrss``) is its own; the pairs alternate (minicnn W1, torch W1, minicnn W2, ...)
  so that a slow drift of the machine's load affects both frameworks alike;
* every subprocess limits its thread pools to ``--threads`` (2): OMP/OpenBLAS/MKL environment
  variables are set before NumPy or PyTorch is imported, and ``torch.set_num_threads``;
* the float32 GEMM rate (best of several NxN matmuls) is measured in the same run, once before
  and once after the workloads, for NumPy (minicnn's BLAS) and for PyTorch;
* on a shared machine, ``--repeat 3`` runs every pair three times (alternating) and reports the
  process with the fastest median, ``--wait-idle 0.8`` waits for idle CPUs before each process,
  and the ``cores used`` column (CPU time / wall time) shows which numbers were disturbed.

The runner starts itself as the worker: ``run.py --worker W3 --framework minicnn`` runs one
workload and prints one JSON line (``BENCH_RESULT {...}``); ``--worker gemm`` measures GEMM.
Only the standard library is imported at module level, so a worker controls its thread
environment before NumPy loads.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULT_MARKER = "BENCH_RESULT "

# --------------------------------------------------------------------------- the workloads

# id: model name (as in minicnn.architectures and bench/torch_models.py), mode, batch size,
# input (C, H, W), number of classes, builder options, default warm-up and timed iterations.
WORKLOADS = {
    "W1": dict(model="lenet5", mode="train", batch=256, input=(1, 32, 32), classes=10, options={},
               warmup=3, iters=20),
    "W2": dict(model="lenet5_keras", mode="train", batch=256, input=(1, 32, 32), classes=10,
               options={"input_size": 32}, warmup=3, iters=20),
    "W3": dict(model="resnet18", mode="train", batch=64, input=(3, 32, 32), classes=10, options={},
               warmup=2, iters=10),
    "W4": dict(model="resnet50", mode="train", batch=8, input=(3, 224, 224), classes=1000, options={},
               warmup=1, iters=5),
    "W5": dict(model="vgg16", mode="infer", batch=4, input=(3, 224, 224), classes=1000, options={},
               warmup=1, iters=5),
    "W6": dict(model="googlenet", mode="infer", batch=8, input=(3, 224, 224), classes=1000,
               options={"aux_logits": False}, warmup=1, iters=5),
    "W7": dict(model="alexnet", mode="train", batch=16, input=(3, 224, 224), classes=1000, options={},
               warmup=1, iters=5),
    "W8": dict(model="resnet20", mode="train", batch=128, input=(3, 32, 32), classes=10, options={},
               warmup=2, iters=10),
}

FRAMEWORKS = ("minicnn", "torch")
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS",
                   "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS")
# Seen and reported, never set: they change which kernel OpenBLAS/MKL picks or how OpenMP behaves.
REPORTED_ENV_VARS = THREAD_ENV_VARS + ("OPENBLAS_CORETYPE", "OPENBLAS_VERBOSE", "OMP_PROC_BIND",
                                       "OMP_PLACES", "OMP_WAIT_POLICY", "KMP_AFFINITY", "MKL_DEBUG_CPU_TYPE",
                                       "MKL_ENABLE_INSTRUCTIONS", "CUDA_VISIBLE_DEVICES")
TRAIN_FLOP_FACTOR = 3      # a train step ~ forward + grad w.r.t. inputs + grad w.r.t. weights


def set_thread_env(threads: int, env=None) -> dict:
    """Set every thread-count variable to ``threads`` in ``env`` (default: this process's)."""
    env = os.environ if env is None else env
    for name in THREAD_ENV_VARS:
        env[name] = str(threads)
    return env


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def threadpools() -> list:
    """The native thread pools loaded in this process (BLAS, OpenMP), via threadpoolctl if installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl is not installed (pip install threadpoolctl)"}]
    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer",
            "architecture", "filepath")
    return [{k: info.get(k) for k in keep if k in info} for info in threadpool_info()]


# --------------------------------------------------------------------------- worker: framework adapters

class MinicnnRunner:
    """Builds a minicnn workload and runs one step of it."""

    name = "minicnn"

    def __init__(self, device):
        sys.path.insert(0, str(REPO_ROOT))
        import numpy as np
        import minicnn
        import minicnn.functional as F
        from minicnn import architectures, backend, optim
        from minicnn.kernels.fast.memory import tune_malloc
        self.np, self.minicnn, self.F, self.architectures, self.optim = np, minicnn, F, architectures, optim
        self.device = device
        self.xp = backend.array_module(device)       # raises a clear RuntimeError without CUDA
        tune_malloc()                        # as the training CLI does (see its docstring)
        minicnn.manual_seed(0)

    def versions(self):
        return {"minicnn": getattr(self.minicnn, "__version__", "?"), "numpy": self.np.__version__,
                "minicnn_num_threads": self.minicnn.get_num_threads()}

    def build(self, spec, x, y):
        self.model = self.architectures.get(spec["model"], num_classes=spec["classes"],
                                            in_channels=spec["input"][0], **spec["options"]).to(self.device)
        self.x = self.minicnn.tensor(x, device=self.device)
        self.y = self.minicnn.tensor(y, device=self.device)
        self.train = spec["mode"] == "train"
        self.model.train(self.train)
        if self.train:
            self.opt = self.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)

    def num_parameters(self):
        return int(sum(p.numel() for p in self.model.parameters()))

    def step(self):
        if self.train:
            self.opt.zero_grad()
            loss = self.F.cross_entropy(self.model(self.x), self.y)
            loss.backward()
            self.opt.step()
            return loss
        with self.minicnn.no_grad():
            return self.model(self.x)

    def sync(self):
        if self.device == "cuda":
            self.xp.cuda.get_current_stream().synchronize()

    def scalar(self, t):
        return float(t.item()) if t.ndim == 0 else float(self.np.abs(t.numpy()).mean())

    def peak_gpu_mib(self):
        """GPU memory CuPy's pool holds (it keeps freed blocks, so this is its peak footprint)."""
        return self.xp.get_default_memory_pool().total_bytes() / 2**20

    def count_macs(self, spec):
        """Multiply-adds of one image's forward pass: conv (out elements x in/groups x kH x kW)
        and linear / matmul (out elements x in features), counted by wrapping ``Function.apply``
        while the model runs once in eval mode (so any way a layer calls the op is seen)."""
        from minicnn.autograd import Function
        original = Function.__dict__["apply"]
        total = [0]

        def counting_apply(cls, *args, **kwargs):
            out = original.__func__(cls, *args, **kwargs)
            name = cls.__name__.lower()
            shapes = [tuple(a.shape) for a in args[:2] if hasattr(a, "shape")]
            if "conv" in name and len(shapes) == 2 and len(shapes[1]) == 4:
                _, cin_per_group, kh, kw = shapes[1]
                total[0] += out.numel() * cin_per_group * kh * kw
            elif name in ("linear", "linearfunction") and len(shapes) == 2:
                total[0] += out.numel() * shapes[1][-1]
            elif name == "matmul" and len(shapes) == 2:
                total[0] += out.numel() * shapes[0][-1]
            return out

        x = self.minicnn.zeros(1, *spec["input"], device=self.device)
        self.model.eval()
        Function.apply = classmethod(counting_apply)
        try:
            with self.minicnn.no_grad():
                self.model(x)
        finally:
            Function.apply = original
            self.model.train(self.train)
        return total[0]


class TorchRunner:
    """The same workload in plain PyTorch (models from bench/torch_models.py)."""

    name = "torch"

    def __init__(self, device, threads, tf32=False):
        import numpy as np
        import torch
        sys.path.insert(0, str(BENCH_DIR))
        import torch_models
        self.np, self.torch, self.torch_models = np, torch, torch_models
        torch.set_num_threads(threads)
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda: this PyTorch build has no usable CUDA device "
                               f"(torch {torch.__version__}, cuda {torch.version.cuda})")
        self.device = device
        set_torch_tf32(torch, tf32)
        torch.manual_seed(0)

    def versions(self):
        versions = {"torch": self.torch.__version__, "numpy": self.np.__version__,
                    "torch_num_threads": self.torch.get_num_threads(), **torch_blas(self.torch)}
        if self.device == "cuda":
            versions["torch_cuda"] = self.torch.version.cuda
            versions["torch_cudnn"] = self.torch.backends.cudnn.version()
            versions["torch_tf32"] = torch_tf32(self.torch)
        return versions

    def build(self, spec, x, y):
        torch = self.torch
        self.model = self.torch_models.get(spec["model"], num_classes=spec["classes"],
                                           in_channels=spec["input"][0], **spec["options"]).to(self.device)
        self.x = torch.from_numpy(x).to(self.device)
        self.y = torch.from_numpy(y).to(self.device)
        self.train = spec["mode"] == "train"
        self.model.train(self.train)
        if self.train:
            self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)

    def num_parameters(self):
        return int(sum(p.numel() for p in self.model.parameters()))

    def step(self):
        torch = self.torch
        if self.train:
            self.opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.model(self.x), self.y)
            loss.backward()
            self.opt.step()
            return loss
        with torch.no_grad():
            return self.model(self.x)

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def scalar(self, t):
        return float(t.item()) if t.ndim == 0 else float(t.detach().abs().mean())

    def peak_gpu_mib(self):
        """Peak GPU memory PyTorch's caching allocator reserved (comparable to CuPy's pool total)."""
        return self.torch.cuda.max_memory_reserved() / 2**20

    def count_macs(self, spec):
        """Multiply-adds of one image's forward pass, from hooks on every Conv2d and Linear."""
        torch = self.torch
        total = [0]

        def hook(module, inputs, out):
            if isinstance(module, torch.nn.Conv2d):
                kh, kw = module.kernel_size
                total[0] += out.numel() * (module.in_channels // module.groups) * kh * kw
            else:
                total[0] += out.numel() * module.in_features

        handles = [m.register_forward_hook(hook) for m in self.model.modules()
                   if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        self.model.eval()
        try:
            with torch.no_grad():
                self.model(torch.zeros(1, *spec["input"], device=self.device))
        finally:
            for h in handles:
                h.remove()
            self.model.train(self.train)
        return total[0]


def torch_blas(torch) -> dict:
    """PyTorch's own BLAS / oneDNN (linked into libtorch, so threadpoolctl does not list them)."""
    show = [ln.strip(" -") for ln in torch.__config__.show().splitlines()]
    libs = [ln for ln in show if "Math Kernel Library" in ln or "MKL-DNN" in ln or "OpenBLAS" in ln]
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: None)()
    return {"torch_blas": "; ".join(libs) or "?", "torch_cpu_capability": capability}


def set_torch_tf32(torch, on: bool) -> None:
    """PyTorch on Ampere and later may run float32 convolutions (and matmuls) in TF32, 10-bit
    mantissas; minicnn (CuPy, ``CUPY_TF32`` unset) never does. ``--tf32 off`` compares like with like."""
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on


def torch_tf32(torch) -> str:
    return f"cudnn {'on' if torch.backends.cudnn.allow_tf32 else 'off'}, " \
           f"matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}"


def make_runner(framework, device, threads, tf32=False):
    return MinicnnRunner(device) if framework == "minicnn" else TorchRunner(device, threads, tf32)


# --------------------------------------------------------------------------- worker: one workload

def run_workload(args) -> dict:
    """Build one workload in one framework, warm up, time, and report (runs in its own process)."""
    spec = dict(WORKLOADS[args.worker])
    spec["batch"] *= args.batch_scale
    warmup = spec["warmup"] if args.warmup is None else args.warmup
    iters = spec["iters"] if args.iters is None else args.iters
    result = {"kind": "workload", "workload": args.worker, "framework": args.framework, "device": args.device,
              "batch": spec["batch"], "warmup": warmup}
    t_start = time.perf_counter()
    runner = make_runner(args.framework, args.device, args.threads, args.tf32 == "on")
    result["versions"] = runner.versions()

    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal((spec["batch"], *spec["input"]), dtype=np.float32)
    y = rng.integers(0, spec["classes"], size=spec["batch"], dtype=np.int64)
    runner.build(spec, x, y)
    result["parameters"] = runner.num_parameters()
    result["macs_per_image"] = int(runner.count_macs(spec))   # one image, eval mode, untimed
    result["setup_s"] = time.perf_counter() - t_start

    for _ in range(warmup):
        runner.step()
    runner.sync()

    # Timed iterations: ``iters`` of them, but stop early (after at least min(iters, 3)) once
    # the timed section has run ``--budget`` seconds, so a slow framework cannot stall the suite.
    profiler = None
    if args.profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    times, t_loop, cpu_loop = [], time.perf_counter(), time.process_time()
    while len(times) < iters:
        t0 = time.perf_counter()
        out = runner.step()
        runner.sync()
        times.append(time.perf_counter() - t0)
        if len(times) >= min(iters, 3) and time.perf_counter() - t_loop > args.budget:
            break
    # CPU time of all this process's threads / wall time: about --threads when it had the cores
    # to itself, less when other processes took them (or when it did not use its threads).
    cores_used = (time.process_time() - cpu_loop) / (time.perf_counter() - t_loop)
    if profiler is not None:
        profiler.disable()
        write_profile(profiler, Path(args.profile), f"{args.worker}_{args.framework}")

    median = statistics.median(times)
    flop_per_iter = 2 * result["macs_per_image"] * spec["batch"] * (TRAIN_FLOP_FACTOR if spec["mode"] == "train" else 1)
    result.update(
        iters_timed=len(times), iters_requested=iters, times_ms=[round(t * 1e3, 3) for t in times],
        median_ms=median * 1e3, min_ms=min(times) * 1e3, max_ms=max(times) * 1e3,
        images_per_s=spec["batch"] / median, flop_per_iter=flop_per_iter, gflops=flop_per_iter / median / 1e9,
        cores_used=cores_used, last_output=runner.scalar(out), profiled=bool(args.profile),
        threadpools=threadpools(), env={k: os.environ.get(k) for k in REPORTED_ENV_VARS},
        peak_rss_mib=peak_rss_mib())
    if args.device == "cuda":
        result["peak_gpu_mib"] = runner.peak_gpu_mib()
    return result


def write_profile(profiler, directory: Path, stem: str, top: int = 40):
    """Save cProfile stats (``.prof``, for snakeviz/pstats) and a text summary (``.txt``)."""
    import io
    import pstats
    directory.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(directory / f"{stem}.prof")
    text = io.StringIO()
    for key in ("cumulative", "tottime"):
        text.write(f"===== sorted by {key} =====\n")
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(key).print_stats(top)
    (directory / f"{stem}.txt").write_text(text.getvalue())


# --------------------------------------------------------------------------- worker: GEMM rate

def run_gemm(args) -> dict:
    """Best float32 GEMM rate of one framework's matmul (NumPy for minicnn) on this device."""
    n, reps = args.gemm_n, args.gemm_reps
    if args.framework == "minicnn":
        sys.path.insert(0, str(REPO_ROOT))
        import numpy as np
        from minicnn import backend
        xp = backend.array_module(args.device)
        rng = np.random.default_rng(0)
        a = xp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        b = xp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        matmul = xp.matmul
        sync = (lambda: xp.cuda.get_current_stream().synchronize()) if args.device == "cuda" else (lambda: None)
        library = f"{xp.__name__} {xp.__version__}"
    else:
        import torch
        torch.set_num_threads(args.threads)
        if args.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda: this PyTorch build has no usable CUDA device")
        set_torch_tf32(torch, args.tf32 == "on")
        a = torch.randn(n, n, device=args.device)
        b = torch.randn(n, n, device=args.device)
        matmul = torch.matmul
        sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
        blas = torch_blas(torch)
        library = f"torch {torch.__version__}: {blas['torch_blas']}, CPU capability {blas['torch_cpu_capability']}"
    for _ in range(2):     # warm-up: thread pools started, pages touched
        matmul(a, b)
    sync()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        matmul(a, b)
        sync()
        best = min(best, time.perf_counter() - t0)
    return {"kind": "gemm", "framework": args.framework, "device": args.device, "library": library,
            "n": n, "reps": reps, "best_s": best, "gflops": 2 * n ** 3 / best / 1e9,
            "threadpools": threadpools(), "env": {k: os.environ.get(k) for k in REPORTED_ENV_VARS}}


def worker_main(args) -> int:
    try:
        result = run_gemm(args) if args.worker == "gemm" else run_workload(args)
        result["status"] = "ok"
    except Exception as exc:   # reported to the parent, which keeps going with the next workload
        import traceback
        traceback.print_exc()
        result = {"kind": args.worker, "framework": args.framework, "status": "error",
                  "error": f"{type(exc).__name__}: {exc}", "peak_rss_mib": peak_rss_mib()}
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0 if result["status"] == "ok" else 1


# --------------------------------------------------------------------------- parent: orchestration

def cpu_idle_fraction(interval: float = 1.0):
    """Fraction of all CPUs' time that was idle over ``interval`` seconds (Linux /proc/stat; None elsewhere)."""
    def sample():
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)          # idle + iowait, total
    try:
        idle0, total0 = sample()
        time.sleep(interval)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_idle(args) -> dict:
    """With ``--wait-idle F``: wait (at most ``--wait-max`` s) until the CPUs are at least F idle."""
    t0, idle = time.perf_counter(), cpu_idle_fraction(0.5)
    while (args.wait_idle and idle is not None and idle < args.wait_idle
           and time.perf_counter() - t0 < args.wait_max):
        idle = cpu_idle_fraction(2.0)
    return {"cpu_idle_before": None if idle is None else round(idle, 3),
            "waited_s": round(time.perf_counter() - t0, 1)}


def spawn(args, worker: str, framework: str) -> dict:
    """Run one worker in a fresh interpreter with the thread environment set; return its JSON."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", worker, "--framework", framework,
           "--device", args.device, "--threads", str(args.threads), "--batch-scale", str(args.batch_scale),
           "--budget", str(args.budget), "--gemm-n", str(args.gemm_n), "--gemm-reps", str(args.gemm_reps),
           "--tf32", args.tf32]
    if args.iters is not None:
        cmd += ["--iters", str(args.iters)]
    if args.warmup is not None:
        cmd += ["--warmup", str(args.warmup)]
    if args.profile and framework in args.profile_frameworks.split(",") and worker != "gemm":
        cmd += ["--profile", args.profile]
    env = set_thread_env(args.threads, dict(os.environ))
    before = wait_for_idle(args)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"kind": worker, "framework": framework, "status": "error",
                "error": f"timed out after {args.timeout} s (--timeout)"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARKER)]
    if lines:
        result = json.loads(lines[-1][len(RESULT_MARKER):])
    else:   # killed (e.g. out of memory) before it could report
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        result = {"kind": worker, "framework": framework, "status": "error",
                  "error": f"worker exited with code {proc.returncode} without a result: {tail}"}
    result["wall_s"] = time.perf_counter() - t0
    result.update(before)
    if result["status"] != "ok":
        result["stderr_tail"] = proc.stderr.strip().splitlines()[-15:]
    return result


class BenchError(Exception):
    """A runtime failure of the runner, with its one-line message (what failed, what to do)."""


def check_device(args):
    """``--device cuda`` must fail early and clearly where minicnn cannot use a GPU."""
    if args.device == "cpu":
        return
    sys.path.insert(0, str(REPO_ROOT))
    from minicnn import backend
    if not backend.cuda_available():
        try:
            backend.cupy_module()
        except RuntimeError as exc:
            raise BenchError(f"--device cuda is not available here: {exc}") from exc


def torch_installed() -> bool:
    import importlib.util
    return importlib.util.find_spec("torch") is not None


def machine_facts() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "cpus_available": affinity,
            "platform": platform.platform(), "python": platform.python_version()}


def git_state() -> dict:
    """The commit benchmarked, and which files under minicnn/ differ from it (uncommitted work)."""
    def git(*cmd):
        return subprocess.run(["git", *cmd], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30).stdout
    try:
        commit = git("rev-parse", "--short", "HEAD").strip() or None
        changed = [ln[3:] for ln in git("status", "--porcelain", "--", "minicnn").splitlines()]
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "uncommitted": []}
    return {"commit": commit, "uncommitted": changed}


def load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def parent_main(args) -> int:
    check_device(args)
    workloads = args.workload_ids
    frameworks = ["minicnn"]
    notes = []
    if args.compare == "torch":
        if torch_installed():
            frameworks.append("torch")
        else:
            notes.append("--compare torch asked for, but PyTorch is not installed: minicnn only.")
    report = {
        "meta": {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                 "command": "python bench/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                 "device": args.device, "threads": args.threads, "batch_scale": args.batch_scale,
                 "budget_s": args.budget, "wait_idle": args.wait_idle, "repeat": args.repeat, "machine": machine_facts(), "git": git_state(), "load_average_start": load_average(),
                 "notes": notes},
        "gemm": {}, "workloads": [],
    }
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))

    def measure_gemm(when):
        for fw in frameworks:
            r = spawn(args, "gemm", fw)
            report["gemm"].setdefault(fw, {})[when] = r
            log(f"[gemm {when}] {fw}: " + (f"{r['gflops']:.1f} GFLOP/s" if r["status"] == "ok" else r["error"]))

    if args.gemm in ("start", "both"):
        measure_gemm("start")
    for w in workloads:
        entry = {"id": w, **{k: WORKLOADS[w][k] for k in ("model", "mode", "input", "classes", "options")},
                 "batch": WORKLOADS[w]["batch"] * args.batch_scale, "results": {}}
        runs = {fw: [] for fw in frameworks}
        for rep in range(args.repeat):          # minicnn, torch, minicnn, torch, ...
            for fw in frameworks:
                log(f"[{w}] {fw}: {entry['model']} {entry['mode']} batch {entry['batch']}"
                    + (f" (repeat {rep + 1}/{args.repeat})" if args.repeat > 1 else "") + " ...")
                r = spawn(args, w, fw)
                runs[fw].append(r)
                log(f"[{w}] {fw}: " + (f"{r['images_per_s']:.1f} img/s, median {r['median_ms']:.1f} ms "
                                       f"({r['iters_timed']} timed), peak RSS {r['peak_rss_mib']:.0f} MiB, "
                                       f"{r['cores_used']:.2f} cores used"
                                       if r["status"] == "ok" else f"ERROR {r['error']}"))
        for fw, rs in runs.items():   # with --repeat: the process with the fastest median counts
            ok = [r for r in rs if r["status"] == "ok"]
            chosen = min(ok, key=lambda r: r["median_ms"]) if ok else rs[-1]
            if args.repeat > 1:
                chosen["repeats"] = [{k: r.get(k) for k in ("status", "median_ms", "cores_used", "peak_rss_mib",
                                                             "error")} for r in rs]
            entry["results"][fw] = chosen
        report["workloads"].append(entry)
    if args.gemm == "both":
        measure_gemm("end")
    report["meta"]["load_average_end"] = load_average()
    derive(report)

    markdown = render_markdown(report)
    print(markdown)
    sys.path.insert(0, str(REPO_ROOT))
    from minicnn.fileio import atomic_write_text      # a killed run never leaves half a results file
    for path, text in ((args.markdown, markdown + "\n"), (args.json, json.dumps(report, indent=1) + "\n")):
        if path:
            try:
                atomic_write_text(path, text)
            except OSError as exc:
                raise BenchError(f"cannot write {path}: {exc.strerror or exc} (the results are printed above; "
                                 "choose another path)") from exc
    failed = [f"{e['id']}/{fw}" for e in report["workloads"] for fw, r in e["results"].items() if r["status"] != "ok"]
    return 1 if failed else 0


def derive(report):
    """Add what needs more than one worker: best GEMM rate, fraction of it, ratios, MAC agreement."""
    best = {}
    for fw, runs in report["gemm"].items():
        rates = [r["gflops"] for r in runs.values() if r.get("status") == "ok"]
        best[fw] = max(rates) if rates else None
    report["gemm_best_gflops"] = best
    for entry in report["workloads"]:
        res = entry["results"]
        for fw, r in res.items():
            if r["status"] == "ok" and best.get(fw):
                r["fraction_of_gemm"] = r["gflops"] / best[fw]
        m, t = res.get("minicnn"), res.get("torch")
        if m and t and m["status"] == "ok" and t["status"] == "ok":
            entry["ratio_images_per_s"] = m["images_per_s"] / t["images_per_s"]
            entry["ratio_peak_rss"] = m["peak_rss_mib"] / t["peak_rss_mib"]
            entry["same_macs"] = m["macs_per_image"] == t["macs_per_image"]
            entry["same_parameters"] = m["parameters"] == t["parameters"]


# --------------------------------------------------------------------------- Markdown

COLUMNS_DOC = """\
Columns:

* **GMAC/img**: multiply-adds of one image's forward pass, counted over the model's conv and
  linear layers for this input size (pooling, normalisation and activations not counted).
* **GFLOP/iter**: work of one timed iteration: 2 x MACs x batch, times 3 for a train step
  (forward, gradient w.r.t. inputs, gradient w.r.t. weights), times 1 for inference.
* **img/s**: batch / median iteration time. **ms/iter**: median over the timed iterations
  (after the warm-up ones), with the fastest and slowest in brackets; **n** timed iterations.
* **GFLOP/s**: GFLOP/iter / median time. **% GEMM**: that rate as a fraction of the best float32
  GEMM rate of the same framework's matmul (NumPy's BLAS for minicnn, PyTorch's for PyTorch),
  measured in this run.
* **peak RSS**: `ru_maxrss` at the end of a process that built and ran only this workload in
  this framework (interpreter and libraries included: importing PyTorch alone costs a few
  hundred MiB, NumPy a few tens).
* **cores used**: CPU time of the process (all threads) / wall time, over the timed iterations:
  close to the thread count when the process had its cores, lower when other processes took
  them or the work was single-threaded (higher is possible: BLAS helper threads that spin).
* **ratio**: minicnn / PyTorch: above 1 means minicnn is faster (img/s) or uses more memory (RSS).
"""


def _fmt(value, digits=1):
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}" if abs(value) >= 1 or value == 0 else f"{value:.{digits + 2}f}"


def _pools(pools):
    out = []
    for p in pools or []:
        if "error" in p:
            return p["error"]
        arch = f", kernel {p['architecture']}" if p.get("architecture") else ""
        layer = f", {p['threading_layer']}" if p.get("threading_layer") else ""
        out.append(f"{p.get('internal_api')} {p.get('version') or ''} ({p.get('user_api')}{arch}{layer}, "
                   f"{p.get('num_threads')} threads, {Path(p.get('filepath') or '?').name})")
    return "; ".join(out) or "none reported"


def render_markdown(report) -> str:
    meta, lines = report["meta"], []
    machine = meta["machine"]
    lines += [f"# minicnn benchmark ({meta['device']})", "",
              f"* command: `{meta['command']}`",
              f"* date: {meta['date']}",
              f"* code: commit {meta['git']['commit']}" + (
                  f" plus uncommitted changes to {', '.join(meta['git']['uncommitted'])}"
                  if meta["git"]["uncommitted"] else ""),
              f"* machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs "
              f"({machine['cpus_available']} available to this process), {machine['platform']}, "
              f"Python {machine['python']}",
              f"* threads per process: {meta['threads']}; "
              + (f"each (workload, framework) ran in {meta['repeat']} processes, the fastest median shown; "
                 if meta.get("repeat", 1) > 1 else "")
              + f"load average (1/5/15 min) at start "
              f"{meta['load_average_start']}, at end {meta.get('load_average_end')}"]
    for fw, runs in report["gemm"].items():
        ok = {when: r for when, r in runs.items() if r.get("status") == "ok"}
        if not ok:
            lines.append(f"* {fw}: GEMM failed: {next(iter(runs.values())).get('error')}")
            continue
        first = next(iter(ok.values()))
        rates = ", ".join(f"{r['gflops']:.1f} ({when})" for when, r in ok.items())
        lines.append(f"* {fw} float32 GEMM ({first['library']}, {first['n']}x{first['n']}, best of "
                     f"{first['reps']}): {rates} GFLOP/s; BLAS/threads: {_pools(first['threadpools'])}")
    env = next((r["env"] for runs in report["gemm"].values() for r in runs.values() if r.get("env")), {})
    lines.append("* environment seen by the workers: " +
                 (", ".join(f"{k}={v}" for k, v in env.items() if v is not None) or "-"))
    versions = {}
    for e in report["workloads"]:
        for r in e["results"].values():
            for k, v in (r.get("versions") or {}).items():
                if k not in ("torch_blas", "torch_cpu_capability"):
                    versions.setdefault(k, v)
    if versions:
        lines.append("* versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    idle = [r["cpu_idle_before"] for e in report["workloads"] for r in e["results"].values()
            if r.get("cpu_idle_before") is not None]
    if idle:
        waited = sum(r.get("waited_s", 0) for e in report["workloads"] for r in e["results"].values())
        lines.append(f"* CPUs idle just before each workload started: {100 * min(idle):.0f}% to {100 * max(idle):.0f}% "
                     f"(median {100 * statistics.median(idle):.0f}%; waited {waited:.0f} s in all for --wait-idle "
                     f"{meta.get('wait_idle', 0)})")
    lines += [f"* note: {n}" for n in meta["notes"]]
    lines += ["", "| id | model | mode | batch | input | GMAC/img | GFLOP/iter | framework | img/s | "
              "ms/iter (min-max) | n | GFLOP/s | % GEMM | peak RSS MiB | cores used |",
              "|---|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for e in report["workloads"]:
        shape = "x".join(str(s) for s in e["input"])
        for fw, r in e["results"].items():
            head = f"| {e['id']} | {e['model']} | {e['mode']} | {e['batch']} | {shape} |"
            if r["status"] != "ok":
                lines.append(f"{head} - | - | {fw} | error: {r['error'][:120]} | | | | | | |")
                continue
            frac = r.get("fraction_of_gemm")
            lines.append(
                f"{head} {r['macs_per_image'] / 1e9:.4f} | {_fmt(r['flop_per_iter'] / 1e9)} | {fw} | "
                f"{_fmt(r['images_per_s'])} | {_fmt(r['median_ms'])} ({_fmt(r['min_ms'])}-{_fmt(r['max_ms'])}) | "
                f"{r['iters_timed']} | {_fmt(r['gflops'])} | "
                f"{'-' if frac is None else f'{100 * frac:.1f}%'} | {_fmt(r['peak_rss_mib'])} | "
                f"{r['cores_used']:.2f} |")
    compared = [e for e in report["workloads"] if "ratio_images_per_s" in e]
    if compared:
        lines += ["", "## minicnn / PyTorch", "",
                  "| id | model | mode | minicnn img/s | PyTorch img/s | speed ratio | minicnn RSS MiB | "
                  "PyTorch RSS MiB | RSS ratio | same MACs / params |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for e in compared:
            m, t = e["results"]["minicnn"], e["results"]["torch"]
            same = ("yes" if e["same_macs"] else "**MACs differ**") + " / " + \
                   ("yes" if e["same_parameters"] else f"**{m['parameters']:,} vs {t['parameters']:,}**")
            lines.append(f"| {e['id']} | {e['model']} | {e['mode']} | {_fmt(m['images_per_s'])} | "
                         f"{_fmt(t['images_per_s'])} | {e['ratio_images_per_s']:.3f} | {_fmt(m['peak_rss_mib'])} | "
                         f"{_fmt(t['peak_rss_mib'])} | {e['ratio_peak_rss']:.2f} | {same} |")
    blas = {}
    for e in report["workloads"]:
        for fw, r in e["results"].items():
            if r.get("threadpools") and fw not in blas:
                blas[fw] = _pools(r["threadpools"])
    if blas:
        lines += ["", "Thread pools loaded at the end of a workload: " +
                  "; ".join(f"**{fw}**: {p}" for fw, p in blas.items())]
    lines += ["", COLUMNS_DOC]
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line

class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line ``run.py: error: ...`` and exit status 2 (minicnn.cli's policy; this
    file imports only the standard library at module level, so it has its own few lines)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Workloads:\n" + "\n".join(
                                    f"  {k}: {v['model']} {v['mode']} batch {v['batch']} "
                                    f"{'x'.join(map(str, v['input']))}" for k, v in WORKLOADS.items()))
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated ids (default: all)")
    p.add_argument("--compare", choices=["torch"], help="also run every workload in PyTorch")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--iters", type=int, help="timed iterations (default: per workload, 5 to 20)")
    p.add_argument("--warmup", type=int, help="untimed warm-up iterations (default: per workload, 1 to 3)")
    p.add_argument("--budget", type=float, default=60.0,
                   help="stop timing a workload after this many seconds (once 3 iterations are done)")
    p.add_argument("--repeat", type=int, default=1,
                   help="run each (workload, framework) process this many times, alternating; "
                        "the one with the fastest median is reported (all are in the JSON)")
    p.add_argument("--threads", type=int, default=2, help="threads per process (BLAS, OpenMP, torch)")
    p.add_argument("--batch-scale", type=int, default=None,
                   help="multiply every batch size (default: 1 on cpu, 4 on cuda)")
    p.add_argument("--tf32", choices=["off", "on"], default="off",
                   help="let PyTorch on CUDA use TF32 for float32 convolutions and matmuls (default off: "
                        "full float32, as minicnn's CuPy path)")
    p.add_argument("--gemm-n", type=int, default=None, help="GEMM size N (default 2048 on cpu, 8192 on cuda)")
    p.add_argument("--gemm", choices=["both", "start", "none"], default="both",
                   help="when to measure the GEMM rate: before and after the workloads (default), before only, never")
    p.add_argument("--gemm-reps", type=int, default=10, help="GEMM repetitions (the best one counts)")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="F",
                   help="before each worker, wait until the CPUs are at least this idle (0-1; default: don't)")
    p.add_argument("--wait-max", type=float, default=120.0, help="longest wait for --wait-idle, seconds")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds before a worker is killed")
    p.add_argument("--profile", metavar="DIR",
                   help="cProfile the timed iterations into DIR/<id>_<framework>.prof/.txt (slows them down)")
    p.add_argument("--profile-frameworks", default="minicnn", help="which frameworks --profile applies to")
    p.add_argument("--json", metavar="PATH", help="write the full results as JSON")
    p.add_argument("--markdown", metavar="PATH", help="write the Markdown table")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--debug", action="store_true", help="on an error, print the traceback too (also: MINICNN_DEBUG=1)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--framework", choices=FRAMEWORKS, default="minicnn", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.batch_scale is None:
        args.batch_scale = 4 if args.device == "cuda" else 1
    if args.gemm_n is None:
        args.gemm_n = 8192 if args.device == "cuda" else 2048
    for name in ("iters", "repeat", "threads", "batch_scale", "gemm_n", "gemm_reps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup is not None and args.warmup < 0:
        p.error("--warmup must be at least 0")
    for name, low, high in (("budget", 0, None), ("timeout", 0, None), ("wait_max", 0, None), ("wait_idle", 0, 1)):
        value = getattr(args, name)
        if not (value >= low and (high is None or value <= high)) or value in (float("inf"), float("-inf")):
            p.error(f"--{name.replace('_', '-')} must be a finite number "
                    + (f"in [{low}, {high}]" if high is not None else f">= {low}") + f", got {value}")
    args.workload_ids = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workload_ids if w not in WORKLOADS]
    if unknown or not args.workload_ids:
        p.error(f"unknown workload(s) {', '.join(unknown) or repr(args.workloads)}; choose from {', '.join(WORKLOADS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        set_thread_env(args.threads)     # before NumPy / PyTorch are imported
        return worker_main(args)
    try:
        return parent_main(args)
    except BenchError as exc:            # a runtime error: one line, exit 1 (--debug: the traceback too)
        if args.debug or os.environ.get("MINICNN_DEBUG", "").strip().lower() not in ("", "0", "false", "no"):
            import traceback
            traceback.print_exc()
        print(f"run.py: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
