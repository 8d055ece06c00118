"""The ResNet paper's CIFAR ResNets (He et al. 2016, table 6) and the small stem of the ImageNet ResNets.

The shared battery (counts, state_dict layout, initialisation, training step, round trip) runs on
resnet20 (both shortcuts) and resnet18 with ``stem="small"`` through ``test_architectures.CASES``;
here: every depth's exact count (the paper's 0.27M / 0.46M / 0.66M / 0.85M / 1.7M), the option-A
shortcut against a hand-written one, the layout and the builder options.  Runs under both kernel sets.
"""
import numpy as np
import pytest

import minicnn
from minicnn import architectures as A
from minicnn import functional as F

# Counted by hand: conv1 3*16*9 + bn 32; per stage of n blocks, two 3x3 convs of its width (+ bn 2 x 2w);
# fc 64*10 + 10.  Option B adds 1x1 projections 16->32 and 32->64 with their batch norms: 2,752.
def hand_count(n, shortcut="A", in_channels=3, classes=10):
    total = in_channels * 16 * 9 + 2 * 16
    c_in = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += c_in * width * 9 + width * width * 9 + 4 * width
            c_in = width
    total += 64 * classes + classes
    return total + (16 * 32 + 2 * 32 + 32 * 64 + 2 * 64 if shortcut == "B" else 0)


PAPER = {"resnet20": (3, 269_722, 0.27e6), "resnet32": (5, 464_154, 0.46e6), "resnet44": (7, 658_586, 0.66e6),
         "resnet56": (9, 853_018, 0.85e6), "resnet110": (18, 1_727_962, 1.7e6)}


@pytest.mark.parametrize("name", list(PAPER))
def test_parameter_counts_are_the_papers(name):
    n, exact, paper = PAPER[name]
    model = A.get(name)
    assert A.count_parameters(model) == exact == hand_count(n)
    assert float(f"{exact:.2g}") == paper                 # table 6 gives two significant figures
    assert A.count_parameters(A.get(name, shortcut="B")) == hand_count(n, "B") == exact + 2_752
    assert A.count_parameters(A.get(name, num_classes=100, in_channels=1)) == hand_count(n, in_channels=1, classes=100)
    assert f"{exact:,}" in A._lookup(name).__doc__ and f"{exact:,}" in A.resnet_cifar.__doc__
    assert len(model.state_dict()) == 6 + 12 * 3 * n + 2          # stem, 3n blocks, fc
    assert sum(1 for m in model.modules() if isinstance(m, minicnn.nn.Conv2d)) + 1 == 6 * n + 2


def test_layout_and_shapes():
    model = A.get("resnet20", in_channels=1)
    sd = model.state_dict()
    assert list(sd)[:7] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                            "bn1.num_batches_tracked", "layer1.0.conv1.weight"]
    assert list(sd)[-2:] == ["fc.weight", "fc.bias"]
    assert sd["conv1.weight"].shape == (16, 1, 3, 3) and sd["layer2.0.conv1.weight"].shape == (32, 16, 3, 3)
    assert sd["layer3.2.conv2.weight"].shape == (64, 64, 3, 3) and sd["fc.weight"].shape == (10, 64)
    assert not any("downsample" in k for k in sd)                  # option A has no parameters
    assert model.layer2[0].conv1.stride == (2, 2) and model.layer1[0].downsample is None
    b = A.get("resnet20", shortcut="B").state_dict()
    assert b["layer2.0.downsample.0.weight"].shape == (32, 16, 1, 1) and b["layer3.0.downsample.1.bias"].shape == (64,)
    model.eval()
    with minicnn.no_grad():     # 28x28 images go in unpadded: 28 -> 14 -> 7
        feats = model.layer2(model.layer1(model.relu(model.bn1(model.conv1(minicnn.zeros(2, 1, 28, 28))))))
        assert feats.shape == (2, 32, 14, 14) and model.layer3(feats).shape == (2, 64, 7, 7)


def test_shortcut_a_is_the_strided_identity_with_zero_channels():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 5, 5)).astype(np.float32)
    want = np.zeros((2, 32, 3, 3), np.float32)
    want[:, 8:24] = x[:, :, ::2, ::2]                      # 8 zero channels before, 8 after
    xt = minicnn.tensor(x, requires_grad=True)
    y = A.ShortcutA(16, 2)(xt)
    assert np.array_equal(y.numpy(), want)
    g = rng.standard_normal(want.shape).astype(np.float32)
    (y * minicnn.tensor(g)).sum().backward()
    dx = np.zeros_like(x)
    dx[:, :, ::2, ::2] = g[:, 8:24]
    assert np.array_equal(np.asarray(xt.grad), dx)
    odd = A.ShortcutA(3, 1)(minicnn.tensor(x)).numpy()      # odd extra: the larger half after
    assert odd.shape == (2, 19, 5, 5) and np.array_equal(odd[:, 1:17], x) and not odd[:, [0, 17, 18]].any()
    f64 = minicnn.tensor(rng.standard_normal((1, 2, 4, 4)), dtype=minicnn.float64, requires_grad=True)
    assert minicnn.gradcheck(lambda t: A.ShortcutA(2)(t), f64)


def test_he_initialisation_of_the_paper():
    minicnn.manual_seed(0)
    model = A.get("resnet56")
    w = np.concatenate([b.conv1.weight.numpy().ravel() for b in model.layer2[1:]])      # fan_in 32 * 9
    assert w.std() == pytest.approx(np.sqrt(2 / 288), rel=0.03)
    down = model.layer3[0].conv1.weight.numpy()            # 32 -> 64: fan_in 288, fan_out 576
    assert down.std() == pytest.approx(np.sqrt(2 / 288), rel=0.1)
    assert np.all(model.layer1[0].bn2.weight.numpy() == 1)
    assert np.all(A.get("resnet20", zero_init_residual=True).layer3[2].bn2.weight.numpy() == 0)


def test_bad_options_name_the_argument():
    with pytest.raises(ValueError, match="shortcut must be 'A'"):
        A.get("resnet20", shortcut="C")
    with pytest.raises(ValueError, match="stem must be 'imagenet'"):
        A.get("resnet18", stem="tiny")
    with pytest.raises(ValueError, match=r"CifarResNet: expected input of shape \(N, 3, H, W\)"):
        A.get("resnet20")(minicnn.zeros(1, 1, 8, 8))


def test_small_stem_keeps_torchvisions_keys_and_every_shape_but_conv1():
    big, small = A.get("resnet18", num_classes=10), A.get("resnet18", num_classes=10, stem="small")
    a, b = big.state_dict(), small.state_dict()
    assert list(a) == list(b)
    assert [k for k in a if a[k].shape != b[k].shape] == ["conv1.weight"]
    assert b["conv1.weight"].shape == (64, 3, 3, 3) and small.conv1.stride == (1, 1)
    assert A.count_parameters(small) == A.count_parameters(big) - 64 * 3 * (49 - 9) == 11_173_962
    assert isinstance(small.maxpool, minicnn.nn.Identity)
    small.eval()
    with minicnn.no_grad():           # layer1 sees the input's size (32x32 images: 32x32 maps, layer4 4x4)
        x = small.relu(small.bn1(small.conv1(minicnn.zeros(1, 3, 8, 8))))
        assert small.layer1(small.maxpool(x)).shape == (1, 64, 8, 8)


def test_small_net_learns_a_batch():
    """A few steps on one tiny batch lower the loss (the blocks, shortcuts and head train together)."""
    minicnn.manual_seed(0)
    model = A.get("resnet20", num_classes=3, in_channels=1)
    rng = np.random.default_rng(0)
    x, y = minicnn.tensor(rng.standard_normal((6, 1, 8, 8)).astype(np.float32)), rng.integers(0, 3, 6)
    opt = minicnn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_summary_counts_the_papers_resnet20():
    """Mult-adds by hand: conv1 16*27*32^2; layer1 6 x 16*144*32^2; layer2 32*144*16^2 + 5 x 32*288*16^2;
    layer3 64*288*8^2 + 5 x 64*576*8^2; fc 640.  The option-A shortcuts are rows with nothing to count."""
    s = minicnn.summary(A.get("resnet20"), (3, 32, 32), verbose=False)
    by_hand = 16 * 27 * 1024 + 6 * 16 * 144 * 1024 + (32 * 144 + 5 * 32 * 288) * 256 + (64 * 288 + 5 * 64 * 576) * 64 + 640
    assert s.mult_adds == by_hand == 40_551_040
    assert s.trainable == 269_722 and s.non_trainable == 2 * (16 * 7 + 32 * 6 + 64 * 6)
    rows = {r.name: r for r in s.rows}
    assert rows["layer2.0.downsample"].output_shape == (1, 32, 16, 16) and rows["layer2.0.downsample"].params == 0


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_safetensors_round_trip(shortcut, tmp_path):
    pytest.importorskip("safetensors")
    minicnn.manual_seed(0)
    model = A.get("resnet20", shortcut=shortcut, in_channels=1).eval()
    x = minicnn.tensor(np.random.default_rng(0).standard_normal((2, 1, 9, 9)).astype(np.float32))
    minicnn.save_weights(model, tmp_path / "r20.safetensors")
    minicnn.manual_seed(1)
    fresh = A.get("resnet20", shortcut=shortcut, in_channels=1, weights=tmp_path / "r20.safetensors").eval()
    with minicnn.no_grad():
        assert np.array_equal(fresh(x).numpy(), model(x).numpy())
    other = "Missing" if shortcut == "A" else "Unexpected"       # the other shortcut: named keys, not a crash
    with pytest.raises(ValueError, match=rf'{other} key\(s\) in state_dict: "layer2\.0\.downsample\.0\.weight"'):
        A.get("resnet20", shortcut="B" if shortcut == "A" else "A", in_channels=1, weights=tmp_path / "r20.safetensors")
