"""``minicnn.nn.functional``: the same functions as ``minicnn.functional``, under PyTorch's path,
so that ``import minicnn.nn.functional as F`` works as ``import torch.nn.functional as F`` does."""
from ..functional import (__all__, adaptive_avg_pool2d, avg_pool2d, batch_norm, conv2d, cross_entropy, dropout,
                          linear, local_response_norm, log_softmax, max_pool2d, mse_loss, nll_loss, pad, relu,
                          scaled_tanh, sigmoid, softmax, subsample, tanh)

