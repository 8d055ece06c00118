"""The training command line (``python -m minicnn.train``) and checkpoints, on a few real MNIST images.

The CLI runs in subprocesses, as a user runs it: a short run must beat chance by a wide margin;
a run killed (SIGKILL) in the middle of an epoch and resumed must reproduce the uninterrupted
run's metrics exactly; Ctrl-C must leave a loadable checkpoint; broken checkpoints and NaN
losses must stop with clear messages.
"""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import DATA_ROOT, needs_mnist
from threadpoolctl import threadpool_info

import minicnn
from minicnn import checkpoint, nn, optim, train, training
from minicnn.data import pipeline
from minicnn.kernels.fast import threads as fast_threads

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = DATA_ROOT

# A small, fast, robust run: 2000 training images, 500 test images, 2 epochs of 63 steps (about 2 s;
# 85-86% test accuracy for seeds 0, 1, 2).
QUICK = ["lenet5", "--limit-train", "2000", "--limit-test", "500", "--epochs", "2", "--batch-size", "32",
         "--lr", "0.005", "--warmup-epochs", "0", "--augment", "none", "--seed", "0", "--no-progress"]
TIMING_COLUMNS = {"seconds", "images_per_s"}


FAULTS = os.path.join(REPO, "tests", "faults.py")


def cli(args, cwd, env_extra=None, timeout=120, module="minicnn.train", fault=None):
    """Run ``python -m module args`` in ``cwd`` (with ``fault`` injected by tests/faults.py, when given);
    return the CompletedProcess (text output)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), MINICNN_DATA=DATA)
    env.update(env_extra or {})
    command = [sys.executable, "-m", module] if fault is None else [sys.executable, FAULTS, fault, "-m", module]
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def without_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, mnist_dir):
    """One complete QUICK run (2 epochs), shared by the tests below."""
    cwd = tmp_path_factory.mktemp("quick")
    proc = cli(QUICK + ["--out", "run"], cwd)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return cwd / "run", proc


# --------------------------------------------------------------------------- the CLI

def test_help_lists_every_option():
    proc = cli(["--help"], REPO)
    assert proc.returncode == 0
    for option in ["--dataset", "--epochs", "--batch-size", "--lr", "--optimizer", "--momentum", "--schedule",
                   "--warmup-epochs", "--weight-decay", "--label-smoothing", "--device", "--seed", "--data-dir",
                   "--out", "--resume", "--limit-train", "--limit-test", "--input-size", "--in-channels"]:
        assert option in proc.stdout, option
    for word in ["sgd", "adamw", "rmsprop", "cosine", "multistep", "fashion-mnist", "cifar10"]:
        assert word in proc.stdout


def test_bad_options_exit_2(tmp_path):
    assert cli(["lenet5", "--optimizer", "lbfgs"], tmp_path).returncode == 2
    proc = cli(["nosuchnet"], tmp_path)
    assert proc.returncode == 2 and "unknown architecture" in proc.stderr and "lenet5" in proc.stderr
    assert cli([], tmp_path).returncode == 2


@pytest.mark.parametrize("args, message", [
    (["alexnet", "--dataset", "mnist", "--input-size", "32"], "AlexNet: images must be at least 63x63, got 32x32"),
    (["lenet5", "--input-size", "28"], "LeNet5: expected 32x32 images, got 28x28"),
    (["lenet5", "--label-smoothing", "1.5"], "argument --label-smoothing: must be a finite number in [0, 1], got 1.5"),
    (["lenet5", "--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
    (["lenet5", "--schedule", "multistep", "--milestones", "5", "2"], "--milestones: must be increasing, got 5 2"),
    (["lenet5", "--model-option", "nonsense=1"], "lenet5 has no option 'nonsense'; its options are c3_table=False"),
    (["lenet5", "--milestones", "5"], "argument --milestones: only the multistep schedule uses it, and this run's is "
                                      "cosine (add --schedule multistep)"),
    (["lenet5", "--schedule", "multistep", "--step-size", "2"], "argument --step-size: only the step schedule uses it"),
    (["lenet5", "-o", "num_classes=5"], "lenet5 option num_classes is not set with -o: the dataset sets it"),
    (["lenet5", "-o", "c3_table=maybe"], "lenet5 option c3_table takes true or false, got 'maybe'"),
    (["lenet5", "--lr", "inf"], "argument --lr: must be a finite number > 0, got inf"),
    (["lenet5", "--lr", "0"], "argument --lr: must be a finite number > 0, got 0"),
    (["lenet5", "--lr", "nan"], "argument --lr: must be a finite number > 0, got nan"),
    (["lenet5", "--momentum", "1.5"], "argument --momentum: must be a finite number in [0, 1), got 1.5"),
    (["lenet5", "--epochs", "2", "--warmup-epochs", "3"], "the warm-up (3 epochs) is longer than the run (--epochs 2)"),
    (["lenet5", "--data-dir", "nowhere"], "argument --data-dir: nowhere does not exist"),
    (["nosuchnet"], "unknown architecture 'nosuchnet'; available: alexnet"),
    ([], "the architecture name is required"),
])
def test_usage_errors_are_one_line_exit_2_and_leave_no_run_folder(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        train.run(args + ["--no-progress"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m minicnn.train: error: ") and message in err, err
    assert os.listdir(tmp_path) == []                  # nothing written, no run folder


def test_a_missing_dataset_is_one_line_exit_1_and_debug_adds_the_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.delenv("MINICNN_DEBUG", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MINICNN_MIRROR", "http://127.0.0.1:9/")       # nothing listens there
    (tmp_path / "data").mkdir()
    args = ["lenet5", "--data-dir", "data", "--no-progress"]
    assert train.run(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m minicnn.train: error: cannot load mnist: "), err
    assert "could not download train-images-idx3-ubyte.gz" in err and "MINICNN_MIRROR" in err
    assert os.listdir(tmp_path) == ["data"]                         # no run folder
    assert train.run(args + ["--debug"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "DownloadError" in err
    assert err.splitlines()[-1].startswith("python -m minicnn.train: error: cannot load mnist: ")
    monkeypatch.setenv("MINICNN_DEBUG", "1")
    assert train.run(args) == 1 and capsys.readouterr().err.startswith("Traceback")


def test_two_runs_started_in_the_same_second_get_a_folder_each(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(training.state.time, "strftime", lambda fmt: "20250101-120000")
    first, second = training.default_out_dir("lenet5"), training.default_out_dir("lenet5")
    assert first == os.path.join("runs", "lenet5-20250101-120000")
    assert second == os.path.join("runs", "lenet5-20250101-120000-2")
    assert os.path.isdir(first) and os.path.isdir(second)          # created, not only named


RACER = """
import os, sys, time
from minicnn import training
training.state.time.strftime = lambda fmt: "20250101-120000"       # every process in the same second
open(f"ready-{os.getpid()}", "w").close()
while not os.path.exists("go"):                                     # start together
    time.sleep(0.001)
print("\\n".join(training.default_out_dir("lenet5") for _ in range(5)))
"""


def test_processes_racing_for_run_folders_get_one_each(tmp_path):
    """Four processes make five run folders each at once, all in the same second: twenty folders."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    racers = [subprocess.Popen([sys.executable, "-c", RACER], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(4)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)                                            # every racer imported minicnn and waits
    (tmp_path / "go").touch()
    outputs = [racer.communicate(timeout=60) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), [err for _, err in outputs]
    folders = [line for out, _ in outputs for line in out.split()]
    assert len(folders) == 20 and len(set(folders)) == 20, folders
    assert sorted(os.listdir(tmp_path / "runs")) == sorted(os.path.basename(f) for f in folders)

@needs_mnist
def test_quick_run_learns_and_writes_its_files(quick_run):
    run_dir, proc = quick_run
    rows = read_metrics(run_dir)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == training.CSV_COLUMNS
    assert float(rows[-1]["test_acc"]) >= 0.7, rows          # chance is 0.1
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert "epoch   2/2" in proc.stdout and "test loss" in proc.stdout and "img/s" in proc.stdout
    config = json.loads((run_dir / "config.json").read_text())
    for key in ["arch", "dataset", "epochs", "batch_size", "lr", "optimizer", "momentum", "schedule",
                "warmup_epochs", "weight_decay", "label_smoothing", "seed", "input_size", "in_channels", "device"]:
        assert key in config, key
    assert config["lr"] == 0.005 and config["dataset"] == "mnist" and config["input_size"] == 32
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(run_dir) if p.endswith(".tmp")]      # no temporary files left

    state = checkpoint.load(run_dir / "last.npz")
    assert state["epoch"] == 2 and state["config"]["arch"] == "lenet5"
    assert set(state) >= {"model", "optimizer", "scheduler", "rng", "loader", "history", "config"}
    assert isinstance(state["model"]["c1.weight"], np.ndarray)
    assert state["optimizer"]["param_groups"][0]["lr"] >= 0
    assert [r["epoch"] for r in state["history"]] == [1, 2]
    best = checkpoint.load(run_dir / "best.npz")
    assert best["history"][-1]["test_acc"] == max(float(r["test_acc"]) for r in rows)


@needs_mnist
def test_resume_after_kill_mid_epoch_reproduces_the_run(quick_run, tmp_path):
    run_dir, _ = quick_run
    # Die by SIGKILL at step 5 of epoch 2, as `kill -9` would: nothing gets cleaned up.
    proc = cli(QUICK + ["--out", "run"], tmp_path, fault="kill-step:2:5")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert [r["epoch"] for r in read_metrics(tmp_path / "run")] == ["1"]
    assert checkpoint.load(tmp_path / "run" / "last.npz")["epoch"] == 1

    proc = cli(["lenet5", "--resume", "run", "--no-progress"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "resuming" in proc.stdout
    assert without_timing(read_metrics(tmp_path / "run")) == without_timing(read_metrics(run_dir))
    a = checkpoint.load(tmp_path / "run" / "last.npz")["model"]
    b = checkpoint.load(run_dir / "last.npz")["model"]
    assert {k: float(np.abs(a[k] - b[k]).max()) for k in b} == {k: 0.0 for k in b}


@needs_mnist
def test_ctrl_c_leaves_a_loadable_checkpoint(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO, MINICNN_DATA=DATA)
    args = QUICK[:] + ["--out", "run"]
    args[args.index("--epochs") + 1] = "200"
    with open(tmp_path / "out.txt", "w") as out, open(tmp_path / "err.txt", "w") as err:
        # A suite started from a background shell job inherits SIGINT *ignored*, and so would the run
        # (Python then never raises KeyboardInterrupt): give the child the default disposition back.
        proc = subprocess.Popen([sys.executable, "-m", "minicnn.train", *args], cwd=tmp_path, env=env,
                                stdout=out, stderr=err,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.time() + 60
            while time.time() < deadline and "epoch   1/200" not in (tmp_path / "out.txt").read_text():
                time.sleep(0.1)
            time.sleep(0.3)                      # somewhere inside epoch 2 (or later)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    stderr = (tmp_path / "err.txt").read_text()
    assert code == 130, stderr
    assert "interrupted" in stderr and "--resume run" in stderr and "last.npz" in stderr
    state = checkpoint.load(tmp_path / "run" / "last.npz")
    assert state["epoch"] >= 1
    model = training.build_model(state["config"])
    model.load_state_dict(state["model"])


@needs_mnist
def test_nonfinite_loss_stops_with_a_clear_message(tmp_path):
    proc = cli(QUICK + ["--out", "run"], tmp_path, fault="nan-step:2:7")
    assert proc.returncode == 1
    assert "loss became nan at epoch 2, step 7/63" in proc.stderr, proc.stderr
    assert "last.npz" in proc.stderr and "--lr" in proc.stderr
    state = checkpoint.load(tmp_path / "run" / "last.npz")          # the good epoch-1 checkpoint, intact
    assert state["epoch"] == 1
    assert all(np.isfinite(v).all() for v in state["model"].values())


@needs_mnist
def test_huge_learning_rate_diverges_with_a_clear_message(tmp_path):
    proc = cli(["lenet5", "--limit-train", "256", "--limit-test", "100", "--epochs", "1", "--optimizer", "sgd",
                "--lr", "1e30", "--schedule", "none", "--out", "run", "--no-progress", "--log-every", "2"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "loss became" in proc.stderr and "epoch 1, step" in proc.stderr


@needs_mnist
def test_corrupt_and_missing_checkpoints(quick_run, tmp_path):
    run_dir, _ = quick_run
    data = (run_dir / "last.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    proc = cli(["lenet5", "--resume", "cut.npz"], tmp_path)
    assert proc.returncode == 1
    assert "cut.npz" in proc.stderr and "damaged" in proc.stderr and "Traceback" not in proc.stderr

    proc = cli(["lenet5", "--resume", "nowhere/last.npz"], tmp_path)
    assert proc.returncode == 1
    assert "nowhere/last.npz" in proc.stderr and "no such file" in proc.stderr and "Traceback" not in proc.stderr

    proc = cli(["lenet5", "--resume"], tmp_path)                  # no runs/ at all
    assert proc.returncode == 1 and "no run of lenet5" in proc.stderr


@needs_mnist
def test_resume_refuses_changed_options_and_finished_runs_do_nothing(quick_run, tmp_path):
    run_dir, _ = quick_run
    proc = cli(["lenet5", "--resume", str(run_dir), "--lr", "0.1"], tmp_path)
    assert proc.returncode == 1 and "--lr 0.1" in proc.stderr
    proc = cli(["--resume", str(run_dir / "last.npz"), "--no-progress"], tmp_path)   # arch from the checkpoint
    assert proc.returncode == 0 and "already complete" in proc.stdout
    proc = cli(QUICK + ["--out", str(run_dir)], tmp_path)
    assert proc.returncode == 1 and "already holds a run" in proc.stderr
    proc = cli(["--resume", str(run_dir), "--out", "elsewhere"], tmp_path)
    assert proc.returncode == 1 and "continues in its own folder" in proc.stderr


def test_resume_from_an_older_checkpoint_would_not_overwrite_later_epochs(quick_run, tmp_path):
    run_dir, _ = quick_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    older = checkpoint.load(copy / "last.npz")
    older["epoch"] = 1                                    # as a best.npz from an earlier epoch would be
    checkpoint.save(copy / "older.npz", older)
    proc = cli(["--resume", str(copy / "older.npz"), "--no-progress"], tmp_path)
    assert proc.returncode == 1 and "would overwrite the later epochs" in proc.stderr
    assert read_metrics(copy) == read_metrics(run_dir)    # nothing was touched


# --------------------------------------------------------------------------- pieces, in-process

def test_checkpoint_round_trip_and_errors(tmp_path):
    state = {"model": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)},
             "optimizer": {"state": {0: {"step": 3, "exp_avg": np.zeros(3)}},
                           "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1]}]},
             "scalar": np.float32(0.25), "none": None, "nested": [1, "a", [2.5, {"__odd": True}]]}
    path = tmp_path / "c.npz"
    checkpoint.save(path, state)
    back = checkpoint.load(path)
    assert back["model"]["w"].dtype == np.float32 and np.array_equal(back["model"]["w"], state["model"]["w"])
    assert back["optimizer"]["state"][0]["step"] == 3                 # int keys stay ints
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["scalar"] == np.float32(0.25) and back["scalar"].dtype == np.float32
    assert back["none"] is None and back["nested"] == [1, "a", [2.5, {"__odd": True}]]
    assert os.listdir(tmp_path) == ["c.npz"]

    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(checkpoint.CheckpointError, match="not a minicnn checkpoint"):
        checkpoint.load(tmp_path / "other.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(checkpoint.CheckpointError, match="empty"):
        checkpoint.load(tmp_path / "empty.npz")
    with pytest.raises(checkpoint.CheckpointError, match="no such file"):
        checkpoint.load(tmp_path / "missing.npz")
    with pytest.raises(TypeError):
        checkpoint.save(tmp_path / "bad.npz", {"f": object()})
    assert not (tmp_path / "bad.npz").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_defaults_per_architecture():
    parser = train.make_parser()
    c = train.resolve_config(parser.parse_args(["lenet5"]))
    assert (c["dataset"], c["input_size"], c["in_channels"]) == ("mnist", 32, 1)
    assert c["mean"] == [0.1307] and c["std"] == [0.3081]
    c = train.resolve_config(parser.parse_args(["resnet18", "--dataset", "fashion-mnist"]))
    assert (c["input_size"], c["in_channels"], c["optimizer"]) == (32, 1, "sgd")
    c = train.resolve_config(parser.parse_args(["alexnet", "--dataset", "cifar10", "--in-channels", "1"]))
    assert c["input_size"] >= 64 and len(c["mean"]) == 1
    c = train.resolve_config(parser.parse_args(["lenet5", "--optimizer", "sgd"]))
    assert c["lr"] == training.arch_defaults("lenet5")["per_optimizer"]["sgd"]["lr"]


def test_transforms_fit_images_to_the_model():
    x = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    c = dict(dataset="fashion-mnist", in_channels=3, input_size=64, augment="none",
             mean=[0.286] * 3, std=[0.353] * 3)
    assert pipeline.make_transform(c, train=True)(x).shape == (4, 3, 64, 64)
    c = dict(c, in_channels=1, input_size=32, mean=[0.286], std=[0.353], augment="crop")
    y = pipeline.make_transform(c, train=True)(x, rng=np.random.default_rng(0))
    assert y.shape == (4, 1, 32, 32) and y.dtype == np.float32
    rgb = np.random.default_rng(1).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    assert pipeline.ToChannels(1)(rgb).shape == (2, 1, 32, 32)


def test_cpu_threads_sets_the_thread_count_for_the_run_and_puts_it_back():
    blas = [info for info in threadpool_info() if info["user_api"] == "blas"]
    threads = minicnn.get_num_threads()
    with fast_threads.using(1):        # one thread: BLAS too
        assert minicnn.get_num_threads() == 1
        assert [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"] == [1] * len(blas)
    assert minicnn.get_num_threads() == threads
    with fast_threads.using(3):
        assert minicnn.get_num_threads() == 3
    assert minicnn.get_num_threads() == threads


def test_step_and_multistep_schedules_decay_at_the_same_epochs_after_a_warmup():
    for kind, extra in (("step", dict(step_size=2)), ("multistep", dict(milestones=[2]))):
        opt = optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0)
        config = dict(schedule=kind, epochs=4, warmup_epochs=1, gamma=0.1, lr=1.0, min_lr=0.0, **extra)
        scheduler = training.build_scheduler(opt, config, steps_per_epoch=10)
        at_epoch_start = []
        for step in range(40):
            if step % 10 == 0:
                at_epoch_start.append(round(opt.param_groups[0]["lr"], 6))
            opt.step()
            scheduler.step()
        assert at_epoch_start == [0.01, 1.0, 0.1, 0.1], kind      # warm-up, then decay after epoch 2
