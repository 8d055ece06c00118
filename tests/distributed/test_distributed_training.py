"""``mpiexec -n 2 python -m minicnn.train lenet5 --distributed`` on a few real MNIST images, as a user
runs it: the job must learn what one process learns, rank 0 alone must write and print, a distributed
run must resume after a rank was killed, and a rank that is killed, raises or hangs must end the job
with an error in bounded time (each mpiexec has a timeout: a hang fails the test, it never blocks).
"""
import csv
import os
import time

import numpy as np
import pytest
from conftest import needs_mnist
from mpi_helpers import FAULTS, mpiexec, needs_mpi, python

pytestmark = [needs_mpi, needs_mnist]

# As tests/test_train.py's QUICK run: 2000 training images, 2 epochs of 63 global batches of 32.
QUICK = ["lenet5", "--limit-train", "2000", "--limit-test", "500", "--epochs", "2", "--batch-size", "32",
         "--lr", "0.005", "--warmup-epochs", "0", "--augment", "none", "--seed", "0", "--no-progress"]
TRAIN = ["-m", "minicnn.train"]


def metrics(folder):
    with open(os.path.join(folder, "metrics.csv"), newline="") as f:
        return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in csv.DictReader(f)]


def timed(run, *args, **kwargs):
    start = time.monotonic()
    proc = run(*args, **kwargs)
    return proc, time.monotonic() - start


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A one-process run and a two-process run of QUICK, shared by the tests below."""
    cwd = tmp_path_factory.mktemp("dist")
    single = python([*TRAIN, *QUICK, "--out", "single"], cwd=cwd)
    assert single.returncode == 0, single.stdout + single.stderr
    double = mpiexec(2, [*TRAIN, *QUICK, "--out", "double", "--distributed"], cwd=cwd)
    assert double.returncode == 0, double.stdout + double.stderr
    return cwd, single, double


def test_two_processes_learn_what_one_process_learns(runs):
    cwd, _, _ = runs
    one, two = metrics(cwd / "single"), metrics(cwd / "double")
    assert [r["epoch"] for r in two] == ["1", "2"]
    for a, b in zip(one, two):
        # the same global batches in the same order: the same run up to float32 rounding
        assert abs(float(a["test_acc"]) - float(b["test_acc"])) <= 0.01
        assert abs(float(a["train_loss"]) - float(b["train_loss"])) <= 1e-3
    assert float(two[-1]["test_acc"]) > 0.8


# The run, with the default augmentation (random crops): 10 global batches of 64.
AUGMENTED = ["lenet5", "--epochs", "1", "--limit-train", "640", "--limit-test", "100", "--seed", "0", "--no-progress"]


def test_with_augmentation_two_processes_end_where_one_process_ends(tmp_path):
    single = python([*TRAIN, *AUGMENTED, "--out", "single"], cwd=tmp_path)
    assert single.returncode == 0, single.stdout + single.stderr
    double = mpiexec(2, [*TRAIN, *AUGMENTED, "--out", "double", "--distributed"], cwd=tmp_path)
    assert double.returncode == 0, double.stdout + double.stderr
    assert '"augment": "crop"' in (tmp_path / "double" / "config.json").read_text()
    one, two = np.load(tmp_path / "single" / "last.npz"), np.load(tmp_path / "double" / "last.npz")
    names = [k for k in one.files if k.startswith("model/")]
    assert len(names) == 14 and sorted(names) == sorted(k for k in two.files if k.startswith("model/"))
    # every sample cropped alike, the same global batches: float32 rounding alone (measured 1.7e-8)
    assert max(float(np.max(np.abs(one[k] - two[k]))) for k in names) < 1e-6


def test_rank_0_alone_prints_and_writes(runs):
    cwd, _, double = runs
    assert sorted(os.listdir(cwd)) == ["double", "single"]                   # no second run folder
    assert sorted(os.listdir(cwd / "double")) == ["best.npz", "config.json", "curves.png", "last.npz", "metrics.csv"]
    out = double.stdout.splitlines()
    assert sum(line.startswith("lenet5 (61,750 parameters)") for line in out) == 1
    assert "cpu x 2 processes" in out[0] and "2 epochs of 63 steps" in out[0]
    assert [line[:9] for line in out if line.startswith("epoch")] == ["epoch   1", "epoch   2"]
    assert '"processes": 2' in (cwd / "double" / "config.json").read_text()
    assert double.stderr == ""


def test_a_killed_rank_ends_the_job_and_the_run_resumes(runs, tmp_path):
    cwd, _, _ = runs
    # rank 1 (not the writer) is killed in epoch 2: rank 0 must not wait for it forever
    proc, seconds = timed(mpiexec, 2, [FAULTS, "kill-step:2:5@1", *TRAIN, *QUICK, "--out", "run", "--distributed"],
                          cwd=tmp_path, timeout=90)
    assert proc.returncode != 0 and seconds < 60, proc.stdout + proc.stderr
    assert [r["epoch"] for r in metrics(tmp_path / "run")] == ["1"]          # epoch 1's files intact
    resumed = mpiexec(2, [*TRAIN, "--resume", "run", "--distributed"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming lenet5 from run/last.npz (epoch 1/2)" in resumed.stdout
    assert metrics(tmp_path / "run") == metrics(cwd / "double")             # as if never interrupted


def test_a_rank_that_raises_ends_the_job(tmp_path):
    proc, seconds = timed(mpiexec, 2, [FAULTS, "raise-step:1:5@1", *TRAIN, *QUICK, "--out", "run", "--distributed"],
                          cwd=tmp_path, timeout=90)
    assert proc.returncode == 1 and seconds < 60, proc.stdout + proc.stderr
    assert "RuntimeError: fault injected at epoch 1, step 5" in proc.stderr
    assert "minicnn.distributed: rank 1 of 2 failed (RuntimeError); ending the job" in proc.stderr
    assert os.path.exists(tmp_path / "run" / "last.npz")                  # the initial checkpoint stays


def test_a_rank_that_hangs_times_the_others_out(tmp_path):
    proc, seconds = timed(mpiexec, 2, [FAULTS, "hang-step:1:5@1", *TRAIN, *QUICK, "--out", "run", "--distributed"],
                          cwd=tmp_path, env_extra={"MINICNN_DIST_TIMEOUT": "2"}, timeout=90)
    assert proc.returncode == 1 and seconds < 30, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "minicnn.train: error" in line]
    assert len(errors) == 1 and "rank 0 of 2 got no answer from the other processes within 2 s" in errors[0], (seconds, proc.stdout, proc.stderr)


def test_ctrl_c_stops_every_rank_and_says_how_to_resume_the_job(tmp_path):
    proc, seconds = timed(mpiexec, 2, [FAULTS, "interrupt-step:2:3", *TRAIN, *QUICK, "--out", "run", "--distributed"],
                          cwd=tmp_path, timeout=90)
    assert proc.returncode == 130 and seconds < 30, proc.stdout + proc.stderr
    assert ("interrupted during epoch 2. The last checkpoint is run/last.npz (after epoch 1).\n"
            "Resume with: mpiexec -n 2 python -m minicnn.train lenet5 --resume run --distributed") in proc.stderr, \
        (seconds, proc.stdout, proc.stderr)
    assert proc.stderr.count("interrupted during epoch") == 1                # rank 0 alone says it
    assert [r["epoch"] for r in metrics(tmp_path / "run")] == ["1"]


def test_a_nan_on_one_rank_stops_every_rank_at_the_same_step_with_one_message(tmp_path):
    proc = mpiexec(2, [FAULTS, "nan-step:2:5@1", *TRAIN, *QUICK, "--out", "run", "--distributed"], cwd=tmp_path,
                   timeout=90)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        "python -m minicnn.train: error: the training loss became nan at epoch 2, step 5/63 (lr 0.0013); training "
        "stopped. The last good checkpoint, run/last.npz (epoch 1), is intact. Try a lower --lr (this run used "
        "0.005) or a longer --warmup-epochs, in a new run."]


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "33", "--distributed"], "argument --batch-size: the global batch of 33 does not split evenly "
                                              "across the 2 processes of the job"),
    ([], "started by an MPI launcher as one of 2 processes: add --distributed to train them as one data-parallel "
         "job (else each would run the whole training on its own)"),
])
def test_usage_errors_under_mpiexec_are_one_line_and_leave_nothing(tmp_path, args, message):
    proc = mpiexec(2, [*TRAIN, *QUICK, "--out", "run", *args], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"python -m minicnn.train: error: {message}"]
    assert os.listdir(tmp_path) == []
