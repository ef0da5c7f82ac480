"""Reading ONNX files (``.onnx``: PyTorch, tf2onnx, Paddle, ...) into the framework-free graph.

``reader`` parses and checks the file (protobuf, opset, one input, no cycle, tensor sizes,
external data only from the model's own folder), ``lower`` turns each node into a ``Layer`` or a
``Pending`` marker in channels-last layout (constant sub-graphs such as the Shape/Gather/Concat
flatten chain are evaluated at import), ``importer`` runs the whole path through the shared
``models.graph.fold`` and ``verify`` gets per-layer reference activations from onnxruntime.
The only package that imports ``onnx`` / ``onnxruntime``, and only inside functions.
May import: ``workbench.models`` and the shared base.
"""
