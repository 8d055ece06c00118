"""Daily PyTorch idioms that minicnn must take as PyTorch does (issue 22), or refuse in one line: clamp with
tensor bounds, 0-d tensors, devices, add/sub alpha=, *_like(device=), save/load, lr_scheduler, clip_grad,
inference_mode, linspace, and importing minicnn from the folder that holds its checkout."""
import subprocess
import sys

import numpy as np
import pytest

import minicnn
from minicnn import nn, optim


def _torch():
    return pytest.importorskip("torch")


def _clamp_grads(lib):
    x = lib.tensor(np.array([[-2.0, 0.5, 3.0], [0.75, 0.0, 4.0]]), requires_grad=True)   # with ties at both bounds
    lo = lib.tensor(np.array([-1.0, 0.0, 1.0]), requires_grad=True)             # broadcast over the rows
    hi = lib.tensor(np.array([[2.0], [0.75]]), requires_grad=True)
    weights = lib.tensor(np.arange(6.0).reshape(2, 3) + 1)
    (x.clamp(min=lo, max=hi) * weights).sum().backward()
    only_min = lib.tensor(np.array([0.5, -3.0]), requires_grad=True)
    bound = lib.tensor(np.array(0.0), requires_grad=True)
    (only_min.clamp(min=bound) * lib.tensor(np.array([2.0, 3.0]))).sum().backward()
    return [t.grad.numpy() for t in (x, lo, hi, only_min, bound)]


def test_clamp_with_tensor_bounds_gives_the_bounds_their_gradient():
    torch = _torch()
    for a, b in zip(_clamp_grads(minicnn), _clamp_grads(torch)):
        np.testing.assert_array_equal(a, b)


def test_0d_tensors_squeeze_and_transpose():
    s = minicnn.tensor(2.0, requires_grad=True)
    for out in (s.squeeze(0), s.squeeze(-1), s.transpose(0, 0), s.transpose(-1, 0)):
        assert out.shape == () and out.item() == 2.0
    (s.squeeze(0) * s.transpose(0, -1)).backward()
    assert s.grad.item() == 4.0
    with pytest.raises(IndexError):
        s.squeeze(1)


def test_devices_and_like_constructors():
    t = minicnn.ones(2)
    for device in ("mps", "xla", "meta"):
        with pytest.raises(ValueError, match=rf"^device '{device}' is not supported: minicnn runs on 'cpu' and 'cuda'$"):
            t.to(device)
    assert t.to("float64").dtype == np.float64 and t.to("cpu") is t
    for like in (minicnn.zeros_like, minicnn.ones_like):
        made = like(t, device="cpu")
        assert made.device == "cpu" and made.shape == (2,) and made.dtype == np.float32


def test_load_state_dict_of_an_array_is_a_type_error():
    with pytest.raises(TypeError, match=r"^load_state_dict: expected a mapping .*, got ndarray$"):
        nn.Linear(2, 2).load_state_dict(np.zeros(3))


def test_add_and_sub_with_alpha():
    torch = _torch()
    a, b = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    for op in ("add", "sub"):
        mine = getattr(minicnn, op)(minicnn.tensor(a), minicnn.tensor(b), alpha=3)
        theirs = getattr(torch, op)(torch.tensor(a), torch.tensor(b), alpha=3)
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
        np.testing.assert_array_equal(getattr(minicnn.tensor(a), op)(2, alpha=0.5).numpy(),
                                      getattr(torch.tensor(a), op)(2, alpha=0.5).numpy())


def test_save_and_load_round_trip_without_pickle(tmp_path):
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(minicnn.randn(4, 3)).sum().backward()
    opt.step()
    weight = minicnn.randn(2, 2, requires_grad=True)
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 7, "tensors": [weight, (minicnn.arange(3),)]}
    path = tmp_path / "state.pt"
    minicnn.save(obj, path)
    back = minicnn.load(path)
    assert back["step"] == 7 and set(back["model"]) == {"weight", "bias"}
    np.testing.assert_array_equal(back["model"]["weight"], obj["model"]["weight"])
    assert list(back["optimizer"]["state"]) == [0, 1]                  # int keys stay ints
    np.testing.assert_array_equal(back["optimizer"]["state"][0]["momentum_buffer"],
                                  obj["optimizer"]["state"][0]["momentum_buffer"])
    loaded_weight, (loaded_range,) = back["tensors"]
    assert isinstance(loaded_weight, minicnn.Tensor) and loaded_weight.requires_grad
    np.testing.assert_array_equal(loaded_weight.numpy(), weight.numpy())
    assert loaded_range.dtype == np.int64 and loaded_range.tolist() == [0, 1, 2]
    fresh = nn.Linear(3, 2)
    fresh.load_state_dict(back["model"])
    np.testing.assert_array_equal(fresh.weight.numpy(), model.weight.numpy())
    assert "model/weight" in np.load(path, allow_pickle=False).files       # a plain .npz, readable without minicnn
    with pytest.raises(TypeError, match="saving a whole Linear .* is not supported .* save its state_dict"):
        minicnn.save({"m": model}, tmp_path / "model.pt")
    with pytest.raises(TypeError, match="file objects are not supported"):
        minicnn.save(obj, open(tmp_path / "f", "wb"))
    assert not (tmp_path / "model.pt").exists()
    minicnn.checkpoint.save(tmp_path / "last.npz", {"epoch": 3})             # a training checkpoint
    assert minicnn.load(tmp_path / "last.npz") == {"epoch": 3}


def test_lr_scheduler_under_pytorchs_module_name():
    from minicnn.optim.lr_scheduler import StepLR
    assert StepLR is optim.StepLR and optim.lr_scheduler.CosineAnnealingLR is optim.CosineAnnealingLR


def _clip(lib, norm_type, max_norm=1.0, value=None):
    params = [lib.tensor(np.arange(6.0).reshape(2, 3) - 2, requires_grad=True),
              lib.tensor(np.array([3.0, -4.0]), requires_grad=True), lib.tensor(np.ones(2), requires_grad=True)]
    for p in params[:2]:
        (p * p * p).sum().backward()                       # the third parameter has no gradient
    if value is not None:
        lib.nn.utils.clip_grad_value_(params, value)
        total = None
    else:
        total = float(lib.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type))
    return total, [p.grad.numpy().copy() for p in params[:2]]


@pytest.mark.parametrize("norm_type,max_norm,value", [(2.0, 1.0, None), (1, 5.0, None), (float("inf"), 3.0, None),
                                                      (float("-inf"), 0.01, None), (2.0, 1e9, None), (2.0, 1.0, 2.5)])
def test_clip_grad_as_pytorch(norm_type, max_norm, value):
    torch = _torch()
    mine, theirs = _clip(minicnn, norm_type, max_norm, value), _clip(torch, norm_type, max_norm, value)
    assert mine[0] == pytest.approx(theirs[0], rel=1e-12)
    for a, b in zip(mine[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_clip_grad_norm_error_if_nonfinite_and_nothing_to_clip():
    p = minicnn.tensor([1.0], requires_grad=True)
    p.grad = minicnn.tensor([float("inf")])
    with pytest.raises(RuntimeError, match="non-finite, so it cannot be clipped"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    assert float(nn.utils.clip_grad_norm_([minicnn.ones(2, requires_grad=True)], 1.0)) == 0.0


def test_inference_mode_and_set_grad_enabled():
    x = minicnn.ones(2, requires_grad=True)
    with minicnn.inference_mode():
        assert not (x * 2).requires_grad and not minicnn.is_grad_enabled()
    with minicnn.inference_mode(False):
        assert (x * 2).requires_grad

    @minicnn.inference_mode()
    def f(t):
        return t * 2
    assert not f(x).requires_grad and minicnn.is_grad_enabled()
    with minicnn.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert minicnn.is_grad_enabled()
    minicnn.set_grad_enabled(False)                      # as a plain call, until switched back
    assert not minicnn.is_grad_enabled()
    minicnn.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_linspace_as_pytorch():
    torch = _torch()
    for args in ((0, 1, 5), (-2.5, 3, 7), (1, 1, 1), (0, 1, 0)):
        mine, theirs = minicnn.linspace(*args), torch.linspace(*args)
        assert mine.dtype == np.float32
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-6)
    assert minicnn.linspace(0, 1, 3, dtype=minicnn.float64).dtype == np.float64
    with pytest.raises(ValueError, match="linspace: steps must be a non-negative int"):
        minicnn.linspace(0, 1, -1)


def test_import_from_the_folder_that_holds_the_checkout(tmp_path):
    """A folder named minicnn in the working directory (the checkout, seen from its parent) is not taken
    for an empty namespace package: the installed minicnn is imported."""
    (tmp_path / "minicnn" / "docs").mkdir(parents=True)
    (tmp_path / "minicnn" / "setup.py").write_text("")
    done = subprocess.run([sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('minicnn').origin)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == minicnn.__file__          # not None, as for a namespace package


def test_grad_mode_belongs_to_the_thread_and_covers_a_decorated_generator():
    import threading
    inside, outside = threading.Event(), threading.Event()
    seen = []

    def other_thread():
        with minicnn.no_grad():
            inside.set()
            outside.wait(5)
        seen.append(minicnn.is_grad_enabled())

    w = minicnn.ones(2, requires_grad=True)
    worker = threading.Thread(target=other_thread)
    worker.start()
    inside.wait(5)
    assert (w * 2).requires_grad and minicnn.is_grad_enabled()     # the other thread's no_grad is its own
    outside.set()
    worker.join()
    assert seen == [True]

    @minicnn.no_grad()
    def doubled(xs):
        for x in xs:
            yield x * 2                     # each step runs without recording, as in PyTorch
        return "done"

    gen = doubled([w, w])
    assert [t.requires_grad for t in gen] == [False, False]
    assert (w * 2).requires_grad            # the caller's code between the steps records
