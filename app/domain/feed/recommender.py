"""The embedded recommender, wired to the app: bootstrapped from SQLite + LanceDB, fed every stored event,
asked for the For You feed, and run on the scheduler's periodic jobs.

SQLite is the source of truth. At start-up the recommender loads its latest valid state snapshot
(``recommender.snapshot``, written periodically and at shutdown) and replays only the event rows after the
sequence it covers; without a usable snapshot it replays the last ``REPLAY_DAYS`` of events. Either way the rows
are streamed in chunks with only the columns it needs, and the catalogue (ready videos, vectors from LanceDB),
follows and declared interests are read afresh. After that it is kept in step as things happen: committed
events through the event writer's listener, applied by a worker thread (never on the event loop), videos when
they become ready, change moderation state or go.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, or_, select

from app.adapters.model_store import SqlModelStore
from app.adapters.vector_store import VectorStore
from app.db.engine import Database
from app.db.models import Event as EventRow
from app.db.models import Follow, User, Video, is_published, utcnow
from app.domain.events.writer import StoredEvent
from app.domain.experiments.service import registry_for
from app.domain.feed.services import Pick, hidden_in
from recommender import Event, FeedContext, Item, Recommender, RecommenderConfig
from recommender.memory import collector_paused
from recommender.snapshot import SnapshotError, load_snapshot, save_snapshot

log = logging.getLogger(__name__)

REPLAY_DAYS = 60
REPLAY_CHUNK = 5_000
# A view's row is updated in place as its watch time grows (and forwarded once final), so views stored shortly
# before a snapshot are looked at again after it; the engine ignores the ones it already applied.
SNAPSHOT_VIEW_GRACE = timedelta(minutes=30)
# The worker applies what is queued together (up to this many events), ``APPLY_SEGMENT`` events per hold of the
# state lock: a feed that needs the lock waits for one segment at most, not for a whole group of batches.
MAX_APPLY_EVENTS = 2_000
APPLY_SEGMENT = 32
CATCH_UP_WAIT_S = 1.0  # a feed request waits at most this long for the event worker to apply what came before it
EVENT_COLUMNS = (EventRow.id, EventRow.event_id, EventRow.user_id, EventRow.event_type, EventRow.timestamp,
                 EventRow.video_id, EventRow.creator_id, EventRow.watch_duration, EventRow.additional_info)


def video_item(video: Video, vector) -> Item:  # noqa: ANN001 - numpy array or None
    text = " ".join(part for part in (video.caption, video.transcript) if part)
    return Item(
        item_id=video.id, creator_id=video.creator_id, vector=vector, text=text, hashtags=tuple(video.hashtags),
        topic=video.topic, duration=video.duration, uploaded_at=video.created_at.timestamp(),
        available=is_published(video), sound_id=(video.metadata_ or {}).get("audio_id"),
    )


def event_from_row(row) -> Event | None:  # noqa: ANN001 - an ORM row or a Core row with EVENT_COLUMNS
    if not row.user_id:
        return None
    return Event(event_id=row.event_id, user_id=row.user_id, event_type=row.event_type,
                 timestamp=_epoch(row.timestamp), item_id=row.video_id, creator_id=row.creator_id,
                 watch_duration=row.watch_duration, info=dict(row.additional_info or {}))


def _epoch(when: datetime) -> float:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() if isinstance(when, datetime) else when


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
                 config: RecommenderConfig | None = None, snapshot_path: Path | None = None,
                 snapshot_every_s: float = 600.0) -> None:
        self.db = db
        # This process's own state: written by the event worker every ``snapshot_every_s`` and at close (not a
        # scheduled job: each process holding a recommender has its own state, whatever the job leases say).
        self.snapshot_path = snapshot_path
        self.snapshot_every_s = snapshot_every_s
        # Committed events wait here for the worker thread; ``applied_through`` is the highest event row id it
        # has taken in (rows arrive in commit order), which a snapshot records as the sequence it covers.
        self._inbox: queue.SimpleQueue[list[StoredEvent] | None] = queue.SimpleQueue()
        self._pending = 0
        self._pending_of: Counter[str] = Counter()  # batches waiting per user, for ``caught_up(user_id)``
        self._idle = threading.Condition()
        # Feed requests waiting on the event loop for a user's batches (``wait_caught_up``), woken by the worker.
        self._waiters: dict[str, list[asyncio.Future]] = {}
        self._worker: threading.Thread | None = None
        self.applied_through = 0
        # The vector folder's fingerprint when the catalogue's vectors were last read from it in full (a snapshot
        # records it: a restart that finds the folder unchanged takes the vectors from the snapshot).
        self.vectors_fingerprint: str | None = None
        self.vectors_read = False  # whether the last bootstrap read the vectors from LanceDB
        self.last_bootstrap: dict = {}
        self.vectors = vectors
        self.database_url = database_url
        self.config = config
        self.model_store: SqlModelStore | None = None
        # With several replicas: tells the others that a video's catalogue entry changed (app.domain.feed.replication).
        self.announce: Callable[[str], None] | None = None
        self.announce_forget: Callable[[str], None] | None = None  # the same for a deleted account
        # With several replicas: where a job's outputs go after it ran here (app.domain.feed.snapshots).
        self.after_job: Callable[[str, dict], Awaitable[object]] | None = None
        # Built at bootstrap, after migrations: the recommender loads its ranker versions when created.
        self.engine: Recommender | None = None

    # ---- start-up ---------------------------------------------------------------------------------
    async def bootstrap(self) -> dict:
        started = time.perf_counter()
        self.model_store = SqlModelStore(self.database_url)
        config = self.config or RecommenderConfig()
        engine, meta, fallback = None, {}, None
        if self.snapshot_path is not None and self.snapshot_path.exists():
            try:
                # The restored state lives as long as the process (the app's start-up freezes everything at the
                # end): frozen out of the collector's reach before it resumes, or the rest of the start-up walks
                # its millions of objects (json decoding of the catalogue's rows ran 3x slower for that).
                with collector_paused():
                    engine, meta = await asyncio.to_thread(load_snapshot, self.snapshot_path, config,
                                                           model_store=self.model_store)
                    gc.freeze()
            except SnapshotError as exc:
                fallback = str(exc)
                log.warning("recommender snapshot unusable; replaying history", extra={"reason": fallback})
        if engine is None:
            engine = await asyncio.to_thread(Recommender, config=config, model_store=self.model_store)
        self.engine = engine
        async with self.db.read() as session:
            videos = (await session.execute(select(Video).where(Video.state == "ready"))).scalars().all()
            follows = (await session.execute(select(Follow.follower_id, Follow.creator_id))).all()
            declared = [(uid, prefs.get("categories")) for uid, prefs in
                        (await session.execute(select(User.id, User.preferences))).all()
                        if prefs and prefs.get("categories")]
        vectors = await self._catalogue_vectors(meta, {video.id for video in videos})
        items = [video_item(video, vectors.get(video.id)) for video in videos]
        followed: dict[str, set[str]] = {}
        for follower, creator in follows:
            followed.setdefault(follower, set()).add(creator)
        wanted = {item.item_id for item in items}

        def _catalogue() -> None:
            for gone in set(self.engine.item_ids()) - wanted:  # deleted while we were down
                self.engine.remove_item(gone)
            self.engine.upsert_items(items)
            for user_id, creators in followed.items():
                self.engine.set_follows(user_id, creators)

        await asyncio.to_thread(_catalogue)
        applied = await self._replay(meta)
        if not meta:
            # Declared interests seed decaying scores: applied once when the state is new, not on every restart.
            await asyncio.to_thread(lambda: [self.engine.set_declared_interests(u, t) for u, t in declared])
        self._start_worker()
        summary = {"items": len(items), "with_vectors": sum(1 for i in items if i.vector is not None),
                   "events": applied, "from_snapshot": bool(meta), "snapshot_fallback": fallback,
                   "vectors_from": "lancedb" if self.vectors_read else "snapshot",
                   "sequence": self.applied_through, "seconds": round(time.perf_counter() - started, 2)}
        log.info("recommender bootstrapped", extra=summary)
        self.last_bootstrap = summary
        return summary

    async def _catalogue_vectors(self, meta: dict, ready: set[str]) -> dict:
        """Every ready video's vector: read from LanceDB, unless the vector folder is unchanged since the last
        full read (the snapshot's ``vectors`` fingerprint) and the snapshot's catalogue holds every ready video,
        in which case its vectors are LanceDB's (nothing was written since) and LanceDB is not even opened."""
        fingerprint = await asyncio.to_thread(self.vectors.fingerprint)  # before the read: a write during it shows
        if fingerprint is not None and meta.get("vectors") == fingerprint:
            catalog = self.engine._state.catalog
            if ready <= catalog.row_of.keys():
                self.vectors_fingerprint, self.vectors_read = fingerprint, False
                return {item.item_id: item.vector for item in catalog.items[: len(catalog)]}
        vectors = {row["id"]: row["vector"] for row in await asyncio.to_thread(self.vectors.all_videos)}
        self.vectors_fingerprint, self.vectors_read = fingerprint, True
        return vectors

    async def _replay(self, meta: dict) -> int:
        """Stream event rows (only the needed columns) into the engine in time order, chunk by chunk."""
        applied = 0
        async with self.db.read() as session:
            if meta:
                after = int(meta.get("sequence", 0))
                grace = datetime.fromtimestamp(float(meta.get("written_at", 0)), UTC) - SNAPSHOT_VIEW_GRACE
                # A time range the timestamp index can serve (the OR alone scanned the whole index).
                newest_start = (await session.execute(
                    select(func.min(EventRow.timestamp)).where(EventRow.id > after))).scalar_one_or_none()
                start = grace if newest_start is None else min(grace, datetime.fromtimestamp(_epoch(newest_start), UTC))
                where = (EventRow.timestamp >= start) & or_(
                    EventRow.id > after, (EventRow.event_type == "view") & (EventRow.timestamp >= grace))
            else:
                after = 0
                where = EventRow.timestamp >= utcnow() - timedelta(days=REPLAY_DAYS)
            last_id, history_end = (await session.execute(
                select(func.max(EventRow.id), func.max(EventRow.timestamp)))).one()
            end = _epoch(history_end) if history_end is not None else None
            features_from = None
            if not meta:  # the whole window: training features only for the examples the buffer will keep
                newest_kept = (await session.execute(
                    select(EventRow.timestamp).where(where & (EventRow.event_type == "impression"))
                    .order_by(EventRow.timestamp.desc()).offset(self.engine.config.max_training_examples - 1)
                    .limit(1))).scalar_one_or_none()
                features_from = _epoch(newest_kept) if newest_kept is not None else None
            result = await session.stream(select(*EVENT_COLUMNS).where(where).order_by(EventRow.timestamp)
                                          .execution_options(yield_per=REPLAY_CHUNK))
            async for rows in result.partitions(REPLAY_CHUNK):
                events = [event for event in map(event_from_row, rows) if event is not None]
                applied += await asyncio.to_thread(self.engine.record_events, events, end, features_from)
        self.applied_through = max(after, last_id or 0)
        return applied

    # ---- snapshots ----------------------------------------------------------------------------------
    def write_snapshot(self) -> dict:
        """Save the state with the event sequence it covers (read under the state lock with the state itself)."""
        if self.engine is None or self.snapshot_path is None:
            return {"written": False}
        info = save_snapshot(self.engine, self.snapshot_path,
                             lambda: {"sequence": self.applied_through, "written_at": time.time(),
                                      "vectors": self.vectors_fingerprint})
        summary = {"written": True, "bytes": info.bytes, "seconds": info.seconds, **info.meta}
        log.info("recommender snapshot written", extra=summary)
        return summary

    # ---- keeping in step ---------------------------------------------------------------------------
    def on_events(self, stored: Sequence[StoredEvent]) -> None:
        """Event-writer listener (on the event loop): hand committed events to the worker thread."""
        if self.engine is None or not stored:
            return
        batch = list(stored)
        with self._idle:
            self._pending += 1
            self._pending_of.update(_users_in(batch))
        self._inbox.put(batch)
        if self._worker is None:  # not started (a command without the worker): apply now
            self._drain_inbox()

    def _start_worker(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="recommender-events", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        next_snapshot = time.monotonic() + self.snapshot_every_s
        while True:
            try:
                batch = self._inbox.get(timeout=max(0.05, next_snapshot - time.monotonic()))
            except queue.Empty:
                batch = []
            batches, stop = self._take_queued([batch] if batch else [], stop=batch is None)
            if batches:
                self._apply(batches)
            if stop:
                return
            if time.monotonic() >= next_snapshot:
                next_snapshot = time.monotonic() + self.snapshot_every_s
                try:
                    self.write_snapshot()
                except Exception:  # noqa: BLE001 - a failed snapshot only means a longer replay next start
                    log.exception("could not write the recommender snapshot")

    def _take_queued(self, batches: list[list[StoredEvent]], stop: bool = False
                     ) -> tuple[list[list[StoredEvent]], bool]:
        """``batches`` plus whatever else is queued now (up to ``MAX_APPLY_EVENTS`` events): applied together, in
        order; True with them once the close marker was met (nothing after it is taken)."""
        size = sum(len(batch) for batch in batches)
        while not stop and size < MAX_APPLY_EVENTS:
            try:
                batch = self._inbox.get_nowait()
            except queue.Empty:
                break
            if batch is None:
                stop = True
            else:
                batches.append(batch)
                size += len(batch)
        return batches, stop

    def _drain_inbox(self) -> None:
        while True:
            batches, _ = self._take_queued([])
            if not batches:
                return
            self._apply(batches)

    def _apply(self, batches: list[list[StoredEvent]]) -> None:
        """Apply committed batches in commit order, ``APPLY_SEGMENT`` events per hold of the state lock, and let a
        viewer's feed go as soon as the last of its viewer's events is in, not once the whole group is: a group
        commit mixes many viewers' beacons and impressions, and a feed waits only for its own viewer's."""
        unreleased: Counter[str] = Counter()  # batches per user still counted in ``_pending_of``
        for batch in batches:
            unreleased.update(_users_in(batch))
        try:
            events = [_engine_event(item) for batch in batches for item in batch
                      if should_forward(item) and item.event.user_id]
            last = {event.user_id: i for i, event in enumerate(events)}
            self._release(unreleased, [user for user in unreleased if user not in last])  # nothing to apply
            # The sequence moves (under the lock, which snapshots read it under) only once all of them are in: a
            # snapshot taken meanwhile holds some of them with the sequence before them, and the replay after
            # a restart applies those rows again, which the engine ignores (an event id is applied once).
            for start in range(0, len(events), APPLY_SEGMENT):
                segment = events[start : start + APPLY_SEGMENT]
                self._record(segment)
                end = start + len(segment)
                self._release(unreleased, [user for user in {event.user_id for event in segment} if last[user] < end])
            ids = [item.row_id for batch in batches for item in batch if item.row_id is not None]
            if ids:
                with self.engine._state.lock:
                    self.applied_through = max(self.applied_through, *ids)
        except Exception:  # noqa: BLE001 - one bad event must not stop the worker
            log.exception("recommender failed to apply %d batches", len(batches))
        finally:
            self._release(unreleased, list(unreleased))
            with self._idle:
                self._pending -= len(batches)
                self._idle.notify_all()

    def _record(self, events: list[Event]) -> None:
        try:
            self.engine.record_live_events(events)
        except Exception:  # noqa: BLE001 - one bad event must not stop the others
            log.exception("recommender failed to apply %d events; applying them one by one", len(events))
            for event in events:  # those applied already are duplicates now: ignored
                try:
                    self.engine.record_event(event)
                except Exception:  # noqa: BLE001
                    log.exception("recommender failed to apply event %s", event.event_id)

    def _release(self, unreleased: Counter[str], users: list[str]) -> None:
        """Users whose events in the batches being applied are all in: their feeds may go."""
        if not users:
            return
        with self._idle:
            for user_id in users:
                count = unreleased.pop(user_id, 0)
                self._pending_of[user_id] -= count
                if self._pending_of[user_id] <= 0:
                    del self._pending_of[user_id]
                    for waiter in self._waiters.pop(user_id, ()):
                        with contextlib.suppress(RuntimeError):  # its loop closed meanwhile: nobody waits
                            waiter.get_loop().call_soon_threadsafe(_wake, waiter)
            self._idle.notify_all()

    def caught_up(self, user_id: str | None = None, timeout: float = CATCH_UP_WAIT_S) -> bool:
        """Wait (in a worker thread) until the events committed so far are applied: a feed reflects the last swipe.

        With ``user_id``, only that user's events are waited for: a feed request does not queue behind every
        other viewer's beacons (under load the inbox is rarely empty), only behind its own viewer's."""
        with self._idle:
            if user_id is None:
                return self._idle.wait_for(lambda: self._pending == 0, timeout)
            return self._idle.wait_for(lambda: user_id not in self._pending_of, timeout)

    async def wait_caught_up(self, user_id: str, timeout: float = CATCH_UP_WAIT_S) -> bool:
        """``caught_up(user_id)`` awaited on the event loop: the wait holds no thread. Waiting in a worker thread
        kept that thread from serving feeds meanwhile; with 50 swiping viewers (a beacon, then at once the next
        page) most of the recommend pool's threads sat in that wait while the next requests queued for one."""
        with self._idle:
            if user_id not in self._pending_of:
                return True
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(user_id, []).append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._idle:
                waiting = self._waiters.get(user_id)
                if waiting is not None and waiter in waiting:
                    waiting.remove(waiter)
                    if not waiting:
                        del self._waiters[user_id]

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

    def forget_user(self, user_id: str, announce: bool = True) -> None:
        """An account was deleted: its profile leaves this recommender (and, with replicas, every other one)."""
        if announce and self.announce_forget is not None:
            self.announce_forget(user_id)
        if self.engine is not None:
            self.engine.forget_user(user_id)

    def remove_video(self, video_id: str) -> None:
        if self.announce is not None:
            self.announce(video_id)  # the others re-read it and find it gone
        if self.engine is not None:
            self.engine.remove_item(video_id)

    # ---- serving ----------------------------------------------------------------------------------
    async def recommend(self, user_id: str, k: int, exclude: frozenset[str], session_key: str,
                        overrides: dict | None = None, stored: bool = True) -> list[Pick]:
        """``stored=False``: a pending visitor (app.server.web_session), who has no rows to read yet."""
        hidden_videos, hidden_creators, preferences = set(), set(), None
        if stored:
            def _filters(connection) -> tuple:  # noqa: ANN001 - one read: the viewer's hidden/blocked and muted words
                return (*hidden_in(connection, user_id),
                        connection.execute(select(User.preferences).where(User.id == user_id)).first())

            hidden_videos, hidden_creators, preferences = await self.db.read_core(_filters)
        # A pending visitor (no row yet) has no filters, and gets no state for them.
        muted = list((preferences[0] or {}).get("muted_words", [])) if preferences is not None else None
        # Promoted defaults, then the user's A/B variant (app.domain.experiments), then the caller's own.

        assignment = await registry_for(self.db).assignment(user_id)
        overrides = {**assignment.overrides, **(overrides or {})} or None
        context = FeedContext(session_id=session_key, exclude=frozenset(exclude | hidden_videos),
                              overrides=overrides)

        def _recommend() -> list:
            # Everything that takes the engine's state lock runs here, in the worker thread: the filters too,
            # which on the event loop stalled every request for as long as another feed held the lock.
            if muted is not None:
                self.engine.set_user_filters(user_id, blocked_creators=hidden_creators, muted_words=muted)
            return self.engine.recommend(user_id, k, context)

        await self.wait_caught_up(user_id)  # a feed reflects the viewer's last swipe (see caught_up)
        results = await asyncio.to_thread(_recommend)
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
        """Stop the worker after it has applied everything queued, write a final snapshot, release the store."""
        if self._worker is not None:
            self._inbox.put(None)
            self._worker.join(timeout=30)
            self._worker = None
        self._drain_inbox()
        if self.engine is not None and self.snapshot_path is not None:
            try:
                self.write_snapshot()
            except OSError:
                log.exception("could not write the recommender snapshot at shutdown")
        if self.model_store is not None:
            self.model_store.dispose()


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():  # not timed out meanwhile
        waiter.set_result(None)


def _users_in(batch: list[StoredEvent]) -> set[str]:
    return {item.event.user_id for item in batch if item.event.user_id}


def _engine_event(stored: StoredEvent) -> Event:
    event = stored.event
    return Event(event_id=event.event_id, user_id=event.user_id, event_type=event.event_type,
                 timestamp=_epoch(event.timestamp), item_id=event.video_id, creator_id=event.creator_id,
                 watch_duration=event.watch_duration, info=dict(event.additional_info))
