"""Who is using a data dir: every ForYou process that works on one holds a shared lock on ``.in-use.lock``
in it for as long as it runs; ``foryou backup restore`` takes the lock exclusively, so it refuses while a
server, worker or command runs on the dir, and a process started during a restore refuses to start.

An ``flock`` is released by the kernel when its holder exits, however it exits: a crashed server never
leaves a stale lock behind (a pid file would).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".in-use.lock"

__all__ = ["LOCK_FILE", "DataDirBusy", "DataDirLock", "holders"]


class DataDirBusy(Exception):
    """The data dir is held in a way that excludes what was asked (a restore, or a running process)."""


def holders(path: Path) -> list[int]:
    """PIDs holding an flock on ``path``, from Linux's /proc/locks (empty where that is not available)."""
    try:
        inode = path.stat().st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    pids = []
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  READ  12345 08:01:131074 0 EOF" (fields after "->" describe a waiter)
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        if fields[5].rsplit(":", 1)[-1] == str(inode) and fields[4].isdigit():
            pids.append(int(fields[4]))
    return sorted(set(pids) - {os.getpid()})


class DataDirLock:
    """One process's hold on a data dir: :meth:`share` while serving, :meth:`exclusive` while restoring."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_FILE
        self._fd: int | None = None

    def share(self) -> None:
        """Held while this process works on the dir; refused only while a restore holds it."""
        self._take(fcntl.LOCK_SH, "a restore is running on this data dir ({dir}); start again when it is done")

    def exclusive(self) -> None:
        """Held by a restore; refused while any ForYou process works on the dir."""
        self._take(fcntl.LOCK_EX, "a ForYou process{pids} is using the data dir {dir}: stop the server, workers and "
                                  "other commands on it, then restore again (nothing was changed)")

    def _take(self, mode: int, refusal: str) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pids = holders(self.path)
            shown = f" (pid {', '.join(map(str, pids))})" if pids else ""
            raise DataDirBusy(refusal.format(dir=self.path.parent, pids=shown)) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
