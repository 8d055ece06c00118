"""Run a minicnn command line with one fault injected: the tests' way to crash it at a precise place.

    python tests/faults.py FAULT -m minicnn.train lenet5 --out run ...     # runs minicnn.train.main()
    python tests/faults.py FAULT -c "from minicnn.data import MNIST; MNIST(root='d', train=False)"

FAULT@RANK injects it into process RANK of an MPI job only (``mpiexec -n 2 python tests/faults.py
kill-step:1:5@1 -m minicnn.train ... --distributed``; the rank is read from the launcher's environment).

The fault is installed by monkeypatching minicnn in this process before the command runs, so
minicnn itself holds no test hook. FAULT is one of:

  kill-step:EPOCH:STEP    SIGKILL this process (as ``kill -9`` would) when training reaches that step
  nan-step:EPOCH:STEP     that step's batch is all NaN (a diverging run)
  raise-step:EPOCH:STEP   raise a RuntimeError there (a bug that ends the process)
  hang-step:EPOCH:STEP    sleep for an hour there (a process that hangs)
  interrupt-step:EPOCH:STEP  raise KeyboardInterrupt there (Ctrl-C)
  kill-write:NAME:N       SIGKILL inside the N-th atomic write of a file named NAME (checkpoint,
                          metrics.csv, config.json, curves.png, a download, a safetensors or ONNX
                          file, a visualize figure): after part of the new
                          content went into the temporary file, before the rename
  enospc-write:NAME:N     that write fails with OSError(ENOSPC), as on a full disk
  readonly:FOLDER         creating a folder or a file under FOLDER fails with OSError(EROFS), as on a
                          read-only file system (permission bits do not stop root)
"""
import errno
import importlib
import os
import signal
import sys
import tempfile
import time

import numpy as np


class FaultyLoader:
    """Wraps a training loader: at (epoch, step) it kills the process or hands out a NaN batch."""

    def __init__(self, loader, epoch, at, kind):
        self.loader, self.epoch, self.at, self.kind = loader, epoch, at, kind

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for step, (x, y) in enumerate(self.loader, 1):
            if (self.epoch, step) == self.at:
                if self.kind == "kill-step":
                    os.kill(os.getpid(), signal.SIGKILL)
                if self.kind == "raise-step":
                    raise RuntimeError(f"fault injected at epoch {self.epoch}, step {step}")
                if self.kind == "hang-step":
                    time.sleep(3600)
                if self.kind == "interrupt-step":
                    raise KeyboardInterrupt
                x = np.full_like(x, np.nan)
            yield x, y


class FaultyFile:
    """A file whose first ``write`` writes half of its data and kills the process, or fails (ENOSPC)."""

    def __init__(self, f, kind):
        self._f, self._kind = f, kind

    def write(self, data):
        if self._kind == "enospc-write":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._f.write(data[:max(1, len(data) // 2)])
        self._f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def __getattr__(self, name):
        return getattr(self._f, name)


def install(fault: str, patch=setattr) -> None:
    """Install ``fault`` by ``patch(owner, name, replacement)``: ``setattr`` for good (in the subprocess
    this script runs), or a test's ``monkeypatch.setattr`` to inject it in the test's own process."""
    kind, _, where = fault.partition(":")
    if kind in ("kill-step", "nan-step", "raise-step", "hang-step", "interrupt-step"):
        from minicnn.training import loop
        epoch, step = (int(v) for v in where.split(":"))
        original_epoch = loop.train_one_epoch

        def train_one_epoch(model, loader, optimizer, scheduler, e, *args, **kwargs):
            return original_epoch(model, FaultyLoader(loader, e, (epoch, step), kind), optimizer, scheduler, e,
                                  *args, **kwargs)
        patch(loop, "train_one_epoch", train_one_epoch)
    elif kind in ("kill-write", "enospc-write"):
        from minicnn import checkpoint, fileio
        from minicnn.data import download
        name, n = where.rsplit(":", 1)
        original_write, seen = fileio.atomic_write, [0]

        def atomic_write(path, write, mode="wb"):
            if os.path.basename(os.fspath(path)) == name:
                seen[0] += 1
                if seen[0] == int(n):
                    return original_write(path, lambda f: write(FaultyFile(f, kind)), mode)
            return original_write(path, write, mode)
        for module in (fileio, checkpoint, download):       # each holds its own reference
            patch(module, "atomic_write", atomic_write)
        for optional in ("minicnn.weights", "minicnn.onnx_export.graph", "minicnn.visualize.figures"):
            try:                                              # (they import safetensors, onnx, matplotlib lazily)
                patch(importlib.import_module(optional), "atomic_write", atomic_write)
            except ImportError:
                pass
    elif kind == "readonly":
        folder = os.path.abspath(where)
        original_mkdir, original_mkstemp = os.mkdir, tempfile.mkstemp

        def refuse(path):
            path = os.path.abspath(os.fspath(path))
            if path == folder or path.startswith(folder + os.sep):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

        def mkdir(path, *args, **kwargs):
            refuse(path)
            return original_mkdir(path, *args, **kwargs)

        def mkstemp(*args, dir=None, **kwargs):
            refuse(os.path.join(dir or ".", "file"))
            return original_mkstemp(*args, dir=dir, **kwargs)
        patch(os, "mkdir", mkdir)
        patch(tempfile, "mkstemp", mkstemp)
    else:
        raise SystemExit(f"faults.py: unknown fault {fault!r}")


def main(argv):
    fault, how, target, *rest = argv
    fault, _, rank = fault.partition("@")
    if not rank or int(rank) == int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))):
        install(fault)
    if how == "-m":                       # the module's main(), so that the patched module is the one that runs
        sys.argv = [target, *rest]
        importlib.import_module(target).main()
    elif how == "-c":
        sys.argv = ["-c", *rest]
        exec(compile(target, "<faults -c>", "exec"), {"__name__": "__main__"})
    else:
        raise SystemExit("usage: faults.py FAULT (-m MODULE | -c CODE) [ARG...]")


if __name__ == "__main__":
    main(sys.argv[1:])
