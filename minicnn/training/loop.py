"""The training loop: ``train_one_epoch``, ``evaluate``, and ``fit`` (epochs of both, returning the
history), for any model, loader and optimizer. The command line (``python -m minicnn.train``) is
a thin layer over these that adds the run folder's files and ``--resume``.

Data-parallel: give them a :class:`~minicnn.distributed.DistributedDataParallel` model (and loaders
with a ``DistributedSampler``) on every process of the job. Its backward passes average the
gradients over the processes, and the loop sums the metrics over them (loss, accuracy and images/s
are those of the whole job, the same on every rank; evaluation shards are added up).
"""
from __future__ import annotations

import functools
import sys
import time
import warnings

import numpy as np
from tqdm import tqdm

from .. import backend
from .. import functional as F
from ..architectures.googlenet import googlenet_loss
from ..autograd import Tensor, no_grad
from ..distributed import DistributedDataParallel
from ..kernels.fast.memory import release_memory
from .state import epoch_seed


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch, step, steps, value):
        self.epoch, self.step, self.steps, self.value = epoch, step, steps, value
        super().__init__(f"the training loss became {value} at epoch {epoch}, step {step}/{steps}")


def process_group(model):
    """The process group of a ``DistributedDataParallel`` model; None for any other model."""
    return model.process_group if isinstance(model, DistributedDataParallel) else None


def training_loss(outputs, target, label_smoothing=0.0):
    """Cross-entropy of the logits; GoogLeNet's training outputs ``(logits, aux2, aux1)`` get its
    paper's loss (``architectures.googlenet.googlenet_loss``: main + 0.3 * each auxiliary classifier)."""
    if isinstance(outputs, tuple):
        return googlenet_loss(outputs, target, label_smoothing=label_smoothing)
    return F.cross_entropy(outputs, target, label_smoothing=label_smoothing)


def train_one_epoch(model, loader, optimizer, scheduler, epoch, device="cpu", label_smoothing=0.0,
                    log_every=20, progress=True):
    """Train ``model`` on one pass over ``loader``; return ``(mean loss, accuracy, images per second)``.

    The scheduler is stepped after every optimizer step (warm-up and cosine are measured in
    steps). Loss and accuracy stay on the device and are fetched to the host every
    ``log_every`` steps only (a fetch waits for the GPU). A NaN or infinite loss raises
    :class:`NonFiniteLossError` naming the first bad step. With a ``DistributedDataParallel``
    model the gradients are averaged over the processes inside each backward pass, and the loss,
    accuracy and speed are the whole job's (a NaN on any rank stops every rank at the same step).
    """
    model.train()
    steps = len(loader)
    group = process_group(model)
    if group is not None:
        low, high = group.all_reduce_host([steps], "min")[0], group.all_reduce_host([steps], "max")[0]
        if low != high:       # every step is a collective: the ranks must take the same number
            raise ValueError(f"train_one_epoch: the processes have {low:.0f} to {high:.0f} steps per epoch; give each "
                             "the same number of batches (DistributedSampler(even=True))")
    bar = tqdm(total=steps, desc=f"epoch {epoch}", unit="batch", leave=False, dynamic_ncols=True,
               disable=None if progress else True, file=sys.stderr)     # None: only on a terminal
    total_loss, total_correct, seen = 0.0, 0, 0
    pending = []        # (loss, number correct, batch size) of the steps not yet fetched
    start = time.perf_counter()
    try:
        for step, (images, labels) in enumerate(loader, 1):
            x = Tensor(images, device=device)
            y = backend.to_device(labels, device)

            optimizer.zero_grad()
            outputs = model(x)
            loss = training_loss(outputs, y, label_smoothing)
            logits = outputs[0] if isinstance(outputs, tuple) else outputs
            loss.backward()            # a DistributedDataParallel model averages the gradients here
            optimizer.step()
            if scheduler is not None:
                scheduler.step()

            pending.append((loss.data, (logits.data.argmax(axis=1) == y).sum(), len(labels)))
            if step % log_every == 0 or step == steps:
                # Two transfers to the host for the last few steps (each waits for the GPU).
                xp = backend.get_array_module(loss.data)
                losses = backend.to_numpy(xp.stack([p[0] for p in pending])).astype(np.float64)
                correct = backend.to_numpy(xp.stack([p[1] for p in pending]))
                sizes = np.array([p[2] for p in pending])
                sums = [losses @ sizes, correct.sum(), sizes.sum()]
                if group is not None:          # the job's: a NaN anywhere is a NaN everywhere
                    sums, losses = np.split(group.all_reduce_host(sums + list(losses)), [3])
                bad = np.flatnonzero(~np.isfinite(losses))
                if bad.size:
                    raise NonFiniteLossError(epoch, step - len(pending) + 1 + int(bad[0]), steps,
                                             losses[bad[0]])
                total_loss += float(sums[0])
                total_correct += int(sums[1])
                seen += int(sums[2])
                pending.clear()
                elapsed = time.perf_counter() - start
                bar.set_postfix({"loss": f"{total_loss / seen:.4f}", "acc": f"{100 * total_correct / seen:.2f}%",
                                 "img/s": f"{seen / elapsed:.0f}"}, refresh=False)
                bar.update(step - bar.n)
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    return total_loss / seen, total_correct / seen, seen / elapsed


def evaluate(model, loader, device="cpu"):
    """Return ``(mean loss, accuracy)`` of ``model`` on ``loader``, in eval mode and without gradients.

    With a ``DistributedDataParallel`` model each process evaluates its shard (its loader's) and
    the sums are added up over the processes; rank 0's buffers (BatchNorm's running statistics)
    are given to every rank first (with ``broadcast_buffers``), so that every shard sees one model.
    """
    group = process_group(model)
    if group is not None and model.broadcast_buffers:
        model.sync_buffers()
    model.eval()
    total_loss, total_correct, seen = 0.0, 0, 0
    with no_grad():
        for images, labels in loader:
            y = backend.to_device(labels, device)
            logits = model(Tensor(images, device=device))
            total_loss += float(F.cross_entropy(logits, y, reduction="sum").item())
            total_correct += int((logits.data.argmax(axis=1) == y).sum())
            seen += len(labels)
    if group is not None:
        total_loss, total_correct, seen = group.all_reduce_host([total_loss, total_correct, seen])
    return float(total_loss / seen), float(total_correct / seen)


def current_lr(optimizer) -> float:
    """The learning rate of the optimizer's first parameter group."""
    return float(optimizer.param_groups[0]["lr"])


def _without_numpy_float_warnings(function):
    """``function`` with NumPy's overflow / invalid-value / divide-by-zero warnings off: a diverging
    run ends in a :class:`NonFiniteLossError` that says so, NumPy need not say it first."""
    @functools.wraps(function)
    def quiet(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero) encountered", RuntimeWarning)
            return function(*args, **kwargs)
    return quiet


@_without_numpy_float_warnings
def fit(model, train_loader, optimizer, epochs, *, test_loader=None, scheduler=None, device="cpu",
        label_smoothing=0.0, seed=None, start_epoch=1, history=None, on_epoch_end=None, log_every=20,
        progress=True):
    """Train for epochs ``start_epoch`` .. ``epochs``; return the history, one dict per epoch:
    ``epoch, lr, train_loss, train_acc, test_loss, test_acc`` (None without ``test_loader``),
    ``seconds, images_per_s``.

    With a ``seed``, every epoch re-seeds the engine's generator (dropout...) and the loader's
    shuffling from ``(seed, epoch)``, so a run continued at ``start_epoch`` (with the model,
    optimizer and scheduler state saved after the epoch before) repeats the uninterrupted one.
    ``history`` (the rows of earlier epochs) is extended in place. ``on_epoch_end(row, history)``
    is called after each epoch (the command line writes its checkpoints and metrics there). On return
    the fast kernels' free recycled arrays go back to malloc (``minicnn.release_memory()``).

    Data-parallel (a ``DistributedDataParallel`` model, on every process): the rows are the whole
    job's, the same on every rank; every rank's generator is seeded from ``(seed, epoch)``, as one
    process's, and draws the dropout masks of the whole global batch (keeping its rows).
    """
    history = [] if history is None else history
    for epoch in range(start_epoch, epochs + 1):
        if seed is not None:
            backend.manual_seed(epoch_seed(seed, epoch))        # dropout etc.: (seed, epoch), on every rank
            if hasattr(train_loader, "set_epoch"):
                train_loader.set_epoch(epoch)                   # data order: depends on (seed, epoch)
        lr = current_lr(optimizer)                              # the lr of the epoch's first step
        t0 = time.perf_counter()
        train_loss, train_acc, speed = train_one_epoch(model, train_loader, optimizer, scheduler, epoch, device,
                                                       label_smoothing, log_every, progress)
        test_loss, test_acc = evaluate(model, test_loader, device) if test_loader is not None else (None, None)
        history.append(dict(epoch=epoch, lr=lr, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                            test_acc=test_acc, seconds=time.perf_counter() - t0, images_per_s=speed))
        if on_epoch_end is not None:
            on_epoch_end(history[-1], history)
    release_memory()                  # the recycled arrays of the last steps: training is over
    return history
