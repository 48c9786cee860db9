"""The database: one async engine, read and write sessions.

SQLite under concurrent async writes needs WAL, a busy timeout, and ``BEGIN IMMEDIATE`` for every write
transaction: a deferred ``BEGIN`` that later upgrades to a write lock fails at once with "database is
locked" instead of waiting. The pysqlite driver's own transaction handling is switched off so that the
``begin`` hook below decides which ``BEGIN`` is sent. On other dialects (PostgreSQL) none of this applies.

Within one process, SQLite write transactions also queue on an asyncio lock before ``BEGIN IMMEDIATE``: waiting
in SQLite's busy handler is a sleep-and-retry loop with growing sleeps (up to 100 ms a try), so under concurrent
writes the unlucky ones waited a second or more while others went first; the lock hands the database over in
arrival order, and SQLite's own lock still arbitrates between processes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

BUSY_TIMEOUT_MS = 10_000
SQLITE_POOL_SIZE = 32
_WRITE_OPTION = "foryou_write"


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001 - driver objects
        # Let the begin hook below own transactions (pysqlite would otherwise send its own BEGIN).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection):  # noqa: ANN001
        if connection.get_execution_options().get(_WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


class Database:
    """Owns the engine. ``read()`` and ``write()`` yield sessions; ``write()`` commits on success."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        pool = {}
        if url.startswith("sqlite") and ":memory:" not in url and "mode=memory" not in url:
            # Connections beyond the pool's size are opened per checkout and closed on return (for aiosqlite: a
            # new thread and its PRAGMAs each time, a quarter of a request's CPU at 32 concurrent requests), so
            # the pool keeps as many as a busy process uses.
            pool = {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_POOL_SIZE}
        self.engine = create_async_engine(url, echo=echo, **pool)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        # One lock per event loop (a lock belongs to the loop that first waits on it; commands and tests run
        # several loops over one Database).
        self._write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = \
            weakref.WeakKeyDictionary()

    def _write_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._write_locks.get(loop)
        if lock is None:
            lock = self._write_locks[loop] = asyncio.Lock()
        return lock

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success, rolled back on error."""
        if not self.is_sqlite:
            async with AsyncSession(self._write_engine, expire_on_commit=False) as session, session.begin():
                yield session
            return
        lock = self._write_lock()
        try:
            # As long as SQLite's own busy timeout: a write nested in another write fails as it did, not hangs.
            async with asyncio.timeout(BUSY_TIMEOUT_MS / 1000):
                await lock.acquire()
        except TimeoutError:
            raise OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")) from None
        try:
            async with AsyncSession(self._write_engine, expire_on_commit=False) as session, session.begin():
                yield session
        finally:
            lock.release()

    async def dispose(self) -> None:
        await self.engine.dispose()
