"""A batched event writer: beacons queue their events, one task commits them in groups.

Group commit keeps a burst of beacons from turning into a burst of write transactions (SQLite has one
writer at a time): every request that arrives while a batch is being written joins the next batch, and
each caller is answered only after its batch is committed, so an acknowledged event is a stored event.

A viewer's action (like, follow, save...) joins the same batch as a ``StateChange``: its state-table statements
run in the batch's transaction, before the events, so the change and the event it records commit together and
thirty concurrent likes cost one write transaction, not sixty. A batch that fails is retried entry by entry, so
one bad entry fails only its own request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

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


@dataclass
class StateChange:
    """State-table statements run inside an event batch's write transaction, before the batch's events.

    ``apply(session)`` (a sync ``Session``: it runs in the database's write thread with the batch) returns (a
    result for the caller, the events the change records): an action that changed nothing (liking twice) records
    none. It must not open a transaction of its own (it is inside one), nor touch the event loop."""

    apply: Callable[[Session], tuple[Any, list[EventIn]]]
    result: Any = None
    events: list[EventIn] = field(default_factory=list)


def insert_ignoring_duplicates(dialect: str, table=Event.__table__):  # noqa: ANN001, ANN201 - Core constructs
    """``INSERT ... ON CONFLICT DO NOTHING``: a duplicate stored meanwhile by another process is not an error."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()  # Core, not the ORM's per-row bulk path


def event_key(item: EventIn) -> tuple[str | None, str]:
    """Event ids are the client's, so they are unique per user only: the dedup key is the pair."""
    return item.user_id, item.event_id


async def write_events(db: Database, events: Sequence[EventIn],
                       changes: Sequence[StateChange] = ()) -> list[StoredEvent]:
    """Store events in one write transaction: dedupe on (user, event id), merge watch time with max, sessionize.
    ``changes`` run first in the same transaction; the events they record are stored with the others.

    The same id sent by another user is another event and never touches the first user's row.
    Core statements throughout, a fixed number per batch whatever its size: one SELECT of the keys already
    stored, one ``executemany`` INSERT ... ON CONFLICT DO NOTHING of the new rows (the driver's own loop, no
    per-row statement building), one SELECT of their row ids, one ``executemany`` UPDATE for the views whose
    watch time grew, and sessionization in two or three statements for all the batch's users together."""
    if not events and not changes:
        return []

    def write(session: Session) -> list[StoredEvent]:
        recorded = list(events)
        for change in changes:
            change.result, change.events = change.apply(session)
            recorded.extend(change.events)
        return _write_in(session, recorded)

    # The whole batch in one hop to the database's write thread (Core statements on a plain connection).
    return await db.write_sync(write)


def _write_in(session: Session, events: Sequence[EventIn]) -> list[StoredEvent]:
    """write_events' statements, inside the caller's write transaction."""
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
    existing = {
        (user_id, event_id): (row_id, watch, session_id, info)
        for user_id, event_id, row_id, watch, session_id, info in (session.execute(
            select(table.c.user_id, table.c.event_id, table.c.id, table.c.watch_duration, table.c.session_id,
                   table.c.additional_info)
            .where(table.c.event_id.in_(list({event_id for _, event_id in merged})))
        )).all()
    }
    fresh = [e for key, e in merged.items() if key not in existing]
    sessions = _sessionize(session, fresh)
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
        session.execute(
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
        ids = _insert_new(session, rows)
        for item, row in zip(fresh, rows, strict=True):
            key = event_key(item)
            stored[key] = StoredEvent(item, is_new=key in ids, session_id=row["session_id"], row_id=ids.get(key))
    return [stored[key] for key in merged]


def _insert_new(session: Session, rows: list[dict]) -> dict[tuple[str | None, str], int]:
    """Insert rows (a duplicate stored meanwhile is skipped) and return the row id of each one inserted."""
    table = Event.__table__
    dialect = session.bind.dialect.name
    if dialect != "sqlite":  # PostgreSQL batches RETURNING itself and answers only for the rows it inserted
        statement = insert_ignoring_duplicates(dialect).returning(table.c.id, table.c.user_id, table.c.event_id)
        return {(user_id, event_id): row_id
                for row_id, user_id, event_id in (session.execute(statement, rows)).all()}
    # SQLite: the write transaction (BEGIN IMMEDIATE) holds the database's only write lock, so every row with an
    # id above the largest before the INSERT is one of ours; a plain executemany is the driver's fast path.
    before = (session.execute(select(func.max(table.c.id)))).scalar() or 0
    session.execute(insert_ignoring_duplicates(dialect), rows)
    return {(user_id, event_id): row_id for row_id, user_id, event_id in (session.execute(
        select(table.c.id, table.c.user_id, table.c.event_id).where(table.c.id > before))).all()}


def _sessionize(session: Session, new_events: Sequence[EventIn]) -> dict[str, int]:
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
    latest = {user_id: (session_id, last_at) for session_id, user_id, last_at in (session.execute(
        select(ranked.c.id, ranked.c.user_id, ranked.c.last_event_at).where(ranked.c.rank == 1))).all()}
    result: dict[str, int] = {}
    extend: list[dict] = []
    for user_id, items in by_user.items():
        first_time = min(item.timestamp for item in items)
        last_time = max(item.timestamp for item in items)
        watch = sum(item.watch_duration or 0 for item in items if item.event_type == "view")
        open_session = latest.get(user_id)
        if open_session is None or first_time - open_session[1] > SESSION_GAP:
            result[user_id] = (session.execute(sessions.insert().values(
                user_id=user_id, started_at=first_time, last_event_at=last_time, event_count=len(items),
                watch_seconds=watch))).inserted_primary_key[0]
            continue
        result[user_id] = open_session[0]
        extend.append({"sid": open_session[0], "last": max(open_session[1], last_time), "n": len(items),
                       "watch": watch})
    if extend:
        session.execute(
            update(sessions).where(sessions.c.id == bindparam("sid")).values(
                last_event_at=bindparam("last", type_=sessions.c.last_event_at.type),
                event_count=sessions.c.event_count + bindparam("n"),
                watch_seconds=sessions.c.watch_seconds + bindparam("watch")),
            extend)
    return result


class EventWriter:
    """Group-commits events (and state changes) from many concurrent requests; notifies listeners after commit.

    A batch is whatever is queued when the previous one is done, up to ``max_batch`` events: under load batches
    grow by themselves, and a lone action is written at once. ``linger_s`` > 0 waits that long for company
    before writing a batch smaller than ``max_batch`` (fewer, larger transactions at the cost of latency)."""

    def __init__(self, db: Database, max_batch: int = 200, linger_s: float = 0.0) -> None:
        self.db = db
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.listeners: list[Listener] = []
        self._queue: asyncio.Queue[tuple[list[EventIn], StateChange | None, asyncio.Future]] | None = None
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
        return await self._enqueue(events, None)

    async def change(self, apply: Callable[[Session], tuple[Any, list[EventIn]]]) -> Any:
        """Run a state change in the next batch's transaction (see ``StateChange``); its result once committed."""
        change = StateChange(apply)
        await self._enqueue([], change)
        return change.result

    async def _enqueue(self, events: list[EventIn], change: StateChange | None) -> list[StoredEvent]:
        if self._queue is None or self._task is None:
            stored = await write_events(self.db, events, [change] if change else [])
            self._notify(stored)
            return stored
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((events, change, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0][0]) + 1
            deadline = loop.time() + self.linger_s
            while size < self.max_batch:
                if self._queue.empty():
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), timeout)
                    except TimeoutError:
                        break
                else:
                    item = self._queue.get_nowait()
                batch.append(item)
                size += len(item[0]) + 1
            await self._flush(batch)

    async def _flush(self, batch: list[tuple[list[EventIn], StateChange | None, asyncio.Future]]) -> None:
        assert self._queue is not None
        try:
            await self._write(batch)
        except Exception as exc:  # noqa: BLE001 - every waiting request must hear about the failure
            if len(batch) == 1:
                log.exception("event batch of %d failed", len(batch[0][0]))
                if not batch[0][2].done():
                    batch[0][2].set_exception(exc)
            else:
                # One entry's failure (a change on a row deleted meanwhile) must not fail the others: retry alone.
                for entry in batch:
                    try:
                        await self._write([entry])
                    except Exception as entry_exc:  # noqa: BLE001
                        if not isinstance(entry_exc, ValueError):  # an action refused (InteractionError) is no fault
                            log.exception("event batch entry of %d events failed", len(entry[0]))
                        if not entry[2].done():
                            entry[2].set_exception(entry_exc)
        finally:
            for _ in batch:
                self._queue.task_done()

    async def _write(self, batch: list[tuple[list[EventIn], StateChange | None, asyncio.Future]]) -> None:
        changes = [change for _, change, _ in batch if change is not None]
        stored = await write_events(self.db, [event for events, _, _ in batch for event in events], changes)
        by_key = {event_key(item.event): item for item in stored}
        self._notify(stored)
        for events, change, future in batch:
            if not future.done():
                mine = [*events, *(change.events if change else [])]
                future.set_result([by_key[event_key(e)] for e in mine if event_key(e) in by_key])

    def _notify(self, stored: Sequence[StoredEvent]) -> None:
        for listener in self.listeners:
            try:
                listener(stored)
            except Exception:  # noqa: BLE001 - a listener's failure must not lose committed events
                log.exception("event listener failed")
