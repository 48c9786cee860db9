"""Product metrics as pure functions over events (for the metrics job and an operator dashboard).

Definitions (all windows are half-open [start, end), times in unix seconds):

* DAU: distinct users with any event in the day.
* Retention Dn: of the users active on day D, the share also active on day D+n.
* Session length: last minus first event time of a session; sessions split at 30 minutes of inactivity.
* CTR: of the distinct (user, item) pairs with an impression, the share that were also viewed.
* Engagement rate: engagement events (like, comment, share, save, follow) per view event.
* Skip rate: of the distinct (user, item) pairs exposed (impression, view or skip), the share skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from .events import CONSUMPTION_EVENTS, ENGAGEMENT_EVENTS, sessionize
from .types import Event

DAY = 86_400.0
SESSION_GAP = 1_800.0


def in_window(events: Iterable[Event], start: float, end: float) -> list[Event]:
    return [e for e in events if start <= e.timestamp < end]


def active_users(events: Iterable[Event], start: float, end: float) -> set[str]:
    return {e.user_id for e in events if start <= e.timestamp < end}


def daily_active_users(events: Iterable[Event], day_start: float) -> int:
    return len(active_users(events, day_start, day_start + DAY))


def retention(events: Sequence[Event], day_start: float, n_days: int) -> float | None:
    """Share of day-D users active again on day D+n; None when nobody was active on day D."""
    cohort = active_users(events, day_start, day_start + DAY)
    if not cohort:
        return None
    later = day_start + n_days * DAY
    return len(cohort & active_users(events, later, later + DAY)) / len(cohort)


def sessions(events: Iterable[Event], gap: float = SESSION_GAP) -> Iterator[list[Event]]:
    """Every user's sessions (runs of events with no gap over ``gap`` seconds), user after user."""
    by_user: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_user[event.user_id].append(event)
    for user_events in by_user.values():
        yield from sessionize(user_events, gap)


def session_lengths(events: Iterable[Event], gap: float = SESSION_GAP) -> list[float]:
    return [session[-1].timestamp - session[0].timestamp for session in sessions(events, gap)]


def average_session_length(events: Iterable[Event], gap: float = SESSION_GAP) -> float:
    lengths = session_lengths(events, gap)
    return sum(lengths) / len(lengths) if lengths else 0.0


def click_through_rate(events: Iterable[Event]) -> float:
    impressed: set[tuple[str, str]] = set()
    viewed: set[tuple[str, str]] = set()
    for e in events:
        if e.item_id is None:
            continue
        if e.event_type == "impression":
            impressed.add((e.user_id, e.item_id))
        elif e.event_type in CONSUMPTION_EVENTS:
            viewed.add((e.user_id, e.item_id))
    return len(impressed & viewed) / len(impressed) if impressed else 0.0


def engagement_rate(events: Iterable[Event]) -> float:
    views = engagements = 0
    for e in events:
        if e.event_type == "view":
            views += 1
        elif e.event_type in ENGAGEMENT_EVENTS:
            engagements += 1
    return engagements / views if views else 0.0


def skip_rate(events: Iterable[Event]) -> float:
    exposed: set[tuple[str, str]] = set()
    skipped: set[tuple[str, str]] = set()
    for e in events:
        if e.item_id is None:
            continue
        if e.event_type in ("impression", "view", "complete_view", "skip"):
            exposed.add((e.user_id, e.item_id))
        if e.event_type == "skip":
            skipped.add((e.user_id, e.item_id))
    return len(skipped) / len(exposed) if exposed else 0.0


def snapshot(events: Sequence[Event], now: float) -> dict[str, float | int | None]:
    """Every metric for the day ending at ``now``; retention compares with the days 1 and 7 before."""
    day_start = now - DAY
    today = in_window(events, day_start, now)
    return {
        "at": now,
        "dau": len({e.user_id for e in today}),
        "retention_d1": retention(events, day_start - DAY, 1),
        "retention_d7": retention(events, day_start - 7 * DAY, 7),
        "average_session_seconds": average_session_length(today),
        "sessions": len(session_lengths(today)),
        "ctr": click_through_rate(today),
        "engagement_rate": engagement_rate(today),
        "skip_rate": skip_rate(today),
        "events": len(today),
    }
