"""A regular (non-editable) install holds everything the program reads at run time.

Builds the wheel the way ``pip install .`` would (without build isolation, so no download), then
checks its contents against the source tree and opens the bundled demo from the unpacked wheel
alone, in a fresh interpreter whose working folder is not the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    src = tmp_path_factory.mktemp("src")  # a copy: no stale build/ of the work tree leaks into the wheel
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "workbench", src / "workbench",
                    ignore=shutil.ignore_patterns(".numba_cache", "__pycache__", "*.pyc"))
    env = dict(os.environ, PIP_NO_INPUT="1")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=src, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "deprecat" not in done.stderr.lower(), done.stderr  # e.g. the license table
    wheels = list(out.glob("snn_workbench-*.whl"))
    assert len(wheels) == 1
    return wheels[0]



def run_from(site, probe: str, cwd, timeout: float):
    """``python -c probe`` with only the unpacked wheel ``site`` on the path, in ``cwd``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)

def test_the_wheel_holds_every_module_and_the_bundled_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "workbench").rglob("*.py")
               if ".numba_cache" not in p.parts}
    assert modules - names == set()
    bundled = {"workbench/bundled/demo/digits_cnn.network.npz", "workbench/bundled/demo/digits_cnn.keras",
               "workbench/bundled/demo/digits_test.npz", "workbench/bundled/demo/digits_calibration.npz",
               "workbench/bundled/c_reference/snn_ref.c", "workbench/bundled/c_reference/README.md"}
    assert bundled - names == set()
    assert not [n for n in names if ".numba_cache" in n or n.startswith("tests/")]


def test_the_unpacked_wheel_opens_the_demo_without_the_source_tree(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import workbench.models.loading as L, workbench.bundled as B\n"
        "from workbench.models.data import load_samples\n"
        f"assert str(B.C_REFERENCE_DIR).startswith({str(site)!r}), B.C_REFERENCE_DIR\n"
        "net = L.open_model(L.DEMO_NETWORK)\n"
        "x = load_samples(L.DEMO_TEST, net.input_shape)\n"
        "assert (B.C_REFERENCE_DIR / 'snn_ref.c').is_file()\n"
        "print(net.name, len(x.x))\n"
    )
    done = run_from(site, probe, tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "digits_cnn"


def test_the_unpacked_wheel_imports_a_keras_file_in_a_child_process(wheel, tmp_path):
    """The window's isolated import starts its child from the installed package alone: no
    PYTHONPATH left, the working folder not the repository."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import os, sys\n"
        "import workbench.models.loading as L\n"
        "del os.environ['PYTHONPATH']\n"
        "net = L.open_model(L.DEMO_KERAS, isolated=True)\n"
        "assert 'tensorflow' not in sys.modules\n"
        f"assert L.__file__.startswith({str(site)!r}), L.__file__\n"
        "print(net.source['file'], len(net.layers))\n"
    )
    done = run_from(site, probe, tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["digits_cnn.keras", "8"]
