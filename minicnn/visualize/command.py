"""``python -m minicnn.visualize SOURCE``: draw what a CNN learned and computes, into PNG files.

    python -m minicnn.visualize runs/lenet5-20250101-120000            # every figure, into the run folder
    python -m minicnn.visualize runs/lenet5-20250101-120000 --kinds filters,confusion --out figures
    python -m minicnn.visualize lenet5 --kinds im2col,features         # an untrained model, by name

SOURCE is a run folder of ``python -m minicnn.train`` (its ``best.npz``, else ``last.npz``), one
checkpoint file, or an architecture name (built untrained from ``--seed``, for ``--dataset``).
The figures (``--kinds``, default: all for a trained model; no test-set figures for an untrained one):

* ``filters``        the first convolution's filters;
* ``features``       test image ``--index`` and its maps after each stage of the network;
* ``saliency``       ``--count`` test images and |d score / d pixel| of the predicted class;
* ``confusion``      the confusion matrix over the test set (``--limit-test`` images);
* ``misclassified``  up to 16 wrong predictions on the same images, most confident first;
* ``im2col``         the columns matrix of a tiny numbered image (``--im2col C,SIZE,KERNEL,STRIDE,PADDING``);
* ``graph``          the computational graph of the training loss on ``--count`` test images from
                     ``--index`` (each Function a box, each tensor its shape; not drawn unless asked for).

Each is written atomically as ``OUT/PREFIXkind.png`` and named on one line. Errors follow
:mod:`minicnn.cli`: a bad option is one ``prog: error:`` line and exit status 2 before anything is
written; a checkpoint, dataset or disk problem is one line and exit status 1; ``--debug`` adds the traceback.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from .. import architectures, checkpoint, cli
from .. import functional as F
from ..autograd import Tensor, no_grad
from ..data import DATASETS, DataError
from . import analysis, figures, graph

KINDS = ["filters", "features", "saliency", "confusion", "misclassified", "im2col", "graph"]
TRAINED_DEFAULT = ["filters", "features", "saliency", "confusion", "misclassified", "im2col"]
TEST_SET_KINDS = {"confusion", "misclassified"}
UNTRAINED_DEFAULT = ["filters", "features", "saliency", "im2col"]
MAX_ERRORS_SHOWN = 16


def _kinds(text: str) -> list:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown kind {', '.join(map(repr, unknown)) or repr(text)}; choose from {','.join(KINDS)}")
    return list(dict.fromkeys(kinds))


def _im2col_spec(text: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 5 or min(values[:4]) < 1 or values[4] < 0 or values[2] > values[1] + 2 * values[4] \
            or values[0] > 3 or values[1] > 8:
        raise argparse.ArgumentTypeError(
            f"expected C,SIZE,KERNEL,STRIDE,PADDING with C <= 3, SIZE <= 8 and the kernel inside the padded image, "
            f"e.g. 1,4,3,1,0; got {text!r}")
    return values


def make_parser():
    p = cli.ArgumentParser(
        prog="python -m minicnn.visualize",
        description="Draw a CNN's first-layer filters, the feature maps of one input through each stage, "
                    "saliency maps, the confusion matrix and misclassified test images, the im2col "
                    "picture and the computational graph of the loss, as PNG files (needs matplotlib: pip install -e .[plot]).",
        epilog="Exit codes: 0 done, 1 error (a bad checkpoint, missing data, the disk), 2 bad options.")
    p.add_argument("source", metavar="SOURCE",
                   help="run folder of python -m minicnn.train, a .npz checkpoint, or an architecture name "
                        f"({', '.join(architectures.names())})")
    p.add_argument("--kinds", type=_kinds, metavar="KIND[,KIND...]",
                   help=f"figures to draw: {','.join(KINDS)} (default: all for a trained model; "
                        f"{','.join(UNTRAINED_DEFAULT)} for an architecture name; graph only when named)")
    p.add_argument("--out", metavar="DIR", help="folder for the PNG files (default: the run folder, or . for a name)")
    p.add_argument("--prefix", default="", help="start of every file name, e.g. lenet5- (default: none)")
    p.add_argument("--index", type=cli.nonneg_int, default=0,
                   help="test image shown by 'features', and the first of the 'saliency' images (default: 0)")
    p.add_argument("--count", type=cli.positive_int, default=6, help="images in the saliency figure (default: 6)")
    p.add_argument("--limit-test", type=cli.positive_int, metavar="N",
                   help="test images evaluated for 'confusion' and 'misclassified' (default: the whole test set)")
    p.add_argument("--im2col", type=_im2col_spec, default=(1, 4, 3, 1, 0), metavar="C,SIZE,KERNEL,STRIDE,PADDING",
                   help="the tiny input of the im2col picture (default: 1,4,3,1,0)")
    p.add_argument("--data-dir", type=cli.existing_folder, help="where the datasets are (default: as minicnn.train)")
    g = p.add_argument_group("an architecture name only")
    g.add_argument("--dataset", choices=sorted(DATASETS), help="test images to use (default: mnist)")
    g.add_argument("--input-size", type=cli.positive_int, help="model input size (default: the design size)")
    g.add_argument("--seed", type=cli.nonneg_int, help="seed of the initial weights (default: 0)")
    cli.add_debug_option(p)
    return p


def run(argv=None) -> int:
    """The command line; returns the exit status (see :mod:`minicnn.cli`)."""
    parser = make_parser()
    args = parser.parse_args(argv)
    by_name = args.source in architectures.names() and not os.path.exists(args.source)
    if not by_name and not os.path.exists(args.source):
        parser.error(f"{args.source} is not a run folder, a checkpoint file or an architecture name "
                     f"({', '.join(architectures.names())})")
    if not by_name:
        given = [f"--{k.replace('_', '-')}" for k in ("dataset", "input_size", "seed") if getattr(args, k) is not None]
        if given:
            parser.error(f"{', '.join(given)} only apply to an architecture name: a run uses its own "
                         "dataset, input size and weights")
    kinds = args.kinds or (UNTRAINED_DEFAULT if by_name else TRAINED_DEFAULT)
    out = args.out if args.out is not None else ("." if by_name else
                                                   args.source if os.path.isdir(args.source) else
                                                   os.path.dirname(args.source) or ".")
    debug = cli.debug_requested(args)
    return cli.run_reporting(parser.prog, debug, lambda: _run(args, parser, by_name, kinds, out),
                             expected=(checkpoint.CheckpointError, DataError, figures.MissingMatplotlib))


def _run(args, parser, by_name, kinds, out) -> int:
    figures.pyplot()                                      # missing matplotlib: one line, before any work
    if by_name:
        model, config = analysis.untrained(args.source, args.dataset or "mnist", args.input_size,
                                           seed=args.seed or 0)
        size, training = config["input_size"], model.training
        try:                                              # every shape checked on an empty batch, as train does
            with no_grad():
                model.eval()(Tensor(np.zeros((0, config["in_channels"], size, size), np.float32)))
        except ValueError as exc:                         # alexnet --input-size 16: the model's own message
            parser.error(f"argument --input-size: {cli.one_line(exc)}")
        model.train(training)
        about = f"{args.source}, untrained (seed {args.seed or 0})"
    else:
        model, config, path, epoch = analysis.load_run(args.source)
        about = f"{config['arch']} from {path}" + (f", epoch {epoch}" if epoch is not None else "")
    images, labels, classes, probs = None, None, None, None
    if set(kinds) - {"filters", "im2col"}:
        images, labels, classes = analysis.test_set(config, args.data_dir)
        last = args.index + (args.count if {"saliency", "graph"} & set(kinds) else 1)
        if {"features", "saliency", "graph"} & set(kinds) and last > len(images):
            parser.error(f"argument --index: test image {last - 1} is needed (--index {args.index}"
                         + (f", --count {args.count}" if {"saliency", "graph"} & set(kinds) else "")
                         + f") but the test set has {len(images):,} images")
    if TEST_SET_KINDS & set(kinds):
        n = min(args.limit_test or len(images), len(images))
        probs = analysis.predict(model, analysis.prepare(images[:n], config))
    print(f"{about}; figures into {out}")
    drawn = [(kind, _draw(kind, args, model, config, images, labels, classes, probs)) for kind in kinds]
    for kind, (fig, what) in drawn:
        path = figures.save(fig, os.path.join(out, f"{args.prefix}{kind}.png"), palette=128 if kind == "graph" else None)
        print(f"  {path}: {what}")
    return cli.EXIT_OK


def _draw(kind, args, model, config, images, labels, classes, probs):
    """``(figure, one line saying what it shows)`` for one kind."""
    arch = config["arch"]
    if kind == "filters":
        name, conv = analysis.first_conv(model)
        w = conv.weight.numpy()
        return figures.filters_figure(w, f"{arch} {name}"), f"{w.shape[0]} filters of {'x'.join(map(str, w.shape[1:]))} ({name})"
    if kind == "im2col":
        c, size, k, s, pad = args.im2col
        fig = figures.im2col_figure(c, size, k, s, pad)
        rows, pixels = c * k * k, ((size + 2 * pad - k) // s + 1) ** 2
        return fig, f"a {c}x{size}x{size} image, kernel {k}, stride {s}, padding {pad}: columns {rows} x {pixels}"
    if kind == "features":
        i = args.index
        stages = analysis.stage_outputs(model, analysis.prepare(images[i:i + 1], config))
        if not stages:
            raise cli.CommandError(f"{arch} makes no feature map larger than 1x1 from {config['input_size']}x"
                                   f"{config['input_size']} images: nothing to draw (use a larger --input-size)")
        fig = figures.feature_maps_figure(images[i], [(label, maps[0]) for label, maps in stages],
                                          title=f"{arch}: test image {i} (class {classes[labels[i]]}) through each stage")
        return fig, f"test image {i} through {len(stages)} stages: {', '.join(label for label, _ in stages)}"
    if kind == "graph":
        i, n = args.index, args.count
        training = model.training
        model.train()
        loss = F.cross_entropy(model(Tensor(analysis.prepare(images[i:i + n], config))),
                               Tensor(np.asarray(labels[i:i + n], dtype=np.int64)))
        model.train(training)
        g = graph.graph_of(loss, dict(model.named_parameters()))
        fig = graph.graph_figure(g, title=f"{arch}: the graph of the cross-entropy loss on {n} test images "
                                          f"({g.functions} functions, {g.tensors} tensors)")
        return fig, f"the loss on test images {i}-{i + n - 1}: {g.functions} functions, {g.tensors} tensors"
    if kind == "saliency":
        i, n = args.index, args.count
        maps, pred, probs = analysis.saliency(model, analysis.prepare(images[i:i + n], config))
        maps = analysis.on_image_grid(maps, config)
        fig = figures.saliency_figure(images[i:i + n], maps, pred, probs, labels[i:i + n], classes)
        return fig, f"test images {i}-{i + n - 1}, {int((pred == labels[i:i + n]).sum())} of {n} predicted right"
    labels = labels[:len(probs)]
    pred = probs.argmax(axis=1)
    if kind == "confusion":
        m = analysis.confusion_matrix(labels, pred, len(classes))
        right = int(np.trace(m))
        return (figures.confusion_figure(m, classes, title=f"{arch}: {right:,} of {len(labels):,} test images right "
                                                           f"({100 * right / len(labels):.2f}%)"),
                f"{right:,} of {len(labels):,} right ({100 * right / len(labels):.2f}%)")
    wrong = np.flatnonzero(pred != labels)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:MAX_ERRORS_SHOWN]
    fig = figures.misclassified_figure(images[wrong], labels[wrong], pred[wrong], probs[wrong, pred[wrong]], classes,
                                       len(labels))
    return fig, f"{int((pred != labels).sum()):,} wrong of {len(labels):,}, {len(wrong)} shown"


def main(argv=None):
    sys.exit(run(argv))
