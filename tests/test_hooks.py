"""Hooks: tensor hooks, retain_grad, post-accumulate-grad hooks, queue_callback and module forward hooks.

Each scenario is written once against the shared API and run on minicnn and on PyTorch (when installed):
the gradients and the order in which the hooks fire must be the same.
"""
import numpy as np
import pytest

import minicnn
from minicnn import autograd, nn


def _torch():
    return pytest.importorskip("torch")


def _queue_callback(lib):
    if lib is minicnn:
        return autograd.queue_callback
    return lib.autograd.Variable._execution_engine.queue_callback


def _leaf(lib, values):
    return lib.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def _grad(t):
    return None if t.grad is None else np.asarray(t.grad.detach().numpy() if hasattr(t.grad, "detach") else t.grad)


def scenario_chain(lib):
    """Three layers; w shared by the first and the last. Events: tensor hooks, post-accumulate hooks, callback."""
    events = []
    x = lib.tensor(np.array([1.0, -2.0, 3.0]))
    w1, w2, w = _leaf(lib, [0.5, 1.5, -1.0]), _leaf(lib, [2.0, -0.5, 0.25]), _leaf(lib, [1.0, 2.0, 3.0])
    for name, p in (("w1", w1), ("w2", w2), ("w", w)):
        p.register_post_accumulate_grad_hook(lambda t, name=name: events.append((name, _grad(t).tolist())))
    h1 = x * w1 * w
    h1.register_hook(lambda g: events.append(("h1", g.numpy().tolist())))
    h2 = (h1 * w2).tanh()
    h2.retain_grad()
    h2.register_hook(lambda g: g * 10)                         # replaces h2's gradient...
    h2.register_hook(lambda g: events.append(("h2", g.numpy().tolist())))   # ...which the next hook sees
    loss = (h2 * w).sum()
    callback = _queue_callback(lib)
    loss.register_hook(lambda g: callback(lambda: events.append(("done", None))))
    loss.backward()
    grads = [_grad(t) for t in (w1, w2, w, h2)]
    return events, grads


def test_hooks_fire_in_pytorchs_order_with_pytorchs_values():
    torch = _torch()
    mine, theirs = scenario_chain(minicnn), scenario_chain(torch)
    assert [e[0] for e in mine[0]] == [e[0] for e in theirs[0]] == ["h2", "w2", "h1", "w", "w1", "done"]
    for (_, a), (_, b) in zip(mine[0], theirs[0]):
        np.testing.assert_allclose(np.array(a, dtype=float) if a is not None else 0,
                                   np.array(b, dtype=float) if b is not None else 0, rtol=1e-12)
    for a, b in zip(mine[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_leaf_hook_sees_the_summed_gradient_once_and_replaces_it():
    x = minicnn.tensor([1.0, 2.0], dtype=minicnn.float64, requires_grad=True)
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 0.5)
    (x * x + 3 * x).sum().backward()
    assert len(seen) == 1 and np.allclose(seen[0], [5.0, 7.0])
    assert np.allclose(x.grad.numpy(), [2.5, 3.5])
    handle.remove()
    x.grad = None
    (x * x).sum().backward()
    assert len(seen) == 1 and np.allclose(x.grad.numpy(), [2.0, 4.0])
    with x.register_hook(lambda g: g * 0) as h:          # a handle as a context manager
        assert h.id in x._hooks[0]
    assert h.id not in x._hooks[0]


def test_backward_on_a_leaf_and_hooks_on_the_root():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    posted = []
    x.register_hook(lambda g: g + 1)
    x.register_post_accumulate_grad_hook(lambda t: posted.append(t.grad.numpy().copy()))
    x.backward(minicnn.tensor([1.0, 1.0]))
    assert np.allclose(posted[0], [2.0, 2.0])
    y = x * 2
    y.register_hook(lambda g: g * 3)
    y.retain_grad()
    y.sum().backward()
    assert np.allclose(y.grad.numpy(), [3.0, 3.0]) and y.retains_grad and not x.retains_grad
    assert np.allclose(x.grad.numpy(), [2.0 + 6.0 + 1, 2.0 + 6.0 + 1])


def test_hook_errors_are_pytorchs():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        minicnn.tensor([1.0]).register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        minicnn.tensor([1.0]).retain_grad()
    with pytest.raises(TypeError, match="callable"):
        x.register_hook(3)
    x.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match="changed the size"):
        (x * 2).sum().backward()
    with pytest.raises(RuntimeError, match="no backward pass is running"):
        autograd.queue_callback(lambda: None)


def test_callbacks_run_once_after_everything_and_may_queue_more():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    events = []

    def later():
        events.append("first")
        autograd.queue_callback(lambda: events.append("second"))
    x.register_hook(lambda g: autograd.queue_callback(later))
    x.register_post_accumulate_grad_hook(lambda t: events.append("posted"))
    (x * 3).sum().backward()
    assert events == ["posted", "first", "second"]
    (x * 3).sum().backward()
    assert events == ["posted", "first", "second"] * 2


def _module_scenario(lib, nn_):
    lin = nn_.Linear(3, 2)
    events = []
    with_pre = lin.register_forward_pre_hook(lambda m, args: events.append("pre") or args[0] * 2)
    lin.register_forward_pre_hook(lambda m, args: events.append("first"), prepend=True)
    lin.register_forward_hook(lambda m, args, out: events.append(("post", tuple(args[0].shape))) or out + 1)
    lin.register_forward_hook(lambda m, args, kwargs, out: events.append(("kw", sorted(kwargs))), with_kwargs=True)
    x = lib.ones(4, 3)
    out = lin(x)
    with lib.no_grad():
        expected = x.numpy() * 2 @ lin.weight.detach().numpy().T + lin.bias.detach().numpy() + 1
    with_pre.remove()
    plain = lin(x)
    with lib.no_grad():
        expected_plain = x.numpy() @ lin.weight.detach().numpy().T + lin.bias.detach().numpy() + 1
    return events, (out.detach().numpy(), expected), (plain.detach().numpy(), expected_plain)


def test_module_forward_hooks_as_pytorch():
    torch = _torch()
    mine = _module_scenario(minicnn, nn)
    theirs = _module_scenario(torch, torch.nn)
    assert mine[0] == theirs[0] == ["first", "pre", ("post", (4, 3)), ("kw", []), "first", ("post", (4, 3)), ("kw", [])]
    for got, expected in mine[1:]:
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="always_call=True is not supported"):
        nn.Linear(2, 2).register_forward_hook(lambda *a: None, always_call=True)


def test_a_model_without_hooks_is_called_as_before():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    x = minicnn.randn(2, 3)
    handle = model[0].register_forward_hook(lambda m, a, out: out * 0)
    assert float(model(x).abs().sum()) == 0.0
    handle.remove()
    assert not model[0]._forward_hooks
    assert float(model(x).abs().sum()) > 0.0
