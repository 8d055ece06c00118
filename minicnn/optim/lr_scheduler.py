"""The learning-rate schedulers under PyTorch's module name: ``from minicnn.optim.lr_scheduler import StepLR``
(``torch.optim.lr_scheduler``). They live in ``schedulers.py``."""
from .schedulers import CosineAnnealingLR, LinearLR, LinearWarmup, LRScheduler, MultiStepLR, SequentialLR, StepLR

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR", "LinearWarmup", "SequentialLR"]
