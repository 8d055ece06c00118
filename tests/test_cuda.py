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
from minicnn import architectures, backend, optim
from minicnn.data import DataLoader
from minicnn.train import train_one_epoch

from conftest import cuda

pytestmark = cuda

MODELS = [("lenet5", 32, {}), ("lenet5_keras", 32, {}), ("alexnet", 64, {}), ("vgg16_bn", 32, {}),
          ("googlenet", 64, {}), ("resnet18", 32, {}), ("resnet50", 32, {})]


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
    x = np.random.default_rng(0).standard_normal((2, 1 if name.startswith("lenet") else 3, size, size)).astype(np.float32)
    cpu.eval(), gpu.eval()
    with minicnn.no_grad():
        ref = cpu(minicnn.tensor(x)).numpy()
        out = gpu(minicnn.tensor(x, device="cuda"))
    assert out.device == "cuda"
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-3, atol=1e-4)

    # one training step: the gradients of the first and last parameters agree
    cpu.train(), gpu.train()
    target = np.array([1, 7])
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        model.zero_grad()
        out = model(minicnn.tensor(x, device=device))
        logits = out[0] if isinstance(out, tuple) else out
        F.cross_entropy(logits, minicnn.tensor(target, device=device)).backward()
    p_cpu, p_gpu = list(cpu.parameters()), list(gpu.parameters())
    for a, b in ((p_cpu[0], p_gpu[0]), (p_cpu[-1], p_gpu[-1])):
        assert backend.device_of(b.grad) == "cuda" and b.grad.dtype == np.float32
        np.testing.assert_allclose(backend.to_numpy(b.grad), a.grad, rtol=2e-2, atol=1e-4)


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
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


def test_train_cli_on_gpu(tmp_path):
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-m", "minicnn.train", "lenet5", "--device", "cuda", "--epochs", "1",
                             "--limit-train", "1024", "--limit-test", "500", "--out", str(tmp_path / "run"),
                             "--no-progress"], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and (tmp_path / "run" / "last.npz").exists()


def test_summary_on_gpu():
    s = minicnn.summary(architectures.get("resnet18"), (3, 64, 64), device="cuda", verbose=False)
    assert s.parameters == 11_689_512
