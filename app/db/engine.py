"""The database: one async engine, read and write sessions.

SQLite under concurrent async writes needs WAL, a busy timeout, and ``BEGIN IMMEDIATE`` for every write
transaction: a deferred ``BEGIN`` that later upgrades to a write lock fails at once with "database is
locked" instead of waiting. The pysqlite driver's own transaction handling is switched off so that the
``begin`` hook below decides which ``BEGIN`` is sent. On other dialects (PostgreSQL) none of this applies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

BUSY_TIMEOUT_MS = 10_000
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
        self.engine = create_async_engine(url, echo=echo)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success, rolled back on error."""
        async with AsyncSession(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
