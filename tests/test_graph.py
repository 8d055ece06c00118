"""``minicnn.visualize.draw_graph``: the nodes and edges of known expressions, the gradients it shows
against backward's, the file it writes, and the ``graph`` kind of ``python -m minicnn.visualize``."""
import numpy as np
import pytest
from conftest import DATA_ROOT, needs_mnist

import minicnn
import minicnn.functional as F
from minicnn import visualize as V

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")


def chapter_one():
    a = minicnn.tensor(2.0, requires_grad=True)
    b = minicnn.tensor(-1.0, requires_grad=True)
    c = a * b
    d = c + b
    return a, b, c, d, d * d


def test_the_graph_of_chapter_one_has_3_functions_5_tensors_and_9_edges(tmp_path):
    a, b, c, d, e = chapter_one()
    g = V.draw_graph(e, str(tmp_path / "g.png"), names=dict(a=a, b=b, c=c, d=d, e=e))
    assert (g.functions, g.tensors, len(g.nodes), len(g.edges)) == (3, 5, 8, 9)
    labels = {n["label"].split("\n")[0]: n["label"] for n in g.nodes if n["kind"] == "tensor"}
    # e = (ab + b)^2 at a = 2, b = -1: de/da = 2d*b = 6, de/db = 2d*(a + 1) = -18, de/dd = 2d = -6
    assert labels["a"] == "a\nshape ()\nvalue 2\ngrad 6" and labels["b"] == "b\nshape ()\nvalue -1\ngrad -18"
    assert labels["d"] == "d\nshape ()\nvalue -3\ngrad -6" and labels["e"] == "e\nshape ()\nvalue 9\ngrad 1"
    d_id = next(k for k, n in enumerate(g.nodes) if n["label"].startswith("d\n"))
    assert sum(src == d_id for src, _ in g.edges) == 2                   # d * d: two edges into the last Mul
    assert a.grad is None and b.grad is None                               # drawing runs no backward() into .grad
    with Image.open(tmp_path / "g.png") as img:
        assert img.size[0] > 300 and img.size[1] > 400
    e.backward()                                                           # the graph is still whole
    assert (a.grad.item(), b.grad.item()) == (6.0, -18.0)


def test_a_constant_operand_is_not_a_node_and_non_scalar_values_stay_small():
    a = minicnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = minicnn.tensor([0.5, 0.5, 0.5], requires_grad=True)
    out = (a * 3.0 + b).sum()
    g = V.graph_of(out, dict(a=a, b=b))
    assert (g.functions, g.tensors, len(g.edges)) == (3, 5, 7)             # mul, add, sum; 3.0 is no tensor
    assert "grad [3, 3, 3]" in next(n["label"] for n in g.nodes if n["label"].startswith("a\n"))
    big = minicnn.randn(5, 5, requires_grad=True)
    label = V.graph_of(big.sum(), {"big": big}).nodes[-1]["label"]
    assert label == "big\nshape (5, 5)"                                    # 25 values: shape only


def test_the_gradients_shown_are_backwards_on_a_small_network():
    minicnn.manual_seed(0)
    w = minicnn.randn(3, 2, requires_grad=True)
    x = minicnn.randn(1, 3)
    loss = F.relu(x @ w).sum()
    g = V.graph_of(loss, {"w": w})
    loss.backward()
    shown = next(n["label"] for n in g.nodes if n["label"].startswith("w\n"))
    assert shown == "w\nshape (3, 2)"                                      # 6 values: too many to print
    small = minicnn.randn(2, requires_grad=True)
    out = (F.relu(small) * small).sum()
    label = next(n["label"] for n in V.graph_of(out, {"s": small}).nodes if n["label"].startswith("s\n"))
    out.backward()
    printed = "[" + ", ".join(f"{v:.3g}" for v in small.grad.numpy()) + "]"
    assert label.endswith("grad " + printed)


def test_a_freed_graph_and_a_non_tensor_are_refused():
    *_, e = chapter_one()
    e.backward()
    with pytest.raises(RuntimeError, match="freed by backward"):
        V.graph_of(e)
    with pytest.raises(TypeError, match="expected a Tensor, got ndarray"):
        V.graph_of(np.ones(3))
    leaf = V.graph_of(minicnn.tensor(1.5))
    assert (len(leaf.nodes), leaf.edges) == (1, [])


def test_lenet5s_loss_graph_has_15_functions():
    minicnn.manual_seed(0)
    model = V.untrained("lenet5", "mnist")[0]
    loss = F.cross_entropy(model(minicnn.randn(2, 1, 32, 32)), minicnn.tensor(np.array([3, 7])))
    g = V.graph_of(loss, dict(model.named_parameters()))
    # 3 conv, 2 subsampling, 6 scaled tanh, reshape, 2 linear, cross-entropy; 14 parameters + 15 outputs
    assert (g.functions, g.tensors, len(g.edges)) == (15, 29, 15 + 14 + 14)


@needs_mnist
def test_the_graph_kind_of_the_command_line(tmp_path):
    from test_visualize import cli
    proc = cli(["lenet5", "--kinds", "graph", "--count", "2"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[1] == "  ./graph.png: the loss on test images 0-1: 15 functions, 29 tensors"
    with Image.open(tmp_path / "graph.png") as img:
        assert img.size[1] > 1000
    assert DATA_ROOT


def test_the_tutorials_figures_are_readable_at_100_percent(tmp_path):
    """Issue 24's complaints, each as a check: the filters were 473 px wide, padded-im2col's column
    labels tiny and rotated, the saliency maps had no digit to compare with, and the feature-map rows
    of C3 and S4 showed 8 of 16 maps without saying so."""
    minicnn.manual_seed(0)
    path = V.save(V.filters_figure(minicnn.randn(6, 1, 5, 5).numpy(), "c1"), tmp_path / "filters.png")
    with Image.open(path) as img:
        assert img.size[0] >= 700, img.size
    fig = V.im2col_figure(channels=2, size=3, kernel=2, padding=1)
    labels = [t for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
    assert labels and all(t.get_fontsize() >= 9 and t.get_rotation() == 0 for t in labels)
    digits = np.zeros((2, 1, 28, 28), np.uint8)
    digits[:, 0, 6:22, 12:16] = 255
    fig = V.saliency_figure(digits, np.random.default_rng(0).random((2, 28, 28)), np.array([1, 1]),
                            np.full((2, 10), 0.1), np.array([1, 1]), [str(d) for d in range(10)])
    assert sum(len(ax.collections) > 0 for ax in fig.axes) >= 2            # the outline on each map
    fig = V.feature_maps_figure(digits[0], [("c1", np.ones((6, 4, 4))), ("c3", np.ones((16, 2, 2)))])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("maps 0-7 of 16" in t for t in texts) and not any("of 6" in t for t in texts)
