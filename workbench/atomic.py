"""Atomic file writes: a temporary file beside the target, renamed over it only when complete.

An interrupted export or save therefore never leaves a half-written file where a good one was.
A process killed outright (``kill -9``, power loss) cannot delete its temporary file; the name
carries the writer's process id (``.<name>.<pid>-<random>.part``), and the next write to the same
target removes temporary files whose writer is no longer running. Files of a live writer (this
or another process) are never touched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from workbench.errors import OutputFileError


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or not a pid we understand: keep the file
    return True


def stale_parts(path: str | os.PathLike, folders: bool = False) -> list[Path]:
    """Temporary files (or, with ``folders``, temporary folders of ``atomic_dir``) left beside
    ``path`` by writers that died before renaming them."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    prefix = f".{path.name}."
    stale = []
    try:
        candidates = list(folder.glob(f"{glob_escape(prefix)}*.part"))
    except OSError:
        return []
    for part in candidates:
        tag = part.name[len(prefix):].split("-", 1)[0]
        kind_ok = part.is_dir() if folders else part.is_file()
        if tag.isdigit() and int(tag) != os.getpid() and not _writer_alive(int(tag)) and kind_ok:
            stale.append(part)
    return stale


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _check_target(path: Path) -> Path:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise OutputFileError(f"{path}: cannot write: the folder '{folder}' does not exist")
    if not folder.is_dir():
        raise OutputFileError(f"{path}: cannot write: '{folder}' is not a folder")
    if path.is_dir():
        raise OutputFileError(f"{path}: cannot write: it is a folder; give a file name")
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path in the target's folder; on success fsync and rename it to ``path``.

    Raises ``OutputFileError`` naming ``path`` when the target cannot be written at all (missing
    folder, a folder in the way, no permission); errors of the writer itself pass through.
    """
    path = Path(path)
    folder = _check_target(path)
    for part in stale_parts(path):
        with contextlib.suppress(OSError):
            part.unlink()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".part", dir=folder)
    except OSError as exc:
        raise OutputFileError(f"{path}: cannot write here ({exc.strerror})") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a saved file should look like any other
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputFileError(f"{path}: cannot replace the file ({exc.strerror})") from None
        _fsync_folder(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary folder beside ``path``; when the block completes, it replaces ``path``
    (an existing folder is moved aside to ``.<name>.old`` and removed only after the rename). On
    any error the temporary folder is removed and ``path`` is left as it was.

    A writer killed outright leaves its temporary folder (named, like ``atomic_path``'s files,
    with its process id) and possibly ``.<name>.old``: the next write to the same target removes
    the folders of dead writers, and puts a ``.old`` folder back when the kill fell between the
    two renames (the target missing), so the previous export is never lost."""
    import shutil

    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputFileError(f"{path}: cannot write: the folder '{folder}' does not exist")
    old = path.with_name(f".{path.name}.old")
    if old.is_dir():
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, path)
    for part in stale_parts(path, folders=True):
        shutil.rmtree(part, ignore_errors=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".part", dir=folder))
    except OSError as exc:
        raise OutputFileError(f"{path}: cannot write here ({exc.strerror})") from None
    try:
        yield tmp
        if path.is_dir():
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
