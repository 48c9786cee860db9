"""The embedded recommender, wired to the app: bootstrapped from SQLite + LanceDB, fed every stored event,
asked for the For You feed, and run on the scheduler's periodic jobs.

SQLite is the source of truth: at start-up the recommender's in-memory state is rebuilt by replaying the ready
videos (their vectors come from LanceDB) and recent events. After that it is kept in step as things happen:
events through the event writer's listener, videos when they become ready, change moderation state or go.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from sqlalchemy import select

from app.adapters.model_store import SqlModelStore
from app.adapters.vector_store import VectorStore
from app.db.engine import Database
from app.db.models import Event as EventRow
from app.db.models import Follow, User, Video, is_published, utcnow
from app.domain.events.writer import StoredEvent
from app.domain.experiments.service import registry_for
from app.domain.feed.services import Pick, hidden_for
from recommender import Event, FeedContext, Item, Recommender, RecommenderConfig

log = logging.getLogger(__name__)

REPLAY_DAYS = 60


def video_item(video: Video, vector) -> Item:  # noqa: ANN001 - numpy array or None
    text = " ".join(part for part in (video.caption, video.transcript) if part)
    return Item(
        item_id=video.id, creator_id=video.creator_id, vector=vector, text=text, hashtags=tuple(video.hashtags),
        topic=video.topic, duration=video.duration, uploaded_at=video.created_at.timestamp(),
        available=is_published(video),
    )


def event_from_row(row: EventRow) -> Event | None:
    if not row.user_id:
        return None
    return Event(event_id=row.event_id, user_id=row.user_id, event_type=row.event_type,
                 timestamp=row.timestamp.timestamp(), item_id=row.video_id, creator_id=row.creator_id,
                 watch_duration=row.watch_duration, info=dict(row.additional_info or {}))


def should_forward(stored: StoredEvent) -> bool:
    """Which stored events the recommender hears about.

    A view's watch time is sent again and again under one event id as it grows (periodic flushes), and the
    recommender applies an event id once, so a view is forwarded when the card is left (``final``) — or on
    its first arrival if the page never marks it final."""
    event = stored.event
    if event.event_type != "view":
        return stored.is_new
    return bool(event.additional_info.get("final"))


class RecommenderService:
    def __init__(self, db: Database, vectors: VectorStore, database_url: str,
                 config: RecommenderConfig | None = None) -> None:
        self.db = db
        self.vectors = vectors
        self.database_url = database_url
        self.config = config
        self.model_store: SqlModelStore | None = None
        # With several replicas: tells the others that a video's catalogue entry changed (app.domain.feed.replication).
        self.announce: Callable[[str], None] | None = None
        # With several replicas: where a job's outputs go after it ran here (app.domain.feed.snapshots).
        self.after_job: Callable[[str, dict], Awaitable[object]] | None = None
        # Built at bootstrap, after migrations: the recommender loads its ranker versions when created.
        self.engine: Recommender | None = None

    # ---- start-up ---------------------------------------------------------------------------------
    async def bootstrap(self) -> dict:
        started = time.perf_counter()
        self.model_store = SqlModelStore(self.database_url)
        self.engine = await asyncio.to_thread(Recommender, config=self.config, model_store=self.model_store)
        vectors = {row["id"]: row["vector"] for row in await asyncio.to_thread(self.vectors.all_videos)}
        since = utcnow() - timedelta(days=REPLAY_DAYS)
        async with self.db.read() as session:
            videos = (await session.execute(select(Video).where(Video.state == "ready"))).scalars().all()
            rows = (await session.execute(
                select(EventRow).where(EventRow.timestamp >= since).order_by(EventRow.timestamp)
            )).scalars().all()
            follows = (await session.execute(select(Follow.follower_id, Follow.creator_id))).all()
            declared = [(uid, prefs.get("categories")) for uid, prefs in
                        (await session.execute(select(User.id, User.preferences))).all()
                        if prefs and prefs.get("categories")]
        items = [video_item(video, vectors.get(video.id)) for video in videos]
        events = [event for event in map(event_from_row, rows) if event is not None]
        followed: dict[str, set[str]] = {}
        for follower, creator in follows:
            followed.setdefault(follower, set()).add(creator)

        def _load() -> int:
            self.engine.upsert_items(items)
            applied = self.engine.record_events(events)
            for user_id, creators in followed.items():
                self.engine.set_follows(user_id, creators)
            for user_id, topics in declared:
                self.engine.set_declared_interests(user_id, topics)
            return applied

        applied = await asyncio.to_thread(_load)
        summary = {"items": len(items), "with_vectors": sum(1 for i in items if i.vector is not None),
                   "events": applied, "seconds": round(time.perf_counter() - started, 2)}
        log.info("recommender bootstrapped", extra=summary)
        return summary

    # ---- keeping in step ---------------------------------------------------------------------------
    def on_events(self, stored: Sequence[StoredEvent]) -> None:
        """Event-writer listener: apply committed events now (the short-term taste updates immediately)."""
        if self.engine is None:
            return
        for item in stored:
            if not should_forward(item) or not item.event.user_id:
                continue
            event = item.event
            self.engine.record_event(Event(
                event_id=event.event_id, user_id=event.user_id, event_type=event.event_type,
                timestamp=event.timestamp.timestamp(), item_id=event.video_id, creator_id=event.creator_id,
                watch_duration=event.watch_duration, info=dict(event.additional_info),
            ))

    async def refresh_video(self, video_id: str, announce: bool = True) -> None:
        """Re-read one video (ready, moderated, edited) and its vector into the recommender (and, with
        replicas, have every other replica do the same; ``announce=False`` when the news came from one)."""
        if announce and self.announce is not None:
            self.announce(video_id)
        if self.engine is None:
            return
        async with self.db.read() as session:
            video = await session.get(Video, video_id)
        if video is None:
            self.engine.remove_item(video_id)
            return
        vector = await asyncio.to_thread(self.vectors.vector_of, video_id)
        self.engine.upsert_item(video_item(video, vector))

    def remove_video(self, video_id: str) -> None:
        if self.announce is not None:
            self.announce(video_id)  # the others re-read it and find it gone
        if self.engine is not None:
            self.engine.remove_item(video_id)

    # ---- serving ----------------------------------------------------------------------------------
    async def recommend(self, user_id: str, k: int, exclude: frozenset[str], session_key: str,
                        overrides: dict | None = None) -> list[Pick]:
        hidden_videos, hidden_creators = await hidden_for(self.db, user_id)
        async with self.db.read() as session:
            user = await session.get(User, user_id)
        muted = list((user.preferences or {}).get("muted_words", [])) if user else []
        self.engine.set_user_filters(user_id, blocked_creators=hidden_creators, muted_words=muted)
        # Promoted defaults, then the user's A/B variant (app.domain.experiments), then the caller's own.

        assignment = await registry_for(self.db).assignment(user_id)
        overrides = {**assignment.overrides, **(overrides or {})} or None
        context = FeedContext(session_id=session_key, exclude=frozenset(exclude | hidden_videos),
                              overrides=overrides)
        results = await asyncio.to_thread(self.engine.recommend, user_id, k, context)
        return [Pick(r.item_id, r.source, list(r.reasons), r.score, dict(r.probabilities), r.propensity)
                for r in results]

    async def run_job(self, name: str) -> dict:
        summary = await asyncio.to_thread(self.engine.run_job, name)
        if self.after_job is not None:
            version = await self.after_job(name, summary)
            if version is not None:
                summary = {**summary, "published_version": version}
        return summary

    def close(self) -> None:
        if self.model_store is not None:
            self.model_store.dispose()
