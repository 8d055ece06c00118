"""Model weights in safetensors files: ``save_weights``, ``load_weights``, ``read_weights``, and timm's names.

    import minicnn
    from minicnn import architectures

    model = architectures.get("resnet18")
    minicnn.save_weights(model, "resnet18.safetensors")          # atomic; torchvision's key names
    minicnn.load_weights(model, "resnet18.safetensors")          # -> IncompatibleKeys([], [])
    model = architectures.get("resnet18", weights="resnet18.safetensors")   # the same, in one step

`safetensors <https://huggingface.co/docs/safetensors>`_ is the weights format of the Hugging
Face hub, timm and most current tools: a JSON header (each array's name, dtype, shape and place)
followed by the raw bytes, so reading one can never run code (unlike a pickled ``.pth``).  It is
an optional dependency: ``pip install safetensors`` (or ``pip install -e ".[weights]"``).

Names.  Every minicnn model that torchvision also has uses torchvision's module names, so a
file written from a torchvision model (``safetensors.torch.save_file(model.state_dict(), path)``)
loads directly, and a file written here loads into torchvision with
``model.load_state_dict(safetensors.torch.load_file(path))``.  timm uses the same names for its
ResNets (``resnet18`` ... ``resnet152``: ``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``downsample.0``/``.1``, ``fc``; its stems, pools and activations hold no weights).  Its VGGs
differ: timm's ``pre_logits.fc1`` is torchvision's ``classifier.0`` stored as a 7x7 convolution
(4096, 512, 7, 7), ``pre_logits.fc2`` is ``classifier.3`` as a 1x1 convolution, and ``head.fc``
is ``classifier.6``.  ``load_weights(model, path, mapping="timm")`` renames and reshapes them
(:func:`timm_to_torchvision`).  timm's VGG gives the same logits as torchvision's at 224x224
(7x7 feature maps); at other input sizes timm slides its fc1 over the map and averages, while
torchvision (and minicnn) first pool the map to 7x7, so the outputs differ there.  timm's
variants with deep stems (``resnet50d``: ``conv1.0``, ``conv1.1``, ...) are other architectures
and do not load.  AlexNet and GoogLeNet (Inception v1) are not in timm.

Loading checks every array before copying any: a missing or unexpected name (with
``strict=True``), a shape that differs from the model's, or a dtype of the wrong kind (an
integer array for a float parameter, a float for BatchNorm's integer ``num_batches_tracked``)
raises ``nn.StateDictError`` naming the file and each key.  Float arrays of another width
(float16, float64) are cast to the model's dtype, as ``load_state_dict`` does.  bfloat16 files
(NumPy has no bfloat16) are converted with ``python -m minicnn.convert in.safetensors out.safetensors``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from . import backend
from .autograd import Tensor
from .fileio import atomic_write
from .nn import Module, StateDictError

__all__ = ["save_weights", "load_weights", "read_weights", "timm_to_torchvision", "WeightsFileError"]

# safetensors' dtype codes -> what NumPy can hold them as (bfloat16 and the float8s it cannot).
_NUMPY_KINDS = {"F16": "f", "F32": "f", "F64": "f", "I8": "i", "I16": "i", "I32": "i", "I64": "i",
                "U8": "u", "U16": "u", "U32": "u", "U64": "u", "BOOL": "b"}


class WeightsFileError(ValueError):
    """A weights file is missing, unreadable, or not a safetensors file."""


def _safetensors_numpy(op):
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(f"{op}: safetensors files need the safetensors package: pip install safetensors "
                          '(or pip install -e ".[weights]")') from None
    return safetensors.numpy


# --------------------------------------------------------------------------- saving

def save_weights(model, path, metadata: dict | None = None) -> str:
    """Write ``model.state_dict()`` (or a name -> array mapping) to the safetensors file ``path``, atomically.

    The keys are the state_dict's (torchvision's names for torchvision's architectures), the
    arrays keep their dtype and shape (BatchNorm's ``num_batches_tracked`` is a 0-d int64, as in
    PyTorch).  ``metadata`` (str -> str) is stored in the header; ``{"format": "pt"}`` is always
    added (the arrays are laid out as PyTorch's, so Hugging Face tools accept the file).
    Like ``safetensors.torch.save_model``; returns ``path``.
    """
    st = _safetensors_numpy("save_weights")
    if isinstance(model, Module):
        state = model.state_dict()
    elif isinstance(model, Mapping):
        state = model
    else:
        raise TypeError(f"save_weights: expected a minicnn Module or a dict of arrays, got {type(model).__name__}")
    arrays = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"save_weights: keys must be strings, got {key!r}")
        value = value.data if isinstance(value, Tensor) else value
        if not hasattr(value, "dtype") or not hasattr(value, "shape"):
            raise TypeError(f"save_weights: {key!r} is a {type(value).__name__}, not an array")
        array = np.asarray(backend.to_numpy(value))
        array = array if array.flags.c_contiguous else array.copy(order="C")   # (ascontiguousarray makes 0-d 1-d)
        if array.dtype.kind not in "fiub":
            raise TypeError(f"save_weights: {key!r} has dtype {array.dtype}; safetensors holds numbers and bools")
        arrays[key] = array
    header = {"format": "pt"}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"save_weights: metadata must map str to str, got {key!r}: {value!r}")
        header[key] = value
    data = st.save(arrays, metadata=header)
    atomic_write(path, lambda f: f.write(data))
    return os.fspath(path)


# --------------------------------------------------------------------------- reading

def _open(path, op):
    """``safe_open`` with errors that say what the file is and what to do."""
    _safetensors_numpy(op)
    from safetensors import safe_open
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{op}: no such file: {path}")
    if os.path.isdir(path):
        raise WeightsFileError(f"{op}: {path} is a folder; pass a .safetensors file")
    with open(path, "rb") as f:
        start = f.read(4)
    if start == b"PK\x03\x04":
        raise WeightsFileError(
            f"{op}: {path} is a zip archive (a PyTorch .pth or a NumPy .npz), not a safetensors file. Convert a "
            f"PyTorch checkpoint with `python -m minicnn.convert {path} out.safetensors`; load an .npz with "
            "model.load_state_dict(np.load(path))")
    try:
        return safe_open(path, framework="np")
    except Exception as exc:            # safetensors raises its own SafetensorError (an Exception)
        raise WeightsFileError(f"{op}: {path} is not a readable safetensors file ({exc}); it is damaged "
                               "(truncated?) or in another format") from None


def read_weights(path) -> dict:
    """The arrays of the safetensors file ``path``: an ordered dict name -> NumPy array (file order).

    Like ``safetensors.numpy.load_file``, with errors that name the file (and, for a bfloat16
    array, the key and how to convert it).
    """
    return _read(path, "read_weights")


def _read(path, op):
    with _open(path, op) as f:
        _check_numpy_dtypes(f, path, op)
        return {key: f.get_tensor(key) for key in f.keys()}


def _check_numpy_dtypes(f, path, op):
    bad = [(key, f.get_slice(key).get_dtype()) for key in f.keys()]
    bad = [(key, code) for key, code in bad if code not in _NUMPY_KINDS]
    if bad:
        listed = ", ".join(f"{key!r} ({code})" for key, code in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise WeightsFileError(f"{op}: {path} holds arrays NumPy cannot represent: {listed}. Convert the file to "
                               f"float32 with `python -m minicnn.convert {path} out.safetensors` (needs PyTorch)")


# --------------------------------------------------------------------------- name mappings

def timm_to_torchvision(state_dict) -> dict:
    """Rename (and reshape) a timm state_dict to torchvision's names: the VGG head; everything else as is.

    ``pre_logits.fc1`` (a 7x7 conv, (4096, 512, 7, 7)) -> ``classifier.0`` (a Linear, (4096, 25088);
    the reshape keeps the (C, H, W) order that ``flatten`` uses), ``pre_logits.fc2`` (a 1x1 conv)
    -> ``classifier.3``, ``head.fc`` -> ``classifier.6``.  timm's ResNet names already are
    torchvision's.  Returns a new dict in the same key order.
    """
    renames = {"pre_logits.fc1.": "classifier.0.", "pre_logits.fc2.": "classifier.3.", "head.fc.": "classifier.6."}
    out = {}
    for key, value in state_dict.items():
        for old, new in renames.items():
            if key.startswith(old):
                key = new + key[len(old):]
                if key.endswith(".weight") and value.ndim == 4:        # conv (O, C, kh, kw) -> linear (O, C*kh*kw)
                    value = value.reshape(value.shape[0], -1)
                break
        out[key] = value
    return out


MAPPINGS = {"timm": timm_to_torchvision}
"""The named mappings ``load_weights(..., mapping=name)`` accepts."""


def _looks_like_timm(keys) -> bool:
    return any(k.startswith(("pre_logits.", "head.fc.")) for k in keys)


# --------------------------------------------------------------------------- loading

def load_weights(model: Module, path, strict: bool = True, mapping=None):
    """Load the safetensors file ``path`` into ``model`` (like ``safetensors.torch.load_model``).

    ``mapping`` renames the file's keys first: ``"timm"`` (:func:`timm_to_torchvision`) or a
    function from a dict of arrays to a dict of arrays.  With ``strict=True`` the names must be
    exactly the model's (BatchNorm's ``num_batches_tracked`` may be absent, as in PyTorch).
    Every array is checked (see the module docstring) before anything is copied, so a failed
    load leaves the model unchanged.  Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``.
    """
    if not isinstance(model, Module):
        raise TypeError(f"load_weights: expected a minicnn Module, got {type(model).__name__}")
    if isinstance(mapping, str):
        if mapping not in MAPPINGS:
            raise ValueError(f"load_weights: unknown mapping {mapping!r}; available: {', '.join(sorted(MAPPINGS))}, "
                             "or a function from a dict of arrays to a dict of arrays")
        mapping = MAPPINGS[mapping]
    elif mapping is not None and not callable(mapping):
        raise TypeError(f"load_weights: mapping must be a name or a function, got {type(mapping).__name__}")

    state = _read(path, "load_weights")
    if mapping is not None:
        state = mapping(state)
    own = model.state_dict(keep_vars=True)
    errors = []
    for key, value in state.items():
        if key not in own:
            continue
        want, have = np.dtype(own[key].dtype), np.dtype(value.dtype)
        if (want.kind == "f") != (have.kind == "f") or (want.kind != "f" and have.kind == "b"):
            errors.append(f'dtype mismatch for "{key}": the model holds {want}, the file has {have}.')
    where = f"weights file {os.fspath(path)}"
    if errors:
        raise StateDictError(f"{where} does not fit {type(model).__name__}:\n  " + "\n  ".join(errors))
    try:
        return model.load_state_dict(state, strict=strict)
    except StateDictError as exc:
        hint = ""
        if mapping is None and _looks_like_timm(state):
            hint = '\n  (the file has timm\'s names: load it with mapping="timm")'
        raise StateDictError(f"{where}: {exc}{hint}") from None
