"""What a network IS: the framework-free graph (``network``, ``layer``), its shapes
(``shape_check``), data files, normalization and the numpy forward pass.

Sub-packages: ``graph`` holds the clean-up every importer shares (no-op removal, BatchNorm
folding, refusals that name every unsupported layer); ``keras`` reads Keras files (the only
place that imports TensorFlow, lazily); ``onnx`` reads ONNX files (the only place that imports
onnx/onnxruntime, lazily). ``loading`` opens any model file by its suffix; ``isolated_import``
runs the Keras importer in a child process (the window's way: TensorFlow's memory leaves with it).
May import: numpy and the shared base (``workbench.errors``, ``workbench.atomic``, ...). Never Qt,
never anything from ``engine``, ``analysis``, ``exchange``, ``views`` or ``cli``.
"""
