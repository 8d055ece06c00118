"""``python -m minicnn.convert``: PyTorch checkpoints to safetensors, and the CLI's exit codes and messages.

The policy of ``minicnn.cli``: usage errors are one ``prog: error:`` line, exit 2, nothing written;
runtime failures one ``prog: error:`` line that says what failed and what to do, exit 1, nothing
written (``--debug`` adds the traceback).  The tests
that make ``.pth`` files need PyTorch and skip without it; the others run everywhere.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

import minicnn
from minicnn import architectures as A
from minicnn import convert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        convert.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.mark.parametrize("argv,message", [
    (["in.pth"], "the following arguments are required: OUTPUT"),
    (["in.pth", "out.npz"], "OUTPUT must end in .safetensors, got 'out.npz'"),
    (["same.safetensors", "same.safetensors"], "INPUT and OUTPUT are the same file"),
    (["in.pth", "o.safetensors", "--num-classes", "3"], "--num-classes and --model-option need --arch"),
    (["in.pth", "o.safetensors", "--arch", "resnet19"], "argument --arch: invalid choice: 'resnet19'"),
    (["in.pth", "o.safetensors", "--arch", "lenet5", "--num-classes", "0"],
     "argument --num-classes: must be a positive integer, got 0"),
    (["in.pth", "o.safetensors", "--arch", "lenet5", "-o", "aux_logits=false"], "lenet5 has no option 'aux_logits'"),
    (["in.pth", "o.safetensors", "--arch", "googlenet", "-o", "aux_logits=maybe"],
     "googlenet option aux_logits takes true or false, got 'maybe'"),
])
def test_usage_errors_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"python -m minicnn.convert: error: {message}")
    assert list(tmp_path.iterdir()) == []


def test_without_pytorch_a_clear_message_and_exit_1(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)           # import torch now raises ImportError
    (tmp_path / "r.pth").write_bytes(b"PK\x03\x04")
    code, out, err = run(capsys, tmp_path / "r.pth", tmp_path / "r.safetensors")
    assert code == 1 and out == ""
    assert err == ("python -m minicnn.convert: error: reading a PyTorch checkpoint needs PyTorch, which is not "
                   "installed. Install it where you convert (pip install torch); minicnn itself never needs it\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.pth"]


# --------------------------------------------------------------------------- with PyTorch

@pytest.fixture
def torch_resnet(tmp_path):
    torch = pytest.importorskip("torch")
    import torch_models
    torch.manual_seed(0)
    model = torch_models.get("resnet18", num_classes=10).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 1.5)
    return torch, model


def test_a_torchvision_pth_converts_and_loads_into_minicnn(capsys, tmp_path, torch_resnet):
    torch, model = torch_resnet
    torch.save(model.state_dict(), tmp_path / "resnet18.pth")
    code, out, err = run(capsys, tmp_path / "resnet18.pth", tmp_path / "resnet18.safetensors",
                         "--arch", "resnet18", "--num-classes", "10")
    assert (code, err) == (0, "")
    assert out == (f"wrote {tmp_path / 'resnet18.safetensors'}: 122 arrays, 11,191,262 values (float32, int64); "
                   "checked: they load into minicnn's resnet18\n")
    ours = A.get("resnet18", num_classes=10, weights=tmp_path / "resnet18.safetensors").eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    with minicnn.no_grad():
        got = ours(minicnn.tensor(x)).numpy()
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_wrapped_dataparallel_bfloat16_checkpoints_are_unwrapped(capsys, tmp_path, torch_resnet):
    torch, model = torch_resnet
    state = {"module." + k: (v.bfloat16() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "ckpt.pt")
    code, out, err = run(capsys, tmp_path / "ckpt.pt", tmp_path / "w.safetensors")
    assert code == 0, err
    assert out.endswith("; took the state_dict under 'state_dict'; removed the 'module.' prefix (nn.DataParallel); "
                        "cast 102 bfloat16 arrays to float32\n")
    arrays = minicnn.read_weights(tmp_path / "w.safetensors")
    assert arrays["conv1.weight"].dtype == np.float32 and arrays["bn1.num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(arrays["fc.bias"], model.fc.bias.detach().bfloat16().float().numpy())
    bf16 = tmp_path / "bf16.safetensors"                          # a bfloat16 safetensors file converts too
    from safetensors.torch import save_file
    save_file({"w": torch.ones(2, dtype=torch.bfloat16)}, str(bf16))
    code, out, err = run(capsys, bf16, tmp_path / "f32.safetensors")
    assert code == 0 and "cast 1 bfloat16 arrays to float32" in out
    np.testing.assert_array_equal(minicnn.read_weights(tmp_path / "f32.safetensors")["w"], [1.0, 1.0])


class NotATensor:
    pass


def test_a_pickled_object_is_refused_and_nothing_is_written(capsys, tmp_path, torch_resnet):
    torch, _ = torch_resnet
    torch.save({"w": torch.ones(2), "extra": NotATensor()}, tmp_path / "evil.pth")
    code, out, err = run(capsys, tmp_path / "evil.pth", tmp_path / "out.safetensors")
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"python -m minicnn.convert: error: {tmp_path / 'evil.pth'} holds a Python object (")
    assert "NotATensor) besides tensors" in err and "torch.load(weights_only=True)" in err
    assert not (tmp_path / "out.safetensors").exists()
    code, out, err = run(capsys, tmp_path / "evil.pth", tmp_path / "out.safetensors", "--debug")
    assert code == 1 and "Traceback (most recent call last)" in err and err.rstrip().splitlines()[-1].startswith(
        "python -m minicnn.convert: error: ")


def test_runtime_failures_say_what_to_do(capsys, tmp_path, torch_resnet):
    torch, model = torch_resnet
    code, _, err = run(capsys, tmp_path / "missing.pth", tmp_path / "o.safetensors")
    assert (code, err) == (1, f"python -m minicnn.convert: error: {tmp_path / 'missing.pth'}: no such file. "
                              "Check the path\n")
    torch.save(model.state_dict(), tmp_path / "r.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "r.pth").read_bytes()[:2000])
    code, _, err = run(capsys, tmp_path / "cut.pth", tmp_path / "o.safetensors")
    assert code == 1 and len(err.splitlines()) == 1 and "damaged (truncated?) or not a PyTorch checkpoint" in err
    torch.save([1, 2, 3], tmp_path / "list.pth")
    code, _, err = run(capsys, tmp_path / "list.pth", tmp_path / "o.safetensors")
    assert code == 1 and "holds a list, not a state_dict" in err
    code, _, err = run(capsys, tmp_path / "r.pth", tmp_path / "o.safetensors", "--arch", "resnet34",
                       "--num-classes", "10")
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("python -m minicnn.convert: error: the weights do not fit minicnn's resnet34: "
                          "Missing key(s) in state_dict: ")
    assert err.rstrip().endswith("Nothing was written; pass the matching --num-classes / --model-option, or --mapping")
    assert not (tmp_path / "o.safetensors").exists()
