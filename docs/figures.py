"""The tutorial's drawn figures (run by docs/make_figures.sh from docs/; matplotlib only):

* img/autograd-graph.png      chapter 1: the graph of e = (ab + b)^2, by minicnn.visualize.draw_graph;
* img/residual-block.png      chapter 5: ResNet's basic and bottleneck blocks;
* img/inception-module.png    chapter 5: GoogLeNet's Inception module (3a);
* img/receptive-field.png     chapter 5: two stacked 3x3 convolutions see a 5x5 window.
"""
import os
import sys

import minicnn
from minicnn.visualize import draw_graph, pyplot, save

plt = pyplot()                   # matplotlib on the Agg backend (files only)
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle  # noqa: E402

OUT = "img"
DPI = 100
LAYER = dict(conv="#dbe9f6", norm="#e8f4e0", act="#fdf3d8", join="#f6dede", pool="#ece3f3", data="#ffffff")


def autograd_graph():
    a = minicnn.tensor(2.0, requires_grad=True)
    b = minicnn.tensor(-1.0, requires_grad=True)
    c = a * b
    d = c + b
    e = d * d
    draw_graph(e, os.path.join(OUT, "autograd-graph.png"), names=dict(a=a, b=b, c=c, d=d, e=e),
               title="e = (ab + b)² at a = 2, b = −1: values and gradients de/d(tensor)")


def box(ax, x, y, text, kind, width=2.6, height=0.55):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.05",
                                facecolor=LAYER[kind], edgecolor="0.3"))
    ax.text(x, y, text, ha="center", va="center", fontsize=10)


def arrow(ax, start, end, rad=0.0, text=None):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color="0.3", lw=1.2,
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2))
    if text:
        ax.text((start[0] + end[0]) / 2 + 0.15, (start[1] + end[1]) / 2, text, fontsize=9, va="center")


def column(ax, x, layers, top=0.0, step=1.0, shortcut=None):
    """A vertical chain of boxes from ``top`` down, joined by arrows; then + with the shortcut, and ReLU."""
    ys = [top - k * step for k in range(len(layers))]
    for (text, kind), y in zip(layers, ys):
        box(ax, x, y, text, kind)
    for y0, y1 in zip(ys, ys[1:]):
        arrow(ax, (x, y0 - 0.3), (x, y1 + 0.3))
    plus = ys[-1] - step
    ax.add_patch(plt.Circle((x, plus), 0.25, facecolor=LAYER["join"], edgecolor="0.3"))
    ax.text(x, plus, "+", ha="center", va="center", fontsize=14)
    arrow(ax, (x, ys[-1] - 0.3), (x, plus + 0.27))
    ax.annotate("", xy=(x + 0.27, plus), xytext=(x + 1.3, top + 0.55),
                arrowprops=dict(arrowstyle="-|>", color="#b03030", lw=1.5,
                                connectionstyle="angle,angleA=-90,angleB=0,rad=8"))
    ax.text(x + 1.38, (top + plus) / 2, shortcut, rotation=90, color="#b03030", fontsize=9, va="center")
    box(ax, x, plus - step, "ReLU", "act")
    arrow(ax, (x, plus - 0.27), (x, plus - step + 0.3))
    box(ax, x, top + 1.0, "x", "data", width=1.4)
    arrow(ax, (x, top + 0.7), (x, top + 0.3))
    return plus - step


def residual_block():
    fig, ax = plt.subplots(figsize=(8.2, 7.6))
    basic = [("3x3 conv, 64", "conv"), ("batch-norm", "norm"), ("ReLU", "act"), ("3x3 conv, 64", "conv"),
             ("batch-norm", "norm")]
    bottleneck = [("1x1 conv, 64 (reduce)", "conv"), ("batch-norm, ReLU", "norm"), ("3x3 conv, 64", "conv"),
                  ("batch-norm, ReLU", "norm"), ("1x1 conv, 256 (expand)", "conv"), ("batch-norm", "norm")]
    low = min(column(ax, 0, basic, shortcut="identity: the gradient passes unchanged"),
              column(ax, 5, bottleneck, shortcut="identity (or 1x1 conv + BN when the shape changes)"))
    ax.text(0, 2.2, "basic block (ResNet-18, 34)\n64 channels in and out", ha="center", fontsize=11)
    ax.text(5, 2.2, "bottleneck (ResNet-50 and deeper)\n256 channels in and out", ha="center", fontsize=11)
    ax.set_xlim(-2, 7.5)
    ax.set_ylim(low - 0.6, 2.9)
    ax.axis("off")
    fig.suptitle("residual blocks: output = ReLU(F(x) + x)", fontsize=12)
    save(fig, os.path.join(OUT, "residual-block.png"), dpi=DPI)


def inception_module():
    fig, ax = plt.subplots(figsize=(10.5, 5.6))
    box(ax, 4.5, 4.0, "previous layer, 192 x 28 x 28", "data", width=4.2)
    branches = [[("1x1 conv, 64", "conv")],
                [("1x1 conv, 96 (reduce)", "conv"), ("3x3 conv, 128", "conv")],
                [("1x1 conv, 16 (reduce)", "conv"), ("5x5 conv, 32\n(torchvision: 3x3)", "conv")],
                [("3x3 max pool, stride 1", "pool"), ("1x1 conv, 32 (project)", "conv")]]
    for k, branch in enumerate(branches):
        x = 3.0 * k
        for j, (text, kind) in enumerate(branch):
            y = 2.6 - 1.1 * j
            box(ax, x, y, text, kind)
            arrow(ax, (4.5, 3.7) if j == 0 else (x, y + 0.8), (x, y + 0.3))
        arrow(ax, (x, 2.6 - 1.1 * (len(branch) - 1) - 0.3), (4.5, -0.75))
    box(ax, 4.5, -1.0, "concatenate channels: 64 + 128 + 32 + 32 = 256 x 28 x 28", "join", width=6.4)
    ax.set_xlim(-1.6, 10.6)
    ax.set_ylim(-1.5, 4.5)
    ax.axis("off")
    fig.suptitle("GoogLeNet's Inception module (3a): four branches on the same input", fontsize=12)
    save(fig, os.path.join(OUT, "inception-module.png"), dpi=DPI)


def receptive_field():
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.2), gridspec_kw=dict(width_ratios=[7, 5, 3]))
    spans = [(7, 1, 5, "input 7x7: the 5x5 window (blue)\nthat one output pixel sees"),
             (5, 1, 3, "after conv 1 (3x3): the 3x3\nwindow conv 2 reads"), (3, 1, 1, "after conv 2 (3x3):\none pixel")]
    for ax, (size, start, span, title) in zip(axes, spans):
        for i in range(size):
            for j in range(size):
                inside = start <= i < start + span and start <= j < start + span
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor="#8fb8e0" if inside else "#f2f2f2", edgecolor="white"))
        ax.add_patch(Rectangle((start, start), span, span, fill=False, edgecolor="#1f4e79", lw=2.5))
        ax.set_xlim(0, size)
        ax.set_ylim(size, 0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=10)
    fig.suptitle("receptive field: each 3x3 layer (stride 1) adds 2 pixels, so two see 5x5\n"
                 "(with 2 x 9 = 18 weights per channel pair instead of 25) and three see 7x7", fontsize=11, y=1.02)
    fig.subplots_adjust(top=0.78)
    save(fig, os.path.join(OUT, "receptive-field.png"), dpi=DPI)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for make in (autograd_graph, residual_block, inception_module, receptive_field):
        make()
        print(f"  {make.__name__}", file=sys.stderr)
