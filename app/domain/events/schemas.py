"""Validation of events sent by browsers (the beacon endpoint)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.db.models import EVENT_TYPES

# What a browser may report by itself. Likes, follows, hides, reports, saves and comments change state
# and go through their own endpoints, which log their events there.
BEACON_EVENT_TYPES = frozenset({"view", "complete_view", "replay", "skip", "share", "impression"})
EVENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_EVENTS_PER_BATCH = 100
MAX_WATCH_SECONDS = 24 * 3600
ALLOWED_INFO_KEYS = frozenset({"position", "source", "platform", "device", "feed", "watch_ratio", "client_ts", "final",
                               "video_duration", "replays", "variant", "request_id"})


class EventValidationError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class BeaconEvent:
    event_id: str
    event_type: str
    video_id: str
    watch_duration: float | None
    info: dict[str, Any]


def _short_scalar(value: Any) -> bool:
    """A string, number or boolean written in at most 64 characters (``len(str(value)) <= 64``, without writing it:
    a float's repr was most of a beacon's validation time)."""
    if isinstance(value, str):
        return len(value) <= 64
    if isinstance(value, float):
        return True  # a float's repr is at most 24 characters ('-1.7976931348623157e+308')
    if isinstance(value, int):  # bool too
        return -10**63 < value < 10**64
    return False


def parse_beacon_batch(payload: Any) -> tuple[str | None, list[BeaconEvent]]:
    """Return (csrf token, events) or raise with every problem found, so nothing is half-accepted."""
    if not isinstance(payload, dict):
        raise EventValidationError(['The body must be a JSON object: {"csrf": "...", "events": [...]}.'])
    raw_events = payload.get("events")
    if not isinstance(raw_events, list) or not raw_events:
        raise EventValidationError(['"events" must be a non-empty list.'])
    if len(raw_events) > MAX_EVENTS_PER_BATCH:
        raise EventValidationError([f"At most {MAX_EVENTS_PER_BATCH} events per batch."])
    problems: list[str] = []
    events: list[BeaconEvent] = []
    for index, raw in enumerate(raw_events):
        where = f"events[{index}]"
        if not isinstance(raw, dict):
            problems.append(f"{where} must be an object.")
            continue
        event_id, event_type, video_id = raw.get("event_id"), raw.get("type"), raw.get("video_id")
        if not isinstance(event_id, str) or not EVENT_ID_RE.match(event_id):
            problems.append(f"{where}.event_id must be 8-64 characters of letters, digits, '-' or '_'.")
        if event_type not in EVENT_TYPES:
            problems.append(f"{where}.type {event_type!r} is not a known event type.")
        elif event_type not in BEACON_EVENT_TYPES:
            problems.append(f"{where}.type {event_type!r} cannot be sent as a beacon; use its own endpoint.")
        if not isinstance(video_id, str) or not 1 <= len(video_id) <= 32:
            problems.append(f"{where}.video_id is required.")
        watch = raw.get("watch_duration")
        if watch is not None and (
            isinstance(watch, bool) or not isinstance(watch, int | float) or not 0 <= watch <= MAX_WATCH_SECONDS
        ):
            problems.append(f"{where}.watch_duration must be a number of seconds between 0 and 86400.")
        if event_type == "view" and watch is None:
            problems.append(f"{where}: a view needs watch_duration.")
        info = raw.get("info") or {}
        if not isinstance(info, dict) or set(info) - ALLOWED_INFO_KEYS:
            problems.append(f"{where}.info may only hold: {', '.join(sorted(ALLOWED_INFO_KEYS))}.")
            info = {}
        info = {k: v for k, v in info.items() if _short_scalar(v)}
        if not problems:
            events.append(BeaconEvent(event_id, event_type, video_id,
                                      float(watch) if watch is not None else None, info))
    if problems:
        raise EventValidationError(problems)
    csrf = payload.get("csrf")
    return (csrf if isinstance(csrf, str) else None), events
