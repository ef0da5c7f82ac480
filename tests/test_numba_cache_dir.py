"""numba's cache is keyed on the content of every engine source file: a kernel edited in one file
must not be run from a stale compiled copy inlined into a caller in another file."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cache_dir_in_child(env) -> str:
    code = "import os, workbench.engine; print(os.environ['NUMBA_CACHE_DIR'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_cache_folder_follows_the_engine_sources(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["SNN_WORKBENCH_NUMBA_CACHE"] = str(tmp_path)
    first = Path(_cache_dir_in_child(env))
    assert first.parent == tmp_path and first.is_dir()
    assert Path(_cache_dir_in_child(env)) == first  # same sources: same folder

    from workbench import engine

    assert engine._source_hash(Path(engine.__file__).parent) == first.name
    copy = tmp_path / "pkg"
    (copy / "sub").mkdir(parents=True)
    (copy / "a.py").write_text("x = 1\n")
    (copy / "sub" / "b.py").write_text("y = 2\n")
    h1 = engine._source_hash(copy)
    (copy / "sub" / "b.py").write_text("y = 3\n")  # same size, other content
    assert engine._source_hash(copy) != h1


def test_only_the_newest_folders_are_kept(tmp_path):
    from workbench import engine

    for i in range(6):
        d = tmp_path / f"old{i}"
        d.mkdir()
        os.utime(d, (1000 + i, 1000 + i))
    current = tmp_path / "current"
    current.mkdir()
    engine._prune(current)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "old4", "old5"]


def test_a_user_set_numba_cache_dir_is_left_alone(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "mine"))
    assert _cache_dir_in_child(env) == str(tmp_path / "mine")
