"""Free disk space: the margin below which uploads are refused (507) and the server says it is not ready,
and recognising a write that failed for lack of space (answered 503, so clients keep what they hold)."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

MB = 1024 * 1024


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def below_margin(path: Path, margin_mb: int) -> bool:
    return free_bytes(path) < margin_mb * MB


def out_of_space(exc: BaseException | None) -> bool:
    """True when ``exc`` (or what caused it) is the disk being full: ENOSPC, or SQLite's "disk is full"."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(exc).lower()
        if "database or disk is full" in text or "no space left on device" in text:
            return True
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "orig", None)
        seen += 1
    return False
