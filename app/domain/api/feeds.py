"""Recommendations for API clients, paged with opaque cursors (seed 004: ``{items, has_more, next_cursor}``).

The first call starts an ``ApiFeed``: an append-only list of what the recommender picked for this client run.
A cursor is the signed pair (feed id, offset), so page ``n + 1`` starts exactly where page ``n`` ended: nothing
repeats (the recommender is asked for more with everything already listed excluded) and nothing is skipped
(offsets index a list that only grows). Cursors work across processes and restarts, since the list is stored.
Each served item is logged as an impression once (its event id is the feed and position).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from app.db.api_models import ApiFeed
from app.db.engine import Database
from app.db.models import Video, published_clause, utcnow
from app.domain.events.writer import EventIn, EventWriter
from app.domain.feed.services import Pick
from recommender.reasons import fill as fill_reason

Recommend = Callable[[str, int, frozenset[str], str], Awaitable[list[Pick]]]

FEED_TTL = timedelta(days=7)
MAX_FEED_ITEMS = 1000  # one client run; beyond it the client starts again without a cursor
MAX_REFILLS = 3


def recommend_via(recommender) -> Recommend:  # noqa: ANN001 - app.domain.feed.recommender.RecommenderService
    """The For You recommender as the API's source of picks (none while it is still starting up)."""

    async def recommend(user_id: str, k: int, exclude: frozenset[str], session_key: str) -> list[Pick]:
        if recommender.engine is None:
            return []
        return await recommender.recommend(user_id, k, exclude, session_key)

    return recommend


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class PageItem:
    video_id: str
    score: float
    reason: str
    reasons: list[str]
    source: str


@dataclass(frozen=True)
class Page:
    items: list[PageItem]
    has_more: bool
    next_cursor: str | None


class CursorCodec:
    """``base64url(json).signature``: opaque to clients, tamper-evident, bound to one user and one listing."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("api-cursor:" + secret).encode()).digest()

    def _sign(self, body: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, body, hashlib.sha256).digest()[:16]).decode().rstrip("=")

    def encode(self, user_id: str, kind: str, *values: str | int | float) -> str:
        body = json.dumps([user_id, kind, *values], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + self._sign(body)

    def decode(self, user_id: str, kind: str, cursor: str) -> list:
        try:
            data, _, signature = cursor.partition(".")
            body = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
            if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
                raise ValueError
            payload = json.loads(body)
        except (ValueError, TypeError, UnicodeError):
            raise InvalidCursor("The cursor is not one this server issued.") from None
        if not isinstance(payload, list) or payload[:2] != [user_id, kind]:
            raise InvalidCursor("The cursor is not one this server issued.")
        return payload[2:]


class ApiFeedService:
    def __init__(self, db: Database, events: EventWriter, recommend: Recommend, cursors: CursorCodec) -> None:
        self.db = db
        self.events = events
        self.recommend = recommend
        self.cursors = cursors

    async def page(self, user_id: str, limit: int, cursor: str | None) -> Page:
        if cursor:
            feed_id, offset = self.cursors.decode(user_id, "feed", cursor)
            async with self.db.read() as session:
                feed = await session.get(ApiFeed, feed_id)
            if feed is None or feed.user_id != user_id:
                raise InvalidCursor("This cursor has expired; start again without one.")
        else:
            offset = 0
            async with self.db.write() as session:
                await session.execute(delete(ApiFeed).where(ApiFeed.updated_at < utcnow() - FEED_TTL))
                feed = ApiFeed(user_id=user_id)
                session.add(feed)
        want = min(offset + limit + 1, MAX_FEED_ITEMS)  # one more than the page, to know whether there is more
        for _ in range(MAX_REFILLS):
            if len(feed.items) >= want or feed.exhausted:
                break
            feed = await self._refill(feed, want - len(feed.items))
        window = feed.items[offset:offset + limit]
        available = await self._available([item["video_id"] for item in window])
        items = [PageItem(item["video_id"], float(item["score"]), item["reason"], list(item["reasons"]),
                          item["source"]) for item in window if item["video_id"] in available]
        end = offset + len(window)
        has_more = len(feed.items) > end
        await self._log_impressions(user_id, feed.id, offset, window)
        return Page(items, has_more, self.cursors.encode(user_id, "feed", feed.id, end) if has_more else None)

    async def _refill(self, feed: ApiFeed, count: int) -> ApiFeed:
        listed = frozenset(item["video_id"] for item in feed.items)
        picks = await self.recommend(feed.user_id, count, listed, f"api:{feed.id}")
        async with self.db.write() as session:
            row = await session.get(ApiFeed, feed.id)
            if row is None:
                raise InvalidCursor("This cursor has expired; start again without one.")
            present = {item["video_id"] for item in row.items}  # another request may have refilled meanwhile
            new = []
            for pick in picks:
                if pick.video_id not in present:
                    present.add(pick.video_id)
                    new.append({"video_id": pick.video_id, "score": round(float(pick.score), 6),
                                "reason": fill_reason(pick.reasons[0], None) if pick.reasons else "",
                                "reasons": [fill_reason(r, None) for r in pick.reasons],
                                "source": pick.source})
            row.items = [*row.items, *new][:MAX_FEED_ITEMS]
            row.exhausted = not new or len(row.items) >= MAX_FEED_ITEMS
            row.updated_at = utcnow()
        return row

    async def _available(self, ids: list[str]) -> set[str]:
        """Videos still published (one deleted or taken down since it was listed is left out of its page)."""
        if not ids:
            return set()
        async with self.db.read() as session:
            return set((await session.execute(select(Video.id).where(Video.id.in_(ids), *published_clause())))
                       .scalars())

    async def _log_impressions(self, user_id: str, feed_id: str, offset: int, window: list[dict]) -> None:
        async with self.db.read() as session:
            creators = dict((await session.execute(select(Video.id, Video.creator_id).where(
                Video.id.in_([item["video_id"] for item in window])))).all())
        await self.events.submit([
            EventIn(event_id=f"imp-api-{feed_id}-{offset + i}", event_type="impression", user_id=user_id,
                    video_id=item["video_id"], creator_id=creators.get(item["video_id"]),
                    additional_info={"position": offset + i, "source": item["source"], "feed": "api",
                                     "request_id": feed_id})
            for i, item in enumerate(window) if item["video_id"] in creators
        ])
