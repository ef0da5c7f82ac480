"""The terminal progress bars the commands share: tqdm on stderr, removed when done."""

from __future__ import annotations

import sys
from contextlib import contextmanager


def progress_bar(total: int | None, unit: str, enabled: bool, desc: str | None = None):
    """(update, close). ``update(done, total=None)`` moves the bar to ``done`` (the signature of
    ``Simulator.run``'s and ``normalize``'s ``on_progress``; a ``total`` given there replaces
    the bar's); ``close`` removes the bar. Both do nothing when not ``enabled``."""
    if not enabled:
        return (lambda done, total=None: None), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(done, total=None):
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


@contextmanager
def normalizing(enabled: bool):
    """``on_progress`` for ``prepare``/``normalize``: a bar over the layers of the normalization,
    on a terminal only (a second or two at most for most models: not worth a line in a log)."""
    update, close = progress_bar(None, "layer", enabled and sys.stderr.isatty(), "normalizing")
    try:
        yield update
    finally:
        close()
