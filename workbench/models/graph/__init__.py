"""The clean-up every importer shares, framework-free: an importer lowers its file into ``Layer``
records and ``Pending`` markers (no-op, BatchNorm, unsupported), and ``fold`` turns that list
into the final graph: no-ops removed, BatchNorm folded exactly, activations merged into their
producer, and every layer that cannot be simulated collected for one refusal.
May import: ``workbench.models`` (layer kinds) and numpy. Never a framework (TensorFlow, onnx).
"""
