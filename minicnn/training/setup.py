"""A run's options and what is built from them: the defaults per architecture and optimizer, the
model, the optimizer (weight decay on weights only) and the learning-rate schedule.
"""
from __future__ import annotations

import inspect

from .. import architectures, optim

#: Options used when the command line does not give them, per architecture family
#: (matched by name prefix: ``resnet`` covers resnet18 ... resnet152).
#: ``lr`` and ``weight_decay`` depend on the optimizer, so they sit under its name.
ARCH_DEFAULTS = {
    # LeNet-5 on MNIST: the measured default run reaches >= 99% test accuracy in under
    # 5 minutes on a 2-core CPU (see the table in the project report / README).
    "lenet5": dict(dataset="mnist", input_size=32, epochs=8, batch_size=64, optimizer="adamw",
                   schedule="cosine", warmup_epochs=0.5, augment="auto", eval_batch_size=1000,
                   sgd=dict(lr=0.05, weight_decay=5e-4), adam=dict(lr=2e-3, weight_decay=0.0),
                   adamw=dict(lr=2e-3, weight_decay=0.01), rmsprop=dict(lr=1e-3, weight_decay=0.0)),
    "lenet5_keras": dict(dataset="mnist", input_size=28, epochs=4, batch_size=64, optimizer="adamw",
                         schedule="cosine", warmup_epochs=0.5, augment="none", eval_batch_size=1000),
    # The big networks: the usual recipe (SGD with momentum, warm-up then cosine, weight decay,
    # random-crop augmentation). These are slow on a CPU: use --limit-train, or a GPU (--device cuda).
    "resnet": dict(dataset="cifar10", input_size=32, epochs=30, batch_size=128, optimizer="sgd",
                   schedule="cosine", warmup_epochs=1, augment="auto", eval_batch_size=250,
                   sgd=dict(lr=0.1, weight_decay=5e-4)),
    # The ResNet paper's CIFAR networks: its CIFAR-10 recipe (minicnn/training/recipes.py writes it out).
    "resnet20/32/44/56/110": dict(dataset="cifar10", input_size=32, epochs=164, batch_size=128, optimizer="sgd",
                                  schedule="multistep", warmup_epochs=0.0, augment="auto", eval_batch_size=500,
                                  sgd=dict(lr=0.1, weight_decay=1e-4)),
    "vgg": dict(dataset="cifar10", input_size=32, epochs=30, batch_size=128, optimizer="sgd",
                schedule="cosine", warmup_epochs=1, augment="auto", eval_batch_size=250,
                sgd=dict(lr=0.02, weight_decay=5e-4)),
    "alexnet": dict(dataset="cifar10", input_size=64, epochs=30, batch_size=128, optimizer="sgd",
                    schedule="cosine", warmup_epochs=1, augment="auto", eval_batch_size=250,
                    sgd=dict(lr=0.02, weight_decay=5e-4)),
    "googlenet": dict(dataset="cifar10", input_size=64, epochs=30, batch_size=128, optimizer="sgd",
                      schedule="cosine", warmup_epochs=1, augment="auto", eval_batch_size=250,
                      sgd=dict(lr=0.05, weight_decay=5e-4)),
}

#: Architectures whose defaults sit under a family name that is not a prefix of theirs.
FAMILIES = {f"resnet{depth}": "resnet20/32/44/56/110" for depth in (20, 32, 44, 56, 110)}

#: Defaults shared by every architecture (an architecture's entry above overrides them).
COMMON_DEFAULTS = dict(dataset="cifar10", input_size=32, epochs=10, batch_size=128, optimizer="sgd",
                       momentum=0.9, schedule="cosine", warmup_epochs=1.0, step_size=None, milestones=None,
                       gamma=0.1, min_lr=0.0, label_smoothing=0.0, augment="auto", eval_batch_size=500,
                       seed=0, limit_train=None, limit_test=None, data_dir=None, log_every=20, threads=None)

#: Learning rate and weight decay per optimizer, unless the architecture sets its own.
OPTIMIZER_DEFAULTS = {
    "sgd": dict(lr=0.05, weight_decay=5e-4),
    "adam": dict(lr=1e-3, weight_decay=0.0),
    "adamw": dict(lr=1e-3, weight_decay=0.01),
    "rmsprop": dict(lr=1e-3, weight_decay=0.0),
}


def arch_defaults(arch: str) -> dict:
    """The defaults for ``arch``: :data:`COMMON_DEFAULTS` overridden by its :data:`ARCH_DEFAULTS` entry."""
    defaults = dict(COMMON_DEFAULTS)
    entry = ARCH_DEFAULTS.get(FAMILIES.get(arch, arch))
    if entry is None:   # by family: the longest prefix that matches
        family = max((k for k in ARCH_DEFAULTS if arch.startswith(k)), key=len, default=None)
        entry = ARCH_DEFAULTS.get(family, {})
    defaults.update({k: v for k, v in entry.items() if k not in OPTIMIZER_DEFAULTS})
    defaults["per_optimizer"] = {name: {**OPTIMIZER_DEFAULTS[name], **entry.get(name, {})}
                                 for name in OPTIMIZER_DEFAULTS}
    return defaults


def build_model(config, device="cpu"):
    """The architecture of ``config`` with its number of classes and input channels, on ``device``."""
    options = dict(config.get("model_options", {}))
    builder = architectures._lookup(config["arch"])
    if "input_size" in inspect.signature(builder).parameters:     # e.g. lenet5_keras sizes its dense layer
        options.setdefault("input_size", config["input_size"])
    model = architectures.get(config["arch"], num_classes=config["num_classes"],
                              in_channels=config["in_channels"], **options)
    return model.to(device)


def build_optimizer(model, config):
    """The optimizer of ``config``. Weight decay applies to weights (ndim > 1), not to biases or norms."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config["weight_decay"]}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    name, lr = config["optimizer"], config["lr"]
    if name == "sgd":
        nesterov = config.get("nesterov", True) and config["momentum"] > 0     # runs saved before recipes: Nesterov
        return optim.SGD(groups, lr=lr, momentum=config["momentum"], nesterov=nesterov)
    if name == "adam":
        return optim.Adam(groups, lr=lr)
    if name == "adamw":
        return optim.AdamW(groups, lr=lr)
    if name == "rmsprop":
        return optim.RMSprop(groups, lr=lr, momentum=config["momentum"])
    raise ValueError(f"unknown optimizer {name!r}")


#: The schedule options and the schedules that read them.
SCHEDULE_OPTIONS = {"step_size": ("step",), "milestones": ("multistep",), "gamma": ("step", "multistep")}


def schedule_option_problem(args, schedule):
    """Why a schedule option given on the command line would be ignored by ``schedule`` (a usage
    error: ``--milestones 5`` with the default cosine schedule), or None."""
    for name, schedules in SCHEDULE_OPTIONS.items():
        if getattr(args, name, None) is not None and schedule not in schedules:
            return (f"argument --{name.replace('_', '-')}: only the {' and '.join(schedules)} schedule"
                    f"{'s use' if len(schedules) > 1 else ' uses'} it, and this run's is {schedule} "
                    f"(add --schedule {schedules[-1]})")
    return None


def build_scheduler(optimizer, config, steps_per_epoch):
    """The learning-rate schedule, stepped once per training step (so epochs count in steps here).

    ``none``: constant; ``step``: times ``gamma`` every ``step_size`` epochs; ``multistep``:
    times ``gamma`` at each of ``milestones``; ``cosine``: cosine decay to ``min_lr``. All but
    ``none`` start with a linear warm-up over ``warmup_epochs`` (from 1% of the lr).
    """
    kind = config["schedule"]
    total = config["epochs"] * steps_per_epoch
    warmup = int(round(config["warmup_epochs"] * steps_per_epoch)) if kind != "none" else 0
    warmup = min(warmup, total - 1)
    if kind == "none":
        return None
    # step and multistep decay at absolute epoch boundaries: the milestones are shifted by the warm-up,
    # since the schedule after the warm-up counts its steps from the warm-up's end
    if kind == "step":
        every = config["step_size"]
        main = optim.MultiStepLR(optimizer, [e * steps_per_epoch - warmup for e in range(every, config["epochs"] + 1, every)],
                                 gamma=config["gamma"])
    elif kind == "multistep":
        main = optim.MultiStepLR(optimizer, [m * steps_per_epoch - warmup for m in config["milestones"]],
                                 gamma=config["gamma"])
    elif kind == "cosine":
        lr = config["lr"]
        main = optim.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup), eta_min=min(config["min_lr"], lr))
    else:
        raise ValueError(f"unknown schedule {kind!r}")
    if warmup <= 0:
        return main
    warm = optim.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup)
    return optim.SequentialLR(optimizer, [warm, main], milestones=[warmup])
