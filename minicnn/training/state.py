"""A run's state outside the model and optimizer: the random generators' state and seeds, and the
run folder's files (``metrics.csv``, ``curves.png``) and name.
"""
from __future__ import annotations

import csv
import io
import os
import sys
import time

import numpy as np

from .. import backend, checkpoint, fileio

CSV_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "images_per_s"]


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of the engine's generator (dropout...) during ``epoch``: depends only on (seed, epoch), and
    on the rank of a data-parallel process other than rank 0 (whose draws are a single process's)."""
    key = (int(epoch), 7) + ((int(rank),) if rank else ())
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1)[0])


def rng_state(device):
    """The engine's random-generator state (saved in checkpoints; CPU generator only)."""
    state = {"seed": backend._generators.get("seed")}
    if device == "cpu":
        state["numpy"] = backend.generator("cpu").bit_generator.state
    return state


def restore_rng_state(state, device):
    """Inverse of :func:`rng_state` (the epoch re-seeding makes this exact on every device)."""
    if state.get("seed") is not None:
        backend.manual_seed(int(state["seed"]))
    if device == "cpu" and state.get("numpy") is not None:
        backend.generator("cpu").bit_generator.state = state["numpy"]


# --------------------------------------------------------------------------- files of a run

def write_metrics_csv(path, history):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    fmt = {"epoch": "{:d}", "lr": "{:.6g}", "train_loss": "{:.6f}", "train_acc": "{:.6f}",
           "test_loss": "{:.6f}", "test_acc": "{:.6f}", "seconds": "{:.2f}", "images_per_s": "{:.1f}"}
    for row in history:
        writer.writerow([fmt[c].format(row[c]) for c in CSV_COLUMNS])
    fileio.atomic_write_text(path, buf.getvalue())


_warned_no_matplotlib = False


def plot_curves(path, history, title=""):
    """Draw loss and accuracy against epoch into ``path``; skipped (with a note) without matplotlib."""
    global _warned_no_matplotlib
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        if not _warned_no_matplotlib:
            print("note: matplotlib is not installed, so curves.png is not drawn "
                  "(pip install matplotlib, or pip install -e .[plot])", file=sys.stderr)
            _warned_no_matplotlib = True
        return
    epochs = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax1.plot(epochs, [r["test_loss"] for r in history], "o-", label="test")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax2.plot(epochs, [100 * r["train_acc"] for r in history], "o-", label="train")
    ax2.plot(epochs, [100 * r["test_acc"] for r in history], "o-", label="test")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fileio.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def default_out_dir(arch):
    """Create and return a new run folder ``runs/<arch>-<timestamp>`` (``-2``, ``-3``... when taken).

    Created with ``os.mkdir``, which fails when the folder exists: two runs started in the same
    second get a folder each (checking first, then creating, would let both take the same one).
    """
    base = os.path.join("runs", f"{arch}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs("runs", exist_ok=True)
    n = 1
    while True:
        out = base if n == 1 else f"{base}-{n}"
        try:
            os.mkdir(out)
            return out
        except FileExistsError:
            n += 1


def find_resume_checkpoint(resume, arch, out):
    """Resolve ``--resume``'s value to a checkpoint file (``latest``: --out, else the newest run of ``arch``)."""
    if resume == "latest":
        if out:
            resume = out
        else:
            if not arch:
                raise checkpoint.CheckpointError("--resume without a path needs the architecture name or --out "
                                                 "to find the run, e.g. --resume runs/lenet5-20250101-120000")
            runs = []
            if os.path.isdir("runs"):
                for name in os.listdir("runs"):
                    last = os.path.join("runs", name, "last.npz")
                    if name.startswith(arch + "-") and os.path.isfile(last):
                        runs.append((os.path.getmtime(last), last))
            if not runs:
                raise checkpoint.CheckpointError(f"--resume: no run of {arch} with a last.npz under runs/; "
                                                 "pass the run folder or checkpoint file, or start a new run "
                                                 "without --resume")
            return max(runs)[1]
    if os.path.isdir(resume):
        return os.path.join(resume, "last.npz")
    return resume
