"""Event taxonomy, engagement weights, sessionization and the bounded in-memory event log."""

from __future__ import annotations

import bisect
import itertools
import operator
import pickle
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

import numpy as np

from .memory import collector_paused
from .types import Event

# Events that mean "the user was shown this item" (the first one of a pair opens an exposure).
EXPOSURE_EVENTS = frozenset(
    {"impression", "view", "complete_view", "replay", "skip", "like", "comment", "share", "save", "hide", "report"}
)
# Events that say the user was actually consuming the item (used for the "seen" filter and CTR).
CONSUMPTION_EVENTS = frozenset({"view", "complete_view", "replay"})
ENGAGEMENT_EVENTS = frozenset({"like", "comment", "share", "save", "follow"})
NEGATIVE_EVENTS = frozenset({"skip", "hide", "report"})
CREATOR_EVENTS = frozenset({"follow", "unfollow"})
# Watching less than this share of a video before moving on reads as a soft skip.
SHORT_WATCH_RATIO = 0.2


def watch_ratio(event: Event, duration: float) -> float | None:
    """Share of the video watched (capped at 1.5 to allow for replays within one view), if known."""
    if event.event_type == "complete_view":
        return 1.0
    if event.watch_duration is None or duration <= 0:
        return None
    return max(0.0, min(1.5, event.watch_duration / duration))


def engagement_weight(event: Event, duration: float, weights: dict[str, float]) -> float:
    """Signed interest signal of one event. Views scale with the watch ratio; very short views are negative."""
    base = weights.get(event.event_type, 0.0)
    if event.event_type != "view":
        return base
    ratio = watch_ratio(event, duration)
    if ratio is None:
        return base * 0.3
    if ratio < SHORT_WATCH_RATIO:
        return -0.3
    return base * min(ratio, 1.0)


def sessionize(events: Sequence[Event], gap_seconds: float = 1800.0) -> list[list[Event]]:
    """Split one user's events (any order) into sessions separated by more than ``gap_seconds`` of inactivity."""
    sessions: list[list[Event]] = []
    current: list[Event] = []
    last: float | None = None
    for event in sorted(events, key=lambda e: e.timestamp):
        if last is not None and event.timestamp - last > gap_seconds:
            sessions.append(current)
            current = []
        current.append(event)
        last = event.timestamp
    if current:
        sessions.append(current)
    return sessions


class EventLog:
    """Append-only, bounded, de-duplicated by event id. Mostly time-ordered (bulk loads are sorted).

    A log restored from a snapshot keeps the restored events as columns (``_StoredEvents``) until something
    reads them as ``Event`` objects (the periodic jobs): building half a million of them took most of a restart,
    and the ingest path only needs their ids and times, which are restored eagerly."""

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self._stored: _StoredEvents | None = None  # the oldest events (restored, not yet objects), before _events
        self._events: deque[Event] = deque()
        self._times: deque[float] = deque()  # every event's time, stored ones included
        self._ids: set[tuple[str, str]] = set()  # (user, event id): clients' ids are unique per user only
        self.appended = 0  # total ever appended: a sequence number for catching up after snapshots
        self.rewrites = 0  # in-place rewrites (anonymise): counts continued from a checkpoint start over

    def __len__(self) -> int:
        return len(self._events) + (len(self._stored) if self._stored is not None else 0)

    # Snapshots (recommender.snapshot) pickle the log as columns (see _encode_columns): several times faster
    # both ways than half a million dataclass instances or tuples.
    def __getstate__(self) -> dict:
        columns = _live_columns(self._events)
        if self._stored is not None:
            columns = {name: self._stored.column(name) + values for name, values in columns.items()}
        return {"max_events": self.max_events, "appended": self.appended, "columns": _encode_columns(columns)}

    def __setstate__(self, state: dict) -> None:
        self.max_events = state["max_events"]
        self.appended = state["appended"]
        self.rewrites = 0
        self._events = deque()
        if "rows" in state:  # a snapshot written before the columns: one tuple per event
            self._stored = None
            self._events = deque(itertools.starmap(Event, state["rows"]))
            self._times = deque(e.timestamp for e in self._events)
            self._ids = {(e.user_id, e.event_id) for e in self._events}
            return
        stored = _StoredEvents(state["columns"])
        self._stored = stored if len(stored) else None
        self._times = deque(stored.times.tolist())
        self._ids = set(zip(stored.user_ids, stored.event_ids, strict=True))

    def _materialize(self) -> deque[Event]:
        """All events as objects (once, on the first read that needs them)."""
        if self._stored is not None:
            with collector_paused():
                self._events.extendleft(reversed(self._stored.events()))
            self._stored = None
        return self._events

    def __iter__(self) -> Iterator[Event]:
        return iter(self._materialize())

    def append(self, event: Event) -> bool:
        """Add an event; False if its id was already logged."""
        if (event.user_id, event.event_id) in self._ids:
            return False
        self._ids.add((event.user_id, event.event_id))
        self._events.append(event)
        self._times.append(event.timestamp)
        self.appended += 1
        while len(self) > self.max_events:
            self._times.popleft()
            if self._stored is not None:
                self._ids.discard(self._stored.drop_oldest())
                if not len(self._stored):
                    self._stored = None
            else:
                dropped = self._events.popleft()
                self._ids.discard((dropped.user_id, dropped.event_id))
        return True

    def snapshot(self) -> list[Event]:
        return list(self._materialize())

    def anonymise(self, user_id: str, replacement: str) -> int:
        """Rewrite a user's events to another (anonymous) id in place; order and sequence numbers are kept."""
        changed = 0
        self.rewrites += 1
        events = self._materialize()
        for index, event in enumerate(events):
            if event.user_id == user_id:
                events[index] = replace(event, user_id=replacement)
                changed += 1
        return changed

    def since_sequence(self, sequence: int) -> list[Event]:
        """Events appended after the log had seen ``sequence`` appends."""
        missing = self.appended - sequence
        if missing <= 0:
            return []
        events = self._materialize()
        return list(itertools.islice(events, max(0, len(events) - missing), None))

    def since_time(self, start: float) -> list[Event]:
        """Events with timestamp ≥ start (by position in the mostly sorted log)."""
        index = bisect.bisect_left(self._times, start)
        return list(itertools.islice(self._materialize(), index, None))


# ---- the snapshot's columns ------------------------------------------------------------------------------
# Event's fields in order; repeated strings (users, types, items, creators; None among them) are stored as a
# vocabulary and one int32 code per event, the unique event ids as one joined string, times as float arrays,
# the small ``info`` dicts as one pickle that is only opened when the events become objects.
_FIELDS = ("event_id", "user_id", "event_type", "timestamp", "item_id", "creator_id", "watch_duration", "info")
_CODED = ("user_id", "event_type", "item_id", "creator_id")
_SEPARATOR = "\x00"


def _live_columns(events: Iterable[Event]) -> dict[str, list]:
    rows = list(map(operator.attrgetter(*_FIELDS), events))
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(_FIELDS)
    return {name: list(values) for name, values in zip(_FIELDS, columns, strict=True)}


def _encode_columns(columns: dict[str, list]) -> dict:
    n = len(columns["event_id"])
    encoded: dict = {"count": n}
    ids = columns["event_id"]
    joined = _SEPARATOR.join(ids)
    # An id holding the separator (never seen in practice) makes the join ambiguous: then the plain list.
    encoded["event_id"] = joined if n and joined.count(_SEPARATOR) == n - 1 else list(ids)
    for name in _CODED:
        vocabulary = list(dict.fromkeys(columns[name]))  # None is a value like any other
        code_of = {value: code for code, value in enumerate(vocabulary)}
        encoded[name] = (vocabulary, np.fromiter(map(code_of.__getitem__, columns[name]), dtype=np.int32, count=n))
    encoded["timestamp"] = np.asarray(columns["timestamp"], dtype=np.float64).reshape(n)
    watch = np.array(columns["watch_duration"], dtype=object).reshape(n)
    missing = np.equal(watch, None)
    watch[missing] = 0.0
    encoded["watch_duration"] = (watch.astype(np.float64), missing)
    encoded["info"] = pickle.dumps(columns["info"], protocol=pickle.HIGHEST_PROTOCOL)
    return encoded


def _decode_codes(encoded: tuple[list, np.ndarray], start: int = 0) -> list:
    vocabulary, codes = encoded
    values = np.empty(len(vocabulary), dtype=object)
    values[:] = vocabulary
    return values[codes[start:]].tolist()


class _StoredEvents:
    """Restored events as columns, oldest first; ``start`` of them have since been dropped from the log."""

    def __init__(self, encoded: dict) -> None:
        self.encoded = encoded
        n = encoded["count"]
        ids = encoded["event_id"]
        self.event_ids: list[str] = (ids.split(_SEPARATOR) if n else []) if isinstance(ids, str) else list(ids)
        self.user_ids: list[str] = _decode_codes(encoded["user_id"])
        self.times: np.ndarray = encoded["timestamp"]
        self.start = 0

    def __len__(self) -> int:
        return len(self.event_ids) - self.start

    def drop_oldest(self) -> tuple[str, str]:
        """Forget the oldest stored event; its (user, event id) key."""
        key = (self.user_ids[self.start], self.event_ids[self.start])
        self.start += 1
        return key

    def column(self, name: str) -> list:
        """One field of the events still held, as a list."""
        encoded, start = self.encoded[name], self.start
        if name == "event_id":
            return self.event_ids[start:]
        if name == "user_id":
            return self.user_ids[start:]
        if name in _CODED:
            return _decode_codes(encoded, start)
        if name == "timestamp":
            return encoded[start:].tolist()
        if name == "watch_duration":
            values, missing = encoded
            column = values[start:].astype(object)
            column[missing[start:]] = None
            return column.tolist()
        return pickle.loads(encoded)[start:]  # noqa: S301 - from our own checksummed snapshot (info dicts)

    def events(self) -> list[Event]:
        return list(map(Event, *(self.column(name) for name in _FIELDS)))


def sorted_events(events: Iterable[Event]) -> list[Event]:
    return sorted(events, key=lambda e: e.timestamp)
