"""``Module``: the base class of every layer and model (``torch.nn.Module``).

A module owns three ordered dictionaries, filled by plain attribute assignment in ``__init__``:

* ``_parameters``: the ``Parameter``s it learns (``self.weight = Parameter(...)``);
* ``_buffers``: tensors that are state but are not learned, e.g. BatchNorm's running mean
  (``self.register_buffer("running_mean", tensor)``);
* ``_modules``: its sub-modules (``self.conv1 = Conv2d(...)``).

Everything else follows from walking these dictionaries recursively, in registration order:
``parameters()``, ``named_parameters()`` ("features.0.weight", ...), ``state_dict()``,
``train()``/``eval()``, ``to(device)``, ``zero_grad()`` and the printed summary.

``state_dict()`` differs from PyTorch in one documented way: its values are **NumPy arrays on
the CPU** (copies), not tensors, so that a checkpoint is simply::

    np.savez("model.npz", **model.state_dict())
    model.load_state_dict(np.load("model.npz"))
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend, hooks
from ..autograd import Tensor
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
"""What ``load_state_dict`` returns: the keys it did not find and the keys it did not use."""


class StateDictError(RuntimeError, ValueError):
    """``load_state_dict`` found missing/unexpected keys or wrong shapes.

    A ``RuntimeError`` as in PyTorch, and also a ``ValueError`` (the arguments were wrong).
    """


def _add_indent(text: str, spaces: int) -> str:
    """Indent every line of ``text`` but the first (for nested module reprs)."""
    lines = text.split("\n")
    return "\n".join(lines[:1] + [" " * spaces + line for line in lines[1:]])


def _check_name(kind: str, name) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
    if name == "" or "." in name:
        raise KeyError(f"{kind} name can't be empty or contain '.', got {name!r}")


class Module:
    """Base class for all layers and models.

    Subclasses call ``super().__init__()`` first, assign parameters and sub-modules as
    attributes, and implement ``forward``; calling the module calls ``forward``::

        class Net(Module):
            def __init__(self):
                super().__init__()
                self.fc = Linear(4, 2)

            def forward(self, x):
                return self.fc(x).relu()
    """

    training: bool

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dictionaries to exist
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    _forward_pre_hooks = _forward_hooks = {}   # (read only) for a subclass that skipped Module.__init__

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)
        for hook, with_kwargs in tuple(self._forward_pre_hooks.values()):
            result = hook(self, args, kwargs) if with_kwargs else hook(self, args)
            if result is not None:
                if with_kwargs:
                    args, kwargs = result
                else:
                    args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook, with_kwargs in tuple(self._forward_hooks.values()):
            result = hook(self, args, kwargs, output) if with_kwargs else hook(self, args, output)
            output = output if result is None else result
        return output

    # ------------------------------------------------------------------ hooks

    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False):
        """``hook(module, args) -> None or new args`` runs before ``forward`` (``args``: the positional
        arguments, a tuple; a single returned value is wrapped in one). With ``with_kwargs=True``:
        ``hook(module, args, kwargs) -> None or (args, kwargs)``. Returns a handle with ``.remove()``."""
        return self._add_forward_hook("_forward_pre_hooks", hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False):
        """``hook(module, args, output) -> None or new output`` runs after ``forward`` (with ``with_kwargs=True``:
        ``hook(module, args, kwargs, output)``). Returns a handle with ``.remove()``."""
        if always_call:
            raise ValueError("register_forward_hook: always_call=True is not supported")
        return self._add_forward_hook("_forward_hooks", hook, prepend, with_kwargs)

    def _add_forward_hook(self, registry, hook, prepend, with_kwargs):
        if registry not in self.__dict__:
            object.__setattr__(self, registry, OrderedDict())
        hooks_ = self.__dict__[registry]
        handle = hooks.add_hook(hooks_, hook, f"register{registry.removesuffix('s')}")
        hooks_[handle.id] = (hook, bool(with_kwargs))
        if prepend:
            hooks_.move_to_end(handle.id, last=False)
        return handle

    # ------------------------------------------------------------------ registration

    def register_parameter(self, name: str, param) -> None:
        """Add a parameter (a ``Parameter``, or ``None`` for an absent one such as ``bias=False``)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name("parameter", name)
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                            "(minicnn.nn.Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add a buffer: state that is not learned (``None`` allowed).

        Persistent buffers are saved in ``state_dict()``; all buffers move with ``to()``.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name("buffer", name)
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            "(minicnn Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module) -> None:
        """Add a sub-module (or ``None``) under ``name``."""
        if "_modules" not in self.__dict__:
            raise AttributeError("cannot assign module before Module.__init__() call")
        _check_name("module", name)
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(minicnn.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            if "_modules" not in self.__dict__:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name)
            self._modules[name] = value
        elif name in self.__dict__.get("_modules", {}):
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                "(minicnn.nn.Module or None expected)")
            self._modules[name] = None
        elif name in self.__dict__.get("_buffers", {}):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(minicnn Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        """Remove ``name`` from every registry (before registering it as something else)."""
        self.__dict__.pop(name, None)
        for registry in ("_parameters", "_buffers", "_modules"):
            self.__dict__[registry].pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the registries
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(registry, {}):
                del self.__dict__[registry][name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # ------------------------------------------------------------------ walking the tree

    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        """Yield ``(name, module)`` for this module ('' or ``prefix``) and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        """This module and every descendant (each once)."""
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """Yield ``(name, module)`` for the direct sub-modules (each once)."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        """``(name, tensor)`` from ``registry`` of this module (and descendants), each tensor once."""
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Yield ``(name, Parameter)``, e.g. ``("features.0.weight", ...)``, in registration order.

        A parameter shared by two layers is yielded once (under its first name).
        """
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        """Every ``Parameter`` of this module and its descendants (what an optimizer needs)."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Yield ``(name, buffer)`` (persistent or not), e.g. ``("bn1.running_mean", ...)``."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def get_submodule(self, target: str) -> "Module":
        """The sub-module at a dotted path such as ``"features.0"`` (``""`` is ``self``)."""
        module = self
        for part in target.split(".") if target else []:
            if part not in module._modules:
                raise AttributeError(f"{type(module).__name__} has no sub-module '{part}' (looking for '{target}')")
            module = module._modules[part]
        return module

    def apply(self, fn) -> "Module":
        """Call ``fn(m)`` on every sub-module (children first) and on ``self``; returns ``self``.

        Typical use: custom initialisation, ``model.apply(init_weights)``.
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Total number of parameter elements (shared parameters counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------------ modes and gradients

    def train(self, mode: bool = True) -> "Module":
        """Set training mode (``mode=True``) or evaluation mode on this module and all descendants.

        It matters for layers such as Dropout and BatchNorm.  Returns ``self``.
        """
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode; same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Set ``requires_grad`` of every parameter (e.g. ``False`` to freeze a feature extractor)."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter: to ``None`` (default) or to zeros.

        (Zeros are fresh arrays, not written in place: autograd may share one gradient
        array between several tensors.)
        """
        for param in self.parameters():
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad = backend.get_array_module(param.grad.data).zeros_like(param.grad.data)

    # ------------------------------------------------------------------ devices and dtypes

    def _apply_to_arrays(self, fn) -> "Module":
        """Replace the array of every parameter, gradient and buffer by ``fn(array)``.

        The ``Parameter`` and buffer objects themselves are kept, only their ``.data`` (and
        ``.grad``) change, so an optimizer that holds the parameters stays valid.
        """
        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    grad = param.grad
                    param.grad = None             # the setter checks shapes and devices against data
                    param.data = fn(param.data)
                    if grad is not None:
                        param.grad = fn(grad.data)
            for buf in module._buffers.values():
                if buf is not None:
                    buf.data = fn(buf.data)
        return self

    def to(self, device=None, dtype=None) -> "Module":
        """Move every parameter and buffer to ``device`` and/or cast the floating ones to ``dtype``.

        ``model.to("cuda")``, ``model.to(minicnn.float64)``, ``model.to("cpu", minicnn.float32)``.
        Integer buffers (BatchNorm's ``num_batches_tracked``) keep their dtype.  In place; returns ``self``.
        """
        if device is not None and not isinstance(device, str):      # model.to(np.float64)
            device, dtype = None, device
        elif isinstance(device, str) and device.lower() not in ("cpu", "cuda", "gpu") \
                and not device.lower().startswith("cuda:"):         # model.to("float64")
            device, dtype = None, device
        if dtype is not None:
            dtype = np.dtype(dtype)
            if not backend.is_floating(dtype):
                raise TypeError(f"Module.to only accepts floating point dtypes, got {dtype}")
        if device is not None:
            device = backend.normalize_device(device)

        def convert(array):
            if dtype is not None and backend.is_floating(array.dtype):
                array = array.astype(dtype, copy=False)
            return backend.to_device(array, device) if device is not None else array

        return self._apply_to_arrays(convert)

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self) -> "Module":
        return self.to("cuda")

    def float(self) -> "Module":
        return self.to(dtype=np.float32)

    def double(self) -> "Module":
        return self.to(dtype=np.float64)

    def half(self) -> "Module":
        return self.to(dtype=np.float16)

    # ------------------------------------------------------------------ saving and loading

    def state_dict(self, *, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ``OrderedDict`` of every parameter and persistent buffer, in PyTorch's key order.

        Order: each module's parameters, then its buffers, then its sub-modules recursively
        (e.g. ``bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.num_batches_tracked``).
        Values are NumPy arrays on the CPU (copies; unlike PyTorch, which returns tensors),
        ready for ``np.savez(path, **model.state_dict())``.  ``keep_vars=True`` returns the
        module's own tensors instead.
        """
        if destination is None:
            destination = OrderedDict()
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else np.array(backend.to_numpy(param.data))
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = buf if keep_vars else np.array(backend.to_numpy(buf.data))
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=f"{prefix}{name}.", keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` (name -> array, Tensor or ``np.load`` result) into this module.

        Values are copied into the existing arrays, so they keep the module's device and dtype
        and optimizers stay valid.  With ``strict=True`` the keys must match exactly; shapes must
        always match (as in PyTorch, a one-element array may fill a scalar).  Every problem is checked before anything is copied, and reported at once
        in a ``StateDictError`` (a ``RuntimeError`` and ``ValueError``).  Returns
        ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict: expected a mapping of names to arrays (state_dict(), np.load(path)), "
                            f"got {type(state_dict).__name__}")
        own = self.state_dict(keep_vars=True)            # name -> the module's own tensor
        # As PyTorch's BatchNorm does, a state_dict without "num_batches_tracked" (older checkpoints,
        # converted weights) still loads: the counter keeps its value.
        missing = [key for key in own if key not in state_dict and not key.endswith("num_batches_tracked")]
        unexpected = [key for key in state_dict.keys() if key not in own]
        sources = {}                                    # name -> array to copy (read once: np.load reads lazily)
        for key in own:
            if key in state_dict:
                value = state_dict[key]
                value = value.data if isinstance(value, Tensor) else value
                value = value if hasattr(value, "shape") else np.asarray(value)          # lists, scalars
                if own[key].ndim == 0 and tuple(value.shape) == (1,):
                    value = value.reshape(())    # as PyTorch: one value fills a scalar (PyTorch 0.3's files)
                sources[key] = value

        errors = []
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        for key, source in sources.items():
            if tuple(source.shape) != tuple(own[key].shape):
                errors.append(f'size mismatch for "{key}": the model expects shape {tuple(own[key].shape)}, '
                              f"the state_dict has shape {tuple(source.shape)}.")
        if errors:
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__}:\n  "
                                 + "\n  ".join(errors))

        for key, source in sources.items():
            target = own[key]
            target.data[...] = backend.to_device(source, target.device)     # casts to the target's dtype
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing

    def extra_repr(self) -> str:
        """The text inside ``Name(...)`` in ``repr``; layers override it (e.g. ``in_features=4, ...``)."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _add_indent(repr(module), 2) for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        text = type(self).__name__ + "("
        if len(extra_lines) == 1 and not child_lines:
            text += extra_lines[0]
        elif lines:
            text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"
