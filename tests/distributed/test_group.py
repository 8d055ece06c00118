"""The process group: minicnn without mpi4py, and a job of one process (plain ``python``, no mpiexec).

Each runs in a subprocess, so that MPI never starts inside the test process; "without mpi4py" is
simulated by blocking its import (``sys.modules['mpi4py'] = None``), so it runs whether or not the
extra is installed.
"""
import os
import textwrap

from mpi_helpers import needs_mpi, python

BLOCK_MPI4PY = "import sys; sys.modules['mpi4py'] = None\n"


def run_code(code, cwd=None, env_extra=None, without_mpi4py=False):
    kwargs = {"cwd": cwd} if cwd else {}
    code = (BLOCK_MPI4PY if without_mpi4py else "") + textwrap.dedent(code)
    return python(["-c", code], env_extra=env_extra, **kwargs)


def test_minicnn_imports_without_mpi4py_and_init_says_what_to_install():
    proc = run_code("""
        import minicnn, minicnn.train, minicnn.training, minicnn.distributed as d
        sampler = d.DistributedSampler(10, num_replicas=2, rank=0)
        print(len(sampler), d.is_initialized(), d.launcher_rank())
        try:
            d.init_process_group()
        except ImportError as exc:
            print("ImportError:", exc)
    """, without_mpi4py=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "5 False None"
    assert lines[1] == ("ImportError: minicnn.distributed needs mpi4py: install the MPI extra: pip install -e '.[mpi]' "
                        "(mpi4py and the mpich wheel, which brings mpiexec)")


def test_importing_minicnn_never_starts_mpi():
    proc = run_code("""
        import sys, minicnn, minicnn.train, minicnn.training
        print(sys.modules.get("mpi4py") is not None, "mpi4py.MPI" in sys.modules)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


def test_train_distributed_without_mpi4py_is_a_one_line_error_that_leaves_nothing(tmp_path):
    proc = run_code("""
        from minicnn.train import main
        main(["lenet5", "--distributed", "--epochs", "1", "--limit-train", "64", "--out", "run"])
    """, cwd=tmp_path, without_mpi4py=True)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "python -m minicnn.train: error: --distributed: minicnn.distributed needs mpi4py: install the MPI extra: "
        "pip install -e '.[mpi]' (mpi4py and the mpich wheel, which brings mpiexec)"]
    assert os.listdir(tmp_path) == []


@needs_mpi
def test_a_job_of_one_process():
    proc = run_code("""
        import numpy as np, minicnn
        from minicnn import distributed, nn, optim, training
        from minicnn.data import DataLoader
        group = distributed.init_process_group(timeout=5)
        assert distributed.init_process_group() is group
        print(group.rank, group.world_size, group.local_rank, group.local_size, group.timeout)
        a = np.arange(4.0)
        group.all_reduce_(a, op="max"); group.broadcast_(a)
        print(a.tolist(), group.broadcast_object({"id": (1, 2)}), group.on_root(lambda: [3]))
        for bad in (lambda: group.all_reduce_(a, op="mean"), lambda: group.all_reduce_(np.zeros((3, 4))[:, 1])):
            try:
                bad()
            except ValueError as exc:
                print("ValueError:", exc)
        try:
            group.on_root(lambda: 1 / 0)
        except ZeroDivisionError:
            print("ZeroDivisionError on the root itself")
        # fit() through a DistributedDataParallel model of one process == fit() of the model
        x = np.random.default_rng(0).integers(0, 255, (40, 1, 6, 6)).astype(np.uint8)
        y = np.random.default_rng(1).integers(0, 3, 40)
        histories = []
        for wrap in (False, True):
            minicnn.manual_seed(0)
            model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
            opt = optim.SGD(model.parameters(), lr=0.1)
            sampler = distributed.DistributedSampler(40, seed=2) if wrap else None
            loader = DataLoader((x, y), batch_size=8, shuffle=not wrap, seed=2, sampler=sampler)
            net = distributed.DistributedDataParallel(model) if wrap else model
            h = training.fit(net, loader, opt, 2, test_loader=DataLoader((x, y), batch_size=16), seed=2, progress=False)
            histories.append([(r["train_loss"], r["train_acc"], r["test_loss"], r["test_acc"]) for r in h])
        print(histories[0] == histories[1], histories[1][-1][3] > 0)
    """, env_extra={"MINICNN_DIST_TIMEOUT": "abc"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "0 1 0 1 5.0",
        "[0.0, 1.0, 2.0, 3.0] {'id': [1, 2]} [3]",
        "ValueError: all_reduce_: op must be one of sum, max, min, got 'mean'",
        "ValueError: all_reduce_: the array must be C-contiguous (got strides (32,))",
        "ZeroDivisionError on the root itself",
        "True True"]


@needs_mpi
def test_a_bad_timeout_in_the_environment_is_named():
    proc = run_code("from minicnn import distributed; distributed.init_process_group()",
                    env_extra={"MINICNN_DIST_TIMEOUT": "soon"})
    assert proc.returncode == 1
    assert "ValueError: MINICNN_DIST_TIMEOUT must be a number of seconds, got 'soon'" in proc.stderr
