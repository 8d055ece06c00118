"""minicnn.nn: Module mechanics (registration, state_dict, modes, devices) and every layer against
a NumPy reference computation, with gradient checks on small float64 modules."""
import copy
import re
from collections import OrderedDict

import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as NF
from minicnn import functional as F
from minicnn import gradcheck, nn
from minicnn.nn import Parameter


def t(array, dtype=np.float32, requires_grad=False, device="cpu"):
    return minicnn.tensor(np.asarray(array), dtype=dtype, device=device, requires_grad=requires_grad)


def rand(*shape, seed=0, dtype=np.float32, requires_grad=False, low=-1.0, high=1.0):
    return t(np.random.default_rng(seed).uniform(low, high, shape), dtype, requires_grad)


class Net(nn.Module):
    """A small nested model: own parameter and buffer, a Sequential with BN, a Linear."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(4, 3)
        self.scale = Parameter(np.ones(3, np.float32))
        self.register_buffer("offset", minicnn.zeros(3))
        self.register_buffer("scratch", minicnn.zeros(2), persistent=False)
        self.note = minicnn.zeros(5)                    # a plain tensor attribute: not registered

    def forward(self, x):
        return self.classifier(self.features(x)) * self.scale + self.offset


NET_KEYS = ["scale", "offset",
            "features.0.weight", "features.0.bias",
            "features.1.weight", "features.1.bias", "features.1.running_mean", "features.1.running_var",
            "features.1.num_batches_tracked",
            "classifier.weight", "classifier.bias"]


# =========================================================================== Parameter and Module mechanics

def test_parameter_is_a_leaf_requiring_grad():
    array = np.arange(3.0, dtype=np.float32)
    p = Parameter(array)
    assert isinstance(p, minicnn.Tensor) and p.requires_grad and p.is_leaf and p.grad is None
    assert p.data is array                                          # shares, no copy
    q = Parameter(p)
    assert q.data is array and type(q) is Parameter
    assert not Parameter(array, requires_grad=False).requires_grad
    assert Parameter().shape == (0,)
    y = p * 2
    assert type(y) is minicnn.Tensor and y.requires_grad           # op results are plain tensors
    assert repr(p).startswith("Parameter containing:\ntensor([0., 1., 2.]")
    with pytest.raises(TypeError):
        Parameter(np.arange(3))                                     # integers cannot require grad
    assert not hasattr(p, "__dict__")                               # as light as a Tensor


def test_registration_and_names():
    net = Net()
    assert [name for name, _ in net.named_parameters()] == [
        "scale", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "classifier.weight", "classifier.bias"]
    assert [name for name, _ in net.named_buffers()] == [
        "offset", "scratch", "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"]
    assert [name for name, _ in net.named_modules()] == [
        "", "features", "features.0", "features.1", "features.2", "features.3", "features.4", "classifier"]
    assert [name for name, _ in net.named_children()] == ["features", "classifier"]
    assert list(net.children()) == [net.features, net.classifier]
    assert len(list(net.modules())) == 8
    assert [n for n, _ in net.named_parameters(prefix="model")][:2] == ["model.scale", "model.features.0.weight"]
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert net.features[1].running_mean is dict(net.named_buffers())["features.1.running_mean"]
    assert net.get_submodule("features.0") is net.features[0] and net.get_submodule("") is net
    with pytest.raises(AttributeError, match="no sub-module 'conv'"):
        net.get_submodule("features.conv")
    assert "note" not in dict(net.named_buffers()) and net.note.shape == (5,)
    assert net.num_parameters() == 3 + (4 * 2 * 9 + 4) + 8 + (3 * 4 + 3)
    assert sum(p.numel() for p in net.parameters()) == net.num_parameters()


def test_attribute_assignment_rules():
    m = nn.Linear(3, 2)
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'weight'"):
        m.weight = minicnn.zeros(2, 3)
    m.bias = None                                                   # allowed: removes the bias
    assert m.bias is None and [n for n, _ in m.named_parameters()] == ["weight"]
    m.bias = Parameter(np.zeros(2, np.float32))
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    m.extra = nn.ReLU()
    assert list(dict(m.named_children())) == ["extra"]
    m.extra = Parameter(np.zeros(1, np.float32))                    # re-registering under another kind
    assert "extra" not in dict(m.named_children()) and "extra" in dict(m.named_parameters())
    del m.extra
    assert "extra" not in dict(m.named_parameters())
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'extra'"):
        _ = m.extra
    bn = nn.BatchNorm1d(2)
    bn.running_mean = minicnn.ones(2)                               # buffers accept tensors
    assert bn.running_mean.data.sum() == 2
    with pytest.raises(TypeError, match="as buffer 'running_mean'"):
        bn.running_mean = np.zeros(2)
    with pytest.raises(KeyError, match="attribute 'weight' already exists"):
        bn.register_buffer("weight", minicnn.zeros(2))
    with pytest.raises(KeyError, match="contain"):
        bn.register_buffer("a.b", minicnn.zeros(2))
    assert "running_mean" in dir(bn) and "weight" in dir(bn)

    class Early(nn.Module):
        def __init__(self):
            self.w = Parameter(np.zeros(1, np.float32))             # before super().__init__()

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_shared_parameters_are_counted_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2 and model.num_parameters() == 20
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(model.modules())) == 3
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]    # as PyTorch


def test_forward_is_required_and_called():
    with pytest.raises(NotImplementedError, match=r'Module \[Module\] is missing the required "forward"'):
        nn.Module()(1)

    class Double(nn.Module):
        def forward(self, x, factor=2):
            return x * factor

    assert Double()(3, factor=4) == 12


def test_state_dict_keys_values_and_order():
    net = Net()
    state = net.state_dict()
    assert isinstance(state, OrderedDict) and list(state) == NET_KEYS           # PyTorch's order
    assert all(type(v) is np.ndarray for v in state.values())
    assert state["features.1.num_batches_tracked"].dtype == np.int64
    assert state["features.1.num_batches_tracked"].shape == ()
    assert state["features.0.weight"].shape == (4, 2, 3, 3) and state["features.0.weight"].dtype == np.float32
    np.testing.assert_array_equal(state["features.0.weight"], net.features[0].weight.data)
    state["features.0.weight"][...] = 0                              # a copy: the model is unaffected
    assert np.abs(net.features[0].weight.data).sum() > 0
    kept = net.state_dict(keep_vars=True)
    assert kept["classifier.weight"] is net.classifier.weight
    assert list(nn.BatchNorm2d(3).state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                                    "num_batches_tracked"]
    assert list(nn.BatchNorm2d(3, affine=False, track_running_stats=False).state_dict()) == []
    assert list(nn.Conv2d(1, 2, 3, bias=False).state_dict()) == ["weight"]


def test_save_with_savez_and_load_into_a_fresh_model_bit_for_bit(tmp_path):
    minicnn.manual_seed(1)
    a = Net()
    x = rand(5, 2, 6, 6, seed=3)
    for _ in range(2):                                 # train mode: BN updates its running statistics
        a(x)
    a.offset.fill_(0.5)
    path = tmp_path / "net.npz"
    np.savez(path, **a.state_dict())
    minicnn.manual_seed(2)
    b = Net()
    assert not np.array_equal(a.classifier.weight.data, b.classifier.weight.data)
    result = b.load_state_dict(np.load(path))
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert int(b.features[1].num_batches_tracked.item()) == 2
    assert b.features[1].num_batches_tracked.dtype == np.int64
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(pa, pb, err_msg=name)


def test_load_copies_into_the_existing_arrays_keeping_dtype():
    model = nn.Linear(3, 2)
    weight, array = model.weight, model.weight.data
    state = {k: v.astype(np.float64) + 1 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert model.weight is weight and model.weight.data is array and array.dtype == np.float32
    np.testing.assert_allclose(model.weight.data, state["weight"], rtol=1e-6)
    model.load_state_dict({"weight": minicnn.zeros(2, 3, dtype=np.float64), "bias": [1.0, 2.0]})   # tensors, lists
    np.testing.assert_array_equal(model.weight.data, np.zeros((2, 3)))
    np.testing.assert_array_equal(model.bias.data, [1, 2])


def test_strict_load_reports_every_problem_and_changes_nothing():
    net = Net()
    before = net.state_dict()
    state = net.state_dict()
    del state["classifier.bias"], state["features.1.running_var"]
    state["classifier.weight"] = np.zeros((3, 5), np.float32)
    state["features.9.weight"] = np.zeros(1)
    state["scale"] = np.full(3, 7.0, np.float32)
    with pytest.raises(nn.StateDictError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert message.startswith("Error(s) in loading state_dict for Net:")
    assert 'Missing key(s) in state_dict: "features.1.running_var", "classifier.bias".' in message
    assert 'Unexpected key(s) in state_dict: "features.9.weight".' in message
    assert ('size mismatch for "classifier.weight": the model expects shape (3, 4), '
            'the state_dict has shape (3, 5).') in message
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, ValueError)
    for key, value in net.state_dict().items():                      # nothing was copied
        np.testing.assert_array_equal(value, before[key])

    with pytest.raises(ValueError, match="size mismatch"):             # shapes are checked even when not strict
        net.load_state_dict(state, strict=False)
    state["classifier.weight"] = np.zeros((3, 4), np.float32)
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["features.1.running_var", "classifier.bias"]
    assert result.unexpected_keys == ["features.9.weight"]
    np.testing.assert_array_equal(net.scale.data, [7, 7, 7])


def test_train_and_eval_recurse():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.features.train(False)
    assert net.training and net.classifier.training and not any(m.training for m in net.features.modules())
    with pytest.raises(ValueError):
        net.train("no")


def test_to_dtype_moves_params_grads_and_buffers_in_place():
    net = Net()
    params = list(net.parameters())
    net.classifier.weight.grad = np.ones((3, 4), np.float32)
    assert net.double() is net
    assert all(a is b for a, b in zip(net.parameters(), params))                # the same Parameter objects
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.classifier.weight.grad.dtype == np.float64
    assert net.features[1].running_mean.dtype == np.float64 and net.offset.dtype == np.float64
    assert net.features[1].num_batches_tracked.dtype == np.int64           # integer buffers keep their dtype
    assert net(rand(2, 2, 4, 4, dtype=np.float64)).dtype == np.float64
    net.to(np.float32)
    assert all(p.dtype == np.float32 for p in net.parameters())
    net.to("float64")
    assert net.scale.dtype == np.float64
    net.to("cpu", np.float32).float()
    assert net.scale.dtype == np.float32 and net.scale.device == "cpu"
    assert net.half().scale.dtype == np.float16
    with pytest.raises(TypeError, match="floating point"):
        net.to(np.int32)


def test_to_device(device):
    net = Net().to(device)
    assert all(p.device == device for p in net.parameters())
    assert all(b.device == device for b in net.buffers())
    out = net(rand(2, 2, 5, 5).to(device))
    assert out.device == device and out.shape == (2, 3)
    state = net.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())           # state_dict is on the CPU
    net.cpu()
    assert all(p.device == "cpu" for p in net.parameters())


def test_zero_grad_is_idempotent():
    net = Net()
    net(rand(2, 2, 4, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(not p.grad.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.zero_grad()
    net.zero_grad(set_to_none=False)
    assert all(p.grad is None for p in net.parameters())


def test_requires_grad_apply_and_deepcopy():
    net = Net()
    net.features.requires_grad_(False)
    assert [n for n, p in net.named_parameters() if p.requires_grad] == ["scale", "classifier.weight",
                                                                         "classifier.bias"]
    assert net.num_parameters(trainable_only=True) == 3 + 15
    visited = []
    assert net.apply(lambda m: visited.append(type(m).__name__)) is net
    assert visited == ["Conv2d", "BatchNorm2d", "ReLU", "AdaptiveAvgPool2d", "Flatten", "Sequential", "Linear",
                       "Net"]
    clone = copy.deepcopy(net)
    assert clone.classifier.weight is not net.classifier.weight
    assert isinstance(clone.classifier.weight, Parameter)
    np.testing.assert_array_equal(clone.classifier.weight.data, net.classifier.weight.data)


def test_repr_is_pytorch_like():
    net = Net()
    assert repr(net) == """Net(
  (features): Sequential(
    (0): Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    (1): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (2): ReLU()
    (3): AdaptiveAvgPool2d(output_size=1)
    (4): Flatten(start_dim=1, end_dim=-1)
  )
  (classifier): Linear(in_features=4, out_features=3, bias=True)
)"""
    assert repr(nn.Conv2d(3, 8, (3, 5), stride=2, dilation=2, groups=1, bias=False)) == \
        "Conv2d(3, 8, kernel_size=(3, 5), stride=(2, 2), dilation=(2, 2), bias=False)"
    assert repr(nn.Conv2d(4, 8, 1, groups=2)) == "Conv2d(4, 8, kernel_size=(1, 1), stride=(1, 1), groups=2)"
    assert repr(nn.MaxPool2d(3, 2)) == "MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool2d(2)) == "AvgPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.Dropout(0.3)) == "Dropout(p=0.3, inplace=False)"
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    assert repr(nn.LocalResponseNorm(5, k=2.0)) == "LocalResponseNorm(5, alpha=0.0001, beta=0.75, k=2.0)"
    assert repr(nn.ZeroPad2d((1, 2, 0, 3))) == "ZeroPad2d((1, 2, 0, 3))"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    assert repr(nn.Sigmoid()) == "Sigmoid()" and repr(nn.Identity()) == "Identity()"
    assert repr(nn.Subsampling(6)) == "Subsampling(6, kernel_size=(2, 2), stride=(2, 2))"


def test_sequential_container():
    layers = [nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and list(seq) == layers and seq[0] is layers[0] and seq[-1] is layers[2]
    assert list(dict(seq.named_children())) == ["0", "1", "2"]
    x = rand(5, 4)
    np.testing.assert_array_equal(seq(x).numpy(), layers[2](layers[1](layers[0](x))).numpy())
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and list(head) == layers[:2] and head[0].weight is layers[0].weight
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    del seq[1]
    assert list(dict(seq.named_children())) == ["0", "1", "2"] and seq[1] is layers[2]
    seq[2] = nn.Tanh()
    assert isinstance(seq[2], nn.Tanh)
    with pytest.raises(IndexError):
        seq[3]
    named = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU())]))
    assert [n for n, _ in named.named_parameters()] == ["conv.weight", "conv.bias"]
    assert named.conv is named[0]
    with pytest.raises(TypeError, match="is not a Module subclass"):
        nn.Sequential(lambda x: x)


def test_module_list():
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(blocks) == 3 and [n for n, _ in blocks.named_parameters()][:2] == ["0.weight", "0.bias"]
    blocks.append(nn.ReLU())
    blocks.insert(0, nn.Tanh())
    assert [type(b).__name__ for b in blocks] == ["Tanh", "Linear", "Linear", "Linear", "ReLU"]
    assert list(dict(blocks.named_children())) == ["0", "1", "2", "3", "4"]
    del blocks[0]
    assert isinstance(blocks[0], nn.Linear) and isinstance(blocks[-1], nn.ReLU)
    assert isinstance(blocks[1:3], nn.ModuleList) and len(blocks[1:3]) == 2

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 1)])
            self.plain = [nn.Linear(3, 3)]                               # a plain list is not registered

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    holder = Holder()
    assert [n for n, _ in holder.named_parameters()] == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
                                                        "blocks.1.bias"]
    assert holder(rand(2, 3)).shape == (2, 1)
    with pytest.raises(NotImplementedError):
        blocks(rand(2, 2))


def test_nn_functional_is_minicnn_functional():
    assert NF.relu is F.relu and NF.conv2d is F.conv2d and NF.cross_entropy is F.cross_entropy
    assert "conv2d" in NF.__all__ and "batch_norm" in NF.__all__ and "np" not in NF.__all__


# =========================================================================== NumPy references

def ref_conv2d(x, w, b, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, ho, wo))
    og = o // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg,
                           i * dilation[0]: i * dilation[0] + stride[0] * (ho - 1) + 1: stride[0],
                           j * dilation[1]: j * dilation[1] + stride[1] * (wo - 1) + 1: stride[1]]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, i, j])
    return out if b is None else out + b[None, :, None, None]


def pool_out_size(size, k, s, p, ceil_mode):
    if ceil_mode:
        out = -(-(size + 2 * p - k) // s) + 1
        if (out - 1) * s >= size + p:         # the last window must start inside the input or left padding
            out -= 1
        return out
    return (size + 2 * p - k) // s + 1


def ref_pool2d(x, k, s, p, ceil_mode=False, op="max", count_include_pad=True):
    n, c, h, w = x.shape
    ho, wo = pool_out_size(h, k[0], s[0], p[0], ceil_mode), pool_out_size(w, k[1], s[1], p[1], ceil_mode)
    out = np.empty((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])
            padded_count = (h1 - h0) * (w1 - w0)
            h0c, w0c, h1c, w1c = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            window = x[:, :, h0c:h1c, w0c:w1c]
            if op == "max":
                out[:, :, i, j] = window.max(axis=(2, 3))
            else:
                divisor = padded_count if count_include_pad else window.shape[2] * window.shape[3]
                out[:, :, i, j] = window.sum(axis=(2, 3)) / divisor
    return out


def ref_adaptive_avg_pool2d(x, out_size):
    n, c, h, w = x.shape
    oh, ow = out_size
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            rows = slice(i * h // oh, -(-(i + 1) * h // oh))
            cols = slice(j * w // ow, -(-(j + 1) * w // ow))
            out[:, :, i, j] = x[:, :, rows, cols].mean(axis=(2, 3))
    return out


def ref_lrn(x, size, alpha, beta, k):
    c = x.shape[1]
    out = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - size // 2), min(c, ch + (size - 1) // 2 + 1)
        out[:, ch] = x[:, ch] / (k + alpha / size * (x[:, lo:hi] ** 2).sum(axis=1)) ** beta
    return out


def ref_subsample(x, weight, bias, k, s):
    n, c, h, w = x.shape
    ho, wo = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    out = np.empty((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = x[:, :, i * s[0]: i * s[0] + k[0], j * s[1]: j * s[1] + k[1]]
            out[:, :, i, j] = window.sum(axis=(2, 3)) * weight + bias
    return out


# =========================================================================== layers

def test_parameter_counts_and_shapes():
    conv = nn.Conv2d(3, 64, 3)
    assert conv.weight.shape == (64, 3, 3, 3) and conv.bias.shape == (64,) and conv.num_parameters() == 1792
    assert nn.Conv2d(64, 128, (3, 5), groups=4).weight.shape == (128, 16, 3, 5)
    assert nn.Conv2d(3, 64, 3, bias=False).bias is None
    big = nn.Linear(9216, 4096)
    assert big.weight.shape == (4096, 9216) and big.num_parameters() == 37_752_832
    del big
    bn = nn.BatchNorm2d(64)
    assert bn.num_parameters() == 128 and bn.weight.shape == bn.bias.shape == (64,)
    buffers = dict(bn.named_buffers())
    assert list(buffers) == ["running_mean", "running_var", "num_batches_tracked"]
    assert buffers["running_mean"].shape == buffers["running_var"].shape == (64,)
    assert buffers["num_batches_tracked"].dtype == np.int64 and buffers["num_batches_tracked"].shape == ()
    np.testing.assert_array_equal(bn.running_var.data, np.ones(64))
    sub = nn.Subsampling(6)
    assert sub.weight.shape == sub.bias.shape == (6,) and sub.num_parameters() == 12
    for layer in (nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.ReLU(), nn.Dropout(),
                  nn.LocalResponseNorm(5), nn.Flatten(), nn.ZeroPad2d(1), nn.ScaledTanh(), nn.Softmax(1)):
        assert layer.num_parameters() == 0
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode='zeros'"):
        nn.Conv2d(3, 6, 3, padding_mode="reflect")


CONV_CONFIGS = [
    dict(in_channels=3, out_channels=4, kernel_size=3),
    dict(in_channels=2, out_channels=3, kernel_size=(3, 2), stride=2, padding=1),
    dict(in_channels=2, out_channels=2, kernel_size=3, padding=(2, 1), dilation=2),
    dict(in_channels=4, out_channels=6, kernel_size=1, groups=2, bias=False),
    dict(in_channels=4, out_channels=4, kernel_size=3, stride=(1, 2), padding=1, groups=4),
]


@pytest.mark.parametrize("config", CONV_CONFIGS)
def test_conv2d_against_reference(config):
    conv = nn.Conv2d(**config).double()
    x = rand(2, config["in_channels"], 7, 8, seed=1, dtype=np.float64)
    bias = None if conv.bias is None else conv.bias.data
    ref = ref_conv2d(x.data, conv.weight.data, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    out = conv(x)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-12)
    assert conv.float()(x.float()).dtype == np.float32


def test_conv2d_same_and_valid_padding():
    x = rand(2, 2, 7, 6, seed=24, dtype=np.float64)
    for kernel_size in (3, 4, (2, 5)):
        conv = nn.Conv2d(2, 3, kernel_size, padding="same").double()
        kh, kw = conv.kernel_size                    # PyTorch's 'same': the odd pixel of padding goes after
        padded = np.pad(x.data, ((0, 0), (0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)))
        out = conv(x)
        assert out.shape == (2, 3, 7, 6)
        np.testing.assert_allclose(out.numpy(), ref_conv2d(padded, conv.weight.data, conv.bias.data), rtol=1e-10)
    valid = nn.Conv2d(2, 3, 3, padding="valid")
    assert valid(x.float()).shape == (2, 3, 5, 4) and repr(valid) == "Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1))"
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(2, 3, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="'valid' or 'same'"):
        nn.Conv2d(2, 3, 3, padding="full")


def test_linear_against_reference():
    lin = nn.Linear(5, 3)
    x = rand(4, 5, seed=2)
    np.testing.assert_allclose(lin(x).numpy(), x.data @ lin.weight.data.T + lin.bias.data, rtol=1e-5, atol=1e-6)
    x3 = rand(2, 4, 5, seed=3)
    assert lin(x3).shape == (2, 4, 3)
    no_bias = nn.Linear(5, 3, bias=False)
    np.testing.assert_allclose(no_bias(x).numpy(), x.data @ no_bias.weight.data.T, rtol=1e-5, atol=1e-6)


def test_layers_validate_their_input():
    with pytest.raises(ValueError, match=re.escape(
            "Conv2d(3, 64, kernel_size=(3, 3)): expected input of shape (N, 3, H, W) or (3, H, W), got (8, 1, 32, 32)")):
        nn.Conv2d(3, 64, 3)(minicnn.zeros(8, 1, 32, 32))
    with pytest.raises(ValueError, match=re.escape("expected input of shape (N, 3, H, W) or (3, H, W), got (1, 32, 32)")):
        nn.Conv2d(3, 64, 3)(minicnn.zeros(1, 32, 32))
    with pytest.raises(ValueError, match=re.escape("expected input of shape (N, 3, H, W) or (3, H, W), got (3, 32)")):
        nn.Conv2d(3, 64, 3)(minicnn.zeros(3, 32))
    with pytest.raises(ValueError, match=re.escape("BatchNorm2d(3): expected input of shape (N, 3, H, W), got (3, 5, 5)")):
        nn.BatchNorm2d(3)(minicnn.zeros(3, 5, 5))        # PyTorch's BatchNorm2d refuses an unbatched image too
    with pytest.raises(ValueError, match=re.escape(
            "Linear(in_features=9216, out_features=10, bias=True): expected input of shape (*, 9216), got (8, 1000)")):
        nn.Linear(9216, 10)(minicnn.zeros(8, 1000))
    with pytest.raises(ValueError, match=re.escape(
            "BatchNorm2d(16): expected input of shape (N, 16, H, W), got (4, 8, 5, 5)")):
        nn.BatchNorm2d(16)(minicnn.zeros(4, 8, 5, 5))
    with pytest.raises(ValueError, match=re.escape("BatchNorm1d(16): expected input of shape (N, 16) or (N, 16, L)")):
        nn.BatchNorm1d(16)(minicnn.zeros(4, 16, 2, 2))
    with pytest.raises(ValueError, match=re.escape(
            "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False): "
            "expected input of shape (N, C, H, W) or (C, H, W), got (4, 4)")):
        nn.MaxPool2d(2)(minicnn.zeros(4, 4))
    with pytest.raises(ValueError, match=re.escape(
            "Subsampling(6, kernel_size=(2, 2)): expected input of shape (N, 6, H, W)")):
        nn.Subsampling(6)(minicnn.zeros(1, 3, 4, 4))
    with pytest.raises(TypeError, match=re.escape(
            "Conv2d(1, 2, kernel_size=(3, 3)): expected a minicnn Tensor, got ndarray")):
        nn.Conv2d(1, 2, 3)(np.zeros((1, 1, 5, 5)))
    with pytest.raises(TypeError, match="input dtype float64 does not match the parameter dtype float32"):
        nn.Linear(2, 2)(minicnn.zeros(3, 2, dtype=np.float64))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(4)(minicnn.zeros(1, 4))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def bn_reference(x, weight, bias, eps, mean=None, var=None):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if mean is None:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * weight.reshape(shape) + bias.reshape(shape)


def test_batchnorm2d_train_uses_batch_stats_and_updates_running_stats():
    bn = nn.BatchNorm2d(3, momentum=0.2).double()
    bn.weight.data[...] = [1.0, 2.0, 0.5]
    bn.bias.data[...] = [0.0, -1.0, 3.0]
    x = rand(4, 3, 5, 6, seed=4, dtype=np.float64, low=-2, high=3)
    out = bn(x)
    ref = bn_reference(x.data, bn.weight.data, bn.bias.data, 1e-5)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-12)
    count = 4 * 5 * 6
    batch_mean = x.data.mean(axis=(0, 2, 3))
    unbiased_var = x.data.var(axis=(0, 2, 3)) * count / (count - 1)
    np.testing.assert_allclose(bn.running_mean.data, 0.2 * batch_mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, 0.8 * 1 + 0.2 * unbiased_var, rtol=1e-12)
    assert int(bn.num_batches_tracked.item()) == 1
    bn(x)
    np.testing.assert_allclose(bn.running_mean.data, (1 - 0.8 ** 2) * batch_mean, rtol=1e-12)
    assert int(bn.num_batches_tracked.item()) == 2 and bn.num_batches_tracked.dtype == np.int64


def test_batchnorm2d_eval_uses_running_stats_deterministically():
    bn = nn.BatchNorm2d(2).double()
    bn.running_mean.data[...] = [0.5, -1.0]
    bn.running_var.data[...] = [4.0, 0.25]
    bn.weight.data[...] = [2.0, 1.0]
    bn.eval()
    x = rand(3, 2, 4, 4, seed=5, dtype=np.float64)
    out1, out2 = bn(x).numpy(), bn(x).numpy()
    np.testing.assert_array_equal(out1, out2)
    ref = bn_reference(x.data, bn.weight.data, bn.bias.data, 1e-5, np.array([0.5, -1.0]), np.array([4.0, 0.25]))
    np.testing.assert_allclose(out1, ref, rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean.data, [0.5, -1.0])        # not updated in eval
    assert int(bn.num_batches_tracked.item()) == 0
    single = bn(x[:1])                                                      # one sample is fine in eval
    np.testing.assert_allclose(single.numpy(), ref[:1], rtol=1e-12)


def test_batchnorm_variants():
    x = rand(6, 3, seed=6, dtype=np.float64, low=-2, high=2)
    bn = nn.BatchNorm1d(3, momentum=None).double()                         # cumulative average
    bn(x)
    bn(x * 3)
    np.testing.assert_allclose(bn.running_mean.data, (x.data.mean(0) + 3 * x.data.mean(0)) / 2, rtol=1e-12)
    np.testing.assert_allclose(bn(x).numpy(), bn_reference(x.data, np.ones(3), np.zeros(3), 1e-5), rtol=1e-10)
    seq = rand(4, 3, 5, seed=7, dtype=np.float64)                           # (N, C, L)
    bn1 = nn.BatchNorm1d(3).double()
    out = bn1(seq)
    assert out.shape == (4, 3, 5)
    np.testing.assert_allclose(out.numpy(), bn_reference(seq.data, np.ones(3), np.zeros(3), 1e-5), rtol=1e-10)
    np.testing.assert_allclose(bn1.running_mean.data, 0.1 * seq.data.mean(axis=(0, 2)), rtol=1e-12)
    free = nn.BatchNorm2d(3, affine=False, track_running_stats=False).double()
    assert free.weight is None and free.running_mean is None and list(free.parameters()) == []
    img = rand(4, 3, 2, 2, seed=8, dtype=np.float64)
    free.eval()                                                             # no running stats: batch stats
    np.testing.assert_allclose(free(img).numpy(), bn_reference(img.data, np.ones(3), np.zeros(3), 1e-5), rtol=1e-10)


@pytest.mark.parametrize("args, kernel, stride, padding, ceil_mode", [
    (dict(kernel_size=2), (2, 2), (2, 2), 0, False),
    (dict(kernel_size=3, stride=2), (3, 3), (2, 2), 0, False),
    (dict(kernel_size=3, stride=2, padding=1), (3, 3), (2, 2), 1, False),
    (dict(kernel_size=(3, 2), stride=(2, 1), ceil_mode=True), (3, 2), (2, 1), 0, True),
    (dict(kernel_size=3, stride=2, ceil_mode=True), (3, 3), (2, 2), 0, True),
])
def test_maxpool2d_against_reference(args, kernel, stride, padding, ceil_mode):
    x = rand(2, 3, 7, 6, seed=9, dtype=np.float64)
    ref = ref_pool2d(x.data, kernel, stride, (padding, padding), ceil_mode, "max")
    np.testing.assert_array_equal(nn.MaxPool2d(**args)(x).numpy(), ref)


def test_avgpool2d_against_reference():
    x = rand(2, 2, 7, 7, seed=10, dtype=np.float64)
    for kwargs in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                   dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
                   dict(kernel_size=2, stride=2, ceil_mode=True),
                   dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)):
        pool = nn.AvgPool2d(**kwargs)
        k, s, p = pool.kernel_size, pool.stride, pool.padding
        ref = ref_pool2d(x.data, (k, k), (s, s), (p, p), kwargs.get("ceil_mode", False), "avg",
                         kwargs.get("count_include_pad", True))
        np.testing.assert_allclose(pool(x).numpy(), ref, rtol=1e-12, err_msg=str(kwargs))


def test_adaptive_avg_pool2d_against_reference():
    x = rand(2, 3, 7, 5, seed=11, dtype=np.float64)
    for size, expected in ((1, (1, 1)), ((3, 2), (3, 2)), ((7, 5), (7, 5)), ((None, 2), (7, 2))):
        out = nn.AdaptiveAvgPool2d(size)(x)
        assert out.shape == (2, 3) + expected
        np.testing.assert_allclose(out.numpy(), ref_adaptive_avg_pool2d(x.data, expected), rtol=1e-12)


def test_local_response_norm_against_reference():
    x = rand(2, 7, 3, 3, seed=12, dtype=np.float64, low=-3, high=3)
    for size, alpha, beta, k in ((5, 1e-4, 0.75, 2.0), (3, 0.5, 0.9, 1.0), (4, 1.0, 0.5, 1.5)):
        out = nn.LocalResponseNorm(size, alpha, beta, k)(x)
        np.testing.assert_allclose(out.numpy(), ref_lrn(x.data, size, alpha, beta, k), rtol=1e-10)


def test_subsampling_against_reference():
    layer = nn.Subsampling(3).double()
    x = rand(2, 3, 6, 8, seed=13, dtype=np.float64)
    out = layer(x)
    assert out.shape == (2, 3, 3, 4)
    ref = ref_subsample(x.data, layer.weight.data[None, :], layer.bias.data[None, :], (2, 2), (2, 2))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)
    layer3 = nn.Subsampling(2, kernel_size=3, stride=1).double()
    x = rand(1, 2, 5, 5, seed=14, dtype=np.float64)
    ref = ref_subsample(x.data, layer3.weight.data[None, :], layer3.bias.data[None, :], (3, 3), (1, 1))
    np.testing.assert_allclose(layer3(x).numpy(), ref, rtol=1e-12)


def test_dropout_train_and_eval():
    drop = nn.Dropout(0.25)
    x = minicnn.ones(200, 100)
    minicnn.manual_seed(3)
    a = drop(x).numpy()
    minicnn.manual_seed(3)
    b = drop(x).numpy()
    np.testing.assert_array_equal(a, b)                                       # seeded
    assert set(np.unique(a)) <= {0.0, np.float32(1 / 0.75)}
    assert (a == 0).mean() == pytest.approx(0.25, abs=0.02)
    assert not np.array_equal(a, drop(x).numpy())                             # fresh mask each call
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())                 # identity in eval
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).numpy(), x.numpy())
    np.testing.assert_array_equal(nn.Dropout(1.0)(x).numpy(), np.zeros((200, 100)))   # as PyTorch


def test_activations_and_shape_layers():
    x = rand(3, 4, seed=15, dtype=np.float64, low=-3, high=3)
    np.testing.assert_allclose(nn.ReLU()(x).numpy(), np.maximum(x.data, 0))
    before = x.numpy().copy()
    nn.ReLU(inplace=True)(x)                                                  # accepted, input untouched
    np.testing.assert_array_equal(x.numpy(), before)
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp(-x.data)), rtol=1e-12)
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh(x.data), rtol=1e-12)
    np.testing.assert_allclose(nn.ScaledTanh()(x).numpy(), 1.7159 * np.tanh(2 * x.data / 3), rtol=1e-12)
    assert nn.ScaledTanh()(t([1.0, -1.0], np.float64)).numpy() == pytest.approx([1.0, -1.0], abs=2e-4)
    soft = nn.Softmax(dim=1)(x).numpy()
    np.testing.assert_allclose(soft.sum(axis=1), np.ones(3))
    np.testing.assert_allclose(soft, np.exp(x.data) / np.exp(x.data).sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(nn.LogSoftmax(dim=0)(x).numpy(), np.log(nn.Softmax(0)(x).numpy()), rtol=1e-10)
    img = rand(2, 3, 4, 5, seed=16)
    assert nn.Flatten()(img).shape == (2, 60) and nn.Flatten(0, 1)(img).shape == (6, 4, 5)
    assert nn.Flatten(start_dim=2)(img).shape == (2, 3, 20)
    assert nn.Identity(54, unused="x")(img) is img
    padded = nn.ZeroPad2d((1, 2, 0, 3))(img)
    assert padded.shape == (2, 3, 7, 8)
    np.testing.assert_array_equal(padded.numpy(), np.pad(img.data, ((0, 0), (0, 0), (0, 3), (1, 2))))
    assert nn.ZeroPad2d(2)(img).shape == (2, 3, 8, 9) and nn.ZeroPad2d(2).padding == (2, 2, 2, 2)


def test_loss_modules():
    logits, target = rand(4, 3, seed=17, dtype=np.float64), np.array([0, 2, 1, 1])
    assert nn.CrossEntropyLoss()(logits, target).item() == pytest.approx(F.cross_entropy(logits, target).item())
    smooth = nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum")
    assert smooth(logits, target).item() == pytest.approx(
        F.cross_entropy(logits, target, reduction="sum", label_smoothing=0.1).item())
    assert nn.NLLLoss()(nn.LogSoftmax(1)(logits), target).item() == pytest.approx(
        F.cross_entropy(logits, target).item())
    assert nn.MSELoss(reduction="none")(logits, logits * 0).shape == (4, 3)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


# =========================================================================== gradients

def check_module_gradients(module, x):
    """gradcheck with respect to the input and to every parameter of a float64 module."""
    params = list(module.parameters())
    assert gradcheck(lambda inp, *ps: module(inp), x, *params)


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 2, 5, 5)),
    (lambda: nn.Conv2d(4, 4, (2, 3), dilation=(2, 1), groups=2), (1, 4, 5, 5)),
    (lambda: nn.Linear(4, 3), (2, 4)),
    (lambda: nn.BatchNorm2d(3), (3, 3, 2, 2)),
    (lambda: nn.BatchNorm1d(3), (4, 3)),
    (lambda: nn.Subsampling(2), (2, 2, 4, 4)),
    (lambda: nn.LocalResponseNorm(3, alpha=0.5, k=2.0), (2, 4, 2, 2)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (1, 2, 5, 5)),
    (lambda: nn.AdaptiveAvgPool2d((2, 3)), (1, 2, 5, 4)),
    (lambda: nn.MaxPool2d(2), (1, 2, 4, 4)),
    (lambda: nn.ScaledTanh(), (3, 4)),
])
def test_gradcheck_layers(make, shape):
    module = make().double()
    x = rand(*shape, seed=18, dtype=np.float64, requires_grad=True, low=-2, high=2)
    if isinstance(module, nn.MaxPool2d):                      # distinct values: no ties at a window's max
        x.data = np.random.default_rng(0).permutation(x.numel()).reshape(shape) / 10.0
    check_module_gradients(module, x)


def test_gradcheck_bn_eval_and_seeded_dropout():
    bn = nn.BatchNorm2d(2).double()
    bn.running_mean.data[...] = [0.3, -0.2]
    bn.running_var.data[...] = [2.0, 0.5]
    bn.eval()
    check_module_gradients(bn, rand(2, 2, 2, 2, seed=19, dtype=np.float64, requires_grad=True))
    drop = nn.Dropout(0.5)

    def seeded(inp):
        minicnn.manual_seed(4)
        return drop(inp)

    assert gradcheck(seeded, rand(4, 5, seed=20, dtype=np.float64, requires_grad=True))


def tiny_cnn():
    return nn.Sequential(
        nn.ZeroPad2d(1), nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.LocalResponseNorm(3), nn.Subsampling(4), nn.ScaledTanh(),
        nn.Conv2d(4, 6, 1, groups=2), nn.Tanh(), nn.AvgPool2d(1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Sigmoid(), nn.Dropout(0.2), nn.Linear(8, 3))


def test_gradients_reach_every_parameter():
    model = tiny_cnn()
    x = rand(4, 1, 8, 8, seed=21)
    loss = F.cross_entropy(model(x), np.array([0, 1, 2, 1]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == np.float32, name
        assert np.isfinite(p.grad).all() and np.abs(p.grad).sum() > 0, name


def test_whole_model_gradcheck_in_float64():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Tanh(), nn.Subsampling(2),
                          nn.Flatten(), nn.Linear(8, 3)).double()
    x = rand(2, 1, 4, 4, seed=22, dtype=np.float64, requires_grad=True)
    check_module_gradients(model, x)


def test_layers_on_device(device):
    model = tiny_cnn().to(device)
    x = rand(2, 1, 8, 8, seed=23).to(device)
    out = model(x)
    assert out.device == device and out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    conv = nn.Conv2d(2, 3, 3, device=device, dtype=np.float64)
    assert conv.weight.device == device and conv.weight.dtype == np.float64
    bn = nn.BatchNorm2d(3, device=device)
    assert all(b.device == device for b in bn.buffers())


def test_load_state_dict_without_num_batches_tracked():
    """Older PyTorch checkpoints lack BatchNorm's counter; PyTorch loads them strictly, so do we."""
    bn = nn.BatchNorm2d(3)
    sd = {k: v for k, v in bn.state_dict().items() if not k.endswith("num_batches_tracked")}
    sd["running_mean"] = np.arange(3, dtype=np.float32)
    bn.load_state_dict(sd, strict=True)
    np.testing.assert_array_equal(bn.running_mean.numpy(), [0, 1, 2])
    with pytest.raises(ValueError, match='Missing key.*"running_var"'):
        bn.load_state_dict({k: v for k, v in sd.items() if k != "running_var"})


def test_a_one_element_array_fills_a_scalar_as_in_pytorch():
    """PyTorch loads a (1,)-shaped value into a 0-d buffer (files from PyTorch 0.3 keep
    ``num_batches_tracked`` so); any other shape for a scalar is still a size mismatch."""
    bn = nn.BatchNorm2d(3)
    sd = bn.state_dict()
    sd["num_batches_tracked"] = np.array([7], dtype=np.int64)
    bn.load_state_dict(sd)
    assert bn.num_batches_tracked.shape == () and int(bn.num_batches_tracked.item()) == 7
    sd["num_batches_tracked"] = np.array([7, 8], dtype=np.int64)
    with pytest.raises(ValueError, match=r'size mismatch for "num_batches_tracked": the model expects shape \(\), '
                                         r"the state_dict has shape \(2,\)"):
        bn.load_state_dict(sd)
    sd = bn.state_dict()
    sd["running_mean"] = np.zeros((1,), dtype=np.float32)          # not a scalar: no such rule
    with pytest.raises(ValueError, match='size mismatch for "running_mean"'):
        bn.load_state_dict(sd)


@pytest.mark.parametrize("mode", ["textbook", "fast"])
def test_linear_with_zero_in_or_out_features_works_as_in_pytorch(mode):
    """Linear(0, 3) gives the bias for every row; Linear(4, 0) gives an empty output and a zero dx."""
    with minicnn.kernels.use(mode):
        lin = nn.Linear(0, 3)
        x = minicnn.zeros(2, 5, 0, requires_grad=True)
        y = lin(x)
        np.testing.assert_array_equal(y.numpy(), np.broadcast_to(lin.bias.numpy(), (2, 5, 3)))
        y.sum().backward()
        assert x.grad.shape == (2, 5, 0) and lin.weight.grad.shape == (3, 0)
        np.testing.assert_array_equal(lin.bias.grad.numpy(), [10, 10, 10])
        lin = nn.Linear(4, 0)
        x = minicnn.randn(2, 5, 4, requires_grad=True)
        y = lin(x)
        assert y.shape == (2, 5, 0)
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 5, 4), np.float32))
        assert lin.weight.grad.shape == (0, 4) and lin.bias.grad.shape == (0,)
