"""Optimizers (``optimizers.py``: SGD, Adam, AdamW, RMSprop) and learning-rate schedulers
(``schedulers.py``: StepLR, MultiStepLR, CosineAnnealingLR, LinearLR, SequentialLR), with PyTorch's
names, update rules and ``state_dict`` layouts."""
from .optimizers import SGD, Adam, AdamW, Optimizer, RMSprop, register_optimizer_step_pre_hook
from .schedulers import CosineAnnealingLR, LinearLR, LinearWarmup, LRScheduler, MultiStepLR, SequentialLR, StepLR

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "register_optimizer_step_pre_hook", "LRScheduler", "StepLR", "MultiStepLR",
           "CosineAnnealingLR", "LinearLR", "LinearWarmup", "SequentialLR"]
