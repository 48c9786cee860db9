"""Building or restoring millions of long-lived objects at once (snapshots, the event log) with the cyclic
collector paused: otherwise it walks them again and again as they pass its thresholds, for nothing (they all
stay alive)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
