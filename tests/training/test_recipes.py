"""Recipes (``minicnn.training.recipes``): the defaults of an architecture on a dataset, the ResNet
paper's CIFAR-10 recipe step by step, and a run of it on a small synthetic file in CIFAR-10's
binary format (the real data cannot be downloaded here)."""
import hashlib
import json
import os

import numpy as np
import pytest

from minicnn import architectures, checkpoint, nn, train, training
from minicnn.data import download, get_dataset, pipeline
from minicnn.training import recipes

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def config(*argv):
    return train.resolve_config(train.make_parser().parse_args(list(argv)))


def test_the_papers_cifar10_recipe_is_the_resnets_default():
    for arch in recipes.FAMILIES:          # resnet20 ... resnet110
        c = config(arch)
        assert (c["dataset"], c["input_size"], c["batch_size"], c["epochs"]) == ("cifar10", 32, 128, 164)
        assert (c["optimizer"], c["lr"], c["momentum"], c["nesterov"], c["weight_decay"]) == ("sgd", 0.1, 0.9, False, 1e-4)
        assert (c["schedule"], c["milestones"], c["gamma"], c["augment"]) == ("multistep", [82, 123], 0.1, "crop-flip")
        assert c["warmup_epochs"] == (1.0 if arch == "resnet110" else 0.0)
    opt = training.build_optimizer(nn.Linear(2, 2), c)
    assert opt.param_groups[0]["nesterov"] is False and opt.param_groups[0]["momentum"] == 0.9


def test_the_papers_schedule_cuts_at_32k_and_48k_steps_and_ends_near_64k():
    c = config("resnet20")
    steps_per_epoch = -(-50_000 // c["batch_size"])            # 391 batches of 128 (the last one partial)
    assert [steps_per_epoch * e for e in (82, 123, 164)] == [32_062, 48_093, 64_124]
    opt = training.build_optimizer(nn.Linear(2, 2), c)
    scheduler = training.build_scheduler(opt, c, steps_per_epoch)
    lrs = {}
    for step in range(48_100):
        if step in (0, 32_061, 32_062, 48_092, 48_093):
            lrs[step] = round(opt.param_groups[0]["lr"], 8)
        scheduler.step()
    assert lrs == {0: 0.1, 32_061: 0.1, 32_062: 0.01, 48_092: 0.01, 48_093: 0.001}


def test_recipes_per_dataset_and_the_flips():
    c = config("resnet20", "--dataset", "fashion-mnist")
    assert (c["input_size"], c["epochs"], c["augment"], c["schedule"], c["nesterov"]) == (28, 5, "none", "cosine", True)
    assert (c["lr"], c["weight_decay"], c["in_channels"]) == (0.1, 5e-4, 1)
    c = config("lenet5", "--dataset", "fashion-mnist")
    assert (c["epochs"], c["augment"], c["optimizer"], c["input_size"]) == (20, "none", "adamw", 32)
    assert config("lenet5")["epochs"] == 8 and config("lenet5")["augment"] == "crop"   # MNIST: unchanged
    assert config("resnet18", "--dataset", "fashion-mnist")["augment"] == "crop"         # clothes: no flip
    assert config("resnet18", "--dataset", "cifar10")["augment"] == "crop-flip"
    assert config("resnet56", "--dataset", "mnist")["augment"] == "crop"                 # digits: never flipped
    assert config("resnet20", "--dataset", "fashion-mnist", "--augment", "auto")["augment"] == "crop"
    # what the command line gives wins; the paper's cuts follow --epochs
    c = config("resnet20", "--epochs", "8", "--lr", "0.05", "--augment", "none", "--optimizer", "adamw")
    assert (c["epochs"], c["milestones"], c["lr"], c["augment"]) == (8, [4, 6], 0.05, "none")
    assert recipes.recipe_defaults("resnet32", "cifar-10")["epochs"] == 164                # any spelling


def test_help_shows_every_recipes_defaults():
    text = train.make_parser().format_help()
    assert "resnet20/32/44/56/110 --dataset cifar10: epochs 164, batch_size 128, optimizer sgd, nesterov False" in text
    assert "sgd lr 0.1 weight-decay 0.0001" in text
    assert "lenet5 --dataset fashion-mnist: epochs 20, augment none, adamw lr 0.002" in text
    assert "resnet20/32/44/56/110: 164" in " ".join(text.split())          # --epochs per family


def test_small_stem_from_the_command_line():
    c = config("resnet18", "-o", "stem=small", "--dataset", "cifar10")
    assert c["model_options"] == {"stem": "small"}
    model = training.build_model(c)
    assert model.conv1.weight.shape == (64, 3, 3, 3) and isinstance(model.maxpool, nn.Identity)


def write_cifar10_binary(folder, per_batch, seed=0):
    """cifar-10-batches-bin/ as published: per image one label byte, then 1024 red, green, blue bytes."""
    rng = np.random.default_rng(seed)
    d = os.path.join(folder, "cifar-10-batches-bin")
    os.makedirs(d)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, per_batch, dtype=np.uint8)
        images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        images[labels % 2 == 1, 0] //= 4         # a learnable signal: odd classes have dark red planes
        with open(os.path.join(d, name), "wb") as f:
            f.write(np.concatenate([labels[:, None], images.reshape(per_batch, -1)], axis=1).tobytes())
    with open(os.path.join(d, "batches.meta.txt"), "w") as f:
        f.write("\n".join(CIFAR_NAMES) + "\n\n")


def test_the_paper_recipe_runs_on_a_cifar10_binary_file(tmp_path, monkeypatch, capsys):
    write_cifar10_binary(tmp_path / "data", per_batch=4)
    folder = tmp_path / "data" / "cifar-10-batches-bin"
    resource = dict(download.RESOURCES["cifar10"])      # the loader checks the published MD5s: expect these files'
    resource["files"] = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in resource["files"]}
    monkeypatch.setitem(download.RESOURCES, "cifar10", resource)
    data = get_dataset("cifar10", root=str(tmp_path / "data"), download=False)
    assert data.data.shape == (20, 3, 32, 32) and data.data.dtype == np.uint8 and len(data.targets) == 20
    c = config("resnet20", "--data-dir", str(tmp_path / "data"))
    batch = pipeline.make_transform(c, train=True)(data.data[:4], rng=np.random.default_rng(0))
    assert batch.shape == (4, 3, 32, 32) and batch.dtype == np.float32

    code = train.run(["resnet20", "--data-dir", str(tmp_path / "data"), "--epochs", "2", "--batch-size", "8",
                      "--out", str(tmp_path / "run"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "resnet20 (269,722 parameters) on cifar10 (20 train / 4 test images, 3x32x32)" in out
    assert "sgd lr 0.1, multistep schedule, 2 epochs of 3 steps" in out and "epoch   2/2" in out
    saved = json.load(open(tmp_path / "run" / "config.json"))
    assert (saved["augment"], saved["nesterov"], saved["weight_decay"], saved["milestones"]) == ("crop-flip", False, 1e-4, [1])
    result = architectures.get("resnet20").load_state_dict(checkpoint.load(tmp_path / "run" / "last.npz")["model"])
    assert result.missing_keys == [] and result.unexpected_keys == []


@pytest.mark.parametrize("arch", ["resnet20", "lenet5"])
def test_old_runs_without_nesterov_keep_it(arch):
    c = dict(config(arch, "--optimizer", "sgd"))
    del c["nesterov"]                          # a config saved before recipes existed
    assert training.build_optimizer(nn.Linear(2, 2), c).param_groups[0]["nesterov"] is True
