"""A picture of the computational graph behind a tensor: ``draw_graph(loss, "graph.png")``.

Each ``Function`` is a box; each tensor is a rounded label with its shape and, when it has at most
``SMALL`` elements, its gradient and (for the output, the leaves and the tensors named in ``names``;
the graph keeps no other results) its value. The gradients are d(tensor.sum())/d(each tensor),
computed here by one extra backward sweep through the (still alive) graph, so the picture needs no
earlier ``backward()`` and changes no ``.grad``. Leaves are drawn at the top, the output at the bottom.

Only matplotlib is needed (the ``plot`` extra): the layout is a simple layered one, computed here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..autograd import Function, Tensor
from .figures import pyplot, save

SMALL = 4           # tensors with at most this many elements show their values and gradients


@dataclass
class Graph:
    """The drawn graph: ``nodes`` (dicts with ``kind`` 'function' or 'tensor', ``label``, ``layer``)
    and ``edges`` (pairs of node indices, from producer to consumer; an input used twice gives two)."""

    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)

    @property
    def functions(self) -> int:
        return sum(n["kind"] == "function" for n in self.nodes)

    @property
    def tensors(self) -> int:
        return sum(n["kind"] == "tensor" for n in self.nodes)


def _text(array) -> str:
    a = backend.to_numpy(array)
    if a.size == 1:
        return f"{float(a.reshape(())):.4g}"
    return "[" + ", ".join(f"{v:.3g}" for v in a.ravel()) + "]"


def _tensor_label(name, shape, value, grad) -> str:
    lines = ([name] if name else []) + [f"shape {tuple(shape)}"]
    size = int(np.prod(shape, dtype=np.int64))
    if value is not None and size <= SMALL:
        lines.append(f"value {_text(value)}")
    if grad is not None and size <= SMALL:
        lines.append(f"grad {_text(grad)}")
    return "\n".join(lines)


def _order(root_fn) -> list:
    """The functions behind ``root_fn``, each after every function that uses its output (an
    iterative depth-first walk, as ``backward()`` makes it)."""
    order, seen, stack = [], set(), [(root_fn, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
        elif id(fn) not in seen:
            seen.add(id(fn))
            stack.append((fn, True))
            stack += [(p, False) for p in fn.parents if isinstance(p, Function) and id(p) not in seen]
    return order[::-1]


def _gradients(root: Tensor, order):
    """d(root.sum())/d(output of each function) and /d(each leaf), by one sweep with the graph kept."""
    xp = backend.get_array_module(root.data)
    grads, leaf_grads = {id(root._ctx): xp.ones_like(root.data)}, {}
    outputs = {}
    for fn in order:
        g = grads.pop(id(fn), None)
        if g is None:
            continue
        outputs[id(fn)] = g
        input_grads = fn.backward(g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for parent, pg in zip(fn.parents, input_grads):
            if parent is None or pg is None:
                continue
            table = leaf_grads if isinstance(parent, Tensor) else grads
            table[id(parent)] = table[id(parent)] + pg if id(parent) in table else pg
    return outputs, leaf_grads


def graph_of(tensor: Tensor, names=None) -> Graph:
    """The nodes and edges of ``tensor``'s graph (no drawing). ``names`` maps a name to a tensor
    (a leaf, or an intermediate result still alive), e.g. ``dict(model.named_parameters())``."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"draw_graph: expected a Tensor, got {type(tensor).__name__}")
    label_of = {id(t): name for name, t in (names or {}).items()}
    named_outputs = {id(t.grad_fn): t for t in (names or {}).values() if isinstance(t, Tensor) and t.grad_fn is not None}
    graph = Graph()
    if tensor.grad_fn is None:
        graph.nodes.append(dict(kind="tensor", layer=0, label=_tensor_label(
            label_of.get(id(tensor), "leaf"), tensor.shape, tensor.data, tensor.grad)))
        return graph
    if tensor.grad_fn.freed:
        raise RuntimeError("draw_graph: the graph was freed by backward(); draw it before backward(), "
                           "or call backward(retain_graph=True)")
    order = _order(tensor.grad_fn)                      # consumers before producers
    out_grads, leaf_grads = _gradients(tensor, order)
    depth = {id(order[0]): 0}                           # longest distance from the output, in functions
    for fn in order:
        for parent in fn.parents:
            if isinstance(parent, Function):
                depth[id(parent)] = max(depth.get(id(parent), 0), depth[id(fn)] + 1)
    deepest = max(depth.values())
    index = {}

    def add(key, **node):
        index[key] = len(graph.nodes)
        graph.nodes.append(node)
        return index[key]

    for fn in reversed(order):                          # producers first: the picture reads top-down
        layer = 2 * (deepest - depth[id(fn)]) + 1
        f = add(("fn", id(fn)), kind="function", layer=layer, label=fn.name)
        out = tensor if fn is tensor.grad_fn else named_outputs.get(id(fn))
        g = out_grads.get(id(fn))
        shape = out.shape if out is not None else g.shape
        t = add(("out", id(fn)), kind="tensor", layer=layer + 1, label=_tensor_label(
            label_of.get(id(out)) if out is not None else None, shape, out.data if out is not None else None, g))
        graph.edges.append((f, t))
    for fn in reversed(order):
        for parent in fn.parents:
            if parent is None:
                continue
            if isinstance(parent, Tensor):
                key = ("leaf", id(parent))
                layer = graph.nodes[index[("fn", id(fn))]]["layer"] - 1
                src = index[key] if key in index else add(key, kind="tensor", layer=layer, label=_tensor_label(
                    label_of.get(id(parent), "leaf"), parent.shape, parent.data, leaf_grads.get(id(parent))))
            else:
                src = index[("out", id(parent))]
            graph.edges.append((src, index[("fn", id(fn))]))
    return graph


def _positions(graph: Graph):
    """x, y of every node: one row per layer; a few sweeps move each node towards the mean x of its
    neighbours (a barycentre layout), keeping the nodes of a row in order and one unit apart."""
    rows, neighbours = {}, {k: [] for k in range(len(graph.nodes))}
    for k, node in enumerate(graph.nodes):
        rows.setdefault(node["layer"], []).append(k)
    for a, b in graph.edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    x = {k: j - (len(m) - 1) / 2 for m in rows.values() for j, k in enumerate(m)}
    for _ in range(6):
        for layer in sorted(rows):
            members = rows[layer]
            wanted = {k: float(np.mean([x[n] for n in neighbours[k]])) if neighbours[k] else x[k] for k in members}
            members.sort(key=lambda k: wanted[k])
            placed = []
            for k in members:
                placed.append(max(wanted[k], placed[-1] + 1) if placed else wanted[k])
            shift = float(np.mean([wanted[k] for k in members]) - np.mean(placed))
            for k, v in zip(members, placed):
                x[k] = v + shift
    return {k: (x[k], -graph.nodes[k]["layer"]) for k in range(len(graph.nodes))}


def graph_figure(graph: Graph, title=None):
    """A matplotlib Figure of ``graph`` (see :func:`graph_of`)."""
    plt = pyplot()
    pos = _positions(graph)
    xs = [p[0] for p in pos.values()]
    layers = max(n["layer"] for n in graph.nodes) + 1
    width = max(xs) - min(xs) + 1
    lines = max(n["label"].count("\n") + 1 for n in graph.nodes)     # a row as tall as the tallest label
    fig, ax = plt.subplots(figsize=(2.1 * width + 1.0, (0.3 + 0.14 * lines) * layers + 0.8))
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(-layers + 0.4, 0.6)
    ax.axis("off")
    def half_height(k):                                 # in points: where an arrow meets the node's box
        return 6 + 5 * graph.nodes[k]["label"].count("\n") + 3

    seen = {}
    for a, b in graph.edges:                            # a second edge between the same two nodes curves
        rad = 0.25 * seen.get((a, b), 0)
        seen[(a, b)] = seen.get((a, b), 0) + 1
        ax.annotate("", xy=pos[b], xytext=pos[a], arrowprops=dict(
            arrowstyle="-|>", color="0.35", lw=1.0, shrinkA=half_height(a), shrinkB=half_height(b),
            connectionstyle=f"arc3,rad={rad}"))
    for k, node in enumerate(graph.nodes):
        fn = node["kind"] == "function"
        ax.text(*pos[k], node["label"], ha="center", va="center", fontsize=9 if fn else 8,
                family="sans-serif" if fn else "monospace", fontweight="bold" if fn else "normal",
                bbox=dict(boxstyle="square,pad=0.4" if fn else "round,pad=0.35",
                          facecolor="#dbe9f6" if fn else "#fdf3d8", edgecolor="#3a6ea5" if fn else "#b08a2e"))
    ax.set_title(title or f"computational graph: {graph.functions} functions, {graph.tensors} tensors "
                          "(gradients of the output's sum)", fontsize=10)
    return fig


def draw_graph(tensor: Tensor, path: str, names=None, title=None) -> Graph:
    """Draw ``tensor``'s computational graph into the PNG file ``path``; return its :class:`Graph`.

    Call it before ``backward()`` (or after ``backward(retain_graph=True)``): a freed graph cannot be
    walked. ``names`` labels tensors, e.g. ``{"a": a, "b": b}`` or ``dict(model.named_parameters())``.
    """
    graph = graph_of(tensor, names)
    save(graph_figure(graph, title), path, palette=128)
    return graph
