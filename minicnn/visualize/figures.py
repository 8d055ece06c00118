"""The six figures, drawn with matplotlib from the arrays of ``analysis`` (each function returns a Figure).

matplotlib is the ``plot`` extra: it is imported when a figure is first drawn, with the Agg backend
(files only, no window), and its absence is one clear error naming the extra.
"""
from __future__ import annotations

import io
import math

import numpy as np

from ..fileio import atomic_write
from ..kernels import textbook

PLOT_HINT = "drawing figures needs matplotlib: pip install matplotlib (or pip install -e .[plot])"


class MissingMatplotlib(ImportError):
    """matplotlib is not installed."""


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, or :class:`MissingMatplotlib` saying how to install it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingMatplotlib(PLOT_HINT) from exc
    return plt


def save(fig, path, dpi: int = 100, palette: int | None = None):
    """Write ``fig`` as a PNG to ``path`` atomically (the old file stays whole until the new one is), then close it.
    ``palette``: store at most that many colours (a diagram of text and flat colours shrinks to a third)."""
    def write(f):
        if palette is None:
            fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.1)
            return
        from PIL import Image                   # a dependency of matplotlib
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.1)
        buffer.seek(0)
        Image.open(buffer).convert("RGB").quantize(palette).save(f, format="png", optimize=True)
    try:
        atomic_write(path, write)
    finally:
        pyplot().close(fig)
    return path


def _grid(n, max_columns=8):
    columns = min(n, max_columns)
    return max(1, math.ceil(n / columns)), max(1, columns)


def _off(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def _show_image(ax, image, title=None):
    """A uint8 image (C, H, W): grey or RGB, black = 0, white = 255."""
    image = np.asarray(image)
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(image.transpose(1, 2, 0))
    _off(ax)
    if title:
        ax.set_title(title, fontsize=9)


# --------------------------------------------------------------------------- filters

def filters_figure(weight, name="conv", title=None):
    """The filters of a first convolution, weight (O, C, kH, kW), at most 64.

    One input channel: every filter on one shared colour scale centred on 0 (red positive, blue
    negative, white 0), with its colour bar. Three channels: each filter as an RGB image, scaled to
    its own range (colours show which input colours it responds to). Other counts: the mean over channels.
    """
    plt = pyplot()
    w = np.asarray(weight, dtype=np.float64)[:64]
    O, C = w.shape[:2]
    rows, cols = _grid(O)
    rgb = C == 3
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols + (1.1 if not rgb else 0.2), 1.65 * rows + 0.7),
                             squeeze=False)
    limit = float(np.abs(w).max()) or 1.0
    image = None
    for k, ax in enumerate(axes.flat):
        _off(ax)
        if k >= O:
            ax.axis("off")
            continue
        if rgb:
            f = w[k].transpose(1, 2, 0)
            ax.imshow((f - f.min()) / ((f.max() - f.min()) or 1.0), interpolation="nearest")
        else:
            image = ax.imshow(w[k].mean(axis=0), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(str(k), fontsize=10)
    shape = "x".join(map(str, weight.shape[1:]))
    fig.suptitle(title or f"{name}: {weight.shape[0]} filters of {shape}" + (" (first 64)" if weight.shape[0] > 64 else ""),
                 fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="weight")
    return fig


# --------------------------------------------------------------------------- feature maps

def feature_maps_figure(image, stages, channels: int = 8, title=None):
    """One input (uint8 (C, H, W)) and, per stage ``(label, maps (C, H, W))``, its first ``channels`` maps.

    Each row has its own colour scale and bar: ``viridis`` from 0 for maps that are never negative
    (after a ReLU), red/blue centred on 0 for signed ones (after tanh, or before an activation).
    """
    plt = pyplot()
    rows = len(stages)
    channels = min(channels, max(len(maps) for _, maps in stages))
    fig = plt.figure(figsize=(1.05 * (channels + 2) + 0.8, 1.15 * rows + 0.8))
    grid = fig.add_gridspec(rows, channels + 3, width_ratios=[0.9, 1] + [1] * channels + [0.08],
                            left=0.02, right=0.93, top=0.88, bottom=0.03, wspace=0.12, hspace=0.25)
    ax = fig.add_subplot(grid[0, 1])
    _show_image(ax, image, "input")
    for r, (label, maps) in enumerate(stages):
        maps = np.asarray(maps, dtype=np.float64)
        shown = maps[:channels]
        lo, hi = float(shown.min()), float(shown.max())
        if lo >= 0:
            cmap, vmin, vmax = "viridis", 0.0, hi or 1.0
        else:
            m = max(abs(lo), abs(hi)) or 1.0
            cmap, vmin, vmax = "RdBu_r", -m, m
        ax = fig.add_subplot(grid[r, 0])
        ax.axis("off")
        shown_of = f"\nmaps 0-{len(shown) - 1} of {len(maps)}" if len(shown) < len(maps) else ""
        ax.text(1.0, 0.5, f"{label}\n{'x'.join(map(str, maps.shape))}{shown_of}", fontsize=9, ha="right",
                va="center", transform=ax.transAxes)
        for c in range(len(shown)):
            ax = fig.add_subplot(grid[r, c + 2])
            im = ax.imshow(shown[c], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            _off(ax)
            if r == 0:
                ax.set_title(f"map {c}", fontsize=9)
        fig.colorbar(im, cax=fig.add_subplot(grid[r, channels + 2]))
    fig.suptitle(title or f"one input through each stage (at most the first {channels} maps of each)", fontsize=10)
    return fig


# --------------------------------------------------------------------------- saliency

def saliency_figure(images, maps, predictions, probabilities, labels, classes, title=None):
    """Inputs (uint8 (N, C, H, W)) above their saliency maps (N, H, W), each scaled to its own maximum."""
    plt = pyplot()
    n = len(images)
    fig = plt.figure(figsize=(1.9 * n + 1.6, 4.8))
    grid = fig.add_gridspec(2, n + 1, width_ratios=[1] * n + [0.07], left=0.07, right=0.9, top=0.8, bottom=0.03,
                            wspace=0.08, hspace=0.08)
    for k in range(n):
        p = int(predictions[k])
        wrong = "" if int(labels[k]) == p else " (wrong)"
        top, bottom = fig.add_subplot(grid[0, k]), fig.add_subplot(grid[1, k])
        _show_image(top, images[k], f"true {classes[labels[k]]}\npred {classes[p]} {100 * probabilities[k, p]:.0f}%{wrong}")
        m = np.asarray(maps[k], dtype=np.float64)
        im = bottom.imshow(m / (m.max() or 1.0), cmap="inferno", vmin=0, vmax=1, interpolation="nearest")
        grey = np.asarray(images[k], dtype=np.float64).mean(axis=0)
        if grey.shape == m.shape and grey.max() > grey.min():     # the strokes' outline over the map
            bottom.contour(grey, levels=[(grey.min() + grey.max()) / 2], colors="#4fd1ff", linewidths=0.9)
        _off(bottom)
        if k == 0:
            top.set_ylabel("input", fontsize=9)
            bottom.set_ylabel("|d score / d pixel|\n(blue: the strokes' outline)", fontsize=9)
    fig.colorbar(im, cax=fig.add_subplot(grid[1, n]), label="share of the max")
    fig.suptitle(title or "saliency: the gradient of the predicted class's score w.r.t. each input pixel", fontsize=10)
    return fig


# --------------------------------------------------------------------------- confusion matrix

def confusion_figure(matrix, classes, title=None):
    """Counts of (true class, predicted class); the colour is logarithmic so that a handful of errors
    shows beside a diagonal of a thousand, and zeros stay white."""
    plt = pyplot()
    from matplotlib.colors import LogNorm
    m = np.asarray(matrix)
    K = len(classes)
    size = 4.2 + 0.32 * K
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    shown = np.ma.masked_equal(m, 0)
    im = ax.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1, vmax=max(int(m.max()), 2)))
    threshold = math.sqrt(max(int(m.max()), 1))
    for t in range(K):
        for p in range(K):
            if m[t, p]:
                ax.text(p, t, f"{m[t, p]}", ha="center", va="center", fontsize=8 if K <= 10 else 7,
                        color="white" if m[t, p] > threshold else "black")
    ax.set_xticks(range(K))
    ax.set_yticks(range(K))
    long = max(len(str(c)) for c in classes) > 3
    ax.set_xticklabels(classes, rotation=45 if long else 0, ha="right" if long else "center", fontsize=8)
    ax.set_yticklabels(classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total, right = int(m.sum()), int(np.trace(m))
    ax.set_title(title or f"confusion matrix: {right:,} of {total:,} right ({100 * right / max(total, 1):.2f}%)", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="images (log scale)")
    return fig


# --------------------------------------------------------------------------- misclassified examples

def misclassified_figure(images, labels, predictions, confidences, classes, total: int, title=None):
    """The given wrong predictions (uint8 images), most confident first, with true and predicted class."""
    plt = pyplot()
    n = len(images)
    rows, cols = _grid(max(n, 1))
    height = 1.75 * rows + 0.7
    fig, axes = plt.subplots(rows, cols, figsize=(1.45 * cols + 0.3, height), squeeze=False,
                             gridspec_kw=dict(hspace=0.45, wspace=0.1, top=1 - 0.8 / height, bottom=0.02))
    for k, ax in enumerate(axes.flat):
        if k < n:
            _show_image(ax, images[k], f"true {classes[labels[k]]}\npred {classes[predictions[k]]} "
                                       f"{100 * confidences[k]:.0f}%")
        else:
            ax.axis("off")
    if n == 0:
        axes[0, 0].text(0.5, 0.5, f"no wrong prediction among {total:,} images", ha="center", va="center")
    fig.suptitle(title or f"misclassified test images ({n} shown), most confident first", fontsize=10)
    return fig


# --------------------------------------------------------------------------- im2col

def im2col_figure(channels: int = 1, size: int = 4, kernel: int = 3, stride: int = 1, padding: int = 0,
                  highlight: int = 1, title=None):
    """im2col drawn for a tiny batch of one image whose pixels are numbered 1, 2, 3...

    Left: the (padded) input, one panel per channel; right: the columns matrix, one row per
    (channel, kernel row, kernel column) and one column per output pixel. Each entry holds the
    number of the pixel it copies (0 from the padding) in that pixel's colour. The window of output
    pixel ``highlight`` is framed on the left, its column on the right.
    """
    plt = pyplot()
    from matplotlib.patches import Rectangle
    x = np.arange(1, channels * size * size + 1, dtype=np.float64).reshape(1, channels, size, size)
    p = ((padding, padding), (padding, padding))
    cols = textbook.im2col(x, (kernel, kernel), (stride, stride), p, (1, 1))      # (C, kH, kW, 1, Ho, Wo)
    Ho, Wo = cols.shape[-2:]
    matrix = cols.reshape(channels * kernel * kernel, Ho * Wo)
    padded = np.pad(x[0], ((0, 0), (padding, padding), (padding, padding)))
    cmap = plt.get_cmap("tab20")

    def colour(v):
        return (0.85, 0.85, 0.85) if v == 0 else cmap((int(v) - 1) % 20)

    def ink(v):          # black on light cells, white on dark ones
        r, g, b = colour(v)[:3]
        return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"

    side = size + 2 * padding
    width_left, width_right = channels * (side + 0.8), matrix.shape[1] + 1.5
    scale = 0.5
    fig = plt.figure(figsize=(scale * (width_left + width_right) + 1.0, scale * max(side, matrix.shape[0]) + 1.9))
    grid = fig.add_gridspec(1, channels + 1, width_ratios=[side] * channels + [matrix.shape[1] + 1.5], wspace=0.35)
    hi, hj = divmod(highlight, Wo)
    for c in range(channels):
        ax = fig.add_subplot(grid[0, c])
        for i in range(side):
            for j in range(side):
                v = padded[c, i, j]
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor=colour(v), edgecolor="white"))
                ax.text(j + 0.5, i + 0.5, f"{int(v)}", ha="center", va="center", fontsize=9, color=ink(v))
        ax.add_patch(Rectangle((hj * stride, hi * stride), kernel, kernel, fill=False, edgecolor="black", lw=2.5))
        ax.set_xlim(0, side)
        ax.set_ylim(side, 0)
        ax.set_aspect("equal")
        ax.set_anchor("N")          # at the top, level with the matrix, not centred below the title
        _off(ax)
        ax.set_title(f"channel {c}" + (f"\n(padding {padding})" if padding else ""), fontsize=9)
    ax = fig.add_subplot(grid[0, channels])
    R, L = matrix.shape
    for r in range(R):
        for k in range(L):
            v = matrix[r, k]
            ax.add_patch(Rectangle((k, r), 1, 1, facecolor=colour(v), edgecolor="white"))
            ax.text(k + 0.5, r + 0.5, f"{int(v)}", ha="center", va="center", fontsize=9, color=ink(v))
    ax.add_patch(Rectangle((highlight, 0), 1, R, fill=False, edgecolor="black", lw=2.5))
    ax.set_xlim(0, L)
    ax.set_ylim(R, 0)
    ax.set_aspect("equal")
    ax.set_anchor("N")
    ax.set_xticks(np.arange(L) + 0.5)
    ax.set_xticklabels([f"{k // Wo}\n{k % Wo}" for k in range(L)], fontsize=9)
    ax.set_yticks(np.arange(R) + 0.5)
    ax.set_yticklabels([f"{r // (kernel * kernel)},{r // kernel % kernel},{r % kernel}" for r in range(R)], fontsize=9)
    ax.set_xlabel("output pixel: oh above ow", fontsize=9)
    ax.set_ylabel("(c, i, j)", fontsize=9)
    ax.tick_params(length=0)
    ax.set_title(f"columns: {R} x {L}\n(C·kH·kW x N·Ho·Wo)", fontsize=9)
    fig.suptitle(title or f"im2col of a {channels}x{size}x{size} image, {kernel}x{kernel} kernel, stride {stride}: "
                          f"the framed window is column {highlight}", fontsize=10)
    return fig
