"""The one-kernel SGD step on a GPU (``minicnn.optim.foreach``): the same numbers as the per-parameter step
on the CPU, one launch for all parameters, in place, and a pointer table that follows parameters and
states being replaced (``load_state_dict``, ``.to()``, assignment). Runs under the CuPy stand-in in CI."""
import sys

import numpy as np
import pytest

import minicnn
from minicnn import nn, optim

from conftest import cuda

pytestmark = cuda

CONFIGS = [dict(lr=0.1), dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
           dict(lr=0.05, momentum=0.8, dampening=0.3, maximize=True), dict(lr=0.1, weight_decay=0.1)]
SHAPES = [(3, 2, 3, 3), (3,), (4, 5), (1,), (2, 7)]


def run(device, config, steps=4, skip=None):
    """Parameters after ``steps`` SGD steps with the same gradients on ``device`` (float64)."""
    rng = np.random.default_rng(0)
    params = [nn.Parameter(minicnn.tensor(rng.standard_normal(s), device=device)) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    opt = optim.SGD(params, **config)
    for k in range(steps):
        for i, (p, g) in enumerate(zip(params, grads[k])):
            p.grad = None if skip and (k, i) in skip else minicnn.tensor(g, device=device)
        opt.step()
    return [p.numpy() for p in params], opt


@pytest.mark.parametrize("config", CONFIGS)
def test_foreach_sgd_on_cuda_matches_cpu(config):
    skip = {(0, 1), (1, 3), (2, 3)}        # parameters without a gradient at some steps: left alone
    cpu, _ = run("cpu", config, skip=skip)
    gpu, opt = run("cuda", config, skip=skip)
    assert opt.__dict__.get("_foreach_tables"), "the GPU step did not use the one-kernel step"
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_foreach_sgd_on_cuda_is_one_launch_in_place():
    cupy = pytest.importorskip("cupy")
    if not hasattr(cupy, "OPS"):
        pytest.skip("launches are counted by the CuPy stand-in only")
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.grad = cupy.ones_like(p.data)
    arrays = [p.data for p in model.parameters()]
    opt.step()
    cupy.OPS.clear()
    opt.step()
    assert cupy.OPS["RawKernel sgd_step_multi"] == 1 and sum(v for k, v in cupy.OPS.items() if "sgd" in k) == 1
    assert all(p.data is a for p, a in zip(model.parameters(), arrays))     # in place: views stay valid


def test_foreach_sgd_follows_replaced_parameters_and_states_on_cuda():
    minicnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    ref = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    ref.load_state_dict(model.state_dict())
    model.to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ref_opt = optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))

    def step(m, o, device):
        o.zero_grad()
        out = m(minicnn.tensor(x.astype(m[0].weight.dtype), device=device))
        ((out - minicnn.tensor(y.astype(out.dtype), device=device)) ** 2).sum().backward()
        o.step()

    for k in range(6):
        if k == 2:      # the model's weights replaced (new arrays for every .data, on both)
            state = {n: np.asarray(v) * 0.5 for n, v in ref.state_dict().items()}
            ref.load_state_dict(state)
            model.load_state_dict(state)
        if k == 3:      # the optimizer's state replaced
            saved = ref_opt.state_dict()
            ref_opt.load_state_dict(saved)
            opt.load_state_dict(saved)
        if k == 4:      # a parameter's .data assigned by hand, and a move to float64
            w = ref[1].weight.numpy() + 1
            ref[1].weight.data = w.copy()
            model[1].weight.data = minicnn.tensor(w, device="cuda").data
            ref.to(minicnn.float64)
            model.to(minicnn.float64)
        step(ref, ref_opt, "cpu")
        step(model, opt, "cuda")
        for (name, a), (_, b) in zip(ref.named_parameters(), model.named_parameters()):
            tol = 1e-5        # float32 steps first: the two devices sum in different orders
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=tol, atol=tol, err_msg=f"step {k} {name}")
    assert opt._foreach_tables and "cupy" in sys.modules


def test_parameters_sharing_memory_are_stepped_one_by_one_on_cuda():
    base = minicnn.tensor(np.arange(6.0), device="cuda").data
    a, b = nn.Parameter(minicnn.Tensor(base[:4])), nn.Parameter(minicnn.Tensor(base[2:]))   # overlap in [2:4]
    opt = optim.SGD([a, b], lr=0.5, momentum=0.9)
    for p in (a, b):
        p.grad = minicnn.ones(p.shape, dtype=p.dtype, device="cuda")
    opt.step()         # a then b, as the per-parameter step does: the overlap moves twice
    np.testing.assert_allclose(base.get() if hasattr(base, "get") else base, [-0.5, 0.5, 1.0, 2.0, 3.5, 4.5])
