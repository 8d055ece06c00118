"""In-place operations (``+=``, ``add_``, ..., ``t[i] = v``), the version counter and ``.data`` assignment,
against PyTorch where it is installed; and a hand-written SGD loop that trains LeNet-5 as optim.SGD does."""
import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import architectures, optim


def _torch():
    return pytest.importorskip("torch")


def _edits(lib):
    """Every in-place op on a tensor (and a view of it) that needs no gradient; returns the values."""
    x = lib.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    row = x[1]                                # a view: it sees the changes
    x += 1
    x -= lib.tensor(np.array([0.5, 0.0, 0.5], dtype=np.float32))
    x *= 2
    x /= 4
    x.add_(lib.ones(3), alpha=2)
    x.sub_(1, alpha=0.5)
    x.mul_(3).div_(2)
    x[0, 1] = -7.0
    x[1] = lib.tensor(np.array([9.0, 8.0, 7.0], dtype=np.float32))
    x.clamp_(min=-1.0, max=8.5)
    y = lib.zeros(2, 3).copy_(x[0])           # broadcast copy
    z = lib.zeros(3).fill_(2.5)
    w = lib.ones(2, 2)
    w.zero_()
    return [x.numpy().copy(), row.numpy().copy(), y.numpy().copy(), z.numpy().copy(), w.numpy().copy()]


def test_inplace_values_and_views_as_pytorch():
    torch = _torch()
    for a, b in zip(_edits(minicnn), _edits(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def _tracked(lib):
    """In-place ops on non-leaf tensors in a graph: the gradients flow through them."""
    x = lib.tensor(np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]]), requires_grad=True)
    w = lib.tensor(np.array([2.0, -1.0, 0.5]), requires_grad=True)
    y = x * 2
    y += w
    y *= x
    y[0, 1] = w[2] * 3
    y.clamp_(min=-3.0, max=9.0)
    buf = lib.zeros(3, dtype=lib.float64)
    buf.copy_(w * w)                           # a tensor that needed no grad now has a history
    (y.sum() + (buf * x[0]).sum()).backward()
    return x.grad.numpy(), w.grad.numpy(), buf.requires_grad


def test_inplace_in_a_graph_gives_pytorchs_gradients():
    torch = _torch()
    mine, theirs = _tracked(minicnn), _tracked(torch)
    for a, b in zip(mine[:2], theirs[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert mine[2] is theirs[2] is True


def _errors(lib):
    messages = []
    leaf = lib.ones(3, requires_grad=True)
    for attempt in (lambda: leaf.add_(1), lambda: leaf.__setitem__(0, 2.0), lambda: leaf.zero_()):
        with pytest.raises(RuntimeError) as info:
            attempt()
        messages.append(str(info.value))
    with pytest.raises(RuntimeError):
        lib.zeros(3, dtype=lib.int64).add_(1.5)       # a float can't go into an integer tensor
    with pytest.raises(RuntimeError):
        lib.zeros(3).add_(lib.ones(2, 3))               # the result would not fit
    a = lib.ones(3)
    out = (leaf * a).sum()                               # MulFunction saves a
    with lib.no_grad():
        a += 1
    with pytest.raises(RuntimeError) as info:
        out.backward()
    messages.append(str(info.value))
    s = leaf.sigmoid()                                   # sigmoid saves its output
    with lib.no_grad():
        s.mul_(2)
    with pytest.raises(RuntimeError) as info:
        s.sum().backward()
    messages.append(str(info.value))
    return messages


def test_errors_where_pytorch_raises():
    torch = _torch()
    theirs = _errors(torch)
    mine = _errors(minicnn)
    for message in mine[:3] + theirs[:3]:
        assert "a leaf Variable that requires grad is being used in an in-place operation" in message
    for message in mine[3:] + theirs[3:]:
        assert "modified by an inplace operation" in message and "expected version 0" in message
    assert "that MulFunction saved (its argument 1) is at version 1" in mine[3]
    assert "that SigmoidFunction saved (its output) is at version 1" in mine[4]


def test_no_false_alarm_when_the_modified_tensor_was_not_saved():
    x = minicnn.ones(3, requires_grad=True)
    a = minicnn.ones(3)
    out = (x + a).sum()                   # AddFunction keeps neither operand
    with minicnn.no_grad():
        a += 1
    out.backward()
    assert np.allclose(x.grad.numpy(), 1.0)


def test_data_assignment_keeps_an_array():
    p = minicnn.ones(3, requires_grad=True)
    (p * p).sum().backward()
    p.data -= 0.5 * p.grad                      # ndarray -= Tensor: Python falls back to a Tensor
    assert isinstance(p.data, np.ndarray) and np.allclose(p.data, 0.0)
    p.data = minicnn.tensor([1.0, 2.0, 3.0])
    assert isinstance(p.data, np.ndarray) and p.data.tolist() == [1.0, 2.0, 3.0]
    (p * p).sum().backward()                    # the next backward works (it said "non-scalar output")
    with pytest.raises(TypeError, match="Tensor.data: expected an array or a Tensor, got list"):
        p.data = [1.0]


def test_hand_written_sgd_trains_lenet5_exactly_as_optim_sgd():
    minicnn.manual_seed(0)
    hand = architectures.get("lenet5")
    library = architectures.get("lenet5")
    library.load_state_dict(hand.state_dict())
    before = hand.state_dict()
    rng = np.random.default_rng(0)
    batches = [(minicnn.tensor(rng.standard_normal((8, 1, 32, 32)).astype(np.float32)),
                minicnn.tensor(rng.integers(0, 10, 8))) for _ in range(3)]
    opt = optim.SGD(library.parameters(), lr=0.05)
    lr = 0.05
    for x, y in batches:
        F.cross_entropy(hand(x), y).backward()
        with minicnn.no_grad():
            for p in hand.parameters():
                p -= lr * p.grad
                p.grad = None
        opt.zero_grad()
        F.cross_entropy(library(x), y).backward()
        opt.step()
    for (name, a), b in zip(hand.state_dict().items(), library.state_dict().values()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=name)
    moved = [float(np.abs(a - before[name]).max()) for name, a in hand.state_dict().items()]
    assert min(moved) > 1e-6                   # every parameter was trained


@pytest.mark.parametrize("layer", ["linear", "conv2d"])
def test_a_weight_stepped_between_forward_and_backward_is_caught(layer):
    """The kernels keep their inputs in NamedTuple caches: a weight changed in place before backward (an
    optimizer step between forward and backward) raises, as in PyTorch, instead of a silently wrong gradient."""
    x = minicnn.ones(2, 3, 4, 4, requires_grad=True) if layer == "conv2d" else minicnn.ones(2, 3, requires_grad=True)
    w = minicnn.ones(4, 3, 3, 3, requires_grad=True) if layer == "conv2d" else minicnn.ones(4, 3, requires_grad=True)
    y = F.conv2d(x, w) if layer == "conv2d" else F.linear(x, w)
    with minicnn.no_grad():
        w.mul_(3)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*expected version 0"):
        y.sum().backward()


def test_a_float_result_into_an_integer_tensor_raises_with_or_without_a_graph():
    w = minicnn.tensor(np.array([0.5, 0.5]), requires_grad=True)
    for other in (w, w.detach()):                 # recorded (w needs a gradient) or not: the same refusal
        t = minicnn.tensor(np.array([1, 2]))
        with pytest.raises(RuntimeError, match="can't be cast to the tensor's dtype int64"):
            t += other
        assert t.tolist() == [1, 2] and not t.requires_grad
