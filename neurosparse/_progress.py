"""Progress bars for long work: live on a terminal, sparse in a log file.

tqdm redraws up to ten times a second; written to a file (a batch job's log, CI) every
redraw is kept, so a few minutes of training leave thousands of bar lines. Off a
terminal the bar is drawn at most every :data:`LOG_INTERVAL_S` seconds instead.
"""

from __future__ import annotations

import sys

LOG_INTERVAL_S = 30.0


def progress_bar(iterable=None, *, enabled: bool = True, **kw):
    """``tqdm.auto.tqdm(iterable, **kw)``, disabled unless ``enabled``, redrawn at most every
    :data:`LOG_INTERVAL_S` seconds when stderr is not a terminal."""
    from tqdm.auto import tqdm

    stream = kw.get("file") or sys.stderr
    if not getattr(stream, "isatty", lambda: False)():
        kw.setdefault("mininterval", LOG_INTERVAL_S)
    return tqdm(iterable, disable=not enabled, **kw)
