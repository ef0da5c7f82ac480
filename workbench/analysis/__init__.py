"""What a run MEANS: per-layer rates and correlations (``layer_stats``), accuracy over time
(``evaluate``), per-layer findings (``diagnosis``), parameter sweeps on Dask (``sweep``), the
first divergence between two traces (``compare``), the immutable snapshots the window draws
(``snapshot``, and ``trace_playback`` for a trace file) and the kernel warm-up (``warmup``).

May import: ``engine``, ``models`` and the shared base; never ``exchange`` (a sibling), ``views``,
``cli`` or Qt. ``snapshot`` and ``trace_playback`` live here rather than in ``engine`` because a
snapshot carries statistics (rates, r, accuracy), which are analysis; ``warmup`` because it also
compiles ``layer_stats``' kernel.
"""

import workbench.engine  # noqa: F401  (sets numba's cache folder before layer_stats compiles)
