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

from sqlalchemy import bindparam, func, select, update

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
    return insert(Event.__table__).on_conflict_do_nothing()  # Core, not the ORM's per-row bulk path


def event_key(item: EventIn) -> tuple[str | None, str]:
    """Event ids are the client's, so they are unique per user only: the dedup key is the pair."""
    return item.user_id, item.event_id


async def write_events(db: Database, events: Sequence[EventIn]) -> list[StoredEvent]:
    """Store events in one write transaction: dedupe on (user, event id), merge watch time with max, sessionize.

    The same id sent by another user is another event and never touches the first user's row.
    Core statements throughout, a fixed number per batch whatever its size: one SELECT of the keys already
    stored, one ``executemany`` INSERT ... ON CONFLICT DO NOTHING of the new rows (the driver's own loop, no
    per-row statement building), one SELECT of their row ids, one ``executemany`` UPDATE for the views whose
    watch time grew, and sessionization in two or three statements for all the batch's users together."""
    if not events:
        return []
    # The same id may repeat inside one batch too (periodic flush + swipe-away): keep the largest watch time.
    merged: dict[tuple[str | None, str], EventIn] = {}
    for item in events:
        key = event_key(item)
        previous = merged.get(key)
        if previous is None or (item.watch_duration or 0) > (previous.watch_duration or 0):
            merged[key] = item
    stored: dict[tuple[str | None, str], StoredEvent] = {}
    table = Event.__table__
    async with db.write() as session:
        existing = {
            (user_id, event_id): (row_id, watch, session_id, info)
            for user_id, event_id, row_id, watch, session_id, info in (await session.execute(
                select(table.c.user_id, table.c.event_id, table.c.id, table.c.watch_duration, table.c.session_id,
                       table.c.additional_info)
                .where(table.c.event_id.in_(list({event_id for _, event_id in merged})))
            )).all()
        }
        fresh = [e for key, e in merged.items() if key not in existing]
        sessions = await _sessionize(session, fresh)
        grown: list[dict] = []
        for key, item in merged.items():
            if key not in existing:
                continue
            row_id, watch, session_id, info = existing[key]
            info = info or {}
            if item.watch_duration is not None and item.watch_duration > (watch or 0):
                # The grown view's own figures (watch_ratio, replays) go with it; "final" never reverts.
                grown.append({"row_id": row_id, "watch": item.watch_duration,
                              "info": {**info, **item.additional_info,
                                       "final": bool(info.get("final") or item.additional_info.get("final"))}})
            elif item.additional_info.get("final") and not info.get("final"):
                grown.append({"row_id": row_id, "watch": watch, "info": {**info, "final": True}})
            stored[key] = StoredEvent(item, is_new=False, session_id=session_id, row_id=row_id)
        if grown:
            await session.execute(
                update(table).where(table.c.id == bindparam("row_id")).values(
                    watch_duration=bindparam("watch"),
                    additional_info=bindparam("info", type_=table.c.additional_info.type)),
                grown)
        if fresh:
            rows = [
                {"event_id": item.event_id, "event_type": item.event_type, "user_id": item.user_id,
                 "video_id": item.video_id, "creator_id": item.creator_id, "timestamp": item.timestamp,
                 "watch_duration": item.watch_duration,
                 "session_id": sessions.get(item.user_id) if item.user_id else None,
                 "additional_info": item.additional_info}
                for item in fresh
            ]
            ids = await _insert_new(session, rows)
            for item, row in zip(fresh, rows, strict=True):
                key = event_key(item)
                stored[key] = StoredEvent(item, is_new=key in ids, session_id=row["session_id"], row_id=ids.get(key))
    return [stored[key] for key in merged]


async def _insert_new(session, rows: list[dict]) -> dict[tuple[str | None, str], int]:  # noqa: ANN001
    """Insert rows (a duplicate stored meanwhile is skipped) and return the row id of each one inserted."""
    table = Event.__table__
    dialect = session.bind.dialect.name
    if dialect != "sqlite":  # PostgreSQL batches RETURNING itself and answers only for the rows it inserted
        statement = _insert_ignoring_duplicates(dialect).returning(table.c.id, table.c.user_id, table.c.event_id)
        return {(user_id, event_id): row_id
                for row_id, user_id, event_id in (await session.execute(statement, rows)).all()}
    # SQLite: the write transaction (BEGIN IMMEDIATE) holds the database's only write lock, so every row with an
    # id above the largest before the INSERT is one of ours; a plain executemany is the driver's fast path.
    before = (await session.execute(select(func.max(table.c.id)))).scalar() or 0
    await session.execute(_insert_ignoring_duplicates(dialect), rows)
    return {(user_id, event_id): row_id for row_id, user_id, event_id in (await session.execute(
        select(table.c.id, table.c.user_id, table.c.event_id).where(table.c.id > before))).all()}


async def _sessionize(session, new_events: Sequence[EventIn]) -> dict[str, int]:  # noqa: ANN001
    """Attach each user's new events to their open viewing session, opening one after 30 idle minutes.

    One SELECT finds every user's latest session, one ``executemany`` UPDATE extends the open ones; a session
    is opened (one INSERT each) only for users idle more than 30 minutes, which is rare within a batch."""
    by_user: dict[str, list[EventIn]] = {}
    for item in new_events:
        if item.user_id:
            by_user.setdefault(item.user_id, []).append(item)
    if not by_user:
        return {}
    sessions = ViewingSession.__table__
    ranked = select(sessions.c.id, sessions.c.user_id, sessions.c.last_event_at,
                    func.row_number().over(partition_by=sessions.c.user_id,
                                           order_by=(sessions.c.last_event_at.desc(), sessions.c.id.desc()))
                    .label("rank")).where(sessions.c.user_id.in_(list(by_user))).subquery()
    latest = {user_id: (session_id, last_at) for session_id, user_id, last_at in (await session.execute(
        select(ranked.c.id, ranked.c.user_id, ranked.c.last_event_at).where(ranked.c.rank == 1))).all()}
    result: dict[str, int] = {}
    extend: list[dict] = []
    for user_id, items in by_user.items():
        first_time = min(item.timestamp for item in items)
        last_time = max(item.timestamp for item in items)
        watch = sum(item.watch_duration or 0 for item in items if item.event_type == "view")
        open_session = latest.get(user_id)
        if open_session is None or first_time - open_session[1] > SESSION_GAP:
            result[user_id] = (await session.execute(sessions.insert().values(
                user_id=user_id, started_at=first_time, last_event_at=last_time, event_count=len(items),
                watch_seconds=watch))).inserted_primary_key[0]
            continue
        result[user_id] = open_session[0]
        extend.append({"sid": open_session[0], "last": max(open_session[1], last_time), "n": len(items),
                       "watch": watch})
    if extend:
        await session.execute(
            update(sessions).where(sessions.c.id == bindparam("sid")).values(
                last_event_at=bindparam("last", type_=sessions.c.last_event_at.type),
                event_count=sessions.c.event_count + bindparam("n"),
                watch_seconds=sessions.c.watch_seconds + bindparam("watch")),
            extend)
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
