"""The training loop: ``train_one_epoch``, ``evaluate``, and ``fit`` (epochs of both, returning the
history), for any model, loader and optimizer. The command line (``python -m minicnn.train``) is
a thin layer over these that adds the run folder's files and ``--resume``.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from tqdm import tqdm

from .. import backend
from .. import functional as F
from ..architectures.googlenet import googlenet_loss
from ..autograd import Tensor, no_grad
from .state import epoch_seed


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch, step, steps, value):
        self.epoch, self.step, self.steps, self.value = epoch, step, steps, value
        super().__init__(f"the training loss became {value} at epoch {epoch}, step {step}/{steps}")


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
    :class:`NonFiniteLossError` naming the first bad step.
    """
    model.train()
    steps = len(loader)
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
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()

            pending.append((loss.data, (logits.data.argmax(axis=1) == y).sum(), len(labels)))
            if step % log_every == 0 or step == steps:
                # Two transfers to the host for the last few steps (each waits for the GPU).
                xp = backend.get_array_module(loss.data)
                losses = backend.to_numpy(xp.stack([p[0] for p in pending]))
                correct = backend.to_numpy(xp.stack([p[1] for p in pending]))
                bad = np.flatnonzero(~np.isfinite(losses))
                if bad.size:
                    raise NonFiniteLossError(epoch, step - len(pending) + 1 + int(bad[0]), steps,
                                             losses[bad[0]])
                sizes = np.array([p[2] for p in pending])
                total_loss += float(losses.astype(np.float64) @ sizes)
                total_correct += int(correct.sum())
                seen += int(sizes.sum())
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
    """Return ``(mean loss, accuracy)`` of ``model`` on ``loader``, in eval mode and without gradients."""
    model.eval()
    total_loss, total_correct, seen = 0.0, 0, 0
    with no_grad():
        for images, labels in loader:
            y = backend.to_device(labels, device)
            logits = model(Tensor(images, device=device))
            total_loss += float(F.cross_entropy(logits, y, reduction="sum").item())
            total_correct += int((logits.data.argmax(axis=1) == y).sum())
            seen += len(labels)
    return total_loss / seen, total_correct / seen


def current_lr(optimizer) -> float:
    """The learning rate of the optimizer's first parameter group."""
    return float(optimizer.param_groups[0]["lr"])


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
    is called after each epoch (the command line writes its checkpoints and metrics there).
    """
    history = [] if history is None else history
    for epoch in range(start_epoch, epochs + 1):
        if seed is not None:
            backend.manual_seed(epoch_seed(seed, epoch))       # dropout etc.: depends on (seed, epoch)
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
    return history
