"""Train a CNN from the command line: ``python -m minicnn.train ARCH [options]``.

    python -m minicnn.train lenet5                          # LeNet-5 on MNIST, about 99% in a few minutes
    python -m minicnn.train resnet18 --dataset fashion-mnist --limit-train 5000
    python -m minicnn.train lenet5 --resume runs/lenet5-20250101-120000   # continue an interrupted run

Every option has a default chosen for the architecture and dataset (``--help`` lists them, and
:data:`ARCH_DEFAULTS` and :mod:`minicnn.training.recipes` hold them); options given on the command line win.

A run writes into its folder (``--out``, default ``runs/<arch>-<timestamp>``):

* ``config.json``   every option of the run (after defaults were filled in);
* ``metrics.csv``   one row per epoch (epoch, lr, train/test loss and accuracy, seconds, images_per_s);
* ``last.npz``      checkpoint after the latest epoch, ``best.npz`` after the best test accuracy:
  model, optimizer and scheduler state, epoch, random-number state, metrics, config
  (see :mod:`minicnn.checkpoint`; written atomically, so a crash never leaves half a file);
* ``curves.png``    loss and accuracy against epoch (needs matplotlib).

Reproducibility: the order of the training data in epoch ``e`` depends only on
``(seed, e)`` (see :class:`~minicnn.data.DataLoader`), and the engine's random generator
(dropout) is re-seeded from ``(seed, e)`` at the start of every epoch. So the same seed on
the same machine gives the same metrics, and ``--resume`` after a crash, Ctrl-C or
``kill -9`` repeats the interrupted epoch exactly as the uninterrupted run would have.

The training loop itself is :mod:`minicnn.training` (``fit``, ``train_one_epoch``, ``evaluate``), which
a Python program can call; this is the command line over it: options, the run folder, ``--resume``, errors.

Data-parallel: ``mpiexec -n N python -m minicnn.train lenet5 --distributed`` trains one model on
N processes (``--batch-size`` is the global batch, split among them; see
:mod:`minicnn.training.job`); rank 0 alone prints and writes the run folder, ``--resume``
continues it (with any number of processes), and a failure on one process ends them all.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

import numpy as np

from . import architectures, backend, checkpoint, cli, distributed, fileio, kernels
from .autograd import Tensor, no_grad
from .data import DataError
from .data.datasets import DATASETS, canonical_name
from .data.pipeline import DATASET_SHAPES, make_transform, normalization
from .kernels.fast import memory, threads
from .training import (find_resume_checkpoint, schedule_option_problem, ARCH_DEFAULTS, COMMON_DEFAULTS, OPTIMIZER_DEFAULTS, NonFiniteLossError, arch_defaults, recipes,
                       build_model, build_optimizer, build_scheduler, current_lr, fit, plot_curves,
                       restore_rng_state, rng_state, write_metrics_csv)
from .training.job import DistributedJob, Job

# --------------------------------------------------------------------------- help texts

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = cli.EXIT_ERROR, cli.EXIT_USAGE, cli.EXIT_INTERRUPTED


def _per_arch(key, optimizer=None) -> str:
    """Help text: the default of ``key`` per architecture family, e.g. ``lenet5: 10; resnet*, vgg*: 30``."""
    by_value = {}
    for family in ARCH_DEFAULTS:
        d = arch_defaults(family)
        value = d["per_optimizer"][optimizer][key] if optimizer else d.get(key)
        name = family if family in ("lenet5", "lenet5_keras", "alexnet", "googlenet") or "/" in family else family + "*"
        by_value.setdefault("none" if value is None else f"{value:g}" if isinstance(value, float) else str(value),
                            []).append(name)
    return "; ".join(f"{', '.join(names)}: {value}" for value, names in by_value.items())


def _per_optimizer(key) -> str:
    """Help text: ``key`` (lr or weight_decay) per optimizer, then the architectures that differ."""
    text = ", ".join(f"{name} {d[key]:g}" for name, d in OPTIMIZER_DEFAULTS.items())
    for family, entry in ARCH_DEFAULTS.items():
        own = [f"{name} {entry[name][key]:g}" for name in OPTIMIZER_DEFAULTS
               if name in entry and key in entry[name] and entry[name][key] != OPTIMIZER_DEFAULTS[name][key]]
        if own:
            text += f"; {family if family in ('lenet5', 'alexnet', 'googlenet') or '/' in family else family + '*'}: {', '.join(own)}"
    return text


# --------------------------------------------------------------------------- command line

POSITIVE = cli.number_in(0, float("inf"), low_open=True)     # a finite number > 0
NONNEGATIVE = cli.number_in(0, float("inf"))                 # a finite number >= 0


def make_parser():
    p = cli.ArgumentParser(
        prog="python -m minicnn.train",
        description="Train a CNN of minicnn.architectures on MNIST, Fashion-MNIST or CIFAR-10. "
                    "Options left out take the architecture's defaults, listed per architecture family as "
                    "'default: family: value; ...' (ARCH_DEFAULTS in minicnn/training/setup.py; per dataset: the recipes below). "
                    "Example: python -m minicnn.train lenet5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=recipes.recipes_help() + "\n\nRun folder: config.json, metrics.csv, last.npz, best.npz, curves.png.\n"
               "Exit codes: 0 done, 1 error (disk, data, checkpoint, NaN/inf loss: one line, files already "
               "written are kept), 2 bad options (nothing written), 130 interrupted (Ctrl-C). "
               "--debug or MINICNN_DEBUG=1 prints the traceback of an error too.")
    p.add_argument("arch", nargs="?", help="architecture name, e.g. lenet5, resnet18, vgg16, alexnet, "
                                           "googlenet (optional with --resume)")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=["mnist", "fashion-mnist", "cifar10"],
                   help=f"dataset (default: {_per_arch('dataset')})")
    g.add_argument("--data-dir", type=cli.existing_folder,
                   help="an existing folder with the dataset files, looked in first (then $MINICNN_DATA, then "
                        "~/.cache/minicnn, downloading there if missing)")
    g.add_argument("--input-size", type=cli.positive_int,
                   help="image side the model sees; images are padded (small growth, e.g. 28->32) or "
                        f"resized bilinearly to it (default: {_per_arch('input_size')})")
    g.add_argument("--in-channels", type=int, choices=[1, 3],
                   help="input channels of the model; grey images are repeated to RGB, RGB turned grey "
                        "(default: the dataset's, 1 for (Fashion-)MNIST, 3 for CIFAR-10)")
    g.add_argument("--augment", choices=["auto", "none", "crop", "crop-flip"],
                   help="training augmentation: random shifts (crop: pad by 2 px (28 px images) or 4 px and "
                        "crop back), plus horizontal flips (crop-flip); auto = crop-flip for CIFAR-10, crop for "
                        f"MNIST and Fashion-MNIST (default: {_per_arch('augment')}; recipes below)")
    g.add_argument("--limit-train", type=cli.positive_int, metavar="N",
                   help="train on the first N training images only (quick runs)")
    g.add_argument("--limit-test", type=cli.positive_int, metavar="N",
                   help="evaluate on the first N test images only")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=cli.positive_int, help=f"number of epochs (default: {_per_arch('epochs')})")
    g.add_argument("--batch-size", type=cli.positive_int, help=f"training batch size (default: {_per_arch('batch_size')})")
    g.add_argument("--eval-batch-size", type=cli.positive_int,
                   help=f"batch size of evaluation (default: {_per_arch('eval_batch_size')})")
    g.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "rmsprop"],
                   help=f"optimizer; sgd uses Nesterov momentum unless the recipe says nesterov False (default: {_per_arch('optimizer')})")
    g.add_argument("--lr", type=POSITIVE,
                   help=f"peak learning rate (default: {_per_optimizer('lr')})")
    g.add_argument("--momentum", type=cli.number_in(0, 1, high_open=True),
                   help="momentum of sgd (Nesterov when > 0) and rmsprop (default: 0.9 for sgd, 0 for rmsprop)")
    g.add_argument("--weight-decay", type=NONNEGATIVE,
                   help="weight decay of the weights, not of biases or norm layers "
                        f"(default: {_per_optimizer('weight_decay')})")
    g.add_argument("--schedule", choices=["none", "step", "multistep", "cosine"],
                   help=f"learning-rate schedule, updated every step (default: {_per_arch('schedule')})")
    g.add_argument("--warmup-epochs", type=NONNEGATIVE,
                   help="linear warm-up from 1%% of --lr, in epochs (fractions allowed; not with schedule none) "
                        f"(default: {_per_arch('warmup_epochs')})")
    g.add_argument("--min-lr", type=NONNEGATIVE, help="final lr of the cosine schedule (default: 0)")
    g.add_argument("--step-size", type=cli.positive_int,
                   help="schedule step: multiply the lr by --gamma every this many epochs "
                        "(default: a third of --epochs)")
    g.add_argument("--milestones", type=cli.positive_int, nargs="+", metavar="EPOCH",
                   help="schedule multistep: epochs at which the lr is multiplied by --gamma "
                        "(default: 50%% and 75%% of --epochs)")
    g.add_argument("--gamma", type=NONNEGATIVE, help="lr factor of step / multistep (default: 0.1)")
    g.add_argument("--label-smoothing", type=cli.number_in(0, 1),
                   help="label smoothing of the loss, in [0, 1] (default: 0)")
    g.add_argument("--model-option", "-o", type=cli.parse_option, action="append", metavar="KEY=VALUE",
                   help="extra option for the architecture builder, e.g. aux_logits=false (repeatable)")
    g = p.add_argument_group("run")
    g.add_argument("--device", choices=["cpu", "cuda"], help="where to train (default: cuda if available, else cpu)")
    g.add_argument("--threads", type=cli.positive_int,
                   help="CPU threads for minicnn's kernels (minicnn.set_num_threads). 'none' below "
                        "means as configured: $MINICNN_NUM_THREADS, else $OMP_NUM_THREADS, else every CPU "
                        f"(default: {_per_arch('threads')})")
    g.add_argument("--seed", type=cli.nonneg_int, help="seed (an integer >= 0) of initialisation, data order, augmentation, dropout (default: 0)")
    g.add_argument("--kernels", type=cli.existing_folder, metavar="DIR", help="train on your exercise kernels in DIR")
    g.add_argument("--out", metavar="DIR", help="run folder (default: runs/<arch>-<timestamp>)")
    g.add_argument("--resume", nargs="?", const="latest", metavar="RUN_DIR_OR_CHECKPOINT",
                   help="continue a run from its last checkpoint: a run folder (uses last.npz), a .npz file, "
                        "or nothing: --out if given, else the newest runs/<arch>-* folder")
    g.add_argument("--distributed", action="store_true", default=None,
                   help="train as one process of a data-parallel job: mpiexec -n N python -m minicnn.train ... "
                        "--distributed (needs the mpi extra; --batch-size is the global batch, split across "
                        "the N processes; $MINICNN_DIST_TIMEOUT: seconds a process waits for the others, 300)")
    g.add_argument("--log-every", type=cli.positive_int,
                   help="update the progress bar (a host transfer) every N steps (default: 20)")
    g.add_argument("--no-progress", action="store_true", default=None, help="no progress bar")
    cli.add_debug_option(g)
    return p


#: Options that may differ from the saved run when resuming.
RESUME_OVERRIDABLE = {"device", "data_dir", "epochs", "log_every", "no_progress", "eval_batch_size", "out", "threads",
                      "resume", "distributed"}


def resolve_config(args, dataset_shapes=DATASET_SHAPES):
    """Fill the options the command line left out (``None``) with the architecture's defaults."""
    given = {k: v for k, v in vars(args).items() if v is not None}
    d = recipes.recipe_defaults(args.arch, given.get("dataset"))
    c = {k: given.get(k, d.get(k)) for k in COMMON_DEFAULTS}
    c["arch"] = args.arch
    c["dataset"] = canonical_name(c["dataset"])
    channels, native = dataset_shapes[c["dataset"]]
    c["in_channels"] = given.get("in_channels", channels)
    c["image_size"], c["nesterov"] = native, d["nesterov"]     # SGD: Nesterov momentum unless the recipe says not
    c["input_size"] = given.get("input_size", d.get("input_size", native))
    c["eval_batch_size"] = given.get("eval_batch_size", d["eval_batch_size"])
    opt = c["optimizer"]
    for key in ("lr", "weight_decay"):
        c[key] = given.get(key, d["per_optimizer"][opt][key])
    c["momentum"] = given.get("momentum", 0.0 if opt == "rmsprop" else d["momentum"])
    if c["schedule"] == "none":
        c["warmup_epochs"] = 0.0
    if c["schedule"] == "step" and c["step_size"] is None:
        c["step_size"] = max(1, c["epochs"] // 3)
    if c["schedule"] == "multistep" and c["milestones"] is None:
        c["milestones"] = sorted({max(1, c["epochs"] // 2), max(1, (3 * c["epochs"]) // 4)})
    if c["augment"] == "auto":
        c["augment"] = recipes.auto_augment(c["dataset"])      # digits must not be mirrored; see recipes.py
    c["mean"], c["std"] = normalization(c["dataset"], c["in_channels"])
    c["model_options"] = dict(args.model_option or [])
    c["classes"] = list(DATASETS[c["dataset"]].classes)
    c["num_classes"] = len(c["classes"])
    return c


def config_problem(config):
    """Why the options of a new run do not fit together (a usage error), or None."""
    milestones = config.get("milestones") or []
    if config["schedule"] == "multistep" and any(b <= a for a, b in zip(milestones, milestones[1:])):
        return f"argument --milestones: must be increasing, got {' '.join(map(str, milestones))}"
    if config["schedule"] != "none" and config["warmup_epochs"] > config["epochs"]:
        return (f"argument --warmup-epochs: the warm-up ({config['warmup_epochs']:g} epochs) is longer than "
                f"the run (--epochs {config['epochs']})")
    return cli.check_options(config["arch"], config["model_options"], architectures.builder_options(config["arch"]),
                             reserved={"num_classes": "the dataset sets it", "in_channels": "use --in-channels"})


def check_model(model, config, device):
    """Raise the model's own ValueError if it cannot take the run's input (``alexnet --input-size 32``).

    An empty batch (N=0) of the input size goes through the model in eval mode: every shape is
    checked, nothing is computed.
    """
    model.eval()
    with no_grad():
        model(Tensor(np.zeros((0, config["in_channels"], config["input_size"], config["input_size"]), np.float32),
                     device=device))
    model.train()


def run(argv=None) -> int:
    """The command line: parse, check, build, train, save. Returns the exit code (see :mod:`minicnn.cli`)."""
    parser = make_parser()
    rank = distributed.launcher_rank() or 0      # under mpiexec: only rank 0 prints usage errors and progress
    parser.quiet = rank > 0
    args = parser.parse_args(argv)
    if args.distributed and (problem := distributed.environment_error()):     # MINICNN_DIST_TIMEOUT
        parser.error(problem)
    jobs = []

    def body():
        jobs.append(DistributedJob() if args.distributed else Job())
        try:
            return _run(args, parser, cleanup, jobs[0])
        except distributed.RankFailed as exc:     # rank 0 failed and reports it
            return exc.exit_code
    with contextlib.ExitStack() as cleanup:      # undoes the thread setting when the run ends
        if rank > 0:
            cleanup.enter_context(contextlib.redirect_stdout(cleanup.enter_context(open(os.devnull, "w"))))
        code = cli.run_reporting(parser.prog if rank == 0 else f"{parser.prog} (rank {rank})",
                                 cli.debug_requested(args), body, expected=(DataError, distributed.DistributedError))
    return jobs[0].close(code) if jobs else code


#: The options every saved run config holds (what resolve_config makes).
CONFIG_KEYS = sorted(set(COMMON_DEFAULTS) | {"arch", "in_channels", "image_size", "input_size", "eval_batch_size",
                                              "lr", "weight_decay", "momentum", "mean", "std", "model_options",
                                              "classes", "num_classes"})


def _saved_config(config, path):
    """A checkpoint's config, checked as a new run's options are (``CommandError`` if it does not hold)."""
    if not isinstance(config, dict):
        raise cli.CommandError(f"checkpoint {path}: its config is not a dict of options")
    missing = [k for k in CONFIG_KEYS if k not in config]
    problem = (f"it lacks {', '.join(missing)}" if missing
               else f"unknown architecture {config['arch']!r}" if config["arch"] not in architectures.names()
               else f"unknown dataset {config['dataset']!r}" if config["dataset"] not in DATASETS
               else config_problem(config))
    if problem:
        raise cli.CommandError(f"checkpoint {path}: its config does not describe a run minicnn can continue: "
                               f"{problem}. Pass a last.npz or best.npz written by python -m minicnn.train.")
    return dict(config)


def _resumed_config(args):
    """``(state, config, checkpoint path, run folder)`` of the run ``--resume`` names, with the options
    a resumed run may change applied; raises ``CommandError`` when it cannot be resumed as asked."""
    try:
        ckpt_path = find_resume_checkpoint(args.resume, args.arch, args.out)
        state = checkpoint.load(ckpt_path)
        checkpoint.require(state, ["model", "optimizer", "scheduler", "epoch", "config", "history"], ckpt_path)
    except checkpoint.CheckpointError as exc:
        raise cli.CommandError(f"{exc} (To start a new run instead, leave out --resume.)") from exc
    config = _saved_config(state["config"], ckpt_path)
    if args.arch and args.arch != config["arch"]:
        raise cli.CommandError(f"{ckpt_path} is a {config['arch']} run, not {args.arch}")
    saved = dict(config, model_option=config.get("model_options", {}))
    changed = [k for k, v in vars(args).items()
               if v is not None and k not in RESUME_OVERRIDABLE and k != "arch"
               and saved.get(k, v) != (dict(v) if k == "model_option" else v)]
    if changed:
        opts = ", ".join(f"--{k.replace('_', '-')} {getattr(args, k)} (run: {config.get(k)})" for k in changed)
        raise cli.CommandError(f"a resumed run keeps its saved options; {opts} differ. Start a new run to change them.")
    if args.epochs is not None and args.epochs != config["epochs"] and config["schedule"] != "none":
        raise cli.CommandError(f"the {config['schedule']} schedule of {ckpt_path} was planned for {config['epochs']} "
                               f"epochs; --epochs {args.epochs} would change it. Start a new run instead "
                               "(or resume with the original --epochs).")
    for key in ("epochs", "data_dir", "eval_batch_size", "log_every", "threads"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    out = os.path.dirname(os.path.abspath(ckpt_path))
    if args.out and args.resume != "latest" and os.path.abspath(args.out) != out:
        raise cli.CommandError(f"--out {args.out} does not apply: a resumed run continues in its own folder ({out})")
    folder_last = os.path.join(out, "last.npz")
    if os.path.abspath(ckpt_path) != folder_last and os.path.exists(folder_last):
        try:
            last_epoch = int(checkpoint.load(folder_last)["epoch"])
        except (checkpoint.CheckpointError, KeyError):
            last_epoch = -1              # unreadable: nothing newer to protect
        if last_epoch > int(state["epoch"]):
            raise cli.CommandError(
                f"{ckpt_path} holds epoch {state['epoch']} but {folder_last} holds epoch {last_epoch}: "
                "resuming from it would overwrite the later epochs. Resume from last.npz, or copy "
                "the checkpoint into a new folder to branch off from it.")
    return state, config, ckpt_path, out


def _configure(args, parser, job):
    """``(state, config, checkpoint path, run folder)``: a new run's options checked before anything is
    written, or the saved ones of the run ``--resume`` names."""
    state = ckpt_path = None
    if args.resume is not None:
        state, config, ckpt_path, out = _resumed_config(args)
    else:
        if not args.arch:
            parser.error("the architecture name is required (unless --resume is given)")
        if args.arch not in architectures.names():
            parser.error(f"unknown architecture {args.arch!r}; available: {', '.join(architectures.names())}")
        config = resolve_config(args)
        problem = config_problem(config) or schedule_option_problem(args, config["schedule"])
        if problem:
            parser.error(problem)
        out = args.out
        if out and os.path.exists(os.path.join(out, "last.npz")):
            raise cli.CommandError(f"{out} already holds a run (last.npz). Continue it with --resume {out}, "
                                   "or choose another --out.")
    problem = job.check(config)
    if problem:
        parser.error(problem)
    return state, config, ckpt_path, out


def _run(args, parser, cleanup, job) -> int:
    progress = not args.no_progress and job.writes
    state, config, ckpt_path, out = job.first_on_root(lambda: _configure(args, parser, job))
    config["processes"] = job.world_size
    cleanup.enter_context(kernels.for_command_line(args.kernels))     # prints which kernels are the learner's
    cleanup.enter_context(threads.using(job.threads(config)))
    try:
        device = backend.normalize_device(args.device or ("cuda" if backend.cuda_available() else "cpu"))
        job.use_device(device)
    except RuntimeError as exc:                      # --device cuda without CuPy or a GPU (or NCCL)
        raise cli.CommandError(exc) from exc
    config["device"] = device

    # ---- the model (a usage error when the options do not fit it), then the data
    backend.manual_seed(config["seed"])
    try:
        model = build_model(config, device)
        check_model(model, config, device)
    except (ValueError, TypeError) as exc:
        if state is not None:
            raise cli.CommandError(f"{ckpt_path}: its config does not build a model: {exc}") from exc
        parser.error(cli.one_line(exc))
    train_set, test_set = job.load_data(config)          # rank 0 first: it may download the files
    train_loader, test_loader = job.loaders(train_set, test_set, config, make_transform(config, train=True),
                                            make_transform(config, train=False))
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, len(train_loader))
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise cli.CommandError(f"{ckpt_path} does not fit the {config['arch']} model of its own config: "
                                   f"{exc}") from exc
        restore_rng_state(state.get("rng", {}), device)
        print(f"resuming {config['arch']} from {ckpt_path} (epoch {state['epoch']}/{config['epochs']})")

    # ---- the run folder (rank 0 makes it): from here on, a failure keeps what was written
    out = job.make_folder(config["arch"], out)
    try:
        return _train(config, out, state, model, optimizer, scheduler, train_loader, test_loader, progress, job)
    except OSError as exc:
        resume = (f"then continue with: {job.resume_command(config['arch'], out)}"
                  if os.path.exists(os.path.join(out, "last.npz")) else "then start the run again")
        raise cli.CommandError(f"cannot write the run's files: {cli.describe_os_error(exc)}. The files "
                               f"already written in {out} are intact; fix that, {resume}.") from exc


def _train(config, out, state, model, optimizer, scheduler, train_loader, test_loader, progress, job) -> int:
    """The epochs (from the one after ``state``'s, when resuming), the run's files written after each
    (by rank 0 alone in a data-parallel job); returns the exit code."""
    device = config["device"]
    history = [dict(r) for r in state["history"]] if state is not None else []
    best_acc = max((r["test_acc"] for r in history), default=-1.0)
    start_epoch = int(state["epoch"]) + 1 if state is not None else 1
    last_path, best_path = os.path.join(out, "last.npz"), os.path.join(out, "best.npz")
    config["out"] = out
    if job.writes:
        for stale in fileio.remove_stale_temporaries(out):       # left by a write that was killed
            print(f"removed {stale}, left by an interrupted write", file=sys.stderr)
        fileio.atomic_write_text(os.path.join(out, "config.json"), json.dumps(config, indent=2) + "\n")
        write_metrics_csv(os.path.join(out, "metrics.csv"), history)

    def save(path, epoch):
        checkpoint.save(path, {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "epoch": epoch,
            "rng": rng_state(device),
            "loader": train_loader.state_dict(),
            "history": history,
            "config": config,
        })

    n_params = sum(p.numel() for p in model.parameters())
    print(f"{config['arch']} ({n_params:,} parameters) on {config['dataset']} "
          f"({train_loader.num_samples} train / {test_loader.num_samples} test images, {config['in_channels']}x"
          f"{config['input_size']}x{config['input_size']}), {device}"
          + (f" x {job.world_size} processes" if job.world_size > 1 else "") + "; "
          f"{config['optimizer']} lr {config['lr']:g}, {config['schedule']} schedule, {config['epochs']} epochs "
          f"of {len(train_loader)} steps; run folder {out}", flush=True)
    saved_epoch = start_epoch - 1    # the epoch that last.npz holds
    if state is None and job.writes:
        save(last_path, 0)           # the initial weights: a run can be resumed from its first second
    if start_epoch > config["epochs"]:
        print(f"the run is already complete ({config['epochs']} epochs); nothing to do")
        return 0

    run_start = time.perf_counter()

    def after_epoch(row, history):   # best first: a crash in between leaves a consistent pair
        nonlocal best_acc, saved_epoch
        is_best = row["test_acc"] > best_acc
        if is_best:
            best_acc = row["test_acc"]
            save(best_path, row["epoch"])
        save(last_path, row["epoch"])
        saved_epoch = row["epoch"]
        write_metrics_csv(os.path.join(out, "metrics.csv"), history)
        plot_curves(os.path.join(out, "curves.png"), history, f"{config['arch']} on {config['dataset']}")
        print(f"epoch {row['epoch']:>3}/{config['epochs']}  lr {row['lr']:.2e}  "
              f"train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:6.2f}%  "
              f"test loss {row['test_loss']:.4f} acc {100 * row['test_acc']:6.2f}%  "
              f"{row['seconds']:5.1f} s  {row['images_per_s']:6.0f} img/s" + ("  *best*" if is_best else ""),
              flush=True)
    try:
        fit(job.wrap(model), train_loader, optimizer, config["epochs"], test_loader=test_loader, scheduler=scheduler,
            device=device, label_smoothing=config["label_smoothing"], seed=config["seed"], start_epoch=start_epoch,
            history=history, on_epoch_end=after_epoch if job.writes else None, log_every=config["log_every"],
            progress=progress)
    except KeyboardInterrupt:
        if not job.writes:
            return EXIT_INTERRUPTED
        what = "the initial weights" if saved_epoch == 0 else f"after epoch {saved_epoch}"
        print(f"\ninterrupted during epoch {saved_epoch + 1}. The last checkpoint is {last_path} ({what}).\n"
              f"Resume with: {job.resume_command(config['arch'], out)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except NonFiniteLossError as exc:
        job.fail_together()                      # every process met it at the same step
        if not job.writes:
            return EXIT_ERROR
        raise cli.CommandError(
            f"{exc} (lr {current_lr(optimizer):.3g}); training stopped. The last good checkpoint, "
            f"{last_path} (epoch {saved_epoch}), is intact. Try a lower --lr (this run used "
            f"{config['lr']:g}) or a longer --warmup-epochs, in a new run.") from exc

    minutes = (time.perf_counter() - run_start) / 60
    best = max(history, key=lambda r: r["test_acc"])
    print(f"done in {minutes:.1f} min: final test accuracy {100 * history[-1]['test_acc']:.2f}%, "
          f"best {100 * best['test_acc']:.2f}% (epoch {best['epoch']}). Files in {out}")
    return 0


def main(argv=None):
    memory.tune_malloc()            # reuse large freed blocks instead of page-faulting them in again
    try:
        code = run(argv)
    except KeyboardInterrupt:        # Ctrl-C before training started (loading data, building the model)
        print("\ninterrupted before the first epoch started", file=sys.stderr)
        code = EXIT_INTERRUPTED
        if distributed.is_initialized() and distributed.get_world_size() > 1:
            distributed.default_group().abort(code)       # the others may be waiting for this one
    sys.exit(code)


if __name__ == "__main__":
    main()
