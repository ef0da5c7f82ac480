"""Files for other tools: trace files (``trace_io``: NPZ, HDF5, CSV, raw for C), the parameter
export a C/FPGA re-implementation reads (``export_params``) and NIR (``nir_export``).

May import: ``engine``, ``models`` and the shared base; never ``analysis`` (a sibling), ``views``,
``cli`` or Qt. Every write is atomic (``workbench.atomic``): an interrupted export leaves no half file.
"""
