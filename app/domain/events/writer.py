"""A batched event writer: beacons queue their events, one task commits them in groups.

Group commit keeps a burst of beacons from turning into a burst of write transactions (SQLite has one
writer at a time): every request that arrives while a batch is being written joins the next batch, and
each caller is answered only after its batch is committed, so an acknowledged event is a stored event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.db.engine import Database
from app.db.models import Event, ViewingSession, utcnow

log = logging.getLogger(__name__)

SESSION_GAP = timedelta(minutes=30)  # the seed's sessionization rule


@dataclass
class EventIn:
    """An event as accepted from a client or a server action, before it is stored."""

    event_id: str
    event_type: str
    user_id: str | None
    video_id: str | None = None
    creator_id: str | None = None
    watch_duration: float | None = None
    timestamp: datetime = field(default_factory=utcnow)
    additional_info: dict = field(default_factory=dict)


@dataclass
class StoredEvent:
    event: EventIn
    is_new: bool  # False: a duplicate event id (a view's watch time may still have grown)
    session_id: int | None
    row_id: int | None = None  # the events row: its id is the event log's sequence (restart replays after it)


Listener = Callable[[Sequence[StoredEvent]], None]


def _insert_ignoring_duplicates(dialect: str):  # noqa: ANN202 - a dialect's INSERT construct
    """``INSERT ... ON CONFLICT DO NOTHING``: a duplicate stored meanwhile by another process is not an error."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(Event).on_conflict_do_nothing()


def event_key(item: EventIn) -> tuple[str | None, str]:
    """Event ids are the client's, so they are unique per user only: the dedup key is the pair."""
    return item.user_id, item.event_id


async def write_events(db: Database, events: Sequence[EventIn]) -> list[StoredEvent]:
    """Store events in one write transaction: dedupe on (user, event id), merge watch time with max, sessionize.

    The same id sent by another user is another event and never touches the first user's row.
    Core statements throughout (one SELECT of the ids already stored, one multi-row INSERT ... ON CONFLICT DO
    NOTHING RETURNING, one UPDATE per view whose watch time grew): no ORM objects per event."""
    if not events:
        return []
    # The same id may repeat inside one batch too (periodic flush + swipe-away): keep the largest watch time.
    merged: dict[tuple[str | None, str], EventIn] = {}
    for item in events:
        previous = merged.get(event_key(item))
        if previous is None or (item.watch_duration or 0) > (previous.watch_duration or 0):
            merged[event_key(item)] = item
    stored: dict[tuple[str | None, str], StoredEvent] = {}
    async with db.write() as session:
        existing = {
            (user_id, event_id): (row_id, watch, session_id, info)
            for user_id, event_id, row_id, watch, session_id, info in (await session.execute(
                select(Event.user_id, Event.event_id, Event.id, Event.watch_duration, Event.session_id,
                       Event.additional_info)
                .where(Event.event_id.in_(list({event_id for _, event_id in merged})))
            )).all()
        }
        fresh = [e for key, e in merged.items() if key not in existing]
        sessions = await _sessionize(session, fresh)
        for key, item in merged.items():
            if key not in existing:
                continue
            row_id, watch, session_id, info = existing[key]
            info = info or {}
            if item.watch_duration is not None and item.watch_duration > (watch or 0):
                # The grown view's own figures (watch_ratio, replays) go with it; "final" never reverts.
                grown = {**info, **item.additional_info, "final": bool(info.get("final")
                                                                      or item.additional_info.get("final"))}
                await session.execute(update(Event).where(Event.id == row_id)
                                      .values(watch_duration=item.watch_duration, additional_info=grown))
            elif item.additional_info.get("final") and not info.get("final"):
                await session.execute(update(Event).where(Event.id == row_id)
                                      .values(additional_info={**info, "final": True}))
            stored[key] = StoredEvent(item, is_new=False, session_id=session_id, row_id=row_id)
        if fresh:
            rows = [
                {"event_id": item.event_id, "event_type": item.event_type, "user_id": item.user_id,
                 "video_id": item.video_id, "creator_id": item.creator_id, "timestamp": item.timestamp,
                 "watch_duration": item.watch_duration,
                 "session_id": sessions.get(item.user_id) if item.user_id else None,
                 "additional_info": item.additional_info}
                for item in fresh
            ]
            statement = _insert_ignoring_duplicates(session.bind.dialect.name).returning(
                Event.id, Event.user_id, Event.event_id)
            ids = {(user_id, event_id): row_id
                   for row_id, user_id, event_id in (await session.execute(statement, rows)).all()}
            for item, row in zip(fresh, rows, strict=True):
                key = event_key(item)
                stored[key] = StoredEvent(item, is_new=key in ids, session_id=row["session_id"], row_id=ids.get(key))
    return [stored[key] for key in merged]


async def _sessionize(session, new_events: Sequence[EventIn]) -> dict[str, int]:  # noqa: ANN001
    """Attach each user's new events to their open viewing session, opening one after 30 idle minutes."""
    by_user: dict[str, list[EventIn]] = {}
    for item in new_events:
        if item.user_id:
            by_user.setdefault(item.user_id, []).append(item)
    result: dict[str, int] = {}
    for user_id, items in by_user.items():
        latest = (
            await session.execute(
                select(ViewingSession)
                .where(ViewingSession.user_id == user_id)
                .order_by(ViewingSession.last_event_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        first_time = min(item.timestamp for item in items)
        last_time = max(item.timestamp for item in items)
        if latest is None or first_time - latest.last_event_at > SESSION_GAP:
            latest = ViewingSession(user_id=user_id, started_at=first_time, last_event_at=first_time)
            session.add(latest)
            await session.flush()
        latest.last_event_at = max(latest.last_event_at, last_time)
        latest.event_count += len(items)
        latest.watch_seconds += sum(item.watch_duration or 0 for item in items if item.event_type == "view")
        result[user_id] = latest.id
    return result


class EventWriter:
    """Group-commits events written by many concurrent requests; notifies listeners after commit."""

    def __init__(self, db: Database, max_batch: int = 200, flush_interval_s: float = 0.03) -> None:
        self.db = db
        self.max_batch = max_batch
        self.flush_interval_s = flush_interval_s
        self.listeners: list[Listener] = []
        self._queue: asyncio.Queue[tuple[list[EventIn], asyncio.Future]] | None = None
        self._task: asyncio.Task | None = None

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="event-writer")

    async def stop(self) -> None:
        if self._task is None or self._queue is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, events: list[EventIn]) -> list[StoredEvent]:
        """Queue events and wait until they are committed (written directly when the writer is not running)."""
        if self._queue is None or self._task is None:
            stored = await write_events(self.db, events)
            self._notify(stored)
            return stored
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((events, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            deadline = asyncio.get_running_loop().time() + self.flush_interval_s
            while sum(len(events) for events, _ in batch) < self.max_batch:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            await self._flush(batch)

    async def _flush(self, batch: list[tuple[list[EventIn], asyncio.Future]]) -> None:
        assert self._queue is not None
        all_events = [event for events, _ in batch for event in events]
        try:
            stored = await write_events(self.db, all_events)
            by_key = {event_key(item.event): item for item in stored}
            self._notify(stored)
            for events, future in batch:
                if not future.done():
                    future.set_result([by_key[event_key(e)] for e in events if event_key(e) in by_key])
        except Exception as exc:  # noqa: BLE001 - every waiting request must hear about the failure
            log.exception("event batch of %d failed", len(all_events))
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        finally:
            for _ in batch:
                self._queue.task_done()

    def _notify(self, stored: Sequence[StoredEvent]) -> None:
        for listener in self.listeners:
            try:
                listener(stored)
            except Exception:  # noqa: BLE001 - a listener's failure must not lose committed events
                log.exception("event listener failed")
