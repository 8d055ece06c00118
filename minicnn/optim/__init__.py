"""Optimizers (``optimizers.py``: SGD, Adam, AdamW, RMSprop) and learning-rate schedulers
(``schedulers.py``: StepLR, MultiStepLR, CosineAnnealingLR, LinearLR, SequentialLR; also under PyTorch's
name ``optim.lr_scheduler``), with PyTorch's names, update rules and ``state_dict`` layouts.
``register_optimizer_step_pre_hook``: a hook before every optimizer's step, as PyTorch's."""
from . import lr_scheduler
from .optimizers import SGD, Adam, AdamW, Optimizer, RMSprop, register_optimizer_step_pre_hook
from .schedulers import CosineAnnealingLR, LinearLR, LinearWarmup, LRScheduler, MultiStepLR, SequentialLR, StepLR

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "register_optimizer_step_pre_hook", "LRScheduler",
           "StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR", "LinearWarmup", "SequentialLR", "lr_scheduler"]
