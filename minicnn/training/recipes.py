"""Recipes: the training defaults of an architecture *on a dataset*, where they differ from the
architecture's own defaults (:data:`~minicnn.training.setup.ARCH_DEFAULTS`).

``python -m minicnn.train ARCH --dataset D`` starts from :data:`COMMON_DEFAULTS`, then the
architecture's entry, then the recipe of ``(ARCH's family, D)`` here; options given on the command
line win over all three.  ``recipe_defaults(arch, dataset)`` returns the merged table.

The recipes, and what they reached (measured runs are in the README):

* ``resnet20 ... resnet110`` on CIFAR-10: **the ResNet paper's recipe** (He et al. 2016, section 4.2),
  written out: SGD with momentum 0.9 (plain, not Nesterov), learning rate 0.1, weight decay 1e-4,
  batch 128, the rate divided by 10 at 32k and 48k iterations and training stopped at 64k.  With
  50,000 training images a 128-batch epoch is 391 steps, so that is 164 epochs with the rate cut at
  epochs 82 and 123 (50% and 75%: 32,062 / 48,093 / 64,124 steps).  Augmentation: 4-pixel zero padding
  and a random 32x32 crop, and a horizontal flip half of the time.  The paper reached 91.25% test
  accuracy with ResNet-20 (8.75% error), 92.49% (-32), 92.83% (-44), 93.03% (-56), 93.57% (-110).
  For ResNet-110 the paper warms up at 0.01 for about 400 steps; here the rate rises linearly from
  1% over the first epoch (391 steps).  The paper uses the 50k images for training and the 10k test
  images for its reported error (its 45k/5k split only chose the schedule).
* ``resnet20 ... resnet110`` on (Fashion-)MNIST: a short recipe fitted to a CPU budget (30 minutes
  of ResNet-20 on 2 cores, 5 epochs): 28x28 images as they are (28 -> 14 -> 7 maps), SGD (Nesterov) 0.1
  with a half-epoch warm-up and a cosine decay to 0, weight decay 5e-4; on MNIST padding-crop by 2 pixels,
  on Fashion-MNIST no augmentation at all: with random crops the 5 epochs ended at 92.87% test accuracy
  with train accuracy only 93.29% (nothing to regularise: the crops only slowed learning down); without
  them, 93.17% (train 95.65%) in 29.2 minutes on a shared 2-core machine.
* ``lenet5`` on Fashion-MNIST: the MNIST recipe underfits clothes (87% after 8 epochs with train
  accuracy no higher), so: no augmentation, more epochs.

Flips.  Digits must never be mirrored (a mirrored 2 is no digit).  Fashion-MNIST gets no flip either,
though it is often trained with one: its ten classes survive a mirror image, but every shoe and bag
in it is photographed in the same pose (shoes point left), so the test set never holds a mirrored
image.  The flip teaches an invariance the test never asks for; it pays as a regulariser in long
runs (hundreds of epochs), while these recipes run a few epochs, where the models still underfit and
any augmentation slows learning down.  ``--augment crop-flip`` turns it on (``--augment auto``: crops
without flips for both grey datasets).  CIFAR-10's photographs
are flipped (the paper's recipe).
"""
from __future__ import annotations

from ..data.datasets import canonical_name
from .setup import FAMILIES, OPTIMIZER_DEFAULTS, arch_defaults

#: The ResNet paper's CIFAR networks (``minicnn.architectures.resnet_cifar``), one family here.
CIFAR_RESNET_FAMILY = "resnet20/32/44/56/110"

#: The ResNet paper's CIFAR-10 recipe (section 4.2); the rate is cut at 50% and 75% of the epochs
#: (the multistep default): epochs 82 and 123 of 164, i.e. 32k and 48k of 64k steps of 128 images.
PAPER_CIFAR10 = dict(epochs=164, batch_size=128, optimizer="sgd", nesterov=False, schedule="multistep",
                     gamma=0.1, warmup_epochs=0.0, augment="crop-flip", sgd=dict(lr=0.1, weight_decay=1e-4))

#: The short CPU recipe of the CIFAR ResNets on the 28x28 grey datasets.
CIFAR_RESNET_SMALL = dict(input_size=28, epochs=5, batch_size=128, optimizer="sgd", schedule="cosine",
                          warmup_epochs=0.5, augment="crop", sgd=dict(lr=0.1, weight_decay=5e-4))

#: ``(family, dataset)`` -> the defaults that differ from the family's own.
RECIPES = {
    (CIFAR_RESNET_FAMILY, "cifar10"): PAPER_CIFAR10,
    (CIFAR_RESNET_FAMILY, "fashion-mnist"): dict(CIFAR_RESNET_SMALL, augment="none"),
    (CIFAR_RESNET_FAMILY, "mnist"): CIFAR_RESNET_SMALL,
    ("lenet5", "fashion-mnist"): dict(epochs=20, augment="none", adamw=dict(lr=2e-3, weight_decay=0.01)),
}

#: Per-architecture changes of a recipe (ResNet-110's warm-up, as the paper's).
ARCH_RECIPES = {("resnet110", "cifar10"): dict(warmup_epochs=1.0)}


def family(arch: str) -> str:
    """The key of ``arch``'s entries in :data:`RECIPES` (its own name, or the CIFAR ResNets' family)."""
    return FAMILIES.get(arch, arch)


def recipe_defaults(arch: str, dataset: str | None = None) -> dict:
    """:func:`~minicnn.training.setup.arch_defaults` of ``arch``, with the recipe of ``(arch, dataset)``
    applied (``dataset`` None: the architecture's default dataset).  Holds ``nesterov`` (whether SGD
    uses Nesterov momentum) too."""
    d = arch_defaults(family(arch))
    d["nesterov"] = True
    dataset = canonical_name(dataset or d["dataset"])
    for entry in (RECIPES.get((family(arch), dataset), {}), ARCH_RECIPES.get((arch, dataset), {})):
        d.update({k: v for k, v in entry.items() if k not in OPTIMIZER_DEFAULTS})
        for name in OPTIMIZER_DEFAULTS:
            d["per_optimizer"][name].update(entry.get(name, {}))
    return d


def auto_augment(dataset: str) -> str:
    """``--augment auto``: padding-crop, and flips for CIFAR-10's photographs only (see the module docstring)."""
    return "crop-flip" if dataset == "cifar10" else "crop"


def recipes_help() -> str:
    """The recipes for ``--help``: one line per (family, dataset), every default it changes."""
    lines = ["Recipes (defaults of an architecture on a dataset, over the per-family defaults above):"]
    for (fam, dataset), entry in {**RECIPES, **ARCH_RECIPES}.items():
        items = [f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items()
                 if k not in OPTIMIZER_DEFAULTS]
        items += [f"{name} lr {o['lr']:g} weight-decay {o['weight_decay']:g}" for name, o in entry.items()
                  if name in OPTIMIZER_DEFAULTS]
        lines.append(f"  {fam} --dataset {dataset}: {', '.join(items)}")
    return "\n".join(lines)
