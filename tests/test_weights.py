"""safetensors weights without PyTorch: minicnn -> file -> minicnn round trips (exact), the checks
``load_weights`` makes (keys, shapes, dtypes, damaged files) and timm's VGG names.

The comparisons with PyTorch models (weights in through a torchvision-layout file, ONNX out
through onnxruntime, every architecture) are in ``tests/onnx_export/test_interchange.py``, whose
fixtures build each model once.
"""
import json
import os
import struct

import numpy as np
import pytest
import safetensors.numpy

import minicnn
import minicnn.functional as F
from minicnn import architectures as A
from minicnn import nn
from minicnn.weights import WeightsFileError, read_weights, timm_to_torchvision

SMALL = [("lenet5", {}, (2, 1, 32, 32)), ("lenet5", {"c3_table": True}, (2, 1, 32, 32)),
         ("lenet5_keras", {"input_size": 28}, (2, 1, 28, 28)),
         ("googlenet", {"aux_logits": True}, (2, 3, 32, 32)), ("resnet18", {}, (2, 3, 32, 32))]


def _randomize_batch_norm(model, seed=1):
    """Running statistics and counters that differ from a fresh model's, so that loading them shows."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.data[...] = rng.uniform(-0.5, 0.5, m.num_features)
            m.running_var.data[...] = rng.uniform(0.5, 1.5, m.num_features)
            m.num_batches_tracked.data[...] = 7


def _logits(model, x):
    model.eval()
    with minicnn.no_grad():
        return model(x).numpy()


@pytest.mark.parametrize("name,options,shape", SMALL, ids=[f"{n}{'-' + str(o) if o else ''}" for n, o, _ in SMALL])
def test_round_trip_through_a_safetensors_file_is_exact(tmp_path, name, options, shape):
    model = A.get(name, num_classes=5, in_channels=shape[1], **options)
    _randomize_batch_norm(model)
    path = minicnn.save_weights(model, tmp_path / "w.safetensors")
    loaded = A.get(name, num_classes=5, in_channels=shape[1], weights=path, **options)   # fresh random init, then the file
    before, after = model.state_dict(), loaded.state_dict()
    assert list(after) == list(before)
    for key in before:
        assert after[key].dtype == before[key].dtype and after[key].shape == before[key].shape, key
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    x = minicnn.randn(*shape)
    np.testing.assert_array_equal(_logits(loaded, x), _logits(model, x))


def test_the_file_is_plain_safetensors_with_pytorch_layout(tmp_path):
    model = A.get("resnet18", num_classes=3)
    path = minicnn.save_weights(model, tmp_path / "r.safetensors", metadata={"note": "hi"})
    arrays = safetensors.numpy.load_file(path)
    assert set(arrays) == set(model.state_dict())
    assert arrays["conv1.weight"].shape == (64, 3, 7, 7) and arrays["conv1.weight"].dtype == np.float32
    assert arrays["bn1.num_batches_tracked"].shape == () and arrays["bn1.num_batches_tracked"].dtype == np.int64
    with open(path, "rb") as f:                                   # the header, as any safetensors reader sees it
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    assert header["__metadata__"] == {"format": "pt", "note": "hi"}
    assert header["fc.weight"]["dtype"] == "F32" and header["fc.weight"]["shape"] == [3, 512]
    assert sorted(os.listdir(tmp_path)) == ["r.safetensors"]     # written atomically: no temporary left


def test_a_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "w.safetensors"
    minicnn.save_weights({"a": np.ones(3, np.float32)}, path)
    with pytest.raises(TypeError, match="'b' has dtype object"):
        minicnn.save_weights({"a": np.zeros(3, np.float32), "b": np.array([None])}, path)
    with pytest.raises(TypeError, match="not an array"):
        minicnn.save_weights({"a": [1.0, 2.0]}, path)
    np.testing.assert_array_equal(read_weights(path)["a"], np.ones(3, np.float32))
    assert sorted(os.listdir(tmp_path)) == ["w.safetensors"]


def test_load_reports_every_wrong_key_shape_and_dtype_and_changes_nothing(tmp_path):
    model = A.get("lenet5")
    state = model.state_dict()
    state["c1.weight"] = np.zeros((6, 1, 3, 3), np.float32)              # wrong shape
    state["f6.bias"] = np.arange(84, dtype=np.int32)                     # integers for a float parameter
    path = minicnn.save_weights(state, tmp_path / "bad.safetensors")
    before = model.state_dict()
    with pytest.raises(nn.StateDictError, match='dtype mismatch for "f6.bias": the model holds float32, '
                                                'the file has int32') as err:
        minicnn.load_weights(model, path)
    assert str(path) in str(err.value)
    del state["f6.bias"]
    minicnn.save_weights(state, path)
    with pytest.raises(nn.StateDictError) as err:
        minicnn.load_weights(model, path)
    text = str(err.value)
    assert 'size mismatch for "c1.weight": the model expects shape (6, 1, 5, 5), the state_dict has shape (6, 1, 3, 3)' \
        in text and 'Missing key(s) in state_dict: "f6.bias"' in text
    for key, value in model.state_dict().items():                      # nothing was copied
        np.testing.assert_array_equal(value, before[key])


def test_strict_false_returns_the_missing_and_unexpected_keys(tmp_path):
    model = A.get("lenet5")
    state = model.state_dict()
    state["extra.weight"] = np.ones(2, np.float32)
    f6 = state.pop("f6.weight")
    path = minicnn.save_weights(state, tmp_path / "w.safetensors")
    with pytest.raises(nn.StateDictError, match='Unexpected key.*"extra.weight"'):
        minicnn.load_weights(model, path)
    other = A.get("lenet5")
    result = minicnn.load_weights(other, path, strict=False)
    assert result.missing_keys == ["f6.weight"] and result.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(other.c1.weight.numpy(), state["c1.weight"])
    assert not np.array_equal(other.f6.weight.numpy(), f6)              # left as it was


def test_other_float_widths_are_cast_and_integers_stay_integers(tmp_path):
    model = A.get("resnet18", num_classes=2)
    state = {k: (v.astype(np.float64) if v.dtype == np.float32 else v.astype(np.int32)) for k, v in
             model.state_dict().items()}
    state["fc.bias"] = np.array([0.5, -0.25], np.float16)
    path = minicnn.save_weights(state, tmp_path / "w.safetensors")
    other = A.get("resnet18", num_classes=2)
    minicnn.load_weights(other, path)
    assert other.fc.weight.dtype == np.float32 and other.bn1.num_batches_tracked.dtype == np.int64
    np.testing.assert_array_equal(other.fc.bias.numpy(), [0.5, -0.25])
    np.testing.assert_array_equal(other.conv1.weight.numpy(), model.conv1.weight.numpy())
    state["bn1.num_batches_tracked"] = np.array(1.0, np.float32)           # a float counter: wrong kind
    minicnn.save_weights(state, path)
    with pytest.raises(nn.StateDictError, match='dtype mismatch for "bn1.num_batches_tracked": the model holds '
                                                'int64, the file has float32'):
        minicnn.load_weights(other, path)


def _raw_safetensors(path, header: dict, data: bytes):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def test_damaged_foreign_and_missing_files_get_clear_errors(tmp_path):
    model = A.get("lenet5")
    with pytest.raises(FileNotFoundError, match="load_weights: no such file: .*nope.safetensors"):
        minicnn.load_weights(model, tmp_path / "nope.safetensors")
    good = minicnn.save_weights(model, tmp_path / "good.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(open(good, "rb").read()[:5000])
    with pytest.raises(WeightsFileError, match="cut.safetensors is not a readable safetensors file"):
        minicnn.load_weights(model, cut)
    npz = tmp_path / "w.npz"
    np.savez(npz, **model.state_dict())
    with pytest.raises(WeightsFileError, match=r"zip archive .*python -m minicnn.convert"):
        minicnn.load_weights(model, npz)
    with pytest.raises(WeightsFileError, match="is a folder"):
        minicnn.load_weights(model, tmp_path)
    bf16 = tmp_path / "bf16.safetensors"                 # NumPy has no bfloat16: the file is written by hand
    _raw_safetensors(bf16, {"c1.bias": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, b"\x80\x3f\x00\x40")
    with pytest.raises(WeightsFileError, match=r"'c1.bias' \(BF16\).*python -m minicnn.convert"):
        minicnn.load_weights(model, bf16)


def test_bad_arguments_are_named():
    model = A.get("lenet5")
    with pytest.raises(TypeError, match="load_weights: expected a minicnn Module, got dict"):
        minicnn.load_weights({}, "x.safetensors")
    with pytest.raises(ValueError, match="unknown mapping 'keras'; available: timm"):
        minicnn.load_weights(model, "x.safetensors", mapping="keras")
    with pytest.raises(TypeError, match="save_weights: expected a minicnn Module or a dict of arrays, got int"):
        minicnn.save_weights(3, "x.safetensors")


# --------------------------------------------------------------------------- timm's names

def test_timm_vgg_head_is_a_convolution_and_maps_to_the_linear_layer():
    """timm stores VGG's first classifier layer as a 7x7 conv over the 512x7x7 map; as a Linear over the
    flattened map (C, H, W order) it must compute the same numbers."""
    rng = np.random.default_rng(0)
    conv_w = rng.standard_normal((6, 4, 7, 7)).astype(np.float32)
    fc2_w = rng.standard_normal((5, 6, 1, 1)).astype(np.float32)
    timm = {"features.0.weight": np.zeros(1), "pre_logits.fc1.weight": conv_w, "pre_logits.fc1.bias": np.ones(6),
            "pre_logits.fc2.weight": fc2_w, "pre_logits.fc2.bias": np.ones(5), "head.fc.weight": np.eye(3),
            "head.fc.bias": np.zeros(3)}
    tv = timm_to_torchvision(timm)
    assert list(tv) == ["features.0.weight", "classifier.0.weight", "classifier.0.bias", "classifier.3.weight",
                        "classifier.3.bias", "classifier.6.weight", "classifier.6.bias"]
    assert tv["classifier.0.weight"].shape == (6, 196) and tv["classifier.3.weight"].shape == (5, 6)
    x = minicnn.tensor(rng.standard_normal((2, 4, 7, 7)).astype(np.float32))
    as_conv = F.conv2d(x, minicnn.tensor(conv_w)).numpy().reshape(2, 6)
    as_linear = F.linear(x.flatten(1), minicnn.tensor(tv["classifier.0.weight"])).numpy()
    np.testing.assert_allclose(as_linear, as_conv, rtol=1e-5, atol=1e-5)


def test_timm_resnet_names_are_torchvisions_and_a_timm_hint_is_given(tmp_path):
    model = A.get("resnet18", num_classes=4)
    path = minicnn.save_weights(model, tmp_path / "timm_resnet18.safetensors")   # timm's resnet18 keys are these
    assert minicnn.load_weights(A.get("resnet18", num_classes=4), path, mapping="timm") == ([], [])
    lenet = A.get("lenet5")
    state = lenet.state_dict()
    state["head.fc.weight"] = state.pop("output.weight")
    path = minicnn.save_weights(state, tmp_path / "timm_like.safetensors")
    with pytest.raises(nn.StateDictError, match='mapping="timm"'):
        minicnn.load_weights(lenet, path)
