"""Checkpoints: nested Python state (dicts, lists, arrays, numbers) in one ``.npz`` file, written atomically.

A training checkpoint is a dict such as::

    {"model": model.state_dict(),            # name -> array
     "optimizer": optimizer.state_dict(),    # PyTorch layout: {"state": {0: {...}}, "param_groups": [...]}
     "scheduler": scheduler.state_dict(),
     "epoch": 3, "config": {...}, "rng": {...}}

``save(path, state)`` stores it with ``np.savez``: every array becomes one entry of the
archive, named by its path in the state (``model/conv1.weight``,
``optimizer/state/0/momentum_buffer``, ...; ``~2`` is appended if two paths would collide),
so ``np.load(path)["model/conv1.weight"]`` reads a weight without minicnn; everything else
(the nesting, numbers, strings, the names of the arrays) goes to one JSON document kept in
the entry ``__meta__``.  Checkpoints written before the arrays had path names (``a0``,
``a1``, ...) load the same way: the JSON names each array. ``load(path)`` gives the same
structure back: NumPy arrays (CuPy arrays are copied to the host when saved), NumPy
scalars with their dtype, int dict keys, tuples and lists as they were.
No pickle anywhere, so loading a checkpoint can never run code.

Writing is atomic: the archive goes to a temporary file in the same folder, is flushed
and ``fsync``-ed, then ``os.replace``-d onto ``path``. A crash, ``kill -9`` or Ctrl-C at any
moment leaves either the old file or the new one, never half of one.

Problems are reported as :class:`CheckpointError` naming the file, what is wrong with it
and what to do.
"""
from __future__ import annotations

import json
import math
import os
import zipfile

import numpy as np

from . import backend
from .fileio import atomic_write

FORMAT = "minicnn-checkpoint"
VERSION = 1
_META = "__meta__"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, corrupt or not a minicnn checkpoint."""


# --------------------------------------------------------------------------- encoding

def _is_array(value) -> bool:
    """True for NumPy and CuPy arrays (not for NumPy scalars)."""
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("cupy")


def _array_name(path: tuple, arrays: dict) -> str:
    """The archive name of the array at ``path``: ``"model/conv1.weight"`` (unique; never ``__meta__``)."""
    name = "/".join(path) or "value"
    if name in arrays or name == _META:
        n = 2
        while f"{name}~{n}" in arrays:
            n += 1
        name = f"{name}~{n}"
    return name


def _encode(value, arrays: dict, path: tuple = ()):
    """Turn ``value`` (found at ``path`` in the state) into JSON-able data; arrays (and NumPy scalars)
    go into ``arrays`` under their path name.

    Plain JSON values stay themselves; the rest becomes a one-key dict whose key says what
    it was: ``{"__array__": "model/fc.weight"}``, ``{"__scalar__": "epoch_loss"}``,
    ``{"__tuple__": [...]}``, ``{"__dict__": [[key, value], ...]}`` (a dict with keys that are
    not all strings).
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):                     # np.float32(0.5), np.int64(3)...
        key = _array_name(path, arrays)
        arrays[key] = np.asarray(value)
        return {"__scalar__": key}
    if _is_array(value):
        key = _array_name(path, arrays)
        arrays[key] = backend.to_numpy(value)
        return {"__array__": key}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays, path + (str(i),)) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, arrays, path + (str(i),)) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, arrays, path + (k,)) for k, v in value.items()}
        for k in value:
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise TypeError(f"cannot save a dict key of type {type(k).__name__} ({k!r})")
        return {"__dict__": [[k, _encode(v, arrays, path + (str(k),))] for k, v in value.items()]}
    raise TypeError(f"cannot save a value of type {type(value).__name__} in a checkpoint "
                    "(use arrays, numbers, strings, None, lists, tuples and dicts)")


def _decode(value, arrays):
    """Inverse of :func:`_encode`."""
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag == "__array__":
            return arrays[inner]
        if tag == "__scalar__":
            return arrays[inner][()]
        if tag == "__tuple__":
            return tuple(_decode(v, arrays) for v in inner)
        if tag == "__dict__":
            return {k: _decode(v, arrays) for k, v in inner}
    return {k: _decode(v, arrays) for k, v in value.items()}


def save(path, state: dict) -> None:
    """Save the nested ``state`` dict to ``path`` (an ``.npz`` file) atomically."""
    if not isinstance(state, dict):
        raise TypeError(f"checkpoint state must be a dict, got {type(state).__name__}")
    arrays: dict = {}
    meta = {"format": FORMAT, "version": VERSION, "state": _encode(state, arrays)}
    text = json.dumps(meta, allow_nan=True)
    arrays[_META] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _fail(path, problem, advice):
    raise CheckpointError(f"checkpoint {path}: {problem}. {advice}")


_CORRUPT_ADVICE = ("The file is damaged (truncated or partly overwritten, e.g. by an interrupted copy or a full "
                   "disk; minicnn itself replaces checkpoints atomically). Use the run's other checkpoint "
                   "(best.npz or last.npz) instead.")

#: A deflated zip member holds at most about 1032 times its compressed size.
MAX_DEFLATE_RATIO = 1100


def _check_sizes(path, archive: zipfile.ZipFile) -> None:
    """Refuse, before anything is allocated, an archive whose arrays declare more data than it holds.

    Each ``.npy`` member's header declares a shape and dtype; an array is read only if those
    bytes are what the member really holds, and the member fits in the file (a 617-byte file
    declaring a 149 GiB array would otherwise be allocated first and read after).
    """
    size = os.path.getsize(path)
    for info in archive.infolist():
        limit = info.compress_size * (1 if info.compress_type == zipfile.ZIP_STORED else MAX_DEFLATE_RATIO)
        if info.compress_size > size or info.file_size > limit:
            _fail(path, f"its entry {info.filename!r} declares {info.file_size} bytes, more than the file holds",
                  _CORRUPT_ADVICE)
        with archive.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                _fail(path, f"its entry {info.filename!r} has an unknown array format {version}", _CORRUPT_ADVICE)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = reader(f)
            header = f.tell()
        if dtype.hasobject:
            _fail(path, f"its entry {info.filename!r} holds Python objects, which minicnn never loads",
                  "Pass a last.npz or best.npz written by `python -m minicnn.train`.")
        declared = math.prod(shape) * dtype.itemsize
        if declared != info.file_size - header:
            _fail(path, f"its entry {info.filename!r} declares a {'x'.join(map(str, shape)) or 'scalar'} {dtype} "
                        f"array ({declared} bytes) but holds {info.file_size - header} bytes", _CORRUPT_ADVICE)


def load(path) -> dict:
    """Load a checkpoint written by :func:`save`; raise :class:`CheckpointError` with advice if it can't."""
    path = os.fspath(path)
    if not os.path.exists(path):
        _fail(path, "no such file", "Check the path; a run folder holds last.npz (after each epoch) and best.npz.")
    if os.path.isdir(path):
        _fail(path, "is a folder, not a checkpoint file", "Pass a .npz file such as last.npz inside it.")
    if os.path.getsize(path) == 0:
        _fail(path, "the file is empty", _CORRUPT_ADVICE)
    with open(path, "rb") as f:
        start = f.read(4)
    if start not in (b"PK\x03\x04", b"PK\x05\x06"):          # np.load would take anything else for a pickle
        _fail(path, "not a minicnn checkpoint (not an .npz file: it does not start as a zip archive does)",
              "Pass a last.npz or best.npz written by `python -m minicnn.train`.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            if _META not in names:
                _fail(path, f"not a minicnn checkpoint (an .npz file without '{_META}'; "
                            f"it holds {sorted(names)[:5]})",
                      "Pass a last.npz or best.npz written by `python -m minicnn.train`.")
            _check_sizes(path, archive.zip)
            arrays = {name: archive[name] for name in names}   # reads (and CRC-checks) every entry now
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError, zipfile.LargeZipFile,
            NotImplementedError) as exc:                     # (an unsupported zip compression method)
        _fail(path, f"cannot be read ({type(exc).__name__}: {exc})", _CORRUPT_ADVICE)
    try:
        meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        _fail(path, f"its metadata is not valid JSON ({exc})", _CORRUPT_ADVICE)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        _fail(path, "not a minicnn checkpoint (unknown metadata format)",
              "Pass a last.npz or best.npz written by `python -m minicnn.train`.")
    if meta.get("version", 0) > VERSION:
        _fail(path, f"written by a newer minicnn (checkpoint format {meta.get('version')}, "
                    f"this one reads up to {VERSION})", "Upgrade minicnn.")
    try:
        return _decode(meta["state"], arrays)
    except KeyError as exc:
        _fail(path, f"its metadata refers to a missing array {exc}", _CORRUPT_ADVICE)


def require(state: dict, keys, path) -> None:
    """Raise :class:`CheckpointError` unless every key in ``keys`` is in the loaded ``state``."""
    if not isinstance(state, dict):
        _fail(path, f"it holds a {type(state).__name__}, not a dict of named parts",
              "Pass a training checkpoint (last.npz or best.npz of a run).")
    missing = [k for k in keys if k not in state]
    if missing:
        _fail(path, f"it lacks {', '.join(repr(k) for k in missing)}",
              "It was not written by `python -m minicnn.train` (or by an incompatible version); "
              "pass a training checkpoint (last.npz or best.npz of a run).")
