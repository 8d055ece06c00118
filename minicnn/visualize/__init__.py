"""Pictures of a CNN at work: ``python -m minicnn.visualize SOURCE`` (see ``command.py``), or from Python.

    from minicnn import visualize
    model, config, path, epoch = visualize.load_run("runs/lenet5-20250101-120000")
    name, conv = visualize.first_conv(model)
    visualize.save(visualize.filters_figure(conv.weight.numpy(), name), "filters.png")

``analysis`` computes the arrays (no matplotlib): a model from a run folder or by name, the test images
prepared as in training, the stages' feature maps, saliency, predictions and the confusion matrix.
``graph`` draws a tensor's computational graph (``draw_graph(loss, "graph.png")``). ``figures`` draws them with matplotlib (the ``plot`` extra, imported on first use). Nothing here is
imported by ``import minicnn``: this package sits at the level of the command lines.
"""
from .analysis import (build, confusion_matrix, find_checkpoint, first_conv, load_run, predict, prepare, saliency,
                       stage_outputs, test_set, untrained)
from .graph import Graph, draw_graph, graph_figure, graph_of
from .command import KINDS, main, make_parser, run
from .figures import (MissingMatplotlib, confusion_figure, feature_maps_figure, filters_figure, im2col_figure,
                      misclassified_figure, pyplot, saliency_figure, save)

__all__ = ["KINDS", "run", "main", "make_parser", "load_run", "untrained", "build", "find_checkpoint", "test_set",
           "prepare", "first_conv", "stage_outputs", "saliency", "predict", "confusion_matrix", "MissingMatplotlib",
           "pyplot", "save", "filters_figure", "feature_maps_figure", "saliency_figure", "confusion_figure",
           "misclassified_figure", "im2col_figure", "draw_graph", "graph_of", "graph_figure", "Graph"]
