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

import numpy as np

from .api import Recommender
from .config import RecommenderConfig
from .features.decay import DecayedScores
from .features.users import UserState
from .memory import collector_paused
from .ports import ModelStore
from .state import EngineState

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
        data["users"] = _encode_users(data["users"])
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
    # The collector paused while millions of objects are built (about half the load time otherwise). A caller
    # that keeps the state for good may pause it around this call too and gc.freeze() the result before resuming:
    # then no collection ever walks it (the first one after resuming would walk all of it once).
    with collector_paused():
        try:
            data = pickle.loads(payload)  # noqa: S301 - our own file, checksummed, from the app's data directory
            if set(data) != {f.name for f in dataclasses.fields(EngineState)} - _NOT_SAVED:
                raise SnapshotError("snapshot fields differ from this build's state")
            data["users"] = _decode_users(data["users"])
        except SnapshotError:
            raise
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means: rebuild by replay
            raise SnapshotError(f"snapshot payload unreadable: {exc}") from exc
        recommender = Recommender(config=config, clock=clock, model_store=model_store)
        for name, value in data.items():
            setattr(recommender._state, name, value)
    return recommender, dict(header.get("meta") or {})


# ---- users as columns ------------------------------------------------------------------------------------
# A user's per-item and per-topic maps (seen, liked, engaged, the decayed scores) are most of the snapshot's
# objects: thousands of users with hundreds of entries each. They are stored as one vocabulary of keys (an item
# id or topic is one string for all users), int32 codes and float columns, and rebuilt as dicts in order; the
# rest of each user pickles as before. A map whose values are not floats (or float pairs) keeps the whole users
# dict pickled as it is.
_TIME_MAPS = ("seen", "liked")  # key -> float
_PAIR_MAPS = ("engaged",)  # key -> (float, float)
_SCORE_MAPS = ("short_scores", "long_positive", "long_negative")  # DecayedScores: key -> (float, float)
_USERS_FORMAT = "foryou-users-columns-1"
_FLOAT_TYPES = frozenset({float, np.float64})


def _encode_users(users: dict[str, UserState]) -> dict[str, UserState] | dict[str, Any]:
    try:
        keys: list = []
        first: list[float] = []
        second: list[float] = []
        lengths: list[int] = []
        rates: list[float] = []
        rest: list[dict[str, Any]] = []
        for user in users.values():
            if type(user) is not UserState:
                return users
            fields = dict(vars(user))
            for name in (*_TIME_MAPS, *_PAIR_MAPS, *_SCORE_MAPS):
                value = fields.pop(name)
                if name in _SCORE_MAPS:
                    if type(value) is not DecayedScores:
                        return users
                    rates.append(value.rate)
                    value = value._values
                if type(value) is not dict:
                    return users
                keys.extend(value)
                lengths.append(len(value))
                if name in _TIME_MAPS:
                    first.extend(value.values())
                else:
                    pairs = list(zip(*value.values(), strict=True)) if value else [(), ()]
                    if len(pairs) != 2:
                        return users
                    first.extend(pairs[0])
                    second.extend(pairs[1])
            rest.append(fields)
        if not set(map(type, first)) | set(map(type, second)) <= _FLOAT_TYPES:  # None or text would pass numpy
            return users
        vocabulary = list(dict.fromkeys(keys))
        code_of = {key: code for code, key in enumerate(vocabulary)}
        return {"format": _USERS_FORMAT, "ids": list(users), "rest": rest, "vocabulary": vocabulary,
                "codes": np.fromiter(map(code_of.__getitem__, keys), dtype=np.int32, count=len(keys)),
                "first": np.array(first, dtype=np.float64), "second": np.array(second, dtype=np.float64),
                "lengths": np.array(lengths, dtype=np.int64), "rates": np.array(rates, dtype=np.float64)}
    except (TypeError, ValueError):  # a value that is not a float or a pair of floats
        return users


def _decode_users(encoded: dict) -> dict[str, UserState]:
    if encoded.get("format") != _USERS_FORMAT:
        return encoded  # pickled as it was (an older snapshot, or values the columns do not take)
    vocabulary = np.empty(len(encoded["vocabulary"]), dtype=object)
    vocabulary[:] = encoded["vocabulary"]
    keys = vocabulary[encoded["codes"]].tolist()
    first, second = encoded["first"].tolist(), encoded["second"].tolist()
    lengths = iter(encoded["lengths"].tolist())
    rates = iter(encoded["rates"].tolist())
    users: dict[str, UserState] = {}
    at = paired = 0  # position in keys/first; in second
    for user_id, fields in zip(encoded["ids"], encoded["rest"], strict=True):
        user = UserState.__new__(UserState)
        for name in (*_TIME_MAPS, *_PAIR_MAPS, *_SCORE_MAPS):
            n = next(lengths)
            if name in _TIME_MAPS:
                value = dict(zip(keys[at:at + n], first[at:at + n], strict=True))
            else:
                value = dict(zip(keys[at:at + n], zip(first[at:at + n], second[paired:paired + n], strict=True),
                                 strict=True))
                paired += n
            at += n
            if name in _SCORE_MAPS:
                scores = DecayedScores.__new__(DecayedScores)
                scores.rate, scores._values = next(rates), value
                value = scores
            fields[name] = value
        user.__dict__.update(fields)
        users[user_id] = user
    return users
