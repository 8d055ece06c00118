"""The autograd engine: every Tensor op checked against finite differences, plus graph mechanics."""
import pathlib
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minicnn
from minicnn import backend, gradcheck, GradcheckError

from conftest import cuda

ROOT = pathlib.Path(__file__).resolve().parents[1]


def t64(shape, device="cpu", seed=0, low=-2.0, high=2.0, requires_grad=True):
    rng = np.random.default_rng(seed)
    return minicnn.tensor(rng.uniform(low, high, shape), dtype=np.float64, device=device,
                          requires_grad=requires_grad)


# Pairs of shapes that broadcast: a base shape, and the other with some axes set to 1 or dropped.
@st.composite
def broadcast_pair(draw, max_dims=4):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=1, max_side=4))
    other = [1 if draw(st.booleans()) else n for n in shape]
    drop = draw(st.integers(0, len(other)))
    other = tuple(other[drop:])
    return (shape, other) if draw(st.booleans()) else (other, shape)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a ** b,
    "maximum": minicnn.maximum,
    "minimum": minicnn.minimum,
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(shapes=broadcast_pair())
def test_binary_ops_gradcheck_with_broadcasting(name, shapes):
    low = 0.5 if name in ("div", "pow") else -2.0          # keep b away from 0 and a > 0 for pow
    a = t64(shapes[0], seed=1, low=low)
    b = t64(shapes[1], seed=2, low=low)
    if name in ("maximum", "minimum"):                      # no ties: nudge b off a
        b.data = b.data + 0.37
    assert gradcheck(BINARY[name], a, b)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_keep_float32(name, device):
    a = minicnn.tensor(np.full((2, 3), 1.5, np.float32), device=device, requires_grad=True)
    b = minicnn.tensor(np.full((3,), 0.5, np.float32), device=device, requires_grad=True)
    out = BINARY[name](a, b)
    out.sum().backward()
    assert out.dtype == np.float32 and a.grad.dtype == np.float32 and b.grad.dtype == np.float32
    assert a.grad.shape == (2, 3) and b.grad.shape == (3,)


@pytest.mark.parametrize("scalar", [2, 2.5, np.float64(2.5), np.float32(2.5), np.int64(3)])
def test_scalar_operands_keep_dtype(scalar):
    x = minicnn.ones(3, requires_grad=True)
    for y in (x + scalar, scalar + x, x * scalar, scalar * x, x - scalar, scalar - x, x / scalar,
              scalar / x, x ** scalar):
        assert y.dtype == np.float32
    (x * np.float64(2.0)).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2, 2, 2])


UNARY = {
    "neg": (lambda x: -x, -2, 2),
    "exp": (lambda x: x.exp(), -2, 2),
    "log": (lambda x: x.log(), 0.2, 3),
    "sqrt": (lambda x: x.sqrt(), 0.2, 3),
    "abs": (lambda x: abs(x), 0.1, 2),
    "relu": (lambda x: x.relu(), 0.1, 2),
    "sigmoid": (lambda x: x.sigmoid(), -6, 6),
    "tanh": (lambda x: x.tanh(), -3, 3),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), -2, 2),
    "pow_scalar": (lambda x: x ** 3, -2, 2),
    "rpow": (lambda x: 2.0 ** x, -2, 2),
    "rdiv": (lambda x: 1.0 / x, 0.5, 2),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), sign=st.sampled_from([1.0, -1.0]))
def test_unary_ops_gradcheck(name, shape, sign):
    fn, low, high = UNARY[name]
    if name in ("abs", "relu"):
        low, high = low * sign, high * sign                # both sides of the kink, never at it
        low, high = min(low, high), max(low, high)
    x = t64(shape, low=low, high=high)
    if name == "clamp":   # keep samples away from the clamp edges
        x.data = np.where(np.abs(x.data + 0.5) < 1e-3, -0.6, x.data)
        x.data = np.where(np.abs(x.data - 0.7) < 1e-3, 0.6, x.data)
    assert gradcheck(fn, x)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops_keep_float32(name, device):
    fn, low, high = UNARY[name]
    x = minicnn.tensor(np.linspace(low, high, 6, dtype=np.float32), device=device, requires_grad=True)
    y = fn(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_unary_values_against_numpy():
    x = np.linspace(-3, 3, 13)
    t = minicnn.tensor(x)
    np.testing.assert_allclose(t.sigmoid().numpy(), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(t.relu().numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(t.clamp(min=-1).numpy(), np.clip(x, -1, None))
    big = minicnn.tensor(np.array([-1000.0, 1000.0]))
    np.testing.assert_array_equal(big.sigmoid().numpy(), [0.0, 1.0])     # no overflow warning, exact


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), data=st.data())
def test_reductions_gradcheck(shape, data):
    ndim = len(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                               st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple)))
    keepdims = data.draw(st.booleans())
    x = minicnn.tensor(np.random.default_rng(3).permutation(int(np.prod(shape))).reshape(shape) * 0.1,
                       dtype=np.float64, requires_grad=True)          # distinct values: max/min are unique
    for fn in (lambda t: t.sum(axis=axis, keepdims=keepdims), lambda t: t.mean(axis=axis, keepdims=keepdims),
               lambda t: t.amax(axis=axis, keepdims=keepdims), lambda t: t.amin(axis=axis, keepdims=keepdims)):
        out = fn(x)
        ref_axis = axis if axis is None or isinstance(axis, int) else tuple(axis)
        assert out.shape == np.sum(x.data, axis=ref_axis, keepdims=keepdims).shape
        assert gradcheck(fn, x)


def test_reduction_values_and_torch_style_arguments():
    x = minicnn.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    np.testing.assert_array_equal(x.sum(dim=1, keepdim=True).numpy(), [[9], [12]])
    np.testing.assert_array_equal(x.mean(0).numpy(), [2.5, 3.5, 4.5])
    np.testing.assert_array_equal(x.max(axis=1).values.numpy(), [5, 6])
    np.testing.assert_array_equal(x.amax(dim=(0, 1)).numpy(), 6)
    np.testing.assert_array_equal(x.min().numpy(), 1)
    np.testing.assert_array_equal(x.argmax(1).numpy(), [1, 2])


def test_max_routes_gradient_to_first_tie():
    x = minicnn.tensor([[2.0, 7.0, 7.0], [1.0, 1.0, 0.0]], requires_grad=True)
    x.max(axis=1).values.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [1, 0, 0]])
    x.grad = None
    x.min().backward()                          # global min 0.0 is unique
    np.testing.assert_array_equal(x.grad, [[0, 0, 0], [0, 0, 1]])


@given(shapes=st.sampled_from([((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                                ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((5, 1, 2, 3), (4, 3, 2))]))
def test_matmul_gradcheck(shapes):
    a, b = t64(shapes[0], seed=4), t64(shapes[1], seed=5)
    out = a @ b
    assert out.shape == np.matmul(a.data, b.data).shape
    np.testing.assert_allclose(out.numpy(), np.matmul(a.data, b.data))
    assert gradcheck(lambda p, q: p @ q, a, b)


def test_shape_ops_gradcheck():
    x = t64((2, 3, 4))
    assert gradcheck(lambda t: t.reshape(4, 6) * 2, x)
    assert gradcheck(lambda t: t.view(-1, 2).exp(), x)
    assert gradcheck(lambda t: t.flatten(1), x)
    assert gradcheck(lambda t: t.transpose(0, 2) * minicnn.tensor(np.arange(24.0).reshape(4, 3, 2)), x)
    assert gradcheck(lambda t: t.permute(2, 0, 1).reshape(4, 6)[1:3], x)
    assert gradcheck(lambda t: t.T.sum(axis=0), x)
    assert gradcheck(lambda t: t.unsqueeze(1).squeeze(1).expand(5, 2, 3, 4), x)
    assert x.flatten(1).shape == (2, 12) and x.flatten().shape == (24,)
    assert x.transpose(0, 2).shape == (4, 3, 2) and x.permute(2, 0, 1).shape == (4, 2, 3)


@pytest.mark.parametrize("index", [
    (1,), (slice(None), 2), (Ellipsis, slice(1, 3)), (slice(None, None, -1),), (None, 0, slice(0, 4, 2)),
    (np.array([0, 2, 0, 0]),), (slice(None), np.array([1, 1, 3])), (np.array([0, 1]), np.array([2, 2])),
])
def test_getitem_gradcheck(index):
    x = t64((3, 4))
    assert gradcheck(lambda t: t[index], x)
    np.testing.assert_array_equal(x[index].numpy(), x.data[index])


def test_getitem_repeated_indices_accumulate():
    x = minicnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    idx = minicnn.tensor(np.array([0, 2, 0, 0]))
    x[idx].sum().backward()
    np.testing.assert_array_equal(x.grad, [3, 0, 1])
    y = minicnn.tensor(np.ones((2, 2)), requires_grad=True)
    y[y > 0].sum().backward()                  # boolean mask
    np.testing.assert_array_equal(y.grad, np.ones((2, 2)))


def test_cat_stack_where_gradcheck():
    a, b, c = t64((2, 3), seed=1), t64((2, 1), seed=2), t64((2, 3), seed=3)
    assert gradcheck(lambda p, q: minicnn.cat([p, q, p], dim=1), a, b)
    assert gradcheck(lambda p, q: minicnn.stack([p, q], dim=-1), a, c)
    assert gradcheck(lambda p, q: minicnn.where(p > 0, p * 2, q), a, c)
    assert gradcheck(lambda p: minicnn.where(p > 0, p, 0.0), a)
    out = minicnn.cat([a, b], dim=-1)
    np.testing.assert_array_equal(out.numpy(), np.concatenate([a.data, b.data], axis=1))
    assert minicnn.stack([a, c], 1).shape == (2, 2, 3)


def test_cast_and_clone_gradcheck():
    x = t64((3,))
    assert gradcheck(lambda t: t.to(minicnn.float32).to(minicnn.float64) * t, x, eps=1e-2, atol=1e-3)
    assert gradcheck(lambda t: t.clone() * t, x)
    assert x.float().dtype == np.float32 and x.double().dtype == np.float64


# --------------------------------------------------------------------------- graph mechanics

def test_x_plus_x_and_nonleaf_used_twice():
    x = minicnn.tensor([1.0, -2.0], requires_grad=True)
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2, 2])
    x.grad = None
    y = x * 3                 # non-leaf used by two consumers
    z = y * y + y
    z.sum().backward()        # dz/dx = (2y + 1) * 3
    np.testing.assert_allclose(x.grad, (2 * 3 * x.data + 1) * 3)


def test_bias_broadcasting_shapes():
    x = t64((2, 3, 4, 4), seed=7)
    b1 = t64((3,), seed=8)
    b2 = t64((1, 3, 1, 1), seed=9)
    s = t64((), seed=10)
    assert gradcheck(lambda p, q, r, t: p + q.reshape(1, 3, 1, 1) + r * t, x, b1, b2, s)
    out = (x.detach() + b2)
    assert out.shape == (2, 3, 4, 4)
    x2, b = minicnn.ones(2, 4, 3, requires_grad=True), minicnn.ones(3, requires_grad=True)
    (x2 + b).sum().backward()
    np.testing.assert_array_equal(b.grad, [8, 8, 8])


def test_long_chain_has_no_recursion_limit():
    x = minicnn.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001 ** 10_000, rtol=1e-3)


def test_gradients_accumulate_over_two_backward_calls():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [4, 8])
    x.zero_grad()
    x.zero_grad()             # idempotent
    assert x.grad is None


def test_no_grad_records_nothing():
    x = minicnn.tensor([1.0], requires_grad=True)
    with minicnn.no_grad():
        y = x * 2
        with minicnn.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    assert minicnn.is_grad_enabled()

    @minicnn.no_grad()
    def f(t):
        return t * 3
    assert f(x).grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_retain_graph():
    x = minicnn.tensor([3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, [12])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_comparisons_and_integer_tensors_carry_no_gradient():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    m = x > 1.5
    assert m.dtype == np.bool_ and not m.requires_grad
    np.testing.assert_array_equal(m.numpy(), [False, True])
    i = minicnn.tensor([1, 2])
    assert i.dtype == np.int64
    with pytest.raises(TypeError, match="floating-point"):
        i.requires_grad_()
    y = (x * (x > 1.5)).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, [0, 1])


def test_explicit_upstream_gradient():
    x = minicnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * 2).backward(np.array([1.0, 0.0, -1.0], dtype=np.float32))
    np.testing.assert_array_equal(x.grad, [2, 0, -2])


# --------------------------------------------------------------------------- tensor API

def test_tensor_construction_and_attributes():
    t = minicnn.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.dtype == np.float32 and t.shape == (2, 2) and t.ndim == 2 and t.device == "cpu"
    assert minicnn.tensor(np.zeros(2)).dtype == np.float64          # arrays keep their dtype
    assert minicnn.tensor(3).dtype == np.int64 and minicnn.tensor(2.5).item() == 2.5
    assert minicnn.zeros(2, 3).shape == (2, 3) and minicnn.ones((4,)).numpy().sum() == 4
    assert minicnn.randn(5, dtype=minicnn.float64).dtype == np.float64
    assert minicnn.full((2,), 7.0).tolist() == [7.0, 7.0]
    assert minicnn.zeros_like(t).shape == t.shape
    d = t.detach()
    assert d.grad_fn is None and np.shares_memory(d.data, t.data)
    assert isinstance(t.numpy(), np.ndarray) and len(t) == 2 and t.numel() == 4
    assert "tensor(" in repr(t)
    minicnn.manual_seed(5)
    a = minicnn.randn(3).numpy()
    minicnn.manual_seed(5)
    np.testing.assert_array_equal(a, minicnn.randn(3).numpy())


# --------------------------------------------------------------------------- errors

def test_clear_errors():
    a, b = minicnn.ones(2, 3), minicnn.ones(4, 5)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        a @ b
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4, 5\) do not broadcast"):
        a + b
    with pytest.raises(ValueError, match=r"mul: shapes"):
        a * minicnn.ones(4)
    x = minicnn.ones(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match=r"backward: a gradient must be given for a non-scalar output of shape \(2, 3\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="does not match"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(ValueError, match="cannot reshape"):
        x.reshape(5)
    with pytest.raises(ValueError, match="cat: shapes must match"):
        minicnn.cat([a, b], 1)
    with pytest.raises(ValueError, match="device .tpu. is not supported"):
        minicnn.zeros(2, device="tpu")


def test_cuda_request_without_gpu_explains_how_to_install():
    if backend.cuda_available():
        pytest.skip("a GPU is present: the error path cannot be exercised")
    with pytest.raises(RuntimeError, match=r"pip install -e \.\[gpu\]"):
        minicnn.zeros(2, device="cuda")


def test_gradcheck_reports_the_worst_element():
    class Wrong(minicnn.Function):
        def forward(self, x):
            return x * x

        def backward(self, grad):
            return grad * 2.5                # should be 2x

    x = minicnn.tensor(np.array([1.0, 2.0, 10.0]), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 0 .*worst at index \(2,\)"):
        gradcheck(lambda t: Wrong.apply(t), x)
    assert gradcheck(lambda t: Wrong.apply(t), x, raise_exception=False) is False
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * 2, minicnn.ones(2, requires_grad=True))


@cuda
def test_mixed_devices_raise():
    a = minicnn.ones(2, device="cuda")
    with pytest.raises(ValueError, match="same device"):
        a + minicnn.ones(2)


def test_ops_on_device_match_numpy(device):
    rng = np.random.default_rng(0)
    x0, w0 = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    x = minicnn.tensor(x0, device=device, requires_grad=True)
    w = minicnn.tensor(w0, device=device, requires_grad=True)
    y = ((x @ w).relu() * 2 + 1).exp().mean()
    y.backward()
    assert x.grad.shape == (4, 3) and x.grad.device == device
    xr = minicnn.tensor(x0, requires_grad=True)
    wr = minicnn.tensor(w0, requires_grad=True)
    ((xr @ wr).relu() * 2 + 1).exp().mean().backward()
    np.testing.assert_allclose(x.grad.numpy(), xr.grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), wr.grad, rtol=1e-5, atol=1e-6)


def test_only_backend_imports_cupy():
    offenders = []
    for path in (ROOT / "minicnn").rglob("*.py"):
        if path.name == "backend.py":
            continue
        text = path.read_text()
        if re.search(r"^\s*(import cupy|from cupy)", text, re.MULTILINE):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_add_does_not_keep_its_operands_alive():
    """A residual ``out + identity`` must not hold ``out`` until backward (memory of deep nets)."""
    import gc
    import weakref
    x = minicnn.ones(4, requires_grad=True)
    h = x * 2                       # an intermediate that only the add uses
    alive = weakref.ref(h.data)
    y = (h + x).sum()
    del h
    gc.collect()
    assert alive() is None
    y.backward()
    np.testing.assert_array_equal(x.grad, [3, 3, 3, 3])


def test_tune_malloc_can_be_switched_off(monkeypatch):
    from minicnn.kernels.fast.memory import tune_malloc
    monkeypatch.setenv("MINICNN_MALLOC_TUNING", "0")
    assert tune_malloc() is False
    monkeypatch.delenv("MINICNN_MALLOC_TUNING")
    import sys
    assert tune_malloc() is sys.platform.startswith("linux")   # glibc here


@pytest.mark.parametrize("call", [lambda t: t.unsqueeze(5), lambda t: t.unsqueeze(-7), lambda t: t.squeeze(4),
                                  lambda t: t.flatten(3), lambda t: t.permute(0, 4), lambda t: t.transpose(0, 5),
                                  lambda t: minicnn.cat([t, t], dim=3), lambda t: minicnn.stack([t, t], dim=4)])
def test_out_of_range_dimensions_raise_instead_of_wrapping(call):
    with pytest.raises(IndexError, match="is out of range for"):
        call(minicnn.ones(2, 3))


def test_leaf_gradients_never_share_memory():
    a, b = minicnn.ones(3, requires_grad=True), minicnn.ones(3, requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad, b.grad)
    a.grad *= 0.5                              # an in-place edit (gradient clipping) of one of them
    np.testing.assert_array_equal(b.grad, [1, 1, 1])
    w, x = minicnn.ones(6, requires_grad=True), minicnn.ones(2, 3, requires_grad=True)
    (w.reshape(2, 3) + x).sum().backward()
    assert not np.shares_memory(w.grad, x.grad)


def test_creation_dtypes_follow_pytorch():
    assert minicnn.full((2,), 3).dtype == np.int64 and minicnn.full((2,), 3.0).dtype == np.float32
    assert minicnn.full((2,), True).dtype == np.bool_
    assert minicnn.arange(3).dtype == np.int64 and minicnn.arange(0, 1, 0.25).dtype == np.float32
    np.testing.assert_array_equal(minicnn.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])


# --------------------------------------------------------------------------- .grad is a Tensor; tensor() copies

def test_grad_is_a_tensor_that_needs_no_gradient():
    x = minicnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    assert isinstance(x.grad, minicnn.Tensor) and not x.grad.requires_grad and x.grad.grad_fn is None
    assert x.grad.shape == x.shape and x.grad.dtype == x.dtype and x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(np.asarray(x.grad), [2.0, 4.0, 6.0])       # __array__, as torch's CPU tensors
    assert x.grad is x.grad                                                  # the same object each time
    x.grad.zero_()                                                           # in place, and it stays
    np.testing.assert_array_equal(x.grad.numpy(), 0)
    (x * 3).sum().backward()                                                 # accumulates into the zeros
    np.testing.assert_array_equal((x.grad * 2).numpy(), 6.0)


def test_grad_assignment_checks_shape_dtype_and_type():
    x = minicnn.zeros(2, 3, requires_grad=True)
    x.grad = minicnn.ones(2, 3)
    x.grad = np.ones((2, 3), dtype=np.float32)                               # arrays are wrapped (torch: Tensors only)
    assert isinstance(x.grad, minicnn.Tensor)
    with pytest.raises(ValueError, match=r"assigned gradient has shape \(3, 2\)"):
        x.grad = minicnn.ones(3, 2)
    with pytest.raises(TypeError, match="dtype float64"):
        x.grad = np.ones((2, 3))
    with pytest.raises(TypeError, match="expected a Tensor, an array or None, got list"):
        x.grad = [[1.0] * 3] * 2
    x.grad = None
    assert x.grad is None


def test_tensor_copies_and_as_tensor_and_from_numpy_share():
    a = np.ones(3, dtype=np.float32)
    t = minicnn.tensor(a)
    t.data += 1
    np.testing.assert_array_equal(a, 1.0)                                    # torch.tensor always copies
    view = a[::2]
    tv = minicnn.tensor(view)
    tv.data += 1
    np.testing.assert_array_equal(a, 1.0)
    s = minicnn.as_tensor(a)
    s.data += 1
    np.testing.assert_array_equal(a, 2.0)                                    # torch.as_tensor shares
    f = minicnn.from_numpy(a)
    a[0] = 7
    assert f.data[0] == 7
    assert minicnn.as_tensor(a, dtype=np.float64).data.base is None          # a conversion is a copy
    u = minicnn.tensor(minicnn.tensor([1.0, 2.0]))
    assert isinstance(u, minicnn.Tensor) and u.tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        minicnn.from_numpy([1, 2])


def test_any_and_all():
    t = minicnn.tensor([[0.0, 1.0], [0.0, 0.0]])
    assert bool(t.any().item()) and not bool(t.all().item())
    assert t.any(dim=1).tolist() == [True, False] and t.all(axis=0).tolist() == [False, False]


def test_max_and_min_with_a_dim_return_values_and_indices_as_pytorch():
    torch = pytest.importorskip("torch")
    data = np.array([[2.0, 7.0, 7.0], [1.0, -1.0, 0.0]])
    for op in ("max", "min"):
        for kwargs in ({"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": -1}):
            x, tx = minicnn.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
            mine, theirs = getattr(x, op)(**kwargs), getattr(tx, op)(**kwargs)
            assert type(mine).__name__ == type(theirs).__name__ == op and mine._fields == ("values", "indices")
            values, indices = mine                               # unpacks as PyTorch's does
            np.testing.assert_array_equal(values.numpy(), theirs.values.detach().numpy())
            np.testing.assert_array_equal(indices.numpy(), theirs.indices.numpy())
            (values * values).sum().backward()
            (theirs.values * theirs.values).sum().backward()
            np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
        assert getattr(minicnn.tensor(data), op)().item() == getattr(torch.tensor(data), op)().item()
        other = minicnn.tensor([[3.0, 3.0, 3.0]])
        np.testing.assert_array_equal(getattr(minicnn.tensor(data), op)(other).numpy(),
                                      getattr(torch.tensor(data), op)(torch.tensor([[3.0, 3.0, 3.0]])).numpy())
    with pytest.raises(TypeError, match=r"max: dim must be an int, got \(0, 1\) \(amax reduces several dims"):
        minicnn.tensor(data).max(dim=(0, 1))


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "amax", "amin", "any", "all"])
def test_reductions_of_a_0d_tensor_over_dim_0_or_minus_1(op):
    torch = pytest.importorskip("torch")
    for dim in (0, -1):
        mine, theirs = getattr(minicnn.tensor(3.0), op)(dim=dim), getattr(torch.tensor(3.0), op)(dim=dim)
        if op in ("max", "min"):
            assert mine.indices.item() == theirs.indices.item() == 0
            mine, theirs = mine.values, theirs.values
        assert mine.shape == tuple(theirs.shape) == () and mine.item() == theirs.item()
    with pytest.raises(IndexError):
        getattr(minicnn.tensor(3.0), op)(dim=1)
