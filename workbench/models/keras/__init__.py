"""Reading Keras files (``.keras``, legacy ``.h5``) into the framework-free graph.

``graph`` walks a loaded Keras model into ``RawNode`` records (the only module here that touches
Keras objects), ``convert`` translates each record into a ``Layer`` or a ``Pending`` marker and
``importer`` runs the whole path (safe-mode load, extract, translate, ``models.graph.fold``).
The only package that imports TensorFlow/Keras, and only inside functions (an import costs ~4 s).
May import: ``workbench.models`` and the shared base.
"""
