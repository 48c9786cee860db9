"""A versioned, checksummed snapshot of the recommender's in-memory state, so a restart loads it and replays only
what came after it instead of the whole history.

File layout: one header line (``FORYOU-RECOMMENDER-SNAPSHOT``, then JSON: format version, the config's
fingerprint, the payload's length and SHA-256, and the caller's ``meta`` such as the last event sequence it
covers), then the payload: a pickle of the state's data fields. The ranker is not in it (its versions live in
the model store and load when the recommender is built), nor the lock or derived caches.

A snapshot written by another format version, for another config, truncated or altered is refused with
``SnapshotError``; the caller then rebuilds by replay. The file is written beside its final name and renamed
into place, so a crash mid-write leaves the previous snapshot intact. Pickle is only ever read from the app's
own data directory (as trusted as its database).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api import Recommender
from .config import RecommenderConfig
from .memory import collector_paused
from .ports import ModelStore

FORMAT_VERSION = 2  # 2: the catalogue holds a faiss index (serialised by faiss) instead of coarse lists
MAGIC = b"FORYOU-RECOMMENDER-SNAPSHOT "
# Not state: rebuilt when a recommender is built (ranker, lock) or recomputed on demand (caches).
_NOT_SAVED = frozenset({"config", "ranker", "lock", "_similarity_rows", "recount_checkpoint"})


class SnapshotError(Exception):
    """The snapshot cannot be used (missing, another version or config, corrupt); rebuild by replay."""


@dataclass(frozen=True)
class SnapshotInfo:
    path: Path
    bytes: int
    seconds: float
    meta: dict[str, Any]


def config_fingerprint(config: RecommenderConfig) -> str:
    """State built under one config (centroid counts, half-lives, windows) is only valid under the same one."""
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def save_snapshot(recommender: Recommender, path: Path | str,
                  meta: dict[str, Any] | Callable[[], dict[str, Any]] | None = None) -> SnapshotInfo:
    """Write the state atomically to ``path``. The state is pickled under its lock, and a callable ``meta`` is
    evaluated under the same lock, so what it says (e.g. the last event sequence applied) matches the state."""
    started = time.perf_counter()
    path = Path(path)
    state = recommender._state
    with state.lock, collector_paused():  # the columns built on the way are garbage-free and short-lived
        data = {f.name: getattr(state, f.name) for f in dataclasses.fields(state) if f.name not in _NOT_SAVED}
        payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
        meta = meta() if callable(meta) else dict(meta or {})
    header = {"version": FORMAT_VERSION, "config": config_fingerprint(recommender.config), "length": len(payload),
              "sha256": hashlib.sha256(payload).hexdigest(), "written_at": time.time(), "meta": meta}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")  # processes sharing a data dir never collide
    with open(partial, "wb") as handle:
        handle.write(MAGIC + json.dumps(header).encode() + b"\n")
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return SnapshotInfo(path, path.stat().st_size, round(time.perf_counter() - started, 3), header["meta"])


def read_header(path: Path | str) -> dict[str, Any]:
    """The header alone (cheap: the payload is not read)."""
    with open(path, "rb") as handle:
        return _parse_header(handle.readline(64 * 1024))


def _parse_header(line: bytes) -> dict[str, Any]:
    if not line.startswith(MAGIC):
        raise SnapshotError("not a recommender snapshot")
    try:
        header = json.loads(line[len(MAGIC):])
    except ValueError as exc:
        raise SnapshotError("unreadable snapshot header") from exc
    if header.get("version") != FORMAT_VERSION:
        raise SnapshotError(f"snapshot format {header.get('version')!r}, this build reads {FORMAT_VERSION}")
    return header


def load_snapshot(
    path: Path | str,
    config: RecommenderConfig | None = None,
    clock: Callable[[], float] = time.time,
    model_store: ModelStore | None = None,
) -> tuple[Recommender, dict[str, Any]]:
    """A recommender whose state is the snapshot's, and the snapshot's ``meta``; ``SnapshotError`` if unusable."""
    config = config or RecommenderConfig()
    try:
        with open(path, "rb") as handle:
            header = _parse_header(handle.readline(64 * 1024))
            payload = handle.read()
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot: {exc}") from exc
    if header.get("config") != config_fingerprint(config):
        raise SnapshotError("snapshot was written under another recommender config")
    if len(payload) != header.get("length") or hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise SnapshotError("snapshot checksum mismatch (truncated or corrupt)")
    try:
        with collector_paused():  # about half the load time otherwise
            data = pickle.loads(payload)  # noqa: S301 - our own file, checksummed, from the app's data directory
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means: rebuild by replay
        raise SnapshotError(f"snapshot payload unreadable: {exc}") from exc
    recommender = Recommender(config=config, clock=clock, model_store=model_store)
    state = recommender._state
    known = {f.name for f in dataclasses.fields(state)} - _NOT_SAVED
    if set(data) != known:
        raise SnapshotError("snapshot fields differ from this build's state")
    for name, value in data.items():
        setattr(state, name, value)
    return recommender, dict(header.get("meta") or {})
