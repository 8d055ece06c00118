"""Chapter 1 (autograd): numerical_derivative, mul_broadcast, tanh_function, topological_backward."""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..ops.arithmetic import unbroadcast
from .common import Exercise, Wrong, array_of, check_grad, compare, unmodified
from .micro import Node

# --------------------------------------------------------------------------- 1 numerical_derivative

STUB_NUMERICAL = '''"""Exercise numerical_derivative (chapter 1): the gradient of a function by central differences.

Check it with:  python -m minicnn.exercises check numerical_derivative
"""
import numpy as np


def numerical_derivative(f, x, h=1e-5):
    """The gradient of the scalar function f at x, one element at a time.

    f: takes an array shaped like x and returns a float.   x: a float64 array of any shape.
    Returns: a float64 array shaped like x, with

        grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2 h)      (e_i: 1 at element i, 0 elsewhere)

    The central difference is accurate to O(h^2); a one-sided (f(x + h) - f(x)) / h only to O(h).
    Perturb x in place (x.reshape(-1) is a view of it) and put each element back afterwards:
    x must hold its original values when you return.
    """
    raise NotImplementedError("numerical_derivative: not implemented yet")
'''


def _nd_stage1(mod):
    x = np.array([1.0, 2.0, 3.0])
    before = x.copy()
    g = mod.numerical_derivative(lambda v: float((v ** 2).sum()), x)
    array_of("numerical_derivative(f, x)", g, x.shape)
    unmodified("x (restore each element after perturbing it)", before, x)


def _nd_stage2(mod):
    def f(v):
        return float(v[0] * v[1] + v[2] ** 3)
    x, h = np.array([1.0, 2.0, 3.0]), 1e-3
    got = mod.numerical_derivative(f, x, h)
    step = np.eye(3) * h
    forward = np.array([(f(x + e) - f(x)) / h for e in step])
    backward = np.array([(f(x) - f(x - e)) / h for e in step])
    central = np.array([(f(x + e) - f(x - e)) / (2 * h) for e in step])
    one_sided = "looks like a one-sided difference (off by O(h)): use the central difference (f(x+h) - f(x-h)) / (2h)"
    compare("the derivative of x0*x1 + x2^3 at (1, 2, 3) with h=1e-3", central, got, [
        (forward, one_sided), (backward, one_sided),
        (2 * central, "twice the derivative: the two points are 2h apart, so divide by 2h"),
        (central * 2 * h, "you forgot to divide by 2h")], rtol=1e-7, atol=1e-9)


def _nd_stage3(mod):
    rng = np.random.default_rng(1)
    for shape in [(4,), (2, 3), (1, 1), (3, 1, 2)]:
        x, w = rng.normal(size=shape), rng.normal(size=shape)
        before = x.copy()
        got = mod.numerical_derivative(lambda v, w=w: float((np.sin(v) * w).sum()), x)
        array_of(f"numerical_derivative for x of shape {shape}", got, shape)
        unmodified("x (restore each element after perturbing it)", before, x)
        compare(f"the gradient of sum(sin(x) * w) for x of shape {shape}", np.cos(x) * w, got, rtol=1e-5, atol=1e-7,
                context=" (perturb one element at a time over all of x.size, not one row at a time)"
                if len(shape) > 1 else "")


# --------------------------------------------------------------------------- 2 mul_broadcast

STUB_MUL = '''"""Exercise mul_broadcast (chapter 1): a * b as a Function, with NumPy broadcasting.

Check it with:  python -m minicnn.exercises check mul_broadcast
"""
import numpy as np

from minicnn.autograd import Function


class Mul(Function):
    """out = a * b, where a and b may have different shapes that broadcast (a (2, 3) times b (3,)).

    forward(self, a, b): arrays in, the product out (shape: the broadcast shape); save what backward needs
        on self (self.a = a ...).
    backward(self, grad): grad has out's shape; return (da, db) with da = grad * b and db = grad * a,
        EACH SUMMED BACK TO ITS INPUT'S SHAPE: where an input was broadcast (a missing leading axis, or an
        axis of size 1 stretched), its gradient is the sum over that axis, because every copy of the
        element contributed to the output. da.shape == a.shape and db.shape == b.shape, always.
    """

    def forward(self, a, b):
        raise NotImplementedError("Mul.forward: not implemented yet")

    def backward(self, grad):
        raise NotImplementedError("Mul.backward: not implemented yet")
'''


def _mul_run(mod, a, b, grad):
    fn = mod.Mul()
    fn.needs_input_grad = (True, True)
    out = fn.forward(a, b)
    grads = fn.backward(grad)
    if not isinstance(grads, tuple) or len(grads) != 2:
        raise Wrong(f"Mul.backward must return a pair (da, db), got {type(grads).__name__}"
                    + (f" of length {len(grads)}" if isinstance(grads, (tuple, list)) else ""))
    return out, grads


def _mul_shapes(a, b, out, grads, dtype=None):
    array_of(f"Mul.forward for a {a.shape} and b {b.shape}", out, np.broadcast_shapes(a.shape, b.shape), dtype)
    for what, g, x in (("da", grads[0], a), ("db", grads[1], b)):
        if isinstance(g, np.ndarray) and g.shape != x.shape:
            raise Wrong(f"{what} has shape {g.shape} but its input has shape {x.shape}: a broadcast input's gradient "
                        f"is summed over the axes it was broadcast along (leading axes, and axes of size 1), back to "
                        f"the input's shape")
        array_of(what, g, x.shape, dtype)


def _mul_stage1(mod):
    if not (isinstance(mod.Mul, type) and issubclass(mod.Mul, Function)):
        raise Wrong("Mul must be a class deriving from minicnn.autograd.Function")
    a, b = np.ones((2, 3), np.float32), np.arange(3, dtype=np.float32)
    ca, cb = a.copy(), b.copy()
    out, grads = _mul_run(mod, a, b, np.ones((2, 3), np.float32))
    _mul_shapes(a, b, out, grads, np.float32)
    unmodified("a", ca, a)
    unmodified("b", cb, b)


def _mul_stage2(mod):
    a, b, g = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([10.0, 20.0]), np.ones((2, 2))
    out, (da, db) = _mul_run(mod, a, b, g)
    compare("a * b", a * b, out)
    compare("da for a = [[1, 2], [3, 4]], b = [10, 20], grad = ones", g * b, da,
            [(g * a, "da = grad * b (the other input), not grad * a")])
    compare("db for a = [[1, 2], [3, 4]], b = [10, 20], grad = ones", (g * a).sum(0), db,
            [((g * b).sum(0), "db = grad * a (the other input), summed over the broadcast axis"),
             ((g * a).mean(0), "the copies of b add up: sum over the broadcast axis, do not average")])


def _mul_stage3(mod):
    rng = np.random.default_rng(2)
    for sa, sb in [((2, 3, 4), (3, 1)), ((5, 2), (1,)), ((4, 1), (1, 5)), ((3,), ()), ((2, 3), (2, 3)),
                   ((1, 3), (4, 2, 1))]:
        a, b = rng.normal(size=sa), rng.normal(size=sb)
        g = rng.normal(size=np.broadcast_shapes(sa, sb))
        out, grads = _mul_run(mod, a, b, g)
        _mul_shapes(a, b, out, grads)
        compare(f"a * b for a {sa} and b {sb}", a * b, out)
        compare(f"da for a {sa} and b {sb}", unbroadcast(g * b, a.shape), grads[0])
        compare(f"db for a {sa} and b {sb}", unbroadcast(g * a, b.shape), grads[1])


def _mul_stage4(mod):
    rng = np.random.default_rng(3)
    a, b, u = rng.normal(size=(3, 1, 2)), rng.normal(size=(4, 1)), rng.normal(size=(3, 4, 2))
    _, (da, db) = _mul_run(mod, a, b, u)

    def f():
        fn = mod.Mul()
        fn.needs_input_grad = (True, True)
        return float((fn.forward(a, b) * u).sum())
    check_grad("da", da, f, a)
    check_grad("db", db, f, b)


# --------------------------------------------------------------------------- 3 tanh_function

STUB_TANH = '''"""Exercise tanh_function (chapter 1): a new Function, tanh, forward and backward.

Check it with:  python -m minicnn.exercises check tanh_function
Then LeNet-5 can use it: its activation 1.7159 * tanh(2x/3) runs on your Tanh
(python -m minicnn.train lenet5 --kernels DIR).
"""
import numpy as np

from minicnn.autograd import Function


class Tanh(Function):
    """y = tanh(x), element-wise; any shape, and y keeps x's dtype.

    forward(self, x): return tanh(x) and keep what backward needs on self.
    backward(self, grad): d tanh(x)/dx = 1 - tanh(x)^2 = 1 - y^2, so return grad * (1 - y^2)
        (the chain rule: multiply the incoming gradient by the local derivative).
    """

    def forward(self, x):
        raise NotImplementedError("Tanh.forward: not implemented yet")

    def backward(self, grad):
        raise NotImplementedError("Tanh.backward: not implemented yet")
'''


def _tanh_run(mod, x, grad):
    fn = mod.Tanh()
    fn.needs_input_grad = (True,)
    out = fn.forward(x)
    return out, fn.backward(grad)


def _tanh_stage1(mod):
    if not (isinstance(mod.Tanh, type) and issubclass(mod.Tanh, Function)):
        raise Wrong("Tanh must be a class deriving from minicnn.autograd.Function")
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    before = x.copy()
    out, dx = _tanh_run(mod, x, np.ones_like(x))
    array_of("Tanh.forward(x) for x (2, 3) float32", out, x.shape, np.float32)
    array_of("Tanh.backward(grad) for x (2, 3) float32", dx, x.shape, np.float32)
    unmodified("x", before, x)


def _tanh_stage2(mod):
    x, g = np.array([0.0, 1.0, -2.0]), np.array([1.0, 2.0, 0.5])
    y = np.tanh(x)
    out, dx = _tanh_run(mod, x, g)
    compare("tanh([0, 1, -2])", y, out)
    compare("the gradient for x = [0, 1, -2], grad = [1, 2, 0.5]", g * (1 - y * y), dx, [
        (g * (1 - x * x), "1 - y^2 uses the output y = tanh(x), not the input x"),
        (1 - y * y, "multiply the local derivative by the incoming grad (the chain rule)"),
        (g * (1 - y), "the derivative is 1 - y^2 (y squared), not 1 - y")])


def _tanh_stage3(mod):
    rng = np.random.default_rng(4)
    for shape, scale in [((3, 4), 1.0), ((1,), 1.0), ((2, 1, 3), 3.0), ((5,), 800.0)]:
        x = (rng.normal(size=shape) * scale).astype(np.float32)
        g = rng.normal(size=shape).astype(np.float32)
        out, dx = _tanh_run(mod, x, g)
        large = " (for large |x|: exp overflows, use np.tanh)" if scale > 100 else ""
        compare(f"tanh of x {shape}{large}", np.tanh(x), out, rtol=1e-5, atol=1e-6)
        compare(f"the gradient for x {shape}{large}", g * (1 - np.tanh(x) ** 2), dx, rtol=1e-4, atol=1e-6)


def _tanh_stage4(mod):
    rng = np.random.default_rng(5)
    x, u = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    _, dx = _tanh_run(mod, x, u)

    def f():
        fn = mod.Tanh()
        fn.needs_input_grad = (True,)
        return float((fn.forward(x) * u).sum())
    check_grad("the gradient of Tanh", dx, f, x)


# --------------------------------------------------------------------------- 4 topological_backward

STUB_TOPO = '''"""Exercise topological_backward (chapter 1): the backward pass of a micro autograd engine.

Check it with:  python -m minicnn.exercises check topological_backward
"""
from minicnn.exercises.micro import Node   # value, grad, parents, local_grads, _backward()


def backward(root):
    """Fill in .grad of every node that root was computed from, with d(root)/d(node).

    root: a Node. Every node has .parents (the nodes it was computed from) and ._backward(), which
    adds node.grad * d(node)/d(parent) into each parent's .grad (the chain rule for one node).

    1. Seed: root.grad = 1.0 (d root / d root).
    2. Order the nodes so that each node comes after every node that uses it (reverse topological
       order): a node may pass its gradient on only once all its users have added theirs to it.
       Visit each node ONCE, even when it is reached along several paths (keep a visited set).
    3. Call node._backward() for each node in that order.

    Graphs can be thousands of nodes deep: use an explicit stack, not recursion. Returns None.
    """
    raise NotImplementedError("backward: not implemented yet")
'''


class _Recorded(Node):
    """A Node that records the order in which ``_backward`` ran."""
    log: list = []

    def _backward(self):
        _Recorded.log.append(self)
        super()._backward()


def _topo_run(mod, build):
    """Build the graph, run the learner's backward on it, check the order; return the named nodes."""
    _Recorded.log = []
    nodes, root = build()
    mod.backward(root)
    log, users = _Recorded.log, {}
    counts = {}
    for n in log:
        counts[id(n)] = counts.get(id(n), 0) + 1
    for n in log:
        for p in n.parents:
            users.setdefault(id(p), []).append(n)
    if not log:
        raise Wrong("no node ran _backward: call node._backward() for every node, root first")
    twice = [n for n in log if counts[id(n)] > 1]
    if twice:
        raise Wrong(f"{twice[0]!r} ran _backward {counts[id(twice[0])]} times: it is reached along several paths, "
                    f"and each run passes its gradient on again. Keep a visited set so that each node runs once")
    position = {id(n): i for i, n in enumerate(log)}
    for n in log:
        late = [u for u in users.get(id(n), ()) if position[id(u)] > position[id(n)]]
        if late:
            raise Wrong(f"{n!r} passed its gradient on before {late[0]!r}, which uses it, had added its share: "
                        f"order the nodes in reverse topological order (each node after every node that uses it)")
    reachable, stack = {}, [root]
    while stack:
        n = stack.pop()
        if id(n) not in reachable:
            reachable[id(n)] = n
            stack.extend(n.parents)
    missing = [n for n in reachable.values() if n.parents and id(n) not in position]
    if missing:
        raise Wrong(f"{missing[0]!r} never ran _backward: visit every node root was computed from")
    return nodes, root


def _topo_stage1(mod):
    def build():
        a, b = _Recorded(2.0, label="a"), _Recorded(-3.0, label="b")
        c = a * b
        return {"a": a, "b": b, "c": c}, c
    nodes, root = _topo_run(mod, build)
    if root.grad == 0.0:
        raise Wrong("the root's grad is 0: seed it with root.grad = 1.0 before the traversal")
    if (nodes["a"].grad, nodes["b"].grad) != (-3.0, 2.0):
        raise Wrong(f"for c = a * b with a = 2, b = -3: expected a.grad = -3 and b.grad = 2, got {nodes['a'].grad:g} "
                    f"and {nodes['b'].grad:g}")


def _topo_stage2(mod):
    def build():
        x = _Recorded(1.5, label="x")
        a, b = x * 2.0, x * 3.0
        a.label, b.label = "a", "b"
        c = a * b
        c.label = "c"
        return {"x": x, "a": a, "b": b, "c": c}, c
    nodes, _ = _topo_run(mod, build)
    if abs(nodes["x"].grad - 18.0) > 1e-12:
        raise Wrong(f"for a = 2x, b = 3x, c = a * b (c = 6x^2) at x = 1.5, dc/dx = 12x = 18; got x.grad = "
                    f"{nodes['x'].grad:g}")


def _random_graph(rng, size):
    leaves = [_Recorded(float(v), label=f"x{i}") for i, v in enumerate(rng.normal(size=3))]
    nodes, pool = {n.label: n for n in leaves}, list(leaves)
    for i in range(size):
        a, b = pool[rng.integers(len(pool))], pool[rng.integers(len(pool))]
        op = ["add", "mul", "tanh"][rng.integers(3)]
        n = a + b if op == "add" else a * b if op == "mul" else a.tanh()
        n.label, n.op = f"n{i}", op
        nodes[n.label] = n
        pool.append(n)
    root = pool[-1] * 1.0
    root.op = "mul"
    return nodes, root


def _value(node, leaves, values, memo):
    if id(node) in memo:
        return memo[id(node)]
    if not node.parents:
        v = values[leaves.index(node)] if node in leaves else node.value
    else:
        ps = [_value(p, leaves, values, memo) for p in node.parents]
        v = ps[0] + ps[1] if node.op == "add" else ps[0] * ps[1] if node.op == "mul" else math.tanh(ps[0])
    memo[id(node)] = v
    return v


def _topo_stage3(mod):
    rng = np.random.default_rng(6)
    for size in (5, 12, 30):
        nodes, root = _topo_run(mod, lambda size=size: _random_graph(rng, size))
        leaves = [nodes[f"x{i}"] for i in range(3)]
        values = [n.value for n in leaves]
        for i, leaf in enumerate(leaves):
            def f(v, i=i, root=root, leaves=leaves, values=values):
                vals = list(values)
                vals[i] = v
                return _value(root, leaves, vals, {})
            numeric = (f(values[i] + 1e-6) - f(values[i] - 1e-6)) / 2e-6
            if abs(numeric - leaf.grad) > 1e-4 * (1 + abs(numeric)):
                raise Wrong(f"a random graph of {size} nodes: d root / d x{i} is {numeric:.6g} by finite "
                            f"differences, your backward gave {leaf.grad:.6g}")

    def chain():
        x = _Recorded(0.5, label="x")
        n = x
        for _ in range(3000):
            n = n * 1.0
        return {"x": x}, n
    nodes, _ = _topo_run(mod, chain)
    if nodes["x"].grad != 1.0:
        raise Wrong(f"a chain of 3000 multiplications by 1: x.grad should be 1, got {nodes['x'].grad:g}")


EXERCISES = [
    Exercise("numerical_derivative", 1, "central difference", ("numerical_derivative",), STUB_NUMERICAL,
             ("Loop over every element: flat = x.reshape(-1) is a view, so changing flat[i] changes x.",
              "For each i: keep old = flat[i]; set flat[i] = old + h, call f; set old - h, call f; put old back.",
              "grad.reshape(-1)[i] = (f_plus - f_minus) / (2 * h); return grad with x's shape."),
             ("minicnn.gradcheck:gradcheck",), ((1, _nd_stage1), (2, _nd_stage2), (3, _nd_stage3))),
    Exercise("mul_broadcast", 1, "Function mul with broadcasting, gradients summed back to input shapes", ("Mul",),
             STUB_MUL,
             ("forward: save a and b on self, return a * b.",
              "backward: da = grad * self.b, db = grad * self.a, then sum each back to its input's shape.",
              "To sum back: sum over the leading axes grad has and the input lacks, then over every axis where "
              "the input has size 1 and grad does not (keepdims=True keeps those axes)."),
             ("minicnn.ops.arithmetic:unbroadcast", "minicnn.ops.arithmetic:MulFunction"),
             ((1, _mul_stage1), (2, _mul_stage2), (3, _mul_stage3), (4, _mul_stage4))),
    Exercise("tanh_function", 1, "a new Function: tanh forward and backward", ("Tanh",), STUB_TANH,
             ("forward: self.y = np.tanh(x); return self.y.",
              "backward: return grad * (1 - self.y * self.y): the output y, not the input x."),
             ("minicnn.ops.activations:TanhFunction",),
             ((1, _tanh_stage1), (2, _tanh_stage2), (3, _tanh_stage3), (4, _tanh_stage4))),
    Exercise("topological_backward", 1, "the backward traversal (topological order) of a micro engine",
             ("backward",), STUB_TOPO,
             ("A depth-first search gives a post-order: a node is appended after all its parents. Reversed, "
              "each node comes before its parents, i.e. after every node that uses it.",
              "Without recursion: a stack of (node, expanded) pairs; pop; if expanded, append to the order; "
              "else, unless visited, mark it, push (node, True), then push (parent, False) for every parent.",
              "root.grad = 1.0; for node in reversed(order): node._backward()."),
             ("minicnn.autograd:_topological_order", "minicnn.autograd:backward"),
             ((1, _topo_stage1), (2, _topo_stage2), (3, _topo_stage3))),
]
