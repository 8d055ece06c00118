"""What a training run does as one process, or as one process of a data-parallel job.

The command line (``python -m minicnn.train``, with ``--distributed`` under ``mpiexec -n N``)
asks its :class:`Job` rather than testing for the distributed case at every turn:

* ``loaders``: a single process reads the whole training set in batches of ``batch_size``; the
  ``N`` processes of a job each read their shard (:class:`~minicnn.data.DistributedSampler`) in
  batches of ``batch_size / N``, so that one step of the job is one global batch of ``batch_size``
  (the very batch a single process would draw), and each evaluates its shard of the test set;
* ``wrap``: the model, or a :class:`~minicnn.distributed.DistributedDataParallel` around it;
* ``writes``: only rank 0 prints, writes the run folder's files and checkpoints;
* ``first_on_root(fn)``: ``fn`` runs on rank 0 first (a download, reading a checkpoint), then on
  the others; ``root_only(fn)`` on rank 0 alone (making the run folder). When it fails there,
  rank 0 reports it and the others stop quietly with the same exit status;
* ``close(code)``: a failure on one process ends the whole job (``MPI_Abort``) at once, since the
  others would wait for it in their next collective (each of which has a time limit anyway).
"""
from __future__ import annotations

import os
import time

from .. import cli
from ..data import DataError, DataLoader, DistributedSampler
from ..data.pipeline import load_data
from ..distributed import DistributedDataParallel, init_process_group, launcher_world_size
from .state import default_out_dir


def load_run_data(config):
    """The run's ``(train, test)`` datasets, or a ``CommandError`` saying what failed."""
    try:
        train_set, test_set = load_data(config)
    except (DataError, OSError) as exc:
        what = cli.describe_os_error(exc) if type(exc) is OSError else exc
        raise cli.CommandError(f"cannot load {config['dataset']}: {what}") from exc
    if list(train_set.classes) != list(config["classes"]):
        raise cli.CommandError(f"{config['dataset']}: the data has the classes {train_set.classes}, "
                               f"the run expects {config['classes']}")
    return train_set, test_set


def make_run_folder(arch, out):
    """The run folder ``out`` (made if missing), or a new ``runs/<arch>-<timestamp>`` when None."""
    try:
        if out is None:
            return default_out_dir(arch)
        os.makedirs(out, exist_ok=True)
        return out
    except OSError as exc:
        raise cli.CommandError(f"cannot create the run folder: {cli.describe_os_error(exc)}. "
                               "Choose another --out.") from exc


class Job:
    """A run of one process (and the interface of :class:`DistributedJob`)."""

    rank, world_size, group = 0, 1, None

    @property
    def writes(self) -> bool:
        """True on the process that prints and writes files (rank 0)."""
        return self.rank == 0

    def check(self, config):
        """Why ``config`` does not fit this job (a usage error), or None."""
        processes = launcher_world_size()
        if processes is not None and processes > 1:
            return (f"started by an MPI launcher as one of {processes} processes: add --distributed to train "
                    "them as one data-parallel job (else each would run the whole training on its own)")
        return None

    def threads(self, config):
        """The CPU threads of minicnn's kernels (None: as configured)."""
        return config.get("threads")

    def loaders(self, train_set, test_set, config, train_transform, test_transform):
        train = DataLoader(train_set, batch_size=config["batch_size"], shuffle=True, seed=config["seed"],
                           transform=train_transform)
        test = DataLoader(test_set, batch_size=config["eval_batch_size"], transform=test_transform)
        return train, test

    def wrap(self, model):
        return model

    def load_data(self, config):
        """The run's datasets (:func:`load_run_data`), loaded by rank 0 first (it may download them)."""
        return self.first_on_root(lambda: load_run_data(config))

    def make_folder(self, arch, out):
        """The run folder (:func:`make_run_folder`), made by rank 0 alone; its path on every rank."""
        return self.root_only(lambda: make_run_folder(arch, out))

    def use_device(self, device):
        """Prepare ``device`` for the job's collectives (NCCL on GPUs)."""

    def first_on_root(self, fn):
        return fn()

    def root_only(self, fn):
        return fn()

    def fail_together(self):
        pass

    def close(self, code) -> int:
        return code

    def resume_command(self, arch, out) -> str:
        """The command line that continues this run."""
        return f"python -m minicnn.train {arch} --resume {out}"


class DistributedJob(Job):
    """One process of a data-parallel job (``init_process_group()``: MPI, and NCCL for ``--device cuda``)."""

    def __init__(self):
        try:
            self.group = init_process_group()
        except ImportError as exc:
            raise cli.CommandError(f"--distributed: {exc}") from exc
        self.rank, self.world_size = self.group.rank, self.group.world_size
        self.failure_shared = False     # a failure every process knows of: no abort needed

    def check(self, config):
        if config["batch_size"] % self.world_size:
            return (f"argument --batch-size: the global batch of {config['batch_size']} does not split evenly "
                    f"across the {self.world_size} processes of the job")
        return None

    def threads(self, config):
        """As configured when given; else the machine's CPUs shared out among its processes of the job."""
        if config.get("threads") is not None or os.environ.get("MINICNN_NUM_THREADS") \
                or os.environ.get("OMP_NUM_THREADS"):
            return config.get("threads")
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:
            cpus = os.cpu_count() or 1
        return max(1, cpus // self.group.local_size)

    def use_device(self, device):
        if device == "cuda":
            self.group.init_nccl()

    def loaders(self, train_set, test_set, config, train_transform, test_transform):
        w, r = self.world_size, self.rank
        train = DataLoader(train_set, batch_size=config["batch_size"] // w, transform=train_transform,
                           sampler=DistributedSampler(train_set, w, r, shuffle=True, seed=config["seed"]))
        test = DataLoader(test_set, batch_size=config["eval_batch_size"], transform=test_transform,
                          sampler=DistributedSampler(test_set, w, r, shuffle=False, even=False))
        return train, test

    def wrap(self, model):
        return DistributedDataParallel(model, self.group)

    def first_on_root(self, fn):
        """``fn()`` on rank 0, then (if it worked) on the others; its result on every rank."""
        try:
            if self.rank == 0:
                result = [None]
                self.group.on_root(lambda: result.__setitem__(0, fn()))
                return result[0]
            self.group.on_root(lambda: None)
        except BaseException:
            self.failure_shared = True
            raise
        return fn()

    def root_only(self, fn):
        """``fn()`` on rank 0 alone; its result (JSON-able) on every rank."""
        try:
            return self.group.on_root(fn)
        except BaseException:
            self.failure_shared = True
            raise

    def resume_command(self, arch, out) -> str:
        return f"mpiexec -n {self.world_size} python -m minicnn.train {arch} --resume {out} --distributed"

    def fail_together(self):
        """Mark the failure at hand as one that every process met at the same point (a NaN loss)."""
        self.failure_shared = True

    def close(self, code) -> int:
        """``code``, after ending the whole job if this process failed on its own."""
        if code not in (0, None) and not self.failure_shared and self.world_size > 1:
            if self.rank > 0 and code == cli.EXIT_INTERRUPTED:
                time.sleep(2)         # Ctrl-C reached every process: let rank 0 say where to resume
            self.group.abort(code)
        return code
