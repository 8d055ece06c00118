"""Training checkpoints name their arrays by path (``model/c1.weight``, ``optimizer/state/0/momentum_buffer``),
so ``np.load`` shows them to anyone; checkpoints from before (arrays ``a0``, ``a1``, ...) still load."""
import json

import numpy as np

import minicnn
import minicnn.functional as F
from minicnn import architectures as A
from minicnn import checkpoint, optim


def test_a_training_checkpoint_reads_with_plain_numpy(tmp_path):
    model = A.get("lenet5")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.StepLR(opt, step_size=2)
    loss = F.cross_entropy(model(minicnn.randn(4, 1, 32, 32)), minicnn.tensor([0, 1, 2, 3]))
    loss.backward()
    opt.step()
    sched.step()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "epoch": 1, "best": np.float32(0.5)}
    path = tmp_path / "last.npz"
    checkpoint.save(path, state)

    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        assert {"model/c1.weight", "model/output.bias", "optimizer/state/0/momentum_buffer",
                "optimizer/state/13/momentum_buffer", "best", "__meta__"} <= names
        np.testing.assert_array_equal(archive["model/c1.weight"], model.c1.weight.numpy())
        np.testing.assert_array_equal(archive["optimizer/state/0/momentum_buffer"],
                                      opt.state_dict()["state"][0]["momentum_buffer"])
        assert not [n for n in names if n.startswith("a") and n[1:].isdigit()]

    back = checkpoint.load(path)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(back["model"][key], value)
    assert back["optimizer"]["state"][13]["momentum_buffer"].shape == (10,)
    assert back["epoch"] == 1 and back["best"] == np.float32(0.5) and back["best"].dtype == np.float32
    other = A.get("lenet5")
    other.load_state_dict(back["model"])
    opt2 = optim.SGD(other.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(back["optimizer"])
    np.testing.assert_array_equal(opt2.state_dict()["state"][5]["momentum_buffer"],
                                  opt.state_dict()["state"][5]["momentum_buffer"])


def test_paths_that_would_collide_get_distinct_names(tmp_path):
    first, second, third = np.zeros(2), np.ones(3), np.full(4, 2.0)
    state = {"a/b": first, "a": {"b": second}, "x": {"__meta__": third}, "t": (np.int64(7), [np.arange(2)])}
    checkpoint.save(tmp_path / "c.npz", state)
    with np.load(tmp_path / "c.npz") as archive:
        assert sorted(archive.files) == ["__meta__", "a/b", "a/b~2", "t/0", "t/1/0", "x/__meta__"]
    back = checkpoint.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(back["a/b"], first)
    np.testing.assert_array_equal(back["a"]["b"], second)
    np.testing.assert_array_equal(back["x"]["__meta__"], third)
    assert back["t"][0] == 7 and back["t"][0].dtype == np.int64
    np.testing.assert_array_equal(back["t"][1][0], [0, 1])


def test_an_old_checkpoint_with_numbered_arrays_still_loads(tmp_path):
    """The layout minicnn wrote before: arrays a0, a1, ... and the JSON that places them."""
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    buffer = np.full(3, 0.5)
    meta = {"format": "minicnn-checkpoint", "version": 1, "state": {
        "model": {"fc.weight": {"__array__": "a0"}},
        "optimizer": {"state": {"__dict__": [[0, {"momentum_buffer": {"__array__": "a1"}}]]},
                      "param_groups": [{"lr": 0.1, "betas": {"__tuple__": [0.9, 0.999]}, "params": [0]}]},
        "best": {"__scalar__": "a2"}, "epoch": 4}}
    text = json.dumps(meta).encode("utf-8")
    np.savez(tmp_path / "old.npz", a0=weight, a1=buffer, a2=np.asarray(np.float32(0.75)),
             __meta__=np.frombuffer(text, dtype=np.uint8))
    back = checkpoint.load(tmp_path / "old.npz")
    np.testing.assert_array_equal(back["model"]["fc.weight"], weight)
    np.testing.assert_array_equal(back["optimizer"]["state"][0]["momentum_buffer"], buffer)
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["best"] == np.float32(0.75) and back["epoch"] == 4
