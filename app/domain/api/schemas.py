"""Request and response bodies of the JSON API (msgspec structs: validated on the way in, documented in the
OpenAPI schema at ``/schema``)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

Limit = Annotated[int, Meta(ge=1, le=50, description="How many items (1-50).")]
Cursor = Annotated[str, Meta(max_length=1024, description="The opaque next_cursor of the previous page.")]


class RecommendationsRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Seed 004's request. ``user_id`` may be omitted; if given it must be the token's owner."""

    user_id: Annotated[str, Meta(max_length=64)] | None = None
    limit: Limit = 20
    cursor: Cursor | None = None


class RecommendationItem(msgspec.Struct):
    video_id: str
    score: float
    reason: str
    reasons: list[str]
    source: str


class RecommendationsPage(msgspec.Struct):
    items: list[RecommendationItem]
    has_more: bool
    next_cursor: str | None


class Creator(msgspec.Struct):
    id: str
    username: str | None
    display_name: str


class SoundRef(msgspec.Struct):
    id: str
    title: str
    usage_count: int


class VideoOut(msgspec.Struct):
    id: str
    creator: Creator
    caption: str
    hashtags: list[str]
    topic: str | None
    duration: float
    width: int
    height: int
    language: str | None
    created_at: str
    like_count: int
    comment_count: int
    sound: SoundRef | None
    video_url: str
    poster_url: str
    captions_url: str | None


EventInfoValue = str | int | float | bool


class EventItem(msgspec.Struct):
    """One event, as the feed page's beacon sends it (the same rules apply; see ``app.domain.events``)."""

    event_id: Annotated[str, Meta(description="8-64 of [A-Za-z0-9_-]; resending an id is a no-op.")]
    type: Annotated[str, Meta(description="view, complete_view, replay, skip, share or impression.")]
    video_id: str
    watch_duration: float | None = None
    info: dict[str, EventInfoValue] | None = None


class EventsRequest(msgspec.Struct):
    events: list[EventItem]


class EventsAccepted(msgspec.Struct):
    accepted: int
    duplicates: int


class Problem(msgspec.Struct):
    error: str
    problems: list[str] = []


class LikeOut(msgspec.Struct):
    video_id: str
    liked_at: str


class LikesPage(msgspec.Struct):
    items: list[LikeOut]
    has_more: bool
    next_cursor: str | None


class FollowOut(msgspec.Struct):
    creator: Creator
    followed_at: str


class FollowsPage(msgspec.Struct):
    items: list[FollowOut]
    has_more: bool
    next_cursor: str | None


class SearchOut(msgspec.Struct):
    query: str
    creators: list[Creator]
    videos: list[VideoOut]


class Me(msgspec.Struct):
    id: str
    username: str | None
    display_name: str
    scopes: list[str]
