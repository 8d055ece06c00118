"""Every architecture in and out of minicnn: weights from PyTorch through a safetensors file give
PyTorch's logits, and the ONNX export gives minicnn's logits in onnxruntime.

Each case's minicnn model is built once (a module-scoped fixture, like test_architectures.py: VGG
has 138 M parameters) and used by both tests: first it receives the PyTorch model's weights
(``bench/torch_models.py``, written with torchvision's key names, saved by
``safetensors.torch.save_file``: a torchvision-layout file), then it is exported to ONNX.
Inputs are the smallest each architecture takes, with 10 classes, so the suite stays fast;
batch norm gets random running statistics so that eval mode is not an identity.  The VGGs
cost about 10 s each here (550 MB of weights copied several times), so the PyTorch comparison
covers vgg16 and vgg19_bn (configurations D and E, without and with batch norm: the code that
builds and loads vgg16_bn and vgg19 is the same); every VGG is exported to ONNX.
"""
import gc
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import minicnn
from minicnn import architectures as A
from minicnn import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

RTOL = 1e-4      # float32, relative to the largest logit


@dataclass
class Case:
    name: str
    shape: tuple                 # (N, C, H, W): the smallest size the model takes
    options: dict = field(default_factory=dict)
    torch_check: bool = True     # compare with PyTorch (see the module docstring)

    @property
    def id(self):
        return self.name + "".join(f"-{k}={v}" for k, v in self.options.items())


CASES = [
    Case("lenet5", (2, 1, 32, 32)), Case("lenet5", (2, 1, 32, 32), {"c3_table": True}),
    Case("lenet5_keras", (2, 1, 28, 28), {"input_size": 28}), Case("lenet5_keras", (2, 1, 32, 32)),
    Case("alexnet", (2, 3, 63, 63)), Case("alexnet", (2, 3, 63, 63), {"lrn": True}),
    Case("vgg16", (2, 3, 32, 32)), Case("vgg16_bn", (2, 3, 32, 32), torch_check=False),
    Case("vgg19", (2, 3, 32, 32), torch_check=False), Case("vgg19_bn", (2, 3, 32, 32)),
    Case("googlenet", (2, 3, 31, 31), {"aux_logits": True}), Case("googlenet", (2, 3, 32, 32), {"aux_logits": False}),
    Case("resnet18", (2, 3, 32, 32)), Case("resnet34", (2, 3, 32, 32)), Case("resnet50", (2, 3, 32, 32)),
    Case("resnet101", (2, 3, 32, 32)), Case("resnet152", (2, 3, 32, 32)),
    Case("resnet18", (2, 3, 8, 8), {"stem": "small"}),
    # the CIFAR ResNets: option A's subsample and zero channels become Slice + Pad; odd maps (9 -> 5 -> 3)
    Case("resnet20", (2, 3, 9, 9)), Case("resnet20", (2, 1, 8, 8), {"shortcut": "B"}),
]


def _input(case, seed=0):
    return np.random.default_rng(seed).standard_normal(case.shape).astype(np.float32)


def _eval_logits(model, x):
    model.eval()
    with minicnn.no_grad():
        return model(minicnn.tensor(x)).numpy()


def assert_close(got, want):
    """Equal to float32 precision: every difference within RTOL of the largest logit."""
    assert got.shape == want.shape and np.isfinite(got).all()
    scale = float(np.abs(want).max())
    worst = float(np.abs(got - want).max())
    assert worst <= RTOL * scale, f"largest difference {worst:.3g}, {worst / scale:.3g} of the largest logit {scale:.3g}"


TORCH_CASES = [c for c in CASES if c.torch_check]


@pytest.fixture(scope="module")
def built(request):
    """The case's minicnn model, built once per case (the tests pass the case with indirect=True)."""
    case = request.param
    model = A.get(case.name, num_classes=10, in_channels=case.shape[1], **case.options)
    rng = np.random.default_rng(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.data[...] = rng.uniform(-0.5, 0.5, m.num_features)
            m.running_var.data[...] = rng.uniform(0.5, 1.5, m.num_features)
    yield case, model
    del model
    gc.collect()


@pytest.mark.parametrize("built", TORCH_CASES, indirect=True, ids=lambda c: c.id)
def test_torchvision_layout_safetensors_from_pytorch_gives_pytorchs_logits(built, tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file
    import torch_models

    case, model = built
    torch.manual_seed(0)
    reference = torch_models.get(case.name, num_classes=10, in_channels=case.shape[1], **case.options).eval()
    with torch.no_grad():                 # batch norm that does something in eval mode
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
    path = tmp_path / f"{case.name}.safetensors"
    save_file(reference.state_dict(), str(path))
    assert minicnn.load_weights(model, path) == ([], [])
    x = _input(case)
    with torch.no_grad():
        want = reference(torch.from_numpy(x)).numpy()
    assert_close(_eval_logits(model, x), want)


@pytest.mark.parametrize("built", CASES, indirect=True, ids=lambda c: c.id)
def test_onnx_export_runs_in_onnxruntime_like_minicnn(built, tmp_path):
    case, model = built
    model.train()                                    # export switches to eval and back
    x = _input(case, seed=2)
    path = tmp_path / f"{case.name}.onnx"
    proto = minicnn.onnx.export(model, minicnn.tensor(x), path)     # runs onnx.checker.check_model(full_check=True)
    assert model.training
    assert proto.opset_import[0].version == 17 and [i.name for i in proto.graph.input] == ["input"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x})
    assert_close(got, _eval_logits(model, x))
