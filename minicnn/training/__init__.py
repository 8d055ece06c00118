"""Training: the loop (``fit``, ``train_one_epoch``, ``evaluate``), the pieces a run is built from
(``build_model``, ``build_optimizer``, ``build_scheduler``, the defaults) and a run's state and files.

    from minicnn import architectures, optim, training
    from minicnn.data import DataLoader, get_dataset
    model = architectures.get("lenet5")
    history = training.fit(model, train_loader, optim.SGD(model.parameters(), lr=0.05), epochs=2,
                           test_loader=test_loader)
"""
from .loop import NonFiniteLossError, current_lr, evaluate, fit, train_one_epoch, training_loss
from .setup import (ARCH_DEFAULTS, COMMON_DEFAULTS, OPTIMIZER_DEFAULTS, arch_defaults, build_model, build_optimizer,
                    build_scheduler, schedule_option_problem)
from . import recipes as recipes
from .state import (CSV_COLUMNS, default_out_dir, epoch_seed, find_resume_checkpoint, plot_curves, restore_rng_state, rng_state,
                    write_metrics_csv)

__all__ = ["fit", "train_one_epoch", "evaluate", "training_loss", "current_lr", "NonFiniteLossError",
           "build_model", "build_optimizer", "build_scheduler", "arch_defaults", "ARCH_DEFAULTS", "COMMON_DEFAULTS",
           "OPTIMIZER_DEFAULTS", "epoch_seed", "rng_state", "restore_rng_state", "write_metrics_csv", "plot_curves",
           "default_out_dir", "find_resume_checkpoint", "CSV_COLUMNS", "schedule_option_problem", "recipes"]
