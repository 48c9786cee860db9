"""Public value types: items, events, the feed request context and the recommendations returned."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

EVENT_TYPES: tuple[str, ...] = (
    "like",
    "unlike",
    "comment",
    "share",
    "follow",
    "unfollow",
    "save",
    "unsave",
    "view",
    "complete_view",
    "replay",
    "skip",
    "hide",
    "report",
    "content_upload",
    "impression",
)


def normalize_tag(tag: str) -> str:
    """Hashtags are compared without the leading '#' and case-insensitively."""
    return tag.strip().lstrip("#").lower()


@dataclass(frozen=True, slots=True, eq=False)
class Item:
    """A video as the recommender sees it. ``vector`` may be None (served through non-vector sources)."""

    item_id: str
    creator_id: str
    vector: np.ndarray | None = None
    text: str = ""
    hashtags: tuple[str, ...] = ()
    topic: str | None = None
    duration: float = 0.0
    uploaded_at: float = 0.0
    available: bool = True
    sound_id: str | None = None  # the audio track it uses (videos sharing a sound share this id)

    def __post_init__(self) -> None:
        tags = tuple(t for t in (normalize_tag(h) for h in self.hashtags) if t)
        object.__setattr__(self, "hashtags", tags)
        if self.vector is not None:
            object.__setattr__(self, "vector", np.asarray(self.vector, dtype=np.float32).ravel())

    @property
    def category(self) -> str | None:
        """The topic used for topic caps and topic scores: the explicit topic, else the first hashtag."""
        return self.topic or (self.hashtags[0] if self.hashtags else None)


@dataclass(frozen=True, slots=True)
class Event:
    """One logged interaction. Timestamps are unix seconds."""

    event_id: str
    user_id: str
    event_type: str
    timestamp: float
    item_id: str | None = None
    creator_id: str | None = None
    watch_duration: float | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {self.event_type!r}; expected one of {EVENT_TYPES}")


@dataclass(frozen=True, slots=True)
class FeedContext:
    """Per-request context. ``overrides`` maps config field names to values (A/B experiments)."""

    now: float | None = None
    device: str | None = None
    session_id: str | None = None
    exclude: frozenset[str] = frozenset()
    overrides: dict | None = None


@dataclass(frozen=True, slots=True)
class Recommendation:
    item_id: str
    score: float
    source: str
    reasons: list[str]
    probabilities: dict[str, float]
    propensity: float | None
    position: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
