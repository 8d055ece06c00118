"""Containers: ``Sequential`` (a chain of layers) and ``ModuleList`` (a list of layers)."""
from __future__ import annotations

import operator
from collections import OrderedDict

from .module import Module


def _index(index, length: int, kind: str) -> int:
    """A valid non-negative position for an int ``index`` (negative counts from the end)."""
    index = operator.index(index)
    if not -length <= index < length:
        raise IndexError(f"{kind} index {index} is out of range (length {length})")
    return index % length


class Sequential(Module):
    """Layers applied one after the other: ``Sequential(Conv2d(1, 6, 5), ReLU(), MaxPool2d(2))``.

    Sub-modules are named ``'0', '1', ...`` (so parameters are ``'0.weight'``...), or by the keys
    of an ``OrderedDict`` passed as the only argument.  Supports ``len``, iteration, ``seq[i]``,
    ``seq[a:b]`` (a new ``Sequential`` sharing the layers), ``seq[i] = layer``, ``del seq[i]``
    and ``append``.
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[_index(index, len(self), "Sequential")]

    def __setitem__(self, index, module):
        key = list(self._modules)[_index(index, len(self), "Sequential")]
        self.add_module(key, module)

    def __delitem__(self, index):
        keys = list(self._modules)
        doomed = keys[index] if isinstance(index, slice) else [keys[_index(index, len(self), "Sequential")]]
        for key in doomed:
            del self._modules[key]
        if all(key.isdigit() for key in keys):       # keep the names '0', '1', ... contiguous
            _renumber(self, list(self._modules.values()))

    def append(self, module: Module) -> "Sequential":
        """Add a layer at the end (named ``str(len(self))``); returns ``self``."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> "Sequential":
        for module in modules:
            self.append(module)
        return self


def _renumber(container, modules):
    """Register ``modules`` in ``container`` under the names '0', '1', ... (after a deletion or insertion)."""
    container._modules.clear()
    for i, module in enumerate(modules):
        container.add_module(str(i), module)


class ModuleList(Module):
    """A list of sub-modules, registered so that their parameters belong to the parent.

    Use it instead of a plain Python list (whose layers a ``Module`` would not see).
    Supports ``len``, iteration, indexing and slicing, ``append``, ``extend``, ``insert``,
    ``list[i] = layer`` and ``del list[i]``.  It has no ``forward``: you decide how to call the layers.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[str(_index(index, len(self), "ModuleList"))]

    def __setitem__(self, index, module):
        self.add_module(str(_index(index, len(self), "ModuleList")), module)

    def __delitem__(self, index):
        modules = list(self._modules.values())
        del modules[index if isinstance(index, slice) else _index(index, len(self), "ModuleList")]
        _renumber(self, modules)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        modules = list(self._modules.values())
        modules.insert(index, module)
        _renumber(self, modules)
