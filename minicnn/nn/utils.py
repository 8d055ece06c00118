"""``nn.utils``: gradient clipping, as ``torch.nn.utils``: ``clip_grad_norm_`` and ``clip_grad_value_``.

Both change the parameters' ``.grad`` in place (call them between ``backward()`` and ``optimizer.step()``).
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Tensor, no_grad
from ..backend import get_array_module


def _grads(parameters):
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad for p in parameters if p.grad is not None]


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None) -> Tensor:
    """Scale the gradients so that their total ``norm_type``-norm (as if all were one vector) is at most
    ``max_norm``: each is multiplied by ``min(1, max_norm / (total + 1e-6))``. Returns the total norm
    before clipping (a 0-d tensor). ``error_if_nonfinite=True`` raises when that norm is NaN or infinite.
    ``foreach`` is accepted and ignored (there is one implementation)."""
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not grads:
        return Tensor(np.zeros((), dtype=np.float32))
    xp = get_array_module(grads[0].data)
    if math.isinf(norm_type):
        largest = norm_type > 0                       # inf: the largest |g| of all; -inf: the smallest
        norms = xp.stack([xp.abs(g.data).max() if largest else xp.abs(g.data).min() for g in grads])
        total = norms.max() if largest else norms.min()
    else:
        norms = xp.stack([xp.linalg.norm(g.data.reshape(-1), ord=norm_type) for g in grads])
        total = xp.linalg.norm(norms, ord=norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it "
                           "cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
                           "anyway, set `error_if_nonfinite=False`")
    coef = Tensor(xp.minimum(float(max_norm) / (total + 1e-6), 1.0).astype(grads[0].dtype))   # on the device:
    for g in grads:                                                                         # no host read
        g.mul_(coef)
    return Tensor(xp.asarray(total, dtype=grads[0].dtype))


@no_grad()
def clip_grad_value_(parameters, clip_value, foreach=None) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` (in place)."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(-clip_value, clip_value)
