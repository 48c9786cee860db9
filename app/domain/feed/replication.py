"""Replicas kept in step: every process's stored events and catalogue changes reach every other recommender.

Each web replica (and the scheduler) holds its own in-memory recommender. What this process stores it applies
at once, as on a single box, and also publishes to the replication stream (``app.adapters.event_stream``);
what other processes publish arrives through this replica's durable consumer and is applied the same way.
The recommender applies an event id once, so hearing its own events back, or a replay after a restart that
overlaps the database bootstrap, changes nothing. Periodic-job outputs travel the same stream as a
notification; their bytes live in the database (``app.domain.feed.snapshots``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from app.adapters.event_stream import EventStream, StreamMessage
from app.db.models import utcnow
from app.domain.events.writer import StoredEvent
from app.domain.feed.recommender import RecommenderService, should_forward
from recommender import Event

log = logging.getLogger(__name__)

# The consumer of a replica seen for the first time starts this long before its bootstrap read began, so that
# an event committed while the read ran is not missed (duplicates are harmless).
BOOTSTRAP_OVERLAP = timedelta(seconds=30)

SnapshotLoader = Callable[[str, int], Awaitable[object]]


def event_body(stored: StoredEvent) -> dict:
    event = stored.event
    return {"event_id": event.event_id, "user_id": event.user_id, "event_type": event.event_type,
            "timestamp": event.timestamp.timestamp(), "item_id": event.video_id, "creator_id": event.creator_id,
            "watch_duration": event.watch_duration, "info": dict(event.additional_info)}


def event_of(body: dict) -> Event:
    return Event(event_id=body["event_id"], user_id=body["user_id"], event_type=body["event_type"],
                 timestamp=float(body["timestamp"]), item_id=body.get("item_id"), creator_id=body.get("creator_id"),
                 watch_duration=body.get("watch_duration"), info=dict(body.get("info") or {}))


class ReplicaSync:
    def __init__(self, stream: EventStream, recommender: RecommenderService) -> None:
        self.stream = stream
        self.recommender = recommender
        self.load_snapshot: SnapshotLoader | None = None  # set by the snapshot store when snapshots are used
        self.snapshot_versions: dict[str, int] = {}  # job -> newest version this process holds (the store's)
        self._bootstrap_started: datetime | None = None

    # ---- outgoing -----------------------------------------------------------------------------------
    def on_events(self, stored: Sequence[StoredEvent]) -> None:
        """Event-writer listener: publish what the recommender hears about (the same rule as locally)."""
        for item in stored:
            if should_forward(item) and item.event.user_id:
                # Event ids are unique per user only: the stream's dedup id is the pair.
                message_id = f"event:{item.event.user_id}:{item.event.event_id}"
                self.stream.publish("event", event_body(item), message_id=message_id)

    def announce_video(self, video_id: str) -> None:
        """A video became ready, changed moderation state or went: other replicas re-read it."""
        self.stream.publish("video", {"video_id": video_id}, message_id=f"video:{video_id}:{utcnow().timestamp()}")

    def announce_forget(self, user_id: str) -> None:
        """An account was deleted: every replica forgets its profile (the database forgot it already)."""
        self.stream.publish("user", {"user_id": user_id, "forget": True}, message_id=f"forget:{user_id}")

    def announce_snapshot(self, job: str, version: int) -> None:
        self.stream.publish("snapshot", {"job": job, "version": version}, message_id=f"snapshot:{job}:{version}")

    # ---- incoming -----------------------------------------------------------------------------------
    async def handle(self, message: StreamMessage) -> None:
        if message.kind == "event":
            event = event_of(message.body)
            if event.event_type == "content_upload" and event.item_id:
                # The worker that published the video has no say in this replica's catalogue: read it here.
                await self.recommender.refresh_video(event.item_id, announce=False)
            if self.recommender.engine is not None:
                self.recommender.engine.record_event(event)
        elif message.kind == "video":
            await self.recommender.refresh_video(message.body["video_id"], announce=False)
        elif message.kind == "user":
            if message.body.get("forget"):
                self.recommender.forget_user(message.body["user_id"], announce=False)
        elif message.kind == "snapshot":
            if self.load_snapshot is not None:
                await self.load_snapshot(message.body["job"], int(message.body["version"]))
        else:
            log.warning("unknown stream message kind", extra={"kind": message.kind})

    # ---- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect before the recommender bootstraps, so the bootstrap's start time is known."""
        await self.stream.start()
        self._bootstrap_started = utcnow()

    async def follow(self) -> None:
        """After the bootstrap: bind this replica's consumer (it catches up, then stays live)."""
        started = self._bootstrap_started or utcnow()
        await self.stream.consume(self.handle, first_start=started - BOOTSTRAP_OVERLAP)
        log.info("replica following the event stream", extra=self.stream.status())

    async def stop(self) -> None:
        await self.stream.stop()

    def status(self) -> dict:
        """For the readiness probe: how far this replica has followed the stream, which outputs it holds."""
        return {**self.stream.status(), "snapshots": dict(self.snapshot_versions)}
