"""Event taxonomy, engagement weights, sessionization and the bounded in-memory event log."""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

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
    """Append-only, bounded, de-duplicated by event id. Mostly time-ordered (bulk loads are sorted)."""

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self._events: deque[Event] = deque()
        self._times: deque[float] = deque()
        self._ids: set[tuple[str, str]] = set()  # (user, event id): clients' ids are unique per user only
        self.appended = 0  # total ever appended: a sequence number for catching up after snapshots
        self.rewrites = 0  # in-place rewrites (anonymise): counts continued from a checkpoint start over

    def __len__(self) -> int:
        return len(self._events)

    # Snapshots (recommender.snapshot) pickle the log: as plain tuples it is several times faster both ways than
    # as half a million dataclass instances; the id set and the time index are rebuilt from the events.
    def __getstate__(self) -> dict:
        rows = [(e.event_id, e.user_id, e.event_type, e.timestamp, e.item_id, e.creator_id, e.watch_duration,
                 e.info) for e in self._events]
        return {"max_events": self.max_events, "appended": self.appended, "rows": rows}

    def __setstate__(self, state: dict) -> None:
        self.max_events = state["max_events"]
        self.appended = state["appended"]
        self.rewrites = 0
        events = deque(itertools.starmap(Event, state["rows"]))
        self._events = events
        self._times = deque(e.timestamp for e in events)
        self._ids = {(e.user_id, e.event_id) for e in events}

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def append(self, event: Event) -> bool:
        """Add an event; False if its id was already logged."""
        if (event.user_id, event.event_id) in self._ids:
            return False
        self._ids.add((event.user_id, event.event_id))
        self._events.append(event)
        self._times.append(event.timestamp)
        self.appended += 1
        while len(self._events) > self.max_events:
            dropped = self._events.popleft()
            self._times.popleft()
            self._ids.discard((dropped.user_id, dropped.event_id))
        return True

    def snapshot(self) -> list[Event]:
        return list(self._events)

    def anonymise(self, user_id: str, replacement: str) -> int:
        """Rewrite a user's events to another (anonymous) id in place; order and sequence numbers are kept."""
        changed = 0
        self.rewrites += 1
        for index, event in enumerate(self._events):
            if event.user_id == user_id:
                self._events[index] = replace(event, user_id=replacement)
                changed += 1
        return changed

    def since_sequence(self, sequence: int) -> list[Event]:
        """Events appended after the log had seen ``sequence`` appends."""
        missing = self.appended - sequence
        if missing <= 0:
            return []
        return list(itertools.islice(self._events, max(0, len(self._events) - missing), None))

    def since_time(self, start: float) -> list[Event]:
        """Events with timestamp ≥ start (by position in the mostly sorted log)."""
        index = bisect.bisect_left(self._times, start)
        return list(itertools.islice(self._events, index, None))


def sorted_events(events: Iterable[Event]) -> list[Event]:
    return sorted(events, key=lambda e: e.timestamp)
