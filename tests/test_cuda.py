"""The GPU path end to end: models, optimizers, the training loop and the CLI on device="cuda",
compared with the NumPy results.  Every test here needs CuPy and an NVIDIA GPU and skips
cleanly without them (the op and kernel tests run on CUDA through the ``device`` fixture)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import architectures, backend, nn, optim
from minicnn.data import DataLoader
from minicnn.training import train_one_epoch

from conftest import REQUIRE_DATA, cuda

pytestmark = cuda

MODELS = [("lenet5", 32, {}), ("lenet5_keras", 32, {}), ("alexnet", 64, {}), ("vgg16_bn", 32, {}),
          ("googlenet", 64, {}), ("resnet18", 32, {}), ("resnet50", 64, {}), ("resnet18", 16, {"stem": "small"}),
          ("resnet20", 16, {}), ("resnet20", 16, {"shortcut": "B"})]


def twin_models(name, options):
    """The same model (same weights) on the CPU and on the GPU."""
    minicnn.manual_seed(0)
    cpu = architectures.get(name, num_classes=10, **options)
    gpu = architectures.get(name, num_classes=10, **options)
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.to("cuda")


@pytest.mark.parametrize("name,size,options", MODELS)
def test_model_on_gpu_matches_cpu(name, size, options):
    cpu, gpu = twin_models(name, options)
    x = np.random.default_rng(0).standard_normal((4, 1 if name.startswith("lenet") else 3, size, size)).astype(np.float32)
    cpu.eval(), gpu.eval()
    with minicnn.no_grad():
        ref = cpu(minicnn.tensor(x)).numpy()
        out = gpu(minicnn.tensor(x, device="cuda"))
    assert out.device == "cuda"
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-3, atol=1e-4)

    # One training step, in float64 on both devices: the same maths gives the same gradients to ~1e-10.
    # (Batch-norm over the last, 1x1 or 2x2, maps of these small inputs is ill-conditioned: gradients
    # reach 1e3 (1e9 with two images of 32x32 in ResNet-50), so float32 gradients, summed in another
    # order on each device, differ by percents: that tests rounding, not code.) Dropout is switched
    # off: the CPU and the GPU draw from different random streams, as in PyTorch.
    cpu.to(minicnn.float64).train(), gpu.to(minicnn.float64).train()
    target = np.array([1, 7, 3, 0])
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        model.zero_grad()
        out = model(minicnn.tensor(x.astype(np.float64), device=device))
        logits = out[0] if isinstance(out, tuple) else out
        F.cross_entropy(logits, minicnn.tensor(target, device=device)).backward()
    for (key, a), (_, b) in zip(cpu.named_parameters(), gpu.named_parameters()):
        if a.grad is None:                              # GoogLeNet's auxiliary heads: not in this loss
            assert b.grad is None, key
            continue
        assert b.grad.device == "cuda" and b.grad.dtype == np.float64, key
        a, b = a.grad.numpy(), b.grad.numpy()
        assert np.abs(b - a).max() <= 1e-8 * np.abs(a).max() + 1e-12, key


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
                                  lambda p: optim.SGD(p, lr=0.1, momentum=0.8, dampening=0.3, maximize=True),
                                  lambda p: optim.SGD(p, lr=0.05, weight_decay=0.1),
                                  lambda p: optim.Adam(p, lr=1e-2), lambda p: optim.AdamW(p, lr=1e-2),
                                  lambda p: optim.RMSprop(p, lr=1e-2, momentum=0.5, centered=True)])
def test_optimizers_on_gpu_match_cpu(make):
    rng = np.random.default_rng(1)
    w0, g0 = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((5, 4)).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        w = minicnn.nn.Parameter(minicnn.tensor(w0, device=device))
        opt = make([w])
        for _ in range(3):
            w.grad = backend.to_device(g0, device)
            opt.step()
        results.append(w.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-6)


def test_training_steps_fetch_to_the_host_once_per_logging_interval(monkeypatch):
    """Count device-to-host copies: a step must not read the GPU (losses and accuracy are
    fetched every ``log_every`` steps, two transfers each time)."""
    cp = backend.cupy_module()
    fetches = []
    for name in ("get", "item", "tolist", "__int__", "__float__", "__bool__"):
        original = getattr(cp.ndarray, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            fetches.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(cp.ndarray, name, counting)

    minicnn.manual_seed(0)
    model = architectures.get("lenet5", num_classes=10).to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    data = (rng.random((40 * 8, 1, 32, 32), dtype=np.float32), rng.integers(0, 10, 40 * 8))
    loader = DataLoader(data, batch_size=8, shuffle=True, seed=0)
    train_one_epoch(model, loader, opt, None, epoch=1, device="cuda", log_every=20, progress=False)
    assert len(fetches) <= 2 * 2, fetches          # 40 steps, 2 logging intervals, 2 transfers each


def mnist_root():
    """The folder holding mnist/ (``$MINICNN_DATA`` or ../shared/data beside the checkout); skipped
    without it, and a failure under ``CI=true``, where the data must be there."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    base = os.environ.get("MINICNN_DATA") or os.path.join(os.path.dirname(repo), "shared", "data")
    if not any(os.path.isfile(os.path.join(base, "mnist", "t10k-images-idx3-ubyte" + ext)) for ext in (".gz", "")):
        (pytest.fail if REQUIRE_DATA else pytest.skip)(f"no MNIST under {base}: set MINICNN_DATA")
    return base


def test_train_cli_on_gpu(tmp_path):
    env = dict(os.environ, MINICNN_DATA=mnist_root())
    result = subprocess.run([sys.executable, "-m", "minicnn.train", "lenet5", "--device", "cuda", "--epochs", "1",
                             "--limit-train", "1024", "--limit-test", "500", "--out", str(tmp_path / "run"),
                             "--no-progress"], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and (tmp_path / "run" / "last.npz").exists()


def test_summary_on_gpu():
    s = minicnn.summary(architectures.get("resnet18").to("cuda"), (3, 64, 64), device="cuda", verbose=False)
    assert s.parameters == 11_689_512


def test_cupy_array_in_a_fresh_process():
    """A CuPy array handed to minicnn before minicnn itself ever asked for CuPy is recognised."""
    code = ("import cupy, minicnn; t = minicnn.tensor(cupy.arange(3.0)); "
            "assert t.device == 'cuda', t.device; assert float((t * 2).sum().item()) == 6.0")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("make", [lambda: nn.Linear(64, 32, device="cuda"),
                                  lambda: nn.Conv2d(3, 8, 3, device="cuda")])
def test_layers_made_on_the_gpu_draw_independent_weights(make):
    w = make().weight.numpy()
    assert len(np.unique(w)) == w.size                  # CuPy's random(out=...) without a size draws ONE value
    assert abs(float(w.mean())) < 0.05 and 0.02 < float(w.std())


def test_lenet5_with_the_c3_table_initialises_on_the_gpu():
    model = architectures.get("lenet5", c3_table=True).to("cuda")
    model.reset_parameters()                            # LeCun's per-map bounds, a host array, on the GPU
    w = model.c3.weight.numpy()
    assert np.all(w[model.c3.mask.numpy()[:, :, 0, 0] == 0] == 0) and len(np.unique(w)) > 100


def test_tensor_grad_on_the_gpu_is_a_tensor():
    t = minicnn.tensor(np.arange(20.0).reshape(4, 5), device="cuda", requires_grad=True)
    t.max(axis=1).values.sum().backward()
    assert isinstance(t.grad, minicnn.Tensor) and t.grad.device == "cuda" and not t.grad.requires_grad
    expected = np.zeros((4, 5))
    expected[:, 4] = 1
    np.testing.assert_array_equal(t.grad.numpy(), expected)


def test_out_of_range_targets_on_the_gpu_give_nan_without_a_host_read():
    logits = minicnn.tensor(np.zeros((3, 4), dtype=np.float32), device="cuda", requires_grad=True)
    with pytest.raises(ValueError, match=r"target values must be in \[0, 4\)"):
        F.cross_entropy(logits, np.array([0, 4, 1]))          # host targets are checked before the copy
    target = minicnn.tensor(np.array([0, 4, 1]), device="cuda")
    loss = F.cross_entropy(logits, target, reduction="none")
    assert np.isnan(loss.numpy()[1]) and np.allclose(loss.numpy()[[0, 2]], np.log(4))
    F.cross_entropy(logits, target).backward()
    assert np.isnan(logits.grad.numpy()[1]).all() and np.isfinite(logits.grad.numpy()[[0, 2]]).all()
    nll = F.nll_loss(F.log_softmax(logits, dim=1), target, reduction="none")
    assert np.isnan(nll.numpy()[1]) and np.allclose(nll.numpy()[[0, 2]], np.log(4))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_fused_cross_entropy_ignores_rows_as_the_cpu_does(reduction, smoothing):
    """The GPU's one-kernel cross-entropy with ignore_index (default -100 and a class index): the CPU's values
    and gradients, the ignored rows out of the mean; every row ignored gives NaN, as in PyTorch."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 4))
    for target, ignore in (([0, -100, 3, 1, -100, 2], -100), ([0, 2, 3, 1, 2, 2], 2)):
        results = []
        for device in ("cpu", "cuda"):
            x = minicnn.tensor(logits, device=device, requires_grad=True)
            t = minicnn.tensor(np.array(target), device=device)
            loss = F.cross_entropy(x, t, ignore_index=ignore, reduction=reduction, label_smoothing=smoothing)
            loss.sum().backward()
            results.append((loss.numpy(), x.grad.numpy()))
        np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12, atol=1e-12)
    x = minicnn.tensor(logits, device="cuda")
    with np.errstate(invalid="ignore"):                 # the stand-in divides in NumPy: 0 / 0
        everything_ignored = F.cross_entropy(x, minicnn.tensor(np.full(6, -100), device="cuda"))
    assert np.isnan(everything_ignored.numpy())
