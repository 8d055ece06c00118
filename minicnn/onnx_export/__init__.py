"""ONNX export, available as ``minicnn.onnx``: ``minicnn.onnx.export(model, example_input, "model.onnx")``.

    import minicnn
    from minicnn import architectures

    model = architectures.get("resnet18", num_classes=10)
    x = minicnn.randn(1, 3, 32, 32)
    minicnn.onnx.export(model, x, "resnet18.onnx")        # eval-mode graph, opset 17, batch size free

    import onnxruntime                                   # runs it anywhere ONNX runs
    session = onnxruntime.InferenceSession("resnet18.onnx", providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": x.numpy()})[0]

Every minicnn layer and all the architectures (LeNet-5 with its subsampling, scaled tanh and
C3 table, the Keras LeNet, AlexNet with or without LRN, VGG with or without batch norm,
GoogLeNet, the ResNets) export; the tests run each file in onnxruntime and compare it with
minicnn's own output.  Needs the ``onnx`` package (``pip install -e ".[onnx]"``, which also
installs onnxruntime).  Files: ``graph.py`` (the builder, ``export``, ``register_converter``),
``layers.py`` (one converter per ``nn`` layer, with the places where ONNX and PyTorch differ),
``architectures.py`` (one per model family).

The package is called ``onnx_export`` so that it can never be mistaken for the ``onnx``
package itself; ``minicnn.onnx`` is its public name.
"""
from .graph import OPSET, Graph, Value, export, register_converter
from . import layers, architectures  # noqa: F401  (importing them registers the converters)

__all__ = ["export", "register_converter", "Graph", "Value", "OPSET"]
