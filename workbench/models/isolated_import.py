"""Import a Keras model file in a child process, so TensorFlow's memory leaves with it.

Importing TensorFlow and Keras costs a process ~0.9 GB that it never returns (ResNet50: RSS
1.05 GB after the import, of which 97 MB are the weights). The window opens Keras files through
``import_keras_isolated``: a child Python (``python -c`` running ``_child_main`` of this module,
the same ``workbench`` package as the parent's, ``TF_CPP_MIN_LOG_LEVEL=3``) runs
``models.keras.importer.load_keras`` and sends the imported, un-normalized ``Network`` back
pickled over its stdout pipe, then exits: the TensorFlow memory goes back to the system and the
window's process never imports TensorFlow. Nothing is written to disk.

- Each stage the importer reports reaches ``on_stage`` as it starts (in order); the wait between
  reports calls ``on_progress(0, None)`` (busy, no measure) every ``POLL`` seconds. Either may
  raise to cancel: the child is killed at once (not waited for) and the exception goes on.
- An error in the child arrives as the same exception type with the same message (the child's
  traceback as its ``__cause__``); a child that dies (killed, out of memory, crashed) becomes a
  ``ModelImportError`` naming the file.

A subprocess rather than ``multiprocessing``: the "spawn" start method re-runs the parent's
``__main__`` in the child, and ``python -m workbench`` runs the command line there.
The command line imports in-process (``loading.open_model(isolated=False)``): a script pays for
TensorFlow once either way and needs no second process.
"""

from __future__ import annotations

import collections
import os
import pickle
import queue
import subprocess
import sys
import threading
import traceback
from pathlib import Path

from workbench.errors import ModelImportError
from workbench.models.network import Network

POLL = 0.1  # seconds between on_progress(0, None) while the child works
_STDERR_LINES = 40  # the child's last stderr lines kept for a crash's details
_TAIL_WAIT = 5.0  # seconds to wait for the end of the child's stderr once it has ended

_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); import workbench; sys.path.remove(sys.argv[1]); "
    "from workbench.models.isolated_import import _child_main; _child_main(sys.argv[2])"
)


class ChildTraceback(Exception):
    """The child's traceback text: the ``__cause__`` of an error that came from the child."""


def _child_env() -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # a user's own level (0 to debug) is kept
    env["PYTHONUNBUFFERED"] = "1"
    return env  # NUMBA_CACHE_DIR, when set, is inherited


def _package_root() -> str:
    """The folder holding the ``workbench`` package this process runs (a repo or site-packages)."""
    import workbench

    return str(Path(workbench.__file__).resolve().parent.parent)


def _read_messages(stream, inbox: queue.Queue) -> None:
    """Unpickle (kind, payload) messages from the child's stdout until it closes."""
    try:
        while True:
            inbox.put(pickle.load(stream))
    except (EOFError, OSError, ValueError, pickle.UnpicklingError):
        pass
    except Exception as exc:  # a payload that does not unpickle: report it, not hang
        inbox.put(("broken", exc))
    finally:
        inbox.put(("eof", None))


def _read_tail(stream, tail: collections.deque) -> None:
    try:
        for line in stream:
            tail.append(line.decode(errors="replace").rstrip())
    except (OSError, ValueError):
        pass


def _rebuilt(path: Path, payload) -> BaseException:
    """The child's exception as the same type and message (built without calling its __init__)."""
    module, qualname, args, attrs, text = payload
    try:
        cls = sys.modules.get(module) or __import__(module, fromlist=["_"])
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(qualname)
        exc = cls.__new__(cls, *args)
        exc.args = tuple(args)
        exc.__dict__.update(attrs)
    except Exception:
        message = args[0] if len(args) == 1 else ", ".join(map(str, args))
        exc = ModelImportError(f"{path.name}: {qualname}: {message}")
    exc.__cause__ = ChildTraceback(text)
    return exc


def _crashed(path: Path, code: int | None, tail) -> ModelImportError:
    if code is not None and code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        how = f"was stopped by {name}" + (" (out of memory?)" if -code == 9 else "")
    else:
        how = f"ended with exit code {code}"
    exc = ModelImportError(f"{path.name}: the import process {how} before the model was read")
    if tail:
        exc.__cause__ = ChildTraceback("\n".join(tail))
    return exc


def import_keras_isolated(path: str | os.PathLike, on_stage=None, on_progress=None) -> Network:
    """``load_keras(path, on_stage)`` run in a child process (see the module's docstring)."""
    path = Path(path)  # as given: the child runs in this folder, so its messages name it alike
    proc = subprocess.Popen(
        [sys.executable, "-c", _BOOT, _package_root(), os.fspath(path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_child_env(),
    )
    inbox: queue.Queue = queue.Queue()
    tail: collections.deque = collections.deque(maxlen=_STDERR_LINES)
    readers = [threading.Thread(target=_read_messages, args=(proc.stdout, inbox), daemon=True),
               threading.Thread(target=_read_tail, args=(proc.stderr, tail), daemon=True)]
    for thread in readers:
        thread.start()
    try:
        while True:
            try:
                kind, payload = inbox.get(timeout=POLL)
            except queue.Empty:
                if on_progress is not None:
                    on_progress(0, None)  # may raise: cancelled
                continue
            if kind == "stage":
                if on_stage is not None:
                    on_stage(payload)
            elif kind == "network":
                return payload
            elif kind == "error":
                raise _rebuilt(path, payload)
            elif kind == "broken":
                raise ModelImportError(f"{path.name}: the import process sent an unreadable result ({payload})")
            else:  # eof: the child died before sending a result
                proc.wait()
                readers[1].join(_TAIL_WAIT)
                raise _crashed(path, proc.returncode, tail)
    finally:
        if proc.poll() is None:
            proc.kill()  # cancelled, failed or done: don't wait for TensorFlow to finish
        proc.wait()
        readers[0].join()  # only the child held its stdout: it ends with it
        proc.stdout.close()
        readers[1].join(_TAIL_WAIT)  # a process the child started may still hold its stderr
        if not readers[1].is_alive():
            proc.stderr.close()


def _child_main(path: str) -> None:
    """The child: report stages and the result (or the error) as pickles on the real stdout."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything Keras or TensorFlow prints goes to stderr, not into the messages

    def send(kind, payload) -> None:
        pickle.dump((kind, payload), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        from workbench.models.keras.importer import load_keras

        network = load_keras(Path(path), lambda label: send("stage", label))
        send("network", network)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        text = "".join(traceback.format_exception(exc))
        cls = type(exc)
        try:
            attrs = dict(getattr(exc, "__dict__", {}))
            pickle.dumps(attrs)
            pickle.dumps(exc.args)
            args = exc.args
        except Exception:
            attrs, args = {}, (str(exc),)
        send("error", (cls.__module__, cls.__qualname__, args, attrs, text))
    finally:
        out.close()
        os._exit(0)  # skip TensorFlow's slow teardown: the parent has what it needs
