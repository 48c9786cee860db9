"""Atomic file output: write to a temporary name in the same folder, fsync, then rename.

A crash leaves at most a ``*.tmp-*`` file behind, which never counts as done and is cleaned up on the next run.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def tmp_path_for(final: Path) -> Path:
    # keep the real suffix last so tools that pick a muxer from the extension (ffmpeg) still work
    return final.with_name(f".{final.stem}.tmp-{uuid.uuid4().hex[:8]}{final.suffix}")


def cleanup_tmp(folder: Path) -> None:
    """Remove temporary files left by a crashed step."""
    if folder.is_dir():
        for leftover in folder.glob(".*.tmp-*"):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_output(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed over ``final``; on error it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(final)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        _fsync(tmp)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(final: str | os.PathLike, data: bytes) -> None:
    with atomic_output(final) as tmp:
        tmp.write_bytes(data)


def write_text(final: str | os.PathLike, text: str) -> None:
    write_bytes(final, text.encode("utf-8"))


def write_json(final: str | os.PathLike, data) -> None:
    write_text(final, json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False))
