"""The ONNX graph builder, the converter registry and ``export``.

How export works.  ONNX describes a model as a graph of standard operators (Conv, Relu,
MaxPool, Gemm, ...) with the weights stored beside it.  ``export`` walks the model the way its
``forward`` does, module by module, starting from the example input: the converter registered
for each module's class emits that module's ONNX nodes *and* runs the module itself on the
example (a :class:`Value` carries both: the ONNX name and minicnn's tensor).  So every shape the
graph needs (adaptive-pooling bins, ceil-mode padding) is the real one, and at the end the walk's
output is compared with ``model(example_input)``: a converter that did not follow its module's
``forward`` is caught at export time, not by whoever runs the file.

Converters exist for minicnn's layers (``layers.py``) and for the five architecture families
(``architectures.py``).  Your own module gets one with :func:`register_converter`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .. import backend
from .. import __version__
from ..autograd import Tensor, no_grad
from ..fileio import atomic_write
from ..nn import Module
from ..ops import cat

OPSET = 17              # onnxruntime 1.13+ and every current tool run it; LRN, Softmax(axis), Pad(pads input)
IR_VERSION = 8          # the IR version that came with opset 17 (newer runtimes read it too)


@dataclass(frozen=True)
class Value:
    """One value in the graph being built: its ONNX ``name`` and minicnn's ``tensor`` for the example input."""
    name: str
    tensor: Tensor

    @property
    def shape(self) -> tuple:
        return tuple(self.tensor.shape)


_CONVERTERS: dict = {}


def register_converter(module_class):
    """Decorator: ``fn(graph, module, name, x) -> Value`` converts modules of exactly ``module_class``.

    ``graph`` is the :class:`Graph` (``graph.node``, ``graph.param``, ``graph.call`` for
    sub-modules), ``name`` the module's path in the model (``"layer1.0"``; ``""`` for the
    model), ``x`` the input :class:`Value`.  A converter emits the module's nodes and returns
    the output Value, whose tensor must be what the module's forward gives for ``x.tensor``.
    Subclasses use their parent's converter only when they do not override ``forward``.
    """
    def decorate(fn):
        _CONVERTERS[module_class] = fn
        return fn
    return decorate


def _converter_for(module):
    cls = type(module)
    if cls in _CONVERTERS:
        return _CONVERTERS[cls]
    for base in cls.__mro__[1:]:
        if base in _CONVERTERS and cls.forward is base.forward:
            return _CONVERTERS[base]
    raise NotImplementedError(
        f"onnx.export: no converter for {cls.__name__}" + (" (its forward differs from its parent's)"
                                                           if any(b in _CONVERTERS for b in cls.__mro__) else "")
        + "; write one with minicnn.onnx.register_converter")


class Graph:
    """Collects nodes and initializers; every helper returns a :class:`Value` computed by minicnn too."""

    def __init__(self, onnx_module, dtype):
        self.onnx, self.helper = onnx_module, onnx_module.helper
        self.dtype = np.dtype(dtype)
        self.model = onnx_module.ModelProto()     # the weights go straight into it: a 550 MB VGG is copied
        self.nodes = []                           # as few times as possible (each copy costs seconds)
        self._names: set = set()
        self._params: dict = {}             # id(array) -> initializer name: a shared weight is stored once

    # -- names, constants, nodes

    def _unique(self, hint: str) -> str:
        hint = hint.strip(".") or "v"
        name, i = hint, 1
        while name in self._names:
            i += 1
            name = f"{hint}_{i}"
        self._names.add(name)
        return name

    def const(self, hint: str, array, dtype=None) -> str:
        """Add ``array`` as an initializer (the model's float dtype unless ``dtype``); returns its name."""
        array = np.asarray(backend.to_numpy(array), dtype=np.dtype(dtype or self.dtype).newbyteorder("<"))
        name = self._unique(hint)
        tensor = self.model.graph.initializer.add()
        tensor.name = name
        tensor.data_type = self.helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        tensor.raw_data = array.tobytes()         # little-endian, as ONNX stores raw data
        return name

    def param(self, hint: str, tensor) -> str:
        """A parameter or buffer as an initializer named by its state_dict key (``hint``)."""
        array = tensor.data if isinstance(tensor, Tensor) else tensor
        if id(array) not in self._params:
            self._params[id(array)] = (self.const(hint, array), array)    # keep the array: its id stays unique
        return self._params[id(array)][0]

    def node(self, op: str, inputs, hint: str, outputs: int = 1, **attrs):
        """Add one ONNX node; returns its output name (or names when ``outputs > 1``)."""
        names = [self._unique(hint if outputs == 1 else f"{hint}:{i}") for i in range(outputs)]
        self.nodes.append(self.helper.make_node(op, list(inputs), names, name=self._unique(f"{hint}/{op}"),
                                                **attrs))
        return names[0] if outputs == 1 else names

    def call(self, module, name: str, x: Value) -> Value:
        """Convert sub-module ``module`` (path ``name``) applied to ``x``."""
        name = name.strip(".")              # converters write f"{name}.child"; the model itself is ""
        if not isinstance(module, Module):
            raise TypeError(f"onnx.export: {name or 'the model'} is a {type(module).__name__}, not a Module")
        out = _converter_for(module)(self, module, name, x)
        if not isinstance(out, Value):
            raise TypeError(f"onnx.export: the converter of {type(module).__name__} returned "
                            f"{type(out).__name__}, not a Value")
        return out

    # -- tensor operations that models' forward methods do between modules

    def add(self, a: Value, b: Value, hint: str) -> Value:
        return Value(self.node("Add", [a.name, b.name], hint), a.tensor + b.tensor)

    def relu(self, x: Value, hint: str) -> Value:
        return Value(self.node("Relu", [x.name], hint), x.tensor.relu())

    def concat(self, values, axis: int, hint: str) -> Value:
        return Value(self.node("Concat", [v.name for v in values], hint, axis=axis),
                     cat([v.tensor for v in values], dim=axis))

    def flatten(self, x: Value, hint: str, start_dim: int = 1, end_dim: int = -1) -> Value:
        """``x.flatten(start_dim, end_dim)`` as a Reshape (0 copies a leading dimension: the batch stays dynamic)."""
        ndim = x.tensor.ndim
        start, end = start_dim % ndim, end_dim % ndim
        y = x.tensor.flatten(start_dim, end_dim)
        if start == end:
            return Value(x.name, y)
        shape = [0] * start + [-1] + [int(s) for s in x.shape[end + 1:]]
        target = self.const(f"{hint}.shape", np.array(shape, dtype=np.int64), dtype=np.int64)
        return Value(self.node("Reshape", [x.name, target], hint), y)


def export(model: Module, example_input, path, *, input_names=("input",), output_names=("output",),
           dynamic_batch: bool = True, opset_version: int = OPSET, check: bool = True):
    """Write ``model`` as an ONNX file at ``path`` (atomically) and return the ``onnx.ModelProto``.

    Like ``torch.onnx.export(model, example_input, path)``: the graph is what the model
    computes in eval mode (the model is switched to eval for the export, and every sub-module
    back to its own mode afterwards),
    float32, with the example input's shape; the batch dimension is named ``N`` and left free
    unless ``dynamic_batch=False``.  The weights are stored as initializers named by their
    state_dict keys.  ``check`` runs ``onnx.checker.check_model`` (with shape inference) on
    the result.  Needs the ``onnx`` package (``pip install -e ".[onnx]"``).

    Differences from PyTorch: only modules with a registered converter can be exported (every
    minicnn layer and architecture; see :func:`register_converter`), and ``opset_version``
    must be at least 17.
    """
    try:
        import onnx
    except ImportError:
        raise ImportError('onnx.export: needs the onnx package: pip install onnx (or pip install -e ".[onnx]")') \
            from None
    if not isinstance(model, Module):
        raise TypeError(f"onnx.export: expected a minicnn Module, got {type(model).__name__}")
    if not isinstance(example_input, Tensor):
        raise TypeError(f"onnx.export: example_input must be a minicnn Tensor, got {type(example_input).__name__}")
    if np.dtype(example_input.dtype) != np.float32:
        raise TypeError(f"onnx.export: expected a float32 example_input, got {np.dtype(example_input.dtype)} "
                        "(export a float32 model: model.float(), x.float())")
    if not isinstance(opset_version, int) or opset_version < OPSET:
        raise ValueError(f"onnx.export: opset_version must be an int >= {OPSET}, got {opset_version!r}")
    (input_name,), (output_name,) = _one_name(input_names, "input_names"), _one_name(output_names, "output_names")

    modes = [(m, m.training) for m in model.modules()]      # restored one by one: mixed modes survive
    model.eval()
    try:
        with no_grad():
            expected = model(example_input)
            if not isinstance(expected, Tensor):
                raise TypeError(f"onnx.export: the model returned a {type(expected).__name__}; only models with "
                                "one output Tensor can be exported")
            graph = Graph(onnx, example_input.dtype)
            graph._names.update((input_name, output_name))       # no intermediate value takes these names
            out = graph.call(model, "", Value(input_name, example_input))
    finally:
        for m, training in modes:
            m.training = training
    _check_same(out.tensor, expected, model)

    if out.name == input_name or out.name not in [o for n in graph.nodes for o in n.output]:
        graph.nodes.append(onnx.helper.make_node("Identity", [out.name], [output_name], name="output/Identity"))
    else:
        _rename(graph.nodes, out.name, output_name)
    batch = "N" if dynamic_batch else int(example_input.shape[0])
    inputs = [onnx.helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT,
                                                 [batch] + [int(s) for s in example_input.shape[1:]])]
    outputs = [onnx.helper.make_tensor_value_info(output_name, onnx.TensorProto.FLOAT,
                                                  [batch] + [int(s) for s in out.tensor.shape[1:]])]
    proto = graph.model
    proto.graph.name = type(model).__name__
    proto.graph.node.extend(graph.nodes)
    proto.graph.input.extend(inputs)
    proto.graph.output.extend(outputs)
    proto.opset_import.append(onnx.helper.make_opsetid("", opset_version))
    proto.producer_name, proto.producer_version = "minicnn", __version__
    proto.ir_version = IR_VERSION if opset_version == OPSET else onnx.IR_VERSION
    data = proto.SerializeToString()
    if len(data) > 2**31 - 1:
        raise ValueError(f"onnx.export: {type(model).__name__} serialises to {len(data) / 2**30:.1f} GiB, more than "
                         "the 2 GiB a single ONNX protobuf may hold")
    if check:
        onnx.checker.check_model(data, full_check=True)          # (the bytes: serialised once, not twice)
    atomic_write(os.fspath(path), lambda f: f.write(data))
    return proto


def _one_name(names, what):
    names = [names] if isinstance(names, str) else list(names)
    if len(names) != 1 or not isinstance(names[0], str) or not names[0]:
        raise ValueError(f"onnx.export: {what} must hold one non-empty name (one input, one output), got {names!r}")
    return names


def _rename(nodes, old: str, new: str) -> None:
    for node in nodes:
        for field in (node.input, node.output):
            for i, name in enumerate(field):
                if name == old:
                    field[i] = new


def _check_same(got: Tensor, expected: Tensor, model) -> None:
    """The converters' walk must give what ``model.forward`` gives (the same kernels on the same input)."""
    a, b = backend.to_numpy(got.data), backend.to_numpy(expected.data)
    if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-6):
        worst = float(np.abs(a - b).max()) if a.shape == b.shape else float("nan")
        raise RuntimeError(f"onnx.export: the graph built for {type(model).__name__} does not compute its forward "
                           f"(shape {a.shape} vs {b.shape}, largest difference {worst:.3g}); a converter does not "
                           "match its module's forward: register one for the modules you changed")
