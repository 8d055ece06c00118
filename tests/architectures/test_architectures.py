"""The five CNN families: parameter counts, torchvision's state_dict layout, output shapes,
a training step, eval determinism, state_dict round trips, options and input-size limits.

Big models (VGG ~140 M parameters, AlexNet 61 M) are built once per case: ``built`` is a
module-scoped fixture parametrised over the cases, so pytest runs every test of one case
together and frees the model before building the next.
"""
import gc
from dataclasses import dataclass, field

import numpy as np
import pytest

import minicnn
from minicnn import architectures as A
from minicnn import functional as F
from minicnn import nn, optim
from minicnn.architectures.googlenet import googlenet_loss


@dataclass
class Case:
    name: str
    params: int                  # exact parameter count (PyTorch's, minus masked-off weights)
    test_input: tuple            # (N, C, H, W) used for training / determinism / round trip
    min_size: int                # smallest H = W that works (eval forward)
    options: dict = field(default_factory=dict)
    num_classes: int = 1000
    keys: int | None = None      # number of state_dict entries (torchvision's)
    head: tuple = ()             # first state_dict keys, in order
    tail: tuple = ()             # last state_dict keys, in order
    shapes: dict = field(default_factory=dict)   # key -> shape, spot checks
    exact_size: bool = False     # LeNet: only this size
    round_trip: bool = True      # VGG: only vgg16_bn (its code path covers the others; 0.55 GB to write)

    @property
    def id(self):
        return self.name + "".join(f"-{k}={v}" for k, v in self.options.items())


RESNET_HEAD = ("conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
               "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.0.bn1.weight")
GOOGLENET_HEAD = ("conv1.conv.weight", "conv1.bn.weight", "conv1.bn.bias", "conv1.bn.running_mean",
                  "conv1.bn.running_var", "conv1.bn.num_batches_tracked", "conv2.conv.weight")
VGG_TAIL = ("classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias",
            "classifier.6.weight", "classifier.6.bias")

CASES = [
    Case("lenet5", 61_750, (2, 1, 32, 32), 32, num_classes=10, keys=14, exact_size=True,
         head=("c1.weight", "c1.bias", "s2.weight", "s2.bias", "c3.weight"), tail=("output.weight", "output.bias"),
         shapes={"c3.weight": (16, 6, 5, 5), "s2.weight": (6,), "c5.weight": (120, 16, 5, 5), "f6.weight": (84, 120)}),
    Case("lenet5", 60_850, (2, 1, 32, 32), 32, {"c3_table": True}, num_classes=10, keys=14, exact_size=True,
         head=("c1.weight", "c1.bias", "s2.weight", "s2.bias", "c3.weight", "c3.bias"),
         tail=("output.weight", "output.bias"), shapes={"c3.weight": (16, 6, 5, 5)}),
    Case("lenet5_keras", 1_256_080, (2, 1, 28, 28), 28, {"input_size": 28}, num_classes=10, keys=8, exact_size=True,
         head=("conv1.weight", "conv1.bias", "conv2.weight"), tail=("fc2.weight", "fc2.bias"),
         shapes={"fc1.weight": (500, 2450), "conv2.weight": (50, 20, 5, 5)}),
    Case("lenet5_keras", 1_631_080, (2, 1, 32, 32), 32, num_classes=10, keys=8,
         exact_size=True, head=("conv1.weight", "conv1.bias"), shapes={"fc1.weight": (500, 3200)}),
    Case("alexnet", 61_100_840, (2, 3, 64, 64), 63, keys=16,
         head=("features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
               "features.6.weight", "features.6.bias", "features.8.weight", "features.8.bias",
               "features.10.weight", "features.10.bias"),
         tail=("classifier.1.weight", "classifier.1.bias", "classifier.4.weight", "classifier.4.bias",
               "classifier.6.weight", "classifier.6.bias"),
         shapes={"features.0.weight": (64, 3, 11, 11), "features.3.weight": (192, 64, 5, 5),
                 "classifier.1.weight": (4096, 9216), "classifier.6.weight": (1000, 4096)}),
    Case("alexnet", 61_100_840, (2, 3, 63, 63), 63, {"lrn": True}, keys=16,
         head=("features.0.weight", "features.0.bias", "features.4.weight"), tail=("classifier.6.bias",)),
    Case("vgg16", 138_357_544, (2, 3, 32, 32), 32, keys=32, round_trip=False,
         head=("features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias", "features.5.weight"),
         tail=("features.28.weight", "features.28.bias") + VGG_TAIL,
         shapes={"features.0.weight": (64, 3, 3, 3), "features.28.weight": (512, 512, 3, 3),
                 "classifier.0.weight": (4096, 25088)}),
    Case("vgg16_bn", 138_365_992, (2, 3, 32, 32), 32, keys=97,
         head=("features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
               "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
               "features.3.weight"),
         tail=("features.40.weight", "features.40.bias", "features.41.weight", "features.41.bias",
               "features.41.running_mean", "features.41.running_var", "features.41.num_batches_tracked") + VGG_TAIL),
    Case("vgg19", 143_667_240, (2, 3, 32, 32), 32, keys=38, round_trip=False,
         head=("features.0.weight", "features.0.bias", "features.2.weight"),
         tail=("features.34.weight", "features.34.bias") + VGG_TAIL),
    Case("vgg19_bn", 143_678_248, (2, 3, 32, 32), 32, keys=118, round_trip=False,
         head=("features.0.weight", "features.0.bias", "features.1.weight"),
         tail=("features.49.weight", "features.49.bias", "features.50.weight", "features.50.bias",
               "features.50.running_mean", "features.50.running_var", "features.50.num_batches_tracked") + VGG_TAIL),
    Case("googlenet", 13_004_888, (2, 3, 32, 32), 31, keys=364, head=GOOGLENET_HEAD,
         tail=("aux2.fc1.weight", "aux2.fc1.bias", "aux2.fc2.weight", "aux2.fc2.bias", "fc.weight", "fc.bias"),
         shapes={"inception3a.branch1.conv.weight": (64, 192, 1, 1),
                 "inception3a.branch2.1.conv.weight": (128, 96, 3, 3),
                 "inception3a.branch3.1.conv.weight": (32, 16, 3, 3),     # torchvision's 3x3, not 5x5
                 "inception3a.branch4.1.conv.weight": (32, 192, 1, 1),
                 "inception5b.branch3.1.bn.running_var": (128,),
                 "aux1.conv.conv.weight": (128, 512, 1, 1), "aux2.conv.conv.weight": (128, 528, 1, 1),
                 "aux1.fc1.weight": (1024, 2048), "fc.weight": (1000, 1024)}),
    Case("googlenet", 6_624_904, (2, 3, 32, 32), 31, {"aux_logits": False}, keys=344, head=GOOGLENET_HEAD,
         tail=("inception5b.branch4.1.bn.num_batches_tracked", "fc.weight", "fc.bias")),
    Case("resnet18", 11_689_512, (2, 3, 32, 32), 1, keys=122, head=RESNET_HEAD,
         tail=("layer4.1.bn2.running_var", "layer4.1.bn2.num_batches_tracked", "fc.weight", "fc.bias"),
         shapes={"layer2.0.downsample.0.weight": (128, 64, 1, 1), "layer4.1.conv2.weight": (512, 512, 3, 3),
                 "fc.weight": (1000, 512)}),
    Case("resnet34", 21_797_672, (2, 3, 32, 32), 1, keys=218, head=RESNET_HEAD,
         tail=("layer4.2.bn2.num_batches_tracked", "fc.weight", "fc.bias"),
         shapes={"layer3.5.conv1.weight": (256, 256, 3, 3)}),
    Case("resnet50", 25_557_032, (2, 3, 32, 32), 1, keys=320, head=RESNET_HEAD,
         tail=("layer4.2.bn3.running_var", "layer4.2.bn3.num_batches_tracked", "fc.weight", "fc.bias"),
         shapes={"layer1.0.conv1.weight": (64, 64, 1, 1), "layer1.0.conv2.weight": (64, 64, 3, 3),
                 "layer1.0.conv3.weight": (256, 64, 1, 1), "layer1.0.downsample.0.weight": (256, 64, 1, 1),
                 "layer1.0.downsample.1.running_mean": (256,), "layer2.0.conv2.weight": (128, 128, 3, 3),
                 "layer4.0.downsample.0.weight": (2048, 1024, 1, 1), "fc.weight": (1000, 2048)}),
    Case("resnet101", 44_549_160, (2, 3, 32, 32), 1, keys=626, head=RESNET_HEAD,
         tail=("layer4.2.bn3.num_batches_tracked", "fc.weight", "fc.bias"),
         shapes={"layer3.22.conv3.weight": (1024, 256, 1, 1)}),
    Case("resnet152", 60_192_808, (2, 3, 32, 32), 1, keys=932, head=RESNET_HEAD,
         tail=("layer4.2.bn3.num_batches_tracked", "fc.weight", "fc.bias"),
         shapes={"layer2.7.conv2.weight": (128, 128, 3, 3), "layer3.35.conv3.weight": (1024, 256, 1, 1)}),
    Case("resnet18", 11_681_832, (2, 3, 8, 8), 1, {"stem": "small"}, keys=122, head=RESNET_HEAD,
         tail=("fc.weight", "fc.bias"), shapes={"conv1.weight": (64, 3, 3, 3), "layer4.1.conv2.weight": (512, 512, 3, 3)}),
    Case("resnet20", 269_722, (2, 3, 8, 8), 1, num_classes=10, keys=116, head=RESNET_HEAD, tail=("fc.weight", "fc.bias"),
         shapes={"conv1.weight": (16, 3, 3, 3), "layer3.2.conv2.weight": (64, 64, 3, 3), "fc.weight": (10, 64)}),
    Case("resnet20", 272_474, (2, 3, 8, 8), 1, {"shortcut": "B"}, num_classes=10, keys=128, head=RESNET_HEAD,
         tail=("fc.weight", "fc.bias"), shapes={"layer2.0.downsample.0.weight": (32, 16, 1, 1)}),
]


def build(case, seed=0):
    minicnn.manual_seed(seed)
    return A.get(case.name, **case.options)


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.id)
def built(request):
    case = request.param
    model = build(case)
    yield case, model
    del model
    gc.collect()


def batch(case, seed=1):
    rng = np.random.default_rng(seed)
    x = minicnn.tensor(rng.standard_normal(case.test_input).astype(np.float32))
    y = rng.integers(0, case.num_classes, size=case.test_input[0])
    return x, y


def logits_of(output):
    return output[0] if isinstance(output, tuple) else output


# --------------------------------------------------------------------------- structure

def test_parameter_count(built):
    case, model = built
    assert A.count_parameters(model) == case.params
    masked = sum(getattr(m, "masked_parameter_count", 0) for m in model.modules())
    assert model.num_parameters() == case.params + masked      # stored values include the masked zeros
    assert A.count_parameters(model, trainable_only=True) == case.params


def test_state_dict_layout(built):
    case, model = built
    sd = model.state_dict()
    keys = list(sd)
    if case.keys is not None:
        assert len(keys) == case.keys
    assert tuple(keys[:len(case.head)]) == case.head
    assert tuple(keys[len(keys) - len(case.tail):]) == case.tail
    for key, shape in case.shapes.items():
        assert sd[key].shape == shape, key
    # every parameter is in the state_dict, in named_parameters order
    names = [n for n, _ in model.named_parameters()]
    assert [k for k in keys if k in set(names)] == names
    for key, value in sd.items():
        if key.endswith("num_batches_tracked"):
            assert value.dtype == np.int64 and value.shape == ()
        else:
            assert value.dtype == np.float32


def expected_weight_std(case, module):
    """The standard deviation torchvision's (or the paper's / Keras') initialisation gives this weight."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(module.weight)
    conv = isinstance(module, nn.Conv2d)
    family = case.name.split("_")[0].rstrip("0123456789")
    if family == "vgg":
        return np.sqrt(2 / fan_out) if conv else 0.01            # kaiming_normal_(fan_out, relu); normal(0, 0.01)
    if family == "resnet":    # the CIFAR ResNets: the paper's He init (fan_in); fc: PyTorch's default
        return np.sqrt(2 / (fan_in if A.default_input_shape(case.name)[1] == 32 else fan_out)) if conv else 1 / np.sqrt(3 * fan_in)
    if family == "googlenet":
        return 0.01                                              # trunc_normal_(std=0.01)
    if family == "alexnet":
        return 1 / np.sqrt(3 * fan_in)                           # PyTorch's default U(+-1/sqrt(fan_in))
    if case.name == "lenet5_keras":
        return np.sqrt(2 / (fan_in + fan_out))                   # Glorot uniform
    return None                                                  # lenet5: see test_lenet5_structure_and_init


def test_initialisation(built):
    case, model = built
    checked = 0
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            std = expected_weight_std(case, m)
            if std is not None and m.weight.numel() >= 500:
                assert m.weight.numpy().std() == pytest.approx(std, rel=0.1), name
                checked += 1
            if m.bias is not None and (case.name.startswith("vgg") or case.name == "lenet5_keras"):
                assert np.all(m.bias.numpy() == 0), name        # others: no bias, or PyTorch's default
        elif isinstance(m, nn.BatchNorm2d):
            assert np.all(m.weight.numpy() == 1) and np.all(m.bias.numpy() == 0), name
            assert np.all(m.running_mean.numpy() == 0) and np.all(m.running_var.numpy() == 1), name
    assert checked > 0 or case.name == "lenet5"


# --------------------------------------------------------------------------- behaviour

def test_output_shape_and_eval_determinism(built):
    case, model = built
    x, _ = batch(case)
    model.eval()
    with minicnn.no_grad():
        a = model(x)
        b = model(x)
    assert isinstance(a, minicnn.Tensor)
    assert a.shape == (case.test_input[0], case.num_classes)
    assert np.all(np.isfinite(a.numpy()))
    assert np.array_equal(a.numpy(), b.numpy())


def test_empty_batch_gives_empty_logits(built):
    """An empty batch (N=0) goes through every layer, as in PyTorch, and gives (0, classes) logits."""
    case, model = built
    model.eval()
    with minicnn.no_grad():
        out = model(minicnn.zeros(0, *case.test_input[1:]))
    assert logits_of(out).shape == (0, case.num_classes)


def test_flatten_of_an_empty_batch_and_its_gradient():
    x = minicnn.zeros(0, 3, 2, 2, requires_grad=True)
    y = x.flatten(1)
    assert y.shape == (0, 12) and nn.Flatten()(x).shape == (0, 12)
    (y * 2).sum().backward()
    assert np.asarray(x.grad).shape == (0, 3, 2, 2)


# VGG: only vgg16_bn goes through a file (its code path covers the others; each is 0.55 GB to write)
@pytest.mark.parametrize("built", [c for c in CASES if c.round_trip], ids=lambda c: c.id, indirect=True)
def test_state_dict_round_trip_through_file(built, tmp_path):
    case, model = built
    x, _ = batch(case)
    model.eval()
    with minicnn.no_grad():
        expected = model(x).numpy()
    path = tmp_path / "model.npz"
    np.savez(path, **model.state_dict())
    fresh = build(case, seed=123)
    with minicnn.no_grad():
        assert not np.array_equal(fresh.eval()(x).numpy(), expected)     # a different initialisation
    with np.load(path) as saved:
        result = fresh.load_state_dict(saved)
    assert result.missing_keys == [] and result.unexpected_keys == []
    fresh.eval()
    with minicnn.no_grad():
        got = fresh(x).numpy()
    assert np.array_equal(got, expected)
    del fresh


def test_input_size_limits(built):
    """The smallest documented input works; one pixel less (or another size for LeNet) is a clear error."""
    case, model = built
    c = case.test_input[1]
    model.eval()
    with minicnn.no_grad():
        out = model(minicnn.zeros(1, c, case.min_size, case.min_size))
        assert out.shape == (1, case.num_classes) and np.all(np.isfinite(out.numpy()))
        bad_sizes = [case.min_size - 1] + ([case.min_size + 1] if case.exact_size else [])
        for bad in bad_sizes:
            if bad >= 1:
                with pytest.raises(ValueError, match=rf"{bad}x{bad}"):
                    model(minicnn.zeros(1, c, bad, bad))
        with pytest.raises(ValueError, match="expected input of shape"):
            model(minicnn.zeros(1, c + 1, case.min_size, case.min_size))
        with pytest.raises(ValueError, match="batch dimension"):
            model(minicnn.zeros(c, case.min_size, case.min_size))


def test_training_step(built):
    """Forward in training mode, cross-entropy, backward, one SGD step: every parameter gets a
    finite gradient, the first layer's is nonzero, and the step changes the weights."""
    case, model = built
    saved = model.state_dict()              # the model is shared by the module's tests: put it back after
    x, y = batch(case)
    model.train()
    output = model(x)
    if case.name == "googlenet" and case.options.get("aux_logits", True):
        assert isinstance(output, tuple) and len(output) == 3
        assert all(o.shape == (x.shape[0], case.num_classes) for o in output)
        loss = googlenet_loss(output, y)
    else:
        assert isinstance(output, minicnn.Tensor)
        loss = F.cross_entropy(output, y)
    assert np.isfinite(loss.item())
    model.zero_grad()
    loss.backward()

    params = list(model.named_parameters())
    first_name, first = params[0]
    assert first_name == case.head[0]
    assert first.grad is not None and np.all(np.isfinite(first.grad)) and np.abs(first.grad).max() > 0
    for name, p in params:
        assert p.grad is not None, f"{name} got no gradient"
        assert p.grad.shape == p.shape and np.all(np.isfinite(p.grad)), name

    # the step changes the weights (the classifier's: the first layer's gradient of a 152-layer ResNet
    # at initialisation can be too small for lr * grad to show in float32)
    last_name, last = params[-1]
    before = last.numpy().copy()
    optim.SGD(model.parameters(), lr=0.01).step()
    assert not np.array_equal(last.numpy(), before), last_name
    assert np.all(np.isfinite(first.numpy())) and np.all(np.isfinite(last.numpy()))
    model.zero_grad()
    model.load_state_dict(saved)


# --------------------------------------------------------------------------- registry and options

def test_registry():
    expected = {"lenet5", "lenet5_keras", "alexnet", "vgg16", "vgg19", "vgg16_bn", "vgg19_bn", "googlenet",
                "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                "resnet20", "resnet32", "resnet44", "resnet56", "resnet110"}
    assert set(A.names()) == expected
    assert A.names() == sorted(A.names())
    with pytest.raises(KeyError, match="resnet18"):      # the message lists what exists
        A.get("resnet19")
    with pytest.raises(ValueError, match="already registered"):
        A.register("lenet5")(lambda **kw: None)
    assert A.default_input_shape("lenet5") == (1, 32, 32)
    assert A.default_input_shape("resnet50") == (3, 224, 224)


def test_register_a_new_architecture():
    @A.register("tiny_test_net", input_shape=(1, 8, 8))
    def tiny(num_classes=3, in_channels=1):
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 64, num_classes))
    try:
        assert "tiny_test_net" in A.names()
        model = A.get("tiny_test_net", num_classes=5)
        assert model(minicnn.zeros(2, 1, 8, 8)).shape == (2, 5)
    finally:
        A._REGISTRY.pop("tiny_test_net")
        A._INPUT_SHAPES.pop("tiny_test_net")


@pytest.mark.parametrize("name,size", [("lenet5", 32), ("lenet5_keras", 32), ("alexnet", 64), ("googlenet", 32),
                                       ("resnet18", 32), ("resnet50", 32), ("resnet20", 28)])
def test_num_classes_and_in_channels(name, size):
    model = A.get(name, num_classes=7, in_channels=1)
    model.eval()
    with minicnn.no_grad():
        out = model(minicnn.randn(2, 1, size, size))
    assert out.shape == (2, 7)
    first = next(iter(model.parameters()))
    assert first.shape[1] == 1


def test_vgg_one_channel_ten_classes():
    model = A.get("vgg16", num_classes=10, in_channels=1)
    sd = model.state_dict()
    assert sd["features.0.weight"].shape == (64, 1, 3, 3)
    assert sd["classifier.6.weight"].shape == (10, 4096)
    del sd
    model.eval()
    with minicnn.no_grad():
        assert model(minicnn.randn(1, 1, 32, 32)).shape == (1, 10)


# --------------------------------------------------------------------------- LeNet-5 details

def test_lenet5_c3_table_mask():
    model = A.get("lenet5", c3_table=True)
    c3 = model.c3
    mask = c3.mask.numpy()[:, :, 0, 0]                  # (out, in)
    assert mask.shape == (16, 6)
    assert mask.sum() == 60                             # Table I: 6*3 + 9*4 + 1*6 connections
    assert list(mask.sum(axis=1)) == [3] * 6 + [4] * 9 + [6]
    assert list(np.flatnonzero(mask[0])) == [0, 1, 2] and list(np.flatnonzero(mask[12])) == [0, 1, 3, 4]
    assert "c3.mask" not in model.state_dict()          # architecture, not learned state
    w = c3.weight.numpy()
    assert np.all(w[mask == 0] == 0)                    # stored weights agree with the mask

    x = minicnn.randn(2, 1, 32, 32)
    F.cross_entropy(model(x), np.array([1, 2])).backward()
    g = c3.weight.grad
    assert np.all(g[mask == 0] == 0) and np.abs(g[mask == 1]).min() > 0
    # a masked weight cannot change the output, whatever its value
    model.eval()
    with minicnn.no_grad():
        before = model(x).numpy()
        c3.weight.data[mask == 0] = 5.0
        assert np.array_equal(model(x).numpy(), before)


def test_lenet5_structure_and_init():
    model = A.get("lenet5")
    x = minicnn.randn(1, 1, 32, 32)
    shapes = {}
    h = x
    with minicnn.no_grad():
        for name in ("c1", "s2", "c3", "s4", "c5"):
            h = model.act(getattr(model, name)(h))
            shapes[name] = h.shape[1:]
    assert shapes == {"c1": (6, 28, 28), "s2": (6, 14, 14), "c3": (16, 10, 10), "s4": (16, 5, 5),
                      "c5": (120, 1, 1)}
    assert isinstance(model.act, nn.ScaledTanh)
    assert isinstance(model.s2, nn.Subsampling) and isinstance(model.s4, nn.Subsampling)
    # LeCun's initialisation: |w| <= 2.4 / fan_in for every layer
    for layer, fan_in in ((model.c1, 25), (model.s2, 4), (model.c3, 150), (model.c5, 400), (model.f6, 120),
                          (model.output, 84)):
        w = np.abs(layer.weight.numpy())
        assert w.max() <= 2.4 / fan_in and w.max() > 0.3 * 2.4 / fan_in


def test_lenet5_keras_init_like_keras():
    model = A.get("lenet5_keras")
    for layer in (model.conv1, model.conv2, model.fc1, model.fc2):
        assert np.all(layer.bias.numpy() == 0)
    bound = np.sqrt(6 / (3200 + 500))                    # Glorot uniform (32x32 input: 8*8*50 inputs)
    w = model.fc1.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound


# --------------------------------------------------------------------------- AlexNet, VGG, GoogLeNet, ResNet details

def test_alexnet_lrn_option():
    model = A.get("alexnet", lrn=True)
    lrns = [m for m in model.features if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrns) == 2
    types = [type(m).__name__ for m in model.features]
    assert types[:4] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    assert types[4:8] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    assert lrns[0].size == 5 and lrns[0].beta == 0.75 and lrns[0].k == 2
    assert lrns[0].alpha == pytest.approx(5e-4)           # the paper's 1e-4, in PyTorch's alpha/n convention


def test_googlenet_outputs_and_loss():
    model = A.get("googlenet", num_classes=5)
    x = minicnn.randn(2, 3, 32, 32)
    y = np.array([0, 3])
    minicnn.manual_seed(5)
    out = model.train()(x)
    assert isinstance(out, tuple) and len(out) == 3
    logits, aux2, aux1 = out
    expected = (F.cross_entropy(logits, y).item()
                + 0.3 * (F.cross_entropy(aux1, y).item() + F.cross_entropy(aux2, y).item()))
    assert googlenet_loss(out, y).item() == pytest.approx(expected, rel=1e-6)
    # torchvision's order is (logits, aux2, aux1): aux2 reads inception4d, aux1 inception4a
    model.aux1.fc2.bias.data[...] = 100.0
    minicnn.manual_seed(5)
    logits_b, aux2_b, aux1_b = model(x)
    assert aux1_b.numpy().min() > 50 and aux2_b.numpy().max() < 50
    model.eval()
    with minicnn.no_grad():
        ev = model(x)
    assert isinstance(ev, minicnn.Tensor) and ev.shape == (2, 5)
    assert googlenet_loss(ev, y).item() == pytest.approx(F.cross_entropy(ev, y).item())


def test_googlenet_basic_conv_and_no_aux():
    model = A.get("googlenet", aux_logits=False)
    assert model.conv1.bn.eps == 0.001 and model.conv1.conv.bias is None
    assert model.aux1 is None and model.aux2 is None
    model.train()
    assert isinstance(model(minicnn.randn(2, 3, 32, 32)), minicnn.Tensor)


def test_resnet_zero_init_residual():
    model = A.get("resnet18", zero_init_residual=True)
    for block in list(model.layer1) + list(model.layer4):
        assert np.all(block.bn2.weight.numpy() == 0)
        assert np.all(block.bn1.weight.numpy() == 1)
    # every residual branch is zero at the start: an identity block returns relu(x)
    block = model.layer1[1].eval()
    x = minicnn.randn(1, 64, 4, 4)
    with minicnn.no_grad():
        assert np.array_equal(block(x).numpy(), np.maximum(x.numpy(), 0))
    model50 = A.get("resnet50", zero_init_residual=True)
    assert all(np.all(b.bn3.weight.numpy() == 0) for layer in (model50.layer1, model50.layer3) for b in layer)
    assert np.all(A.get("resnet50").layer1[0].bn3.weight.numpy() == 1)


def test_resnet_v1_5_stride_on_3x3():
    model = A.get("resnet50")
    block = model.layer2[0]
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)
    assert block.downsample[0].stride == (2, 2)
