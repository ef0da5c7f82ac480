"""The rooms' dependency direction (docs/architecture.md), checked on the source: an AST walk over
every module of the package, so an import that runs the wrong way fails here, not in review.

Rooms, from the bottom: the shared base (``workbench/*.py``), ``models``, ``engine``, then
``analysis`` and ``exchange`` (siblings: neither imports the other), then ``views`` and ``cli``.
A module may import from its own room and from rooms below it. Lazy imports inside functions
count too. ``models``, ``engine``, ``analysis`` and ``exchange`` never import Qt; only
``models/keras`` imports TensorFlow/Keras and only ``models/onnx`` imports onnx/onnxruntime.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "workbench"

RANK = {"base": 0, "models": 1, "engine": 2, "analysis": 3, "exchange": 3, "views": 4, "cli": 5}
ALLOWED_SAME_RANK = {("cli", "views")}  # the ``gui`` command opens the window; plots for reports
QT = ("PyQt6", "pyqtgraph", "superqt")
QT_FREE = ("models", "engine", "analysis", "exchange")
FRAMEWORKS = {"tensorflow": "models/keras", "keras": "models/keras", "tf_keras": "models/keras",
              "onnx": "models/onnx", "onnxruntime": "models/onnx"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _room(module: str) -> str:
    if module == "workbench.__main__":  # ``python -m workbench``: the command line's entry point
        return "cli"
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in RANK:
        return "base"
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute module name this file imports (relative imports resolved), with its line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path).split(".")
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_pkg else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
            # "from workbench.x import y" may name a submodule y
            found += [(node.lineno, f"{mod}.{a.name}") for a in node.names
                      if (PACKAGE.parent / Path(*f"{mod}.{a.name}".split("."))).with_suffix(".py").exists()
                      or (PACKAGE.parent / Path(*f"{mod}.{a.name}".split("."))).is_dir()]
    return found


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if ".numba_cache" not in p.parts)


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in _sources():
        mod = _module_name(path)
        edges[mod] = {m for _, m in _imports(path) if m.startswith("workbench.") and m != mod}
    return edges


def test_every_room_imports_only_downward():
    wrong = []
    for path in _sources():
        mod = _module_name(path)
        room = _room(mod)
        for line, target in _imports(path):
            if not target.startswith("workbench."):
                continue
            other = _room(target)
            if other == room or RANK[other] < RANK[room] or (room, other) in ALLOWED_SAME_RANK:
                continue
            wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({room}) imports {target} ({other})")
    assert not wrong, "imports that run upward or sideways:\n" + "\n".join(wrong)


def test_no_two_modules_import_each_other():
    edges = _edges()
    modules = {m for m in edges}
    circles = []
    for a, targets in edges.items():
        for b in targets:
            # a package import ("workbench.models") is its __init__; skip a package importing its own children
            if b in modules and a in edges.get(b, set()) and a < b and not (b.startswith(a + ".") or a.startswith(b + ".")):
                circles.append(f"{a} <-> {b}")
    assert not circles, "modules that import each other: " + ", ".join(circles)


@pytest.mark.parametrize("room", QT_FREE)
def test_rooms_below_the_views_never_import_qt(room):
    hits = [f"{p.relative_to(PACKAGE.parent)}:{line} {m}" for p in _sources() if _room(_module_name(p)) == room
            for line, m in _imports(p) if m.split(".")[0] in QT]
    assert not hits, f"Qt imported in {room}: {hits}"


def test_frameworks_are_imported_only_by_their_importer():
    hits = []
    for p in _sources():
        rel = p.relative_to(PACKAGE).as_posix()
        for line, m in _imports(p):
            owner = FRAMEWORKS.get(m.split(".")[0])
            if owner and not rel.startswith(owner + "/"):
                hits.append(f"{rel}:{line} imports {m} (only {owner}/ may)")
    assert not hits, "\n".join(hits)


def test_the_checker_sees_a_wrong_import(tmp_path, monkeypatch):
    """The walk really reads lazy imports inside functions (a check that cannot fail is no check)."""
    pkg = tmp_path / "workbench"
    (pkg / "engine").mkdir(parents=True)
    (pkg / "views").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "engine" / "__init__.py").write_text("")
    (pkg / "views" / "__init__.py").write_text("")
    (pkg / "views" / "w.py").write_text("")
    (pkg / "engine" / "bad.py").write_text("def f():\n    from workbench.views import w\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    with pytest.raises(AssertionError, match="engine/bad.py:2"):
        test_every_room_imports_only_downward()
