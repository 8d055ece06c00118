"""Optimizers and learning-rate schedulers, with PyTorch's update rules and state layout.

An optimizer holds *parameter groups*: dicts with a list of tensors under ``'params'``
and the hyper-parameters of that group (``'lr'``, ``'weight_decay'``...), so that, for
example, biases and BatchNorm weights can be trained without weight decay::

    opt = SGD([{"params": weights, "weight_decay": 5e-4},
               {"params": biases}], lr=0.1, momentum=0.9)
    for x, y in loader:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()              # p.data -= lr * (update), for every p with a gradient
    scheduler.step()            # once per epoch: sets group['lr'] for the next epoch

Conventions shared by every optimizer here:

* a parameter whose ``grad`` is ``None`` is skipped (its state is not touched);
* the update is written *in place* into ``p.data`` (views of it stay valid), and
  ``p.grad`` is never written to (a gradient array may be shared by two tensors);
* the optimizer's own state buffers (momentum, moving averages) are updated in place
  with ``*=``, ``+=`` and ``out=`` so that a step allocates as little as possible;
* hyper-parameters are read from the group at every step as Python floats, so a
  float32 parameter stays float32 (NumPy 2 would promote it with a float64 scalar)
  and ``group['lr'] = ...`` takes effect at the next step.
"""
from __future__ import annotations

import math
import numbers
from collections import defaultdict

from .. import backend, kernels
from ..autograd import Tensor, enable_grad
from ..hooks import add_hook
from ..backend import get_array_module
from ..kernels.fast.misc import sgd_step as fast_sgd_step
from .foreach import sgd_group_step

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "register_optimizer_step_pre_hook"]

_step_pre_hooks = {}        # the hooks of every optimizer's step()


def register_optimizer_step_pre_hook(hook):
    """Run ``hook(optimizer, args, kwargs)`` before the ``step()`` of every optimizer (PyTorch's
    ``torch.optim.optimizer.register_optimizer_step_pre_hook``; data-parallel training checks there
    that the gradients were averaged). Returns a handle with ``.remove()``."""
    return add_hook(_step_pre_hooks, hook, "register_optimizer_step_pre_hook")


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad``, ``step``, ``state_dict``.

    ``params`` is an iterable of Tensors, or of dicts (parameter groups) each with a
    ``'params'`` entry and optional hyper-parameters that override ``defaults``.
    A subclass implements ``_update(p, grad, state, group)`` for one parameter and,
    optionally, ``_check(group)`` to validate a group's hyper-parameters.
    """

    state_keys = frozenset()   # the per-parameter state names a subclass keeps (checked on load)

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = defaultdict(dict)   # Tensor -> dict of buffers (keyed by identity)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"{self._name}: params must be an iterable of Tensors or of dicts, "
                            f"got a single Tensor (wrap it in a list)")
        if isinstance(params, (set, frozenset)):
            raise TypeError(f"{self._name}: params must be an ordered collection (list, generator), "
                            f"not a set: its order changes from run to run")
        groups = list(params)
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (e.g. the layers unfrozen for fine-tuning) with its own options."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}: a parameter group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}: a parameter group needs a 'params' entry, "
                             f"got keys {sorted(param_group)}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{self._name}: a group's params must be ordered (a list), not a set")
        group["params"] = list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{self._name}: can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{self._name}: can't optimize a non-leaf Tensor (one computed by an op); "
                                 f"optimize the leaves it was computed from")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        seen = set()
        for other in self.param_groups:
            seen.update(id(p) for p in other["params"])
        ids = [id(p) for p in group["params"]]
        if len(set(ids)) != len(ids) or seen.intersection(ids):
            raise ValueError(f"{self._name}: a parameter appears more than once in the parameter groups "
                             f"(it would be updated twice per step)")
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group: dict) -> None:
        """Raise ``ValueError`` for invalid hyper-parameters (overridden by each optimizer)."""

    def _check_nonnegative(self, group, key, what):
        if not isinstance(group[key], numbers.Real):
            raise TypeError(f"{self._name}: {what} must be a number, got {group[key]!r}")
        if not group[key] >= 0.0:
            raise ValueError(f"{self._name}: invalid {what} {group[key]}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``p.grad = None`` (default), or fresh zero arrays when ``set_to_none=False``.

        The old gradient array is never zeroed in place: another tensor may share it.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad = get_array_module(p.grad.data).zeros_like(p.grad.data)

    def step(self, closure=None):
        """Update every parameter that has a gradient; return ``closure()`` if one is given.

        ``closure`` re-evaluates the model and returns the loss (as in PyTorch).
        """
        for hook in list(_step_pre_hooks.values()):
            hook(self, (closure,), {})
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        work = []
        for group in self.param_groups:
            if self._group_step(group):      # the whole group in one fused step (SGD on a GPU)
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if grad.shape != p.data.shape:
                    raise ValueError(f"{self._name}: gradient of shape {tuple(grad.shape)} does not match "
                                     f"its parameter's shape {tuple(p.data.shape)}")
                work.append((p, grad, self.state[p], group))

        def update(first, stop):
            for item in work[first:stop]:
                self._update(*item)
        # The updates are independent: the fast kernels share them out among the CPU threads (by size).
        kernels.parameter_updates(update, [p.data for p, *_ in work])
        return loss

    def _group_step(self, group) -> bool:
        """Step a whole parameter group at once if this optimizer can (True), else leave it to ``_update``."""
        return False

    def _update(self, p, grad, state, group):
        raise NotImplementedError

    # ---- saving and restoring

    def state_dict(self) -> dict:
        """``{'state': {index: {name: value}}, 'param_groups': [{..., 'params': [index, ...]}]}``.

        Parameters are numbered 0, 1, 2... over all groups in order (PyTorch's layout), so
        the dict does not depend on object identities.  Arrays are *copies* (on the
        parameter's device), so later steps do not change a saved dict.
        """
        index, groups, n = {}, [], 0
        for group in self.param_groups:
            ids = list(range(n, n + len(group["params"])))
            index.update({id(p): i for p, i in zip(group["params"], ids)})
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
            n += len(ids)
        state = {}
        for p, s in self.state.items():
            if s and id(p) in index:
                state[index[id(p)]] = {k: (v.copy() if hasattr(v, "shape") else v) for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a ``state_dict()``: hyper-parameters of each group and the state of each parameter.

        The groups must have the same number of parameters, and each saved buffer the shape
        of its parameter; buffers are copied onto the parameter's device and dtype.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{self._name}.load_state_dict: the state dict has {len(saved_groups)} parameter "
                             f"group(s), this optimizer has {len(self.param_groups)}")
        params = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{self._name}.load_state_dict: parameter group {i} has {len(saved['params'])} "
                                 f"parameter(s) in the state dict, {len(group['params'])} in this optimizer")
            params.extend(zip(saved["params"], group["params"]))
        by_index = dict(params)
        new_state = defaultdict(dict)
        for key, saved in state_dict["state"].items():
            if key not in by_index:
                raise ValueError(f"{self._name}.load_state_dict: state for parameter {key}, "
                                 f"which is in no parameter group")
            p = by_index[key]
            unknown = set(saved) - self.state_keys
            if unknown:
                raise ValueError(f"{self._name}.load_state_dict: state {sorted(unknown)} of parameter {key} is not "
                                 f"{self._name}'s (it keeps {sorted(self.state_keys)}): was it saved by another optimizer?")
            for name, value in saved.items():
                if hasattr(value, "shape"):
                    if tuple(value.shape) != tuple(p.shape):
                        raise ValueError(f"{self._name}.load_state_dict: state {name!r} of parameter {key} has "
                                         f"shape {tuple(value.shape)}, the parameter has shape {tuple(p.shape)}")
                    value = backend.to_device(value, p.device).astype(p.dtype, order="C", copy=True)  # (a
                    # foreign buffer may be strided, e.g. a channels-last one: ours are C-contiguous)
                new_state[p][name] = value
        # Everything checked: now change the optimizer.
        self.state = new_state
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})

    def __repr__(self):
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        return "\n".join(lines + [")"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    g = grad (+ weight_decay * p);  buf = g on the first step, then buf = momentum * buf + (1 - dampening) * g;
    g = g + momentum * buf (nesterov) or g = buf;  p -= lr * g.
    """

    state_keys = frozenset({"momentum_buffer"})   # what load_state_dict accepts

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _check(self, group):
        self._check_nonnegative(group, "lr", "learning rate")
        self._check_nonnegative(group, "momentum", "momentum value")
        self._check_nonnegative(group, "weight_decay", "weight_decay value")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{self._name}: Nesterov momentum requires a momentum > 0 and zero dampening")

    def _group_step(self, group) -> bool:
        # fast kernels on a GPU: one kernel for the whole group (see optim.foreach)
        return kernels.mode() == "fast" and sgd_group_step(self, group)

    def _update(self, p, grad, state, group):
        lr, momentum = float(group["lr"]), float(group["momentum"])
        dampening, weight_decay = float(group["dampening"]), float(group["weight_decay"])
        xp = get_array_module(p.data)
        buf = state.get("momentum_buffer")
        mine = getattr(kernels.active(), "sgd_step", None)           # a learner's exercise (kernels.use(folder))
        if mine is not None and dampening == 0 and not group["nesterov"] and not group["maximize"]:
            if (buf := mine(p.data, grad, buf, lr, momentum, weight_decay)) is not None:
                state["momentum_buffer"] = buf
            return
        if kernels.mode() == "fast" and p.data.flags.c_contiguous and grad.flags.c_contiguous \
                and grad.dtype == p.dtype and get_array_module(grad) is xp \
                and (buf is None or (buf.flags.c_contiguous and buf.dtype == p.dtype)):
            # fast kernels: the array operations below in one pass (a fused kernel on a GPU, cache-sized
            # chunks on the CPU), without temporaries the size of the parameter
            first = momentum != 0 and buf is None
            if first:
                buf = state["momentum_buffer"] = xp.empty_like(p.data)
            fast_sgd_step(p.data, grad, buf, lr, momentum, dampening, weight_decay,
                          group["nesterov"], group["maximize"], first)
            return
        g = -grad if group["maximize"] else grad               # never modify grad itself
        if weight_decay != 0:
            g = g + weight_decay * p.data                       # L2 penalty: d/dp (wd/2 |p|^2)
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()       # first step: buf = g
            else:
                buf *= momentum
                buf += g if dampening == 0 else (1.0 - dampening) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam``; ``weight_decay`` adds the L2 term to the gradient.

    m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;  p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps),
    with v replaced by its running maximum when ``amsgrad``.
    """

    state_keys = frozenset({"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"})

    decoupled_weight_decay = False   # AdamW: True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _check(self, group):
        self._check_nonnegative(group, "lr", "learning rate")
        self._check_nonnegative(group, "eps", "epsilon value")
        self._check_nonnegative(group, "weight_decay", "weight_decay value")
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"{self._name}: betas must be a pair (beta1, beta2), got {betas}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{self._name}: invalid beta parameter at index {i}: {beta} (must be in [0, 1))")

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.data)
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:   # also when amsgrad is switched on later
            state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]

        g = -grad if group["maximize"] else grad
        if weight_decay != 0:
            if self.decoupled_weight_decay:
                p.data *= 1.0 - lr * weight_decay           # AdamW: shrink p, leave g alone
            else:
                g = g + weight_decay * p.data               # Adam: L2 penalty in the gradient

        tmp = xp.multiply(g, 1.0 - beta1)                   # the one scratch array of this step
        m *= beta1
        m += tmp                                            # m = b1*m + (1-b1)*g
        xp.multiply(g, g, out=tmp)
        tmp *= 1.0 - beta2
        v *= beta2
        v += tmp                                            # v = b2*v + (1-b2)*g^2
        if group["amsgrad"]:
            v = xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])

        bias_correction1 = 1.0 - beta1 ** t
        bias_correction2 = 1.0 - beta2 ** t
        denom = xp.sqrt(v, out=tmp)
        denom /= math.sqrt(bias_correction2)
        denom += eps                                        # sqrt(v_hat) + eps
        xp.divide(m, denom, out=denom)                      # m / (sqrt(v_hat) + eps)
        denom *= lr / bias_correction1                      # ... times lr / (1 - b1^t) = lr * m_hat / ...
        p.data -= denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    p *= 1 - lr*weight_decay;  then the Adam update without any L2 term in the gradient.
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)


class RMSprop(Optimizer):
    """RMSprop (Hinton), as ``torch.optim.RMSprop``.

    v = alpha*v + (1-alpha)*g^2;  centered: a = alpha*a + (1-alpha)*g, v_used = v - a^2;
    d = g / (sqrt(v_used) + eps);  momentum: buf = momentum*buf + d, p -= lr*buf;  else p -= lr*d.
    """

    state_keys = frozenset({"step", "square_avg", "momentum_buffer", "grad_avg"})

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check(self, group):
        self._check_nonnegative(group, "lr", "learning rate")
        self._check_nonnegative(group, "eps", "epsilon value")
        self._check_nonnegative(group, "momentum", "momentum value")
        self._check_nonnegative(group, "weight_decay", "weight_decay value")
        self._check_nonnegative(group, "alpha", "alpha value")

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.data)
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        weight_decay, momentum = float(group["weight_decay"]), float(group["momentum"])
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p.data)
        if momentum > 0 and "momentum_buffer" not in state:       # also when switched on later
            state["momentum_buffer"] = xp.zeros_like(p.data)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = xp.zeros_like(p.data)
        state["step"] += 1

        g = -grad if group["maximize"] else grad
        if weight_decay != 0:
            g = g + weight_decay * p.data
        square_avg = state["square_avg"]
        tmp = xp.multiply(g, g)                             # the one scratch array of this step
        tmp *= 1.0 - alpha
        square_avg *= alpha
        square_avg += tmp                                   # v = alpha*v + (1-alpha)*g^2
        if group["centered"]:
            grad_avg = state["grad_avg"]
            xp.multiply(g, 1.0 - alpha, out=tmp)
            grad_avg *= alpha
            grad_avg += tmp                                 # a = alpha*a + (1-alpha)*g
            xp.multiply(grad_avg, grad_avg, out=tmp)
            xp.subtract(square_avg, tmp, out=tmp)           # v - a^2: the variance estimate
            avg = xp.sqrt(tmp, out=tmp)
        else:
            avg = xp.sqrt(square_avg, out=tmp)
        avg += eps
        xp.divide(g, avg, out=avg)                          # d = g / (sqrt(v) + eps)
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += avg
            xp.multiply(buf, lr, out=avg)
        else:
            avg *= lr
        p.data -= avg
