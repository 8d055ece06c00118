"""Optimizers and LR schedulers: hand-computed updates, invariants, state dicts, convergence, torch parity."""
import math

import numpy as np
import pytest

import minicnn
from minicnn import backend, optim

P0 = np.array([1.0, -2.0, 0.5])
GRADS = [np.array([0.1, -0.3, 0.2]), np.array([-0.2, 0.4, 0.05]), np.array([0.3, 0.1, -0.5])]


def run_steps(make_opt, device="cpu", dtype=np.float64, grads=GRADS):
    """Step a fresh 3-element parameter with the fixed gradients; the parameter after each step."""
    p = minicnn.tensor(P0.astype(dtype), device=device, requires_grad=True)
    opt = make_opt([p])
    history = []
    for g in grads:
        p.grad = backend.to_device(g.astype(dtype), device)
        opt.step()
        history.append(backend.to_numpy(p.data).copy())
    return history


def check_history(history, expected):
    for step, (got, want) in enumerate(zip(history, expected), 1):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=f"step {step}")


# --------------------------------------------------------------------------- hand-computed updates

def test_sgd_plain(device):
    lr = 0.1
    got = run_steps(lambda ps: optim.SGD(ps, lr=lr), device)
    p1 = P0 - lr * GRADS[0]
    p2 = p1 - lr * GRADS[1]
    p3 = p2 - lr * GRADS[2]
    check_history(got, [p1, p2, p3])


def test_sgd_momentum_dampening_weight_decay(device):
    lr, mom, damp, wd = 0.1, 0.9, 0.25, 0.01
    got = run_steps(lambda ps: optim.SGD(ps, lr=lr, momentum=mom, dampening=damp, weight_decay=wd), device)
    g1 = GRADS[0] + wd * P0
    buf = g1                                    # first step: buf = g (no dampening)
    p1 = P0 - lr * buf
    buf = mom * buf + (1 - damp) * (GRADS[1] + wd * p1)
    p2 = p1 - lr * buf
    buf = mom * buf + (1 - damp) * (GRADS[2] + wd * p2)
    p3 = p2 - lr * buf
    check_history(got, [p1, p2, p3])


def test_sgd_nesterov_maximize(device):
    lr, mom = 0.1, 0.9
    got = run_steps(lambda ps: optim.SGD(ps, lr=lr, momentum=mom, nesterov=True, maximize=True), device)
    g1 = -GRADS[0]
    buf = g1
    p1 = P0 - lr * (g1 + mom * buf)
    g2 = -GRADS[1]
    buf = mom * buf + g2
    p2 = p1 - lr * (g2 + mom * buf)
    check_history(got[:2], [p1, p2])


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam(device, amsgrad):
    lr, (b1, b2), eps, wd = 0.01, (0.9, 0.999), 1e-8, 0.1
    got = run_steps(lambda ps: optim.Adam(ps, lr=lr, weight_decay=wd, amsgrad=amsgrad), device)
    p, m, v, vmax, expected = P0.copy(), 0 * P0, 0 * P0, 0 * P0, []
    for t, grad in enumerate(GRADS, 1):
        g = grad + wd * p                       # Adam: L2 term in the gradient
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        v_used = vmax if amsgrad else v
        m_hat, v_hat = m / (1 - b1 ** t), v_used / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        expected.append(p)
    check_history(got, expected)
    # the first Adam step moves every coordinate by about lr (m_hat / sqrt(v_hat) = sign(g))
    np.testing.assert_allclose(np.abs(got[0] - P0), lr, rtol=1e-5)


def test_amsgrad_differs_once_v_decreases():
    big_then_small = [np.array([1.0, 1.0, 1.0]), np.array([0.01, 0.01, 0.01]), np.array([0.01, 0.01, 0.01])]
    plain = run_steps(lambda ps: optim.Adam(ps, lr=0.1), grads=big_then_small)
    ams = run_steps(lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True), grads=big_then_small)
    np.testing.assert_allclose(plain[0], ams[0])
    assert not np.allclose(plain[2], ams[2])
    p = minicnn.ones(3, requires_grad=True)    # switching amsgrad on after some steps starts its buffer
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.ones(3, dtype=np.float32)
    opt.step()
    opt.param_groups[0]["amsgrad"] = True
    opt.step()
    assert opt.state[p]["max_exp_avg_sq"].shape == (3,)


def test_adamw_decoupled_weight_decay(device):
    lr, (b1, b2), eps, wd = 0.01, (0.9, 0.999), 1e-8, 0.5
    got = run_steps(lambda ps: optim.AdamW(ps, lr=lr, weight_decay=wd), device)
    p, m, v, expected = P0.copy(), 0 * P0, 0 * P0, []
    for t, g in enumerate(GRADS, 1):
        p = p * (1 - lr * wd)                   # decoupled: shrink p, the gradient has no L2 term
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        expected.append(p)
    check_history(got, expected)
    assert optim.AdamW([minicnn.zeros(1, requires_grad=True)]).defaults["weight_decay"] == 1e-2


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_rmsprop(device, centered, momentum):
    lr, alpha, eps, wd = 0.01, 0.99, 1e-8, 0.1
    got = run_steps(lambda ps: optim.RMSprop(ps, lr=lr, alpha=alpha, eps=eps, weight_decay=wd,
                                             momentum=momentum, centered=centered), device)
    p, sq, avg_g, buf, expected = P0.copy(), 0 * P0, 0 * P0, 0 * P0, []
    for grad in GRADS:
        g = grad + wd * p
        sq = alpha * sq + (1 - alpha) * g * g
        avg_g = alpha * avg_g + (1 - alpha) * g
        var = sq - avg_g ** 2 if centered else sq
        d = g / (np.sqrt(var) + eps)
        if momentum:
            buf = momentum * buf + d
            d = buf
        p = p - lr * d
        expected.append(p)
    check_history(got, expected)


# --------------------------------------------------------------------------- invariants

ALL_OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd_nesterov_wd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "sgd_damp": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.5),
    "adam_amsgrad_wd": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=1e-2, amsgrad=True),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=0.01),
    "rmsprop_centered_momentum": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True,
                                                          weight_decay=1e-2),
}
OPT_IDS = list(ALL_OPTIMIZERS)


@pytest.mark.parametrize("name", OPT_IDS)
def test_float32_stays_float32_and_updates_in_place(device, name):
    p = minicnn.randn(4, 3, device=device, requires_grad=True)
    data, view = p.data, p.data[0]
    before = backend.to_numpy(p.data).copy()
    opt = ALL_OPTIMIZERS[name]([p])
    for _ in range(3):
        p.grad = minicnn.randn(4, 3, device=device).data
        opt.step()
    assert p.data is data and p.dtype == np.float32
    np.testing.assert_array_equal(backend.to_numpy(view), backend.to_numpy(p.data[0]))
    assert not np.allclose(backend.to_numpy(p.data), before)
    for value in opt.state[p].values():
        if hasattr(value, "dtype"):
            assert value.dtype == np.float32 and backend.device_of(value) == p.device


@pytest.mark.parametrize("name", OPT_IDS)
def test_gradients_are_never_modified(name):
    a = minicnn.randn(5, requires_grad=True)
    b = minicnn.randn(5, requires_grad=True)
    shared = np.linspace(-1.0, 1.0, 5).astype(np.float32)
    a.grad = b.grad = shared                    # one gradient array shared by two tensors
    reference = [minicnn.tensor(t.data.copy(), requires_grad=True) for t in (a, b)]
    for t in reference:
        t.grad = shared.copy()
    opt, ref_opt = ALL_OPTIMIZERS[name]([a, b]), ALL_OPTIMIZERS[name](reference)
    for _ in range(3):
        opt.step()
        ref_opt.step()
    np.testing.assert_array_equal(shared, np.linspace(-1.0, 1.0, 5).astype(np.float32))
    np.testing.assert_array_equal(a.data, reference[0].data)
    np.testing.assert_array_equal(b.data, reference[1].data)


@pytest.mark.parametrize("name", OPT_IDS)
def test_params_without_grad_are_skipped(name):
    with_grad = minicnn.randn(3, requires_grad=True)
    without = minicnn.randn(3, requires_grad=True)
    before = without.data.copy()
    opt = ALL_OPTIMIZERS[name]([with_grad, without])
    with_grad.grad = np.ones(3, dtype=np.float32)
    opt.step()
    np.testing.assert_array_equal(without.data, before)
    assert not opt.state.get(without)
    assert 1 not in opt.state_dict()["state"]


def test_zero_grad_is_idempotent_and_never_zeroes_a_shared_array():
    a, b = minicnn.randn(3, requires_grad=True), minicnn.randn(3, requires_grad=True)
    opt = optim.SGD([a, b], lr=0.1)
    shared = np.ones(3, dtype=np.float32)
    a.grad = shared
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad, 0.0)
    assert b.grad is None and a.grad is not shared
    np.testing.assert_array_equal(shared, 1.0)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad, 0.0)
    opt.zero_grad()
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_param_groups_with_their_own_options():
    w, bias = minicnn.ones(3, requires_grad=True), minicnn.ones(3, requires_grad=True)
    opt = optim.SGD([{"params": [w], "weight_decay": 0.5}, {"params": [bias], "lr": 0.01}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.0]
    w.grad = bias.grad = np.ones(3, dtype=np.float32)
    opt.step()
    np.testing.assert_allclose(w.data, 1 - 0.1 * (1 + 0.5))
    np.testing.assert_allclose(bias.data, 1 - 0.01)
    opt.param_groups[1]["lr"] = 1.0             # as a scheduler or a user would
    opt.step()
    np.testing.assert_allclose(bias.data, 0.99 - 1.0, rtol=1e-6)
    extra = minicnn.ones(2, requires_grad=True)
    opt.add_param_group({"params": extra})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["params"] == [extra]


def test_closure_and_training_with_autograd():
    p = minicnn.tensor([3.0, -1.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.item()) == pytest.approx(10.0)
    np.testing.assert_allclose(p.data, [3.0 - 0.25 * 6.0, -1.0 + 0.25 * 2.0])


# --------------------------------------------------------------------------- state dicts

@pytest.mark.parametrize("name", OPT_IDS)
def test_state_dict_round_trip_matches_an_uninterrupted_run(name):
    rng = np.random.default_rng(1)
    grads = [[rng.standard_normal(s).astype(np.float32) for s in ((2, 3), (3,))] for _ in range(5)]
    init = [rng.standard_normal(s).astype(np.float32) for s in ((2, 3), (3,))]

    def make():
        ps = [minicnn.tensor(a.copy(), requires_grad=True) for a in init]
        return ps, ALL_OPTIMIZERS[name]([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.05}])

    def steps(ps, opt, gs):
        for g in gs:
            for p, gi in zip(ps, g):
                p.grad = gi
            opt.step()

    ps, opt = make()                             # uninterrupted: 5 steps
    steps(ps, opt, grads)
    ps1, opt1 = make()                           # 2 steps, save, 3 steps in a new optimizer
    steps(ps1, opt1, grads[:2])
    saved = opt1.state_dict()
    snapshot = {k: {n: np.array(v, copy=True) for n, v in s.items()} for k, s in saved["state"].items()}
    steps(ps1, opt1, grads[2:3])                 # the saved dict holds copies: later steps don't change it
    for k, s in saved["state"].items():
        for n, v in s.items():
            np.testing.assert_array_equal(v, snapshot[k][n])
    ps2, opt2 = make()
    for p, p1 in zip(ps2, ps1):
        p.data[...] = p1.data
    opt2.param_groups[1]["lr"] = 123.0           # overwritten by the load
    opt2.load_state_dict(opt1.state_dict())
    assert opt2.param_groups[1]["lr"] == 0.05
    steps(ps2, opt2, grads[3:])
    for p, p2 in zip(ps, ps2):
        np.testing.assert_array_equal(p.data, p2.data)


def test_state_dict_layout_is_pytorchs():
    a, b, c = (minicnn.randn(2, requires_grad=True) for _ in range(3))
    opt = optim.SGD([{"params": [a, b]}, {"params": [c], "lr": 0.5}], lr=0.1, momentum=0.9)
    b.grad = c.grad = np.ones(2, dtype=np.float32)
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["momentum"] == 0.9
    assert sorted(sd["state"]) == [1, 2] and set(sd["state"][1]) == {"momentum_buffer"}


def test_load_state_dict_errors():
    a, b = minicnn.randn(2, requires_grad=True), minicnn.randn(3, requires_grad=True)
    opt = optim.Adam([a, b])
    a.grad, b.grad = np.ones(2, dtype=np.float32), np.ones(3, dtype=np.float32)
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="has 1 parameter group.*this optimizer has 2"):
        optim.Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 has 2 parameter"):
        optim.Adam([a]).load_state_dict(sd)
    swapped = optim.Adam([b, a])
    with pytest.raises(ValueError, match="shape"):
        swapped.load_state_dict(sd)
    assert not swapped.state                    # nothing changed by a failed load


# --------------------------------------------------------------------------- errors

def test_clear_errors():
    p = minicnn.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="SGD: invalid learning rate -1"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="SGD: invalid momentum value -0.5"):
        optim.SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Adam: invalid beta parameter at index 1"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="AdamW: invalid epsilon value"):
        optim.AdamW([p], eps=-1e-8)
    with pytest.raises(ValueError, match="RMSprop: invalid alpha value"):
        optim.RMSprop([p], alpha=-0.1)
    with pytest.raises(ValueError, match="SGD: invalid weight_decay value"):
        optim.SGD([{"params": [p], "weight_decay": -1.0}], lr=0.1)   # a group's own option
    with pytest.raises(TypeError, match="learning rate must be a number"):
        optim.SGD([p], lr=None)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD({p}, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError, match="only optimize Tensors"):
        optim.SGD([np.zeros(3)], lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match=r"assigned gradient has shape \(1, 3\)"):
        p.grad = np.ones((1, 3), dtype=np.float32)
    p.data = np.zeros((1, 3), dtype=np.float32)          # the parameter's array replaced under its gradient
    with pytest.raises(ValueError, match=r"gradient of shape \(3,\)"):
        p._grad = minicnn.tensor(np.ones(3, dtype=np.float32))
        opt.step()


# --------------------------------------------------------------------------- schedulers

def lr_sequence(scheduler_factory, epochs=10, lrs=(1.0,)):
    params = [minicnn.zeros(1, requires_grad=True) for _ in lrs]
    opt = optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=1.0)
    scheduler = scheduler_factory(opt)
    seq = []
    for _ in range(epochs):
        seq.append(opt.param_groups[0]["lr"])
        assert scheduler.get_last_lr()[0] == opt.param_groups[0]["lr"]
        opt.step()
        scheduler.step()
    return seq


def test_step_lr():
    got = lr_sequence(lambda o: optim.StepLR(o, step_size=3, gamma=0.1))
    np.testing.assert_allclose(got, [1, 1, 1, .1, .1, .1, .01, .01, .01, .001], rtol=1e-12)


def test_multistep_lr():
    got = lr_sequence(lambda o: optim.MultiStepLR(o, milestones=[2, 5], gamma=0.1))
    np.testing.assert_allclose(got, [1, 1, .1, .1, .1, .01, .01, .01, .01, .01], rtol=1e-12)


def test_cosine_annealing_lr():
    got = lr_sequence(lambda o: optim.CosineAnnealingLR(o, T_max=4, eta_min=0.0))
    c = (1 + math.cos(math.pi / 4)) / 2
    # down to eta_min at T_max, then (closed form, as PyTorch) back up
    np.testing.assert_allclose(got, [1, c, .5, 1 - c, 0, 1 - c, .5, c, 1, c], atol=1e-12)
    got = lr_sequence(lambda o: optim.CosineAnnealingLR(o, T_max=4, eta_min=0.1), epochs=5)
    np.testing.assert_allclose(got, [1, .1 + .9 * c, .55, .1 + .9 * (1 - c), .1], atol=1e-12)


def test_linear_lr_and_warmup_alias():
    got = lr_sequence(lambda o: optim.LinearLR(o), epochs=7)
    np.testing.assert_allclose(got, [1 / 3 + (2 / 3) * min(e, 5) / 5 for e in range(7)], rtol=1e-12)
    got = lr_sequence(lambda o: optim.LinearWarmup(o, start_factor=0.1, end_factor=0.5, total_iters=4), epochs=6)
    np.testing.assert_allclose(got, [.1, .2, .3, .4, .5, .5], rtol=1e-12)


def test_warmup_then_cosine():
    def factory(o):
        return optim.SequentialLR(o, [optim.LinearLR(o, start_factor=0.25, total_iters=3),
                                      optim.CosineAnnealingLR(o, T_max=5)], milestones=[3])
    got = lr_sequence(factory, epochs=10, lrs=(1.0, 0.1))
    cosine = [(1 + math.cos(math.pi * e / 5)) / 2 for e in range(7)]
    np.testing.assert_allclose(got, [.25, .5, .75] + cosine, atol=1e-12)


def test_scheduler_scales_every_group():
    params = [minicnn.zeros(1, requires_grad=True) for _ in range(2)]
    opt = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.01}], lr=0.1)
    scheduler = optim.StepLR(opt, step_size=1, gamma=0.5)
    scheduler.step()
    scheduler.step()
    np.testing.assert_allclose(scheduler.get_last_lr(), [0.025, 0.0025])
    assert [g["lr"] for g in opt.param_groups] == scheduler.get_last_lr()
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.01] and scheduler.last_epoch == 2


SCHEDULERS = {
    "step": lambda o: optim.StepLR(o, 3, 0.5),
    "multistep": lambda o: optim.MultiStepLR(o, [2, 5]),
    "cosine": lambda o: optim.CosineAnnealingLR(o, 6, eta_min=0.01),
    "linear": lambda o: optim.LinearLR(o, 0.2, total_iters=4),
    "warmup_cosine": lambda o: optim.SequentialLR(o, [optim.LinearWarmup(o, 0.1, total_iters=3),
                                                      optim.CosineAnnealingLR(o, 7)], [3]),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_scheduler_state_round_trip(name):
    def make():
        p = minicnn.zeros(1, requires_grad=True)
        opt = optim.SGD([p], lr=0.5, momentum=0.9)
        return opt, SCHEDULERS[name](opt)

    opt, sched = make()
    full = []
    for _ in range(10):
        full.append(opt.param_groups[0]["lr"])
        sched.step()
    opt1, sched1 = make()
    for _ in range(4):
        sched1.step()
    opt_state, sched_state = opt1.state_dict(), sched1.state_dict()
    opt2, sched2 = make()                        # a fresh run, restored at epoch 4
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    assert sched2.last_epoch == 4
    resumed = []
    for _ in range(6):
        resumed.append(opt2.param_groups[0]["lr"])
        sched2.step()
    assert resumed == full[4:]


def test_scheduler_errors():
    opt = optim.SGD([minicnn.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="start_factor"):
        optim.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="1 milestone"):
        optim.SequentialLR(opt, [optim.StepLR(opt, 2), optim.StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match="initial_lr"):
        optim.StepLR(optim.SGD([minicnn.zeros(1, requires_grad=True)], lr=0.1), 2, last_epoch=3)
    with pytest.raises(TypeError, match="expected an Optimizer"):
        optim.StepLR(object(), 2)


# --------------------------------------------------------------------------- convergence

CONVERGENCE = {
    "sgd": (lambda ps: optim.SGD(ps, lr=0.1), 1e-4),
    "sgd_momentum": (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9), 1e-4),
    "sgd_nesterov": (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True), 1e-4),
    "adam": (lambda ps: optim.Adam(ps, lr=0.05), 1e-3),
    "adam_amsgrad": (lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True), 1e-3),
    "adamw": (lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.0), 1e-3),
    "rmsprop": (lambda ps: optim.RMSprop(ps, lr=0.01), 1e-2),
    "rmsprop_centered_momentum": (lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True), 1e-2),
}


@pytest.mark.parametrize("name", list(CONVERGENCE))
def test_minimises_a_quadratic(name):
    make, tol = CONVERGENCE[name]
    target = minicnn.tensor([1.5, -2.0, 0.25, 3.0])
    p = minicnn.zeros(4, requires_grad=True)
    opt = make([p])
    for _ in range(500):
        opt.zero_grad()
        loss = ((p - target) ** 2).sum()
        loss.backward()
        opt.step()
    assert np.abs(p.data - target.data).max() < tol, (name, p.data)


# --------------------------------------------------------------------------- parity with PyTorch (optional)

TORCH_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True, betas=(0.8, 0.9))),
    ("AdamW", dict(lr=0.01, weight_decay=0.5)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.9)),
]


@pytest.mark.parametrize("name,kwargs", TORCH_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(TORCH_CASES)])
def test_parity_with_torch_optimizers(name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    init = rng.standard_normal((4, 5)).astype(np.float32)
    p, tp = minicnn.tensor(init.copy(), requires_grad=True), torch.tensor(init.copy(), requires_grad=True)
    opt, topt = getattr(optim, name)([p], **kwargs), getattr(torch.optim, name)([tp], **kwargs)
    for _ in range(6):
        g = rng.standard_normal((4, 5)).astype(np.float32)
        p.grad, tp.grad = g, torch.tensor(g)
        opt.step()
        topt.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_parity_with_torch_schedulers():
    torch = pytest.importorskip("torch")
    sched = torch.optim.lr_scheduler

    def run(lib, make):
        p = (torch.zeros(1, requires_grad=True) if lib is sched else minicnn.zeros(1, requires_grad=True))
        opt = (torch.optim.SGD if lib is sched else optim.SGD)([p], lr=0.5)
        s, lrs = make(lib, opt), []
        for _ in range(12):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
        return lrs

    makers = [lambda m, o: m.StepLR(o, 3, 0.5), lambda m, o: m.MultiStepLR(o, [2, 5]),
              lambda m, o: m.CosineAnnealingLR(o, 4, eta_min=0.01), lambda m, o: m.LinearLR(o, 0.1, 0.8, 3),
              lambda m, o: m.SequentialLR(o, [m.LinearLR(o, 0.1, total_iters=2), m.StepLR(o, 2, 0.5),
                                              m.CosineAnnealingLR(o, 3)], [2, 6])]
    for make in makers:
        np.testing.assert_allclose(run(optim, make), run(sched, make), rtol=1e-12, atol=1e-15)


def test_loading_another_optimizers_state_is_refused():
    p = minicnn.nn.Parameter(np.ones(3, np.float32))
    sgd = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(3, np.float32)
    sgd.step()
    adam = optim.Adam([p], lr=0.1)
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: state \['momentum_buffer'\].*another optimizer"):
        adam.load_state_dict(sgd.state_dict())
    adam.step()                                        # unchanged, still usable
    assert "exp_avg" in adam.state[p]


def test_a_global_step_pre_hook_runs_before_every_optimizer_step_and_can_stop_it():
    p = minicnn.tensor(np.array([1.0, 2.0]), requires_grad=True)
    p.grad = np.array([0.5, 0.5])
    seen = []

    def hook(optimizer, args, kwargs):
        seen.append((type(optimizer).__name__, p.data.tolist(), args, kwargs))
        if len(seen) == 2:
            raise RuntimeError("stop")
    handle = optim.register_optimizer_step_pre_hook(hook)
    try:
        optim.SGD([p], lr=1.0).step()
        with pytest.raises(RuntimeError, match="stop"):
            optim.Adam([p]).step()
    finally:
        handle.remove()
    optim.SGD([p], lr=1.0).step()
    assert seen == [("SGD", [1.0, 2.0], (None,), {}), ("Adam", [0.5, 1.5], (None,), {})]
    assert p.data.tolist() == [0.0, 1.0]          # the hook stopped Adam's step; removed, it saw no third
