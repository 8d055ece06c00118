#!/usr/bin/env python
"""Summarise a py-spy profile of one benchmark worker: where the train/infer steps spend time.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 py-spy record -r 200 --format raw -o w3.raw -- \\
        python bench/run.py --worker W3 --framework minicnn --iters 5 --warmup 1
    python bench/profile_summary.py w3.raw --top 25

py-spy's raw format has one line per distinct stack: ``frame;frame;...;leaf COUNT``, each frame
``function (file:line)``. Only samples taken inside the benchmark's step (``step (run.py...``)
count, so imports and model building are left out; so do samples of minicnn's worker threads
(``_worker_loop``), which run slices of the step's kernels: with 2 threads the shares are shares of
CPU samples over both threads, not of wall time. Three tables, as shares of those samples:

* **inclusive** by function: samples whose stack passes through the function (its cumulative time);
* **self** by function: samples whose innermost Python frame is the function (time in its own
  lines, including the NumPy/BLAS calls it makes directly);
* **self** by line: the same, per source line: the statement to look at.

With ``--native`` recordings the innermost frames are C functions (BLAS kernels, NumPy loops);
the tables then also list the innermost native frame.
"""
from __future__ import annotations

import argparse
import collections
import re
import sys

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def parse(path):
    """Yield (frames, count) per stack line; frames are (function, file, line) tuples, outermost first."""
    with open(path) as f:
        for raw in f:
            raw = raw.rstrip("\n")
            if not raw:
                continue
            stack, _, count = raw.rpartition(" ")
            frames = []
            for part in stack.split(";"):
                m = FRAME.match(part)
                frames.append((m["func"], m["file"], m["line"]) if m else (part, "", None))
            yield frames, int(count)


def is_python(frame):
    return frame[1].endswith(".py")


def is_native(frame):
    """A C frame from ``py-spy --native``: a shared library instead of a .py file, no line number."""
    return ".so" in frame[1] or frame[1].endswith(".dylib")


def short(frame, with_line=False):
    func, file, line = frame
    name = file.rsplit("/", 1)[-1] if file else ""
    if with_line and line:
        return f"{name}:{line} {func}"
    return f"{name} {func}" if name else func


WORKER_MARKER = "_worker_loop (" # a minicnn worker thread (kernels.fast.threads.parallel_map) running a slice of a kernel


def summarise(path, top=25, step_marker="step (run.py"):
    inclusive, self_func, self_line, native_leaf = (collections.Counter() for _ in range(4))
    total = 0
    for frames, count in parse(path):
        text = ";".join(f"{f[0]} ({f[1]}:{f[2]})" for f in frames)
        if step_marker and step_marker not in text and WORKER_MARKER not in text:
            continue
        total += count
        for name in {short(f) for f in frames if not f[1].endswith("run.py")}:   # not the harness
            inclusive[name] += count
        py = [f for f in frames if is_python(f)]
        if py:
            self_func[short(py[-1])] += count
            self_line[short(py[-1], with_line=True)] += count
        if frames and is_native(frames[-1]):
            native_leaf[short(frames[-1])] += count
    if not total:
        return f"{path}: no samples inside the benchmark step"
    out = [f"{path}: {total} samples inside the benchmark step (its own thread and minicnn's workers)"]
    tables = [("inclusive (cumulative) by function", inclusive), ("self by function", self_func),
              ("self by line", self_line)]
    if native_leaf:
        tables.append(("innermost native frame", native_leaf))
    for title, counter in tables:
        out += ["", f"{title}:", "| share | samples | where |", "|---:|---:|---|"]
        out += [f"| {100 * n / total:.1f}% | {n} | `{name}` |" for name, n in counter.most_common(top)]
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description="Summarise a py-spy --format raw profile of a bench worker.")
    p.add_argument("raw", nargs="+", help="py-spy raw output files")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--all", action="store_true", help="count every sample, not only those inside step()")
    args = p.parse_args(argv)
    for path in args.raw:
        print(summarise(path, args.top, step_marker=None if args.all else "step (run.py"))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
