"""``minicnn.save(obj, path)`` and ``minicnn.load(path)``, as ``torch.save``/``torch.load`` for the things
people save: tensors, state dicts (``model.state_dict()``, ``optimizer.state_dict()``), and dicts, lists,
tuples, numbers and strings holding them.

The file is a minicnn checkpoint (``minicnn/checkpoint.py``): an ``.npz`` archive of the arrays, each named
by its path in ``obj``, and a JSON document for the rest, written atomically. Nothing is pickled, so
loading a file can never run code (PyTorch's ``weights_only=True`` is always on). A whole ``Module`` or
optimizer is not saved: save its ``state_dict()``. ``minicnn.load`` also reads training checkpoints
(``runs/<run>/last.npz``), and returns their state dict.
"""
from __future__ import annotations

import os

from . import backend, checkpoint
from .autograd import Tensor

_TENSOR = "minicnn.Tensor"          # a saved tensor: the tuple (_TENSOR, array, requires_grad)
_KIND = "__minicnn_save__"          # the key that marks a file of minicnn.save: "dict" or "object"


def _pack(obj, where):
    if isinstance(obj, Tensor):
        return (_TENSOR, obj.numpy(), bool(obj.requires_grad))
    if isinstance(obj, dict):
        return {k: _pack(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        packed = [_pack(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return packed if isinstance(obj, list) else tuple(packed)
    if hasattr(obj, "state_dict"):
        raise TypeError(f"minicnn.save: saving a whole {type(obj).__name__} ({where}) is not supported (it would "
                        "need pickle): save its state_dict() and load it with load_state_dict()")
    return obj


def _unpack(obj, device):
    if isinstance(obj, tuple) and len(obj) == 3 and obj[0] == _TENSOR:
        return Tensor(backend.to_device(obj[1], device), requires_grad=obj[2])
    if isinstance(obj, dict):
        return {k: _unpack(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        unpacked = [_unpack(v, device) for v in obj]
        return unpacked if isinstance(obj, list) else tuple(unpacked)
    return obj


def _path(f, op):
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(f"{op}: f must be a path (str or os.PathLike); file objects are not supported, "
                        f"got {type(f).__name__}")
    return os.fspath(f)


def save(obj, f) -> None:
    """Save ``obj`` (tensors, arrays, numbers, strings, None, and dicts, lists, tuples of them) to the path
    ``f``, atomically. Raises TypeError naming anything else."""
    packed = _pack(obj, "obj")
    is_dict = isinstance(packed, dict) and _KIND not in packed      # its arrays named by their keys: model/fc.weight
    checkpoint.save(_path(f, "minicnn.save"), {_KIND: "dict", **packed} if is_dict else {_KIND: "object", "object": packed})


def load(f, map_location=None, weights_only=True):
    """Load what ``minicnn.save`` wrote to ``f`` (tensors come back as tensors, on ``map_location``: 'cpu' by
    default, or 'cuda'); a training checkpoint gives its state dict. ``weights_only`` is accepted and
    always true: nothing is unpickled."""
    device = backend.normalize_device(map_location or "cpu")
    state = checkpoint.load(_path(f, "minicnn.load"))
    kind = state.pop(_KIND, None)
    return _unpack(state["object"] if kind == "object" else state, device)
