"""ONNX export of single layers and small models, each run in onnxruntime against minicnn's own output:
the places where ONNX and PyTorch define an operator differently (ceil-mode pooling, even-size LRN,
'same' padding, adaptive bins), the dynamic batch, names, errors and custom converters.

The architectures themselves are exported in ``test_interchange.py``.
"""
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import minicnn
import minicnn.onnx
from minicnn import nn
from minicnn.onnx import Value, register_converter


def run_onnx(path, x, name="input"):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {name: x})[0]


def minicnn_eval(model, x):
    model.eval()
    with minicnn.no_grad():
        return model(minicnn.tensor(x)).numpy()


def check_export(model, shape, tmp_path, seed=0):
    """Export ``model`` at ``shape`` and compare onnxruntime with minicnn (float32, 1e-4 of the largest value)."""
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    path = tmp_path / "m.onnx"
    proto = minicnn.onnx.export(model, minicnn.tensor(x), path)
    got, want = run_onnx(path, x), minicnn_eval(model, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
    return proto


LAYERS = {
    "conv-same-even-kernel": lambda: nn.Conv2d(3, 4, 4, padding="same"),       # extra pad row/column at the end
    "conv-stride-dilation-groups": lambda: nn.Conv2d(4, 6, 3, stride=2, padding=(2, 1), dilation=2, groups=2),
    "conv-no-bias-valid": lambda: nn.Conv2d(3, 5, (3, 2), padding="valid", bias=False),
    "maxpool-ceil-padding": lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
    "maxpool-ceil-last-window-dropped": lambda: nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True),
    "maxpool-floor": lambda: nn.MaxPool2d((3, 2), stride=(2, 1)),
    # different height and width padding (a pads list with the two swapped changes the values or the size)
    "maxpool-hw-padding": lambda: nn.MaxPool2d((3, 5), stride=(2, 1), padding=(0, 2)),
    "maxpool-ceil-hw-padding": lambda: nn.MaxPool2d((4, 3), stride=(2, 2), padding=(2, 0), ceil_mode=True),
    "maxpool-dilation": lambda: nn.MaxPool2d((3, 2), stride=(1, 2), padding=(1, 1), dilation=(2, 3), ceil_mode=True),
    "avgpool-hw-padding": lambda: nn.AvgPool2d((5, 3), stride=(1, 2), padding=(2, 0)),
    "avgpool-hw-padding-exclude": lambda: nn.AvgPool2d((2, 5), stride=1, padding=(1, 2), count_include_pad=False),
    "avgpool-count-pad": lambda: nn.AvgPool2d(3, stride=2, padding=1),
    "avgpool-exclude-pad": lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
    "avgpool-ceil": lambda: nn.AvgPool2d(2, stride=2, ceil_mode=True),
    "adaptive-uneven-bins": lambda: nn.AdaptiveAvgPool2d((3, 4)),            # 7x9 -> overlapping bins: MatMuls
    "adaptive-even": lambda: nn.AdaptiveAvgPool2d(7),
    "adaptive-up": lambda: nn.AdaptiveAvgPool2d((9, 11)),
    "lrn-odd": lambda: nn.LocalResponseNorm(3, alpha=0.1, beta=0.75, k=1.5),
    "lrn-even": lambda: nn.LocalResponseNorm(4, alpha=0.5, beta=0.6, k=1.0),     # ONNX's window differs
    "lrn-even-2": lambda: nn.LocalResponseNorm(2, alpha=1.0, beta=0.75, k=2.0),
    "subsampling": lambda: nn.Subsampling(3, kernel_size=2, stride=2),
    "scaled-tanh": lambda: nn.ScaledTanh(),
    "zero-pad": lambda: nn.ZeroPad2d((1, 2, 0, 3)),
    "batchnorm-no-affine": lambda: nn.BatchNorm2d(3, affine=False),
    "softmax": lambda: nn.Softmax(dim=1),
    "log-softmax": lambda: nn.LogSoftmax(dim=-1),
    "flatten-2-3": lambda: nn.Flatten(2, 3),
    "sigmoid-tanh": lambda: nn.Sequential(nn.Sigmoid(), nn.Tanh(), nn.Identity(), nn.Dropout(0.5)),
}
SHAPES = {"conv-stride-dilation-groups": (2, 4, 11, 10), "adaptive-uneven-bins": (2, 3, 7, 9),
          "adaptive-even": (2, 3, 14, 21), "adaptive-up": (2, 3, 4, 5), "lrn-odd": (2, 6, 3, 3),
          "lrn-even": (2, 7, 3, 3), "lrn-even-2": (2, 5, 2, 2), "maxpool-ceil-last-window-dropped": (1, 2, 5, 5),
          "maxpool-hw-padding": (2, 3, 9, 11), "maxpool-ceil-hw-padding": (2, 3, 10, 7), "maxpool-dilation": (2, 3, 9, 10),
          "avgpool-hw-padding": (2, 3, 9, 11), "avgpool-hw-padding-exclude": (2, 3, 8, 10)}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_each_layer_matches_onnxruntime(kind, tmp_path):
    layer = LAYERS[kind]()
    if isinstance(layer, nn.BatchNorm2d):
        layer.running_mean.data[...] = [0.5, -1.0, 0.0]
        layer.running_var.data[...] = [2.0, 0.5, 1.0]
    if isinstance(layer, nn.Subsampling):
        layer.weight.data[...] = [0.5, -2.0, 1.5]
    check_export(layer, SHAPES.get(kind, (2, 3, 9, 9)), tmp_path)


def test_linear_layers_batch_norm_1d_and_a_free_batch(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3, bias=False))
    model[2].running_mean.data[...] = np.linspace(-1, 1, 8)
    proto = check_export(model, (1, 3, 2, 2), tmp_path)
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == ["N", 3, 2, 2]
    x = np.random.default_rng(5).standard_normal((4, 3, 2, 2)).astype(np.float32)   # another batch size
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x), minicnn_eval(model, x), rtol=1e-5, atol=1e-6)
    names = {t.name for t in proto.graph.initializer}                   # weights keep their state_dict names
    assert {"1.weight", "1.bias", "2.running_mean", "2.running_var", "4.weight"} <= names


def test_linear_on_three_dimensional_input(tmp_path):
    check_export(nn.Linear(5, 4), (2, 3, 5), tmp_path)


def test_options_names_fixed_batch_and_the_checker(tmp_path, monkeypatch):
    checked = []
    real_check = onnx.checker.check_model
    monkeypatch.setattr(onnx.checker, "check_model", lambda m, **kw: (checked.append(kw), real_check(m, **kw)))
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    x = minicnn.randn(3, 1, 5, 5)
    proto = minicnn.onnx.export(model, x, tmp_path / "m.onnx", input_names=["image"], output_names=["scores"],
                                dynamic_batch=False)
    assert checked == [{"full_check": True}]
    assert [i.name for i in proto.graph.input] == ["image"] and [o.name for o in proto.graph.output] == ["scores"]
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [3, 2, 3, 3]
    assert proto.ir_version == 8 and proto.producer_name == "minicnn"
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x.numpy(), "image"), minicnn_eval(model, x.numpy()),
                               rtol=1e-5, atol=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]                    # written atomically


def test_a_model_that_returns_its_input_still_has_an_output(tmp_path):
    check_export(nn.Sequential(nn.Dropout(0.2), nn.Identity()), (2, 3), tmp_path)


def test_export_leaves_the_model_in_its_mode_and_is_importable_both_ways(tmp_path):
    import importlib
    assert importlib.import_module("minicnn.onnx") is minicnn.onnx is minicnn.onnx_export
    model = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))
    model.train()
    minicnn.onnx.export(model, minicnn.randn(2, 3), tmp_path / "m.onnx")
    assert model.training and model[1].training
    model[1].eval()                                  # a mixed state comes back as it was
    minicnn.onnx.export(model, minicnn.randn(2, 3), tmp_path / "m.onnx")
    assert model.training and model[0].training and not model[1].training
    model.eval()
    minicnn.onnx.export(model, minicnn.randn(2, 3), tmp_path / "m.onnx")
    assert not model.training


class Doubler(nn.Module):
    def forward(self, x):
        return x * 2.0


class TwiceConv(nn.Conv2d):                     # changes Conv2d's forward: Conv2d's converter does not apply
    def forward(self, x):
        return super().forward(x) * 2.0


class SameConv(nn.Conv2d):                      # only a new name: Conv2d's converter applies
    pass


def test_unknown_modules_are_named_and_subclasses_with_their_own_forward_need_a_converter(tmp_path):
    x = minicnn.randn(1, 2, 4, 4)
    with pytest.raises(NotImplementedError, match="no converter for Doubler; write one with "
                                                  "minicnn.onnx.register_converter"):
        minicnn.onnx.export(nn.Sequential(Doubler()), x, tmp_path / "a.onnx")
    with pytest.raises(NotImplementedError, match=r"no converter for TwiceConv \(its forward differs"):
        minicnn.onnx.export(TwiceConv(2, 2, 1), x, tmp_path / "b.onnx")
    check_export(SameConv(2, 3, 3), (1, 2, 4, 4), tmp_path)
    assert not (tmp_path / "a.onnx").exists() and not (tmp_path / "b.onnx").exists()


def test_register_converter_for_your_own_module(tmp_path, monkeypatch):
    from minicnn.onnx_export import graph
    monkeypatch.setattr(graph, "_CONVERTERS", dict(graph._CONVERTERS))    # keep the registry as it was

    @register_converter(Doubler)
    def _doubler(g, module, name, x):
        return Value(g.node("Mul", [x.name, g.const(f"{name}.two", 2.0)], name), module(x.tensor))

    check_export(nn.Sequential(nn.Conv2d(2, 3, 3), Doubler()), (2, 2, 5, 5), tmp_path)

    @register_converter(Doubler)
    def _wrong(g, module, name, x):                  # forgets the factor 2: caught at export time
        return Value(g.node("Identity", [x.name], name), x.tensor)

    with pytest.raises(RuntimeError, match="does not compute its forward"):
        minicnn.onnx.export(nn.Sequential(nn.Conv2d(2, 3, 3), Doubler()), minicnn.randn(1, 2, 5, 5),
                            tmp_path / "w.onnx")


class TwoOutputs(nn.Module):
    def forward(self, x):
        return x, x


def test_bad_arguments_get_clear_errors(tmp_path):
    model = nn.Linear(3, 2)
    with pytest.raises(TypeError, match="expected a float32 example_input, got float64"):
        minicnn.onnx.export(model.double(), minicnn.randn(2, 3, dtype=minicnn.float64), tmp_path / "m.onnx")
    model.float()
    with pytest.raises(TypeError, match="example_input must be a minicnn Tensor, got ndarray"):
        minicnn.onnx.export(model, np.zeros((2, 3), np.float32), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset_version must be an int >= 17, got 13"):
        minicnn.onnx.export(model, minicnn.randn(2, 3), tmp_path / "m.onnx", opset_version=13)
    with pytest.raises(ValueError, match="output_names must hold one non-empty name"):
        minicnn.onnx.export(model, minicnn.randn(2, 3), tmp_path / "m.onnx", output_names=["a", "b"])
    with pytest.raises(ValueError, match="track_running_stats=False"):
        minicnn.onnx.export(nn.BatchNorm2d(2, track_running_stats=False), minicnn.randn(2, 2, 3, 3),
                            tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="only models with one output Tensor"):
        minicnn.onnx.export(TwoOutputs(), minicnn.randn(2, 3), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
