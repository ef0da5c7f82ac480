"""How a network RUNS: neuron models, numba kernels, the simulator, recording and traces.

May import ``workbench.models`` and the shared base; never Qt, TensorFlow, ``analysis``,
``exchange``, ``views`` or ``cli``.

numba's on-disk cache (``cache=True``) checks only the source file of the function it loads:
``run_fused`` in fused_kernel.py keeps its compiled copy of the kernels it calls from
``flat_kernels.py`` or ``neurons/lif.py`` after those files change (an edit, an upgrade), and
would silently run the old arithmetic. So, unless the user set ``NUMBA_CACHE_DIR``, the cache
lives in a folder named after a hash of every engine source file's content: any change to any
of them starts a fresh folder. The base folder is ``SNN_WORKBENCH_NUMBA_CACHE`` when set, else
``.numba_cache`` in this package (if writable), else the user's cache folder. The three most
recently used folders are kept. This must run before numba is imported.
"""

import hashlib
import os
import shutil
from pathlib import Path

KEEP_CACHES = 3


def _source_hash(root: Path) -> str:
    h = hashlib.sha1()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _cache_dir() -> Path:
    here = Path(__file__).parent
    base = os.environ.get("SNN_WORKBENCH_NUMBA_CACHE")
    if base:
        base = Path(base)
    elif os.access(here, os.W_OK):
        base = here / ".numba_cache"
    else:
        base = Path.home() / ".cache" / "snn-workbench" / "numba"
    return base / _source_hash(here)


def _prune(current: Path) -> None:
    """Drop all but the KEEP_CACHES most recently used cache folders next to ``current``."""
    try:
        siblings = sorted((p for p in current.parent.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        for old in [p for p in siblings if p != current][: max(0, len(siblings) - KEEP_CACHES)]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass


if "NUMBA_CACHE_DIR" not in os.environ:
    _dir = _cache_dir()
    try:
        _dir.mkdir(parents=True, exist_ok=True)
        os.utime(_dir)  # most recently used
        _prune(_dir)
    except OSError:
        pass  # numba reports an unwritable cache itself, naming the folder
    os.environ["NUMBA_CACHE_DIR"] = str(_dir)
