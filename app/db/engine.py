"""The database: one async engine, read and write sessions.

SQLite under concurrent async writes needs WAL, a busy timeout, and ``BEGIN IMMEDIATE`` for every write
transaction: a deferred ``BEGIN`` that later upgrades to a write lock fails at once with "database is
locked" instead of waiting. The pysqlite driver's own transaction handling is switched off so that the
``begin`` hook below decides which ``BEGIN`` is sent. On other dialects (PostgreSQL) none of this applies.

Within one process, SQLite write transactions also queue on an asyncio lock before ``BEGIN IMMEDIATE``: waiting
in SQLite's busy handler is a sleep-and-retry loop with growing sleeps (up to 100 ms a try), so under concurrent
writes the unlucky ones waited a second or more while others went first; the lock hands the database over in
arrival order, and SQLite's own lock still arbitrates between processes.

``read_sync(fn)`` is for the hot read paths (a page's cards, the session cookie's lookup): on a SQLite file the
whole read (connection, statements, rows) runs in one hop to a small thread pool over plain pysqlite
connections, where each statement through aiosqlite costs several thread hand-offs (measured on a busy machine:
~1 ms of CPU for a ``SELECT 1`` through aiosqlite, ~0.05 ms for the session lookup on a plain pysqlite
connection). Elsewhere it is ``run_sync`` on an async session: the same function, the same results. There a read
sends no ``BEGIN``: each statement reads the latest commit on its own (a read that needs one snapshot across
statements uses ``read()``). ``read_core(fn)`` is the same hop for Core statements, with a connection and no ORM
session around it (the session's set-up and close were a third of a small read's cost).

``fetch(prepared, params)`` is for the few indexed lookups every page makes (the session cookie's row, a page's
cards): a ``Prepared`` SELECT, compiled once, runs on the calling thread (the event loop) over a plain pysqlite
connection, each column converted by its type's result processor as SQLAlchemy's execution does. Measured on a
busy 2-core box: the session lookup ~20 us of CPU this way, ~90 us through a SQLAlchemy connection on the loop
and ~190 us with the hop to a read thread (a hop alone ~80 us of the process's CPU: two thread wake-ups). A read
that finds the database busy gives up after ``INLINE_BUSY_TIMEOUT_MS`` (the loop waits meanwhile) and is redone in
a read thread. Elsewhere (PostgreSQL) ``fetch`` is the statement through ``read_core``.
"""

from __future__ import annotations

import asyncio
import queue
import re
import sqlite3
import threading
import weakref
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

from sqlalchemy import Connection, Dialect, Engine, Select, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

BUSY_TIMEOUT_MS = 10_000
INLINE_BUSY_TIMEOUT_MS = 50  # how long a fetch() on the event loop waits for a busy database before a read thread
SQLITE_POOL_SIZE = 32
_WRITE_OPTION = "foryou_write"
READ_THREADS = 4
T = TypeVar("T")


def _configure_sqlite(sync_engine: Engine, begin_reads: bool = True, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """``begin_reads=False``: a read sends no ``BEGIN`` at all (each statement is its own read transaction, as
    SQLite runs a statement outside one), for the read threads' short reads: a ``BEGIN`` and the ``ROLLBACK`` that
    ends it were half the cost of a one-statement read there. Writes always get ``BEGIN IMMEDIATE``."""

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001 - driver objects
        # Let the begin hook below own transactions (pysqlite would otherwise send its own BEGIN).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")  # first: the journal mode's may wait for a lock
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection):  # noqa: ANN001
        if connection.get_execution_options().get(_WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif begin_reads:
            connection.exec_driver_sql("BEGIN")


class _Threads:
    """A few worker threads that run ``fn(arg)`` for the event loop and settle an asyncio future with the result.

    What ``run_in_executor`` does, without its ``concurrent.futures.Future`` (a ``Condition`` built per call) and
    the chaining of that future to an asyncio one: measured under uvloop, 15-17 us of event-loop CPU a hop
    instead of 34-38, and a hop back in about two thirds of the time. Every request makes one or more."""

    def __init__(self, count: int, name: str) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True) for i in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[T], object], arg: T) -> asyncio.Future:
        if self._closed:
            raise RuntimeError("the database's threads are shut down")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((loop, future, fn, arg))
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, fn, arg = job
            try:
                outcome = (fn(arg), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                outcome = (None, exc)
            with suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, future, *outcome)
            del job, future, outcome  # not kept alive by this thread until its next job

    def shutdown(self, wait: bool) -> None:
        """Stop after the jobs queued so far; ``wait``: until they are done."""
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


class Prepared:
    """A Core SELECT for ``Database.fetch``: compiled once per dialect; rows are named tuples of its column keys
    (attribute and index access, like SQLAlchemy's rows). Parameters given at execution are plain ones (an
    expanding ``IN`` may only hold the statement's own values, expanded at compile time)."""

    def __init__(self, statement: Select) -> None:
        self.statement = statement
        self.keys = tuple(statement.selected_columns.keys())
        self.row = namedtuple("PreparedRow", self.keys)
        self._compiled: dict[str, tuple] = {}

    def compiled(self, dialect: Dialect) -> tuple[str, tuple, list]:
        """(SQL, [(name given at execution, bind processor) or (None, the statement's own value)] in order,
        [(column index, result processor)])."""
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            given = {name for name, bind in compiled.binds.items() if bind.required}
            if any(compiled.binds[name].expanding for name in given):
                raise ValueError("a Prepared statement's parameters are plain ones, not expanding lists")
            expanded = compiled.construct_expanded_state(dict.fromkeys(given))
            binds = []
            for name in expanded.positiontup:
                processor = expanded.processors.get(name)
                if name in given:
                    binds.append((name, processor))
                else:
                    value = expanded.parameters[name]
                    binds.append((None, processor(value) if processor else value))
            processors = [(index, processor) for index, column in enumerate(self.statement.selected_columns)
                          if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))]
            found = self._compiled[dialect.name] = (expanded.statement, tuple(binds), processors)
        return found

    @staticmethod
    def arguments(binds: tuple, params: Mapping[str, Any]) -> list:
        """The DBAPI's positional arguments: ``binds`` from ``compiled``, the execution's ``params`` by name."""
        # (name, its bind processor or None) for a given parameter, (None, the value) for the statement's own
        return [held if name is None else held(params[name]) if held else params[name] for name, held in binds]

    def make_rows(self, raw: list, processors: list) -> list:
        make = self.row._make
        if not processors:
            return [make(values) for values in raw]
        rows = []
        for values in raw:
            values = list(values)
            for index, processor in processors:
                values[index] = processor(values[index])
            rows.append(make(values))
        return rows


_BUSY = re.compile(r"database (table )?is locked|database is busy")


def _settle(future: asyncio.Future, result: object, exc: BaseException | None) -> None:
    if future.done():  # its awaiting coroutine was cancelled
        return
    if exc is None:
        future.set_result(result)
    else:
        future.set_exception(exc)


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
            _configure_sqlite(self.engine.sync_engine)
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        # One lock per event loop (a lock belongs to the loop that first waits on it; commands and tests run
        # several loops over one Database).
        self._write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = \
            weakref.WeakKeyDictionary()
        self._read_engine: Engine | None = None
        self._read_pool: _Threads | None = None
        self._inline_engine = None
        url_parts = make_url(url)
        if self.is_sqlite and url_parts.database not in (None, "", ":memory:") \
                and "memory" not in str(url_parts.query.get("mode", "")):
            # Its own pool of plain pysqlite connections to the same file, used only from the read threads.
            self._read_engine = create_engine(url_parts.set(drivername="sqlite"), pool_size=READ_THREADS,
                                              connect_args={"check_same_thread": False})
            _configure_sqlite(self._read_engine, begin_reads=False)
            self._read_pool = _Threads(READ_THREADS, "db-read")
            # Writes in one hop too (write_sync): one thread, since the write lock lets one write in at a time.
            self._sync_write_engine = self._read_engine.execution_options(**{_WRITE_OPTION: True})
            self._write_pool = _Threads(1, "db-write")
            # fetch()'s connections, used on the event loops' threads one statement at a time: a few, quick to
            # give up when SQLite is busy.
            self._inline_engine: Engine | None = create_engine(
                url_parts.set(drivername="sqlite"), pool_size=2, connect_args={"check_same_thread": False})
            _configure_sqlite(self._inline_engine, begin_reads=False, busy_timeout_ms=INLINE_BUSY_TIMEOUT_MS)

    @property
    def thread_engine(self) -> Engine | None:
        """The plain pysqlite engine ``read_sync`` and ``write_sync`` run on (None where they use the async one)."""
        return self._read_engine

    def _write_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._write_locks.get(loop)
        if lock is None:
            lock = self._write_locks[loop] = asyncio.Lock()
        return lock

    async def _acquire_write_lock(self) -> asyncio.Lock:
        """The in-process SQLite write lock, acquired (the caller releases it)."""
        lock = self._write_lock()
        try:
            # As long as SQLite's own busy timeout: a write nested in another write fails as it did, not hangs.
            async with asyncio.timeout(BUSY_TIMEOUT_MS / 1000):
                await lock.acquire()
        except TimeoutError:
            raise OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")) from None
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
        lock = await self._acquire_write_lock()
        try:
            async with AsyncSession(self._write_engine, expire_on_commit=False) as session, session.begin():
                yield session
        finally:
            lock.release()

    async def write_sync(self, fn: Callable[[Session], T]) -> T:
        """``fn(session)`` in a write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success: on a
        SQLite file in one hop to the write thread over plain pysqlite, after the same in-process write lock as
        ``write()`` (for a batch of many statements, the thread hand-offs aiosqlite makes per statement were most
        of its CPU); elsewhere ``run_sync`` in a ``write()`` session."""
        if self._read_engine is None:
            async with self.write() as session:
                return await session.run_sync(fn)
        lock = await self._acquire_write_lock()
        try:
            done = self._write_pool.submit(self._write_in_thread, fn)
        except BaseException:
            lock.release()
            raise
        # Released when the thread is done, even if the caller is cancelled meanwhile (the write still finishes).
        done.add_done_callback(lambda _: lock.release())
        return await asyncio.shield(done)

    def _write_in_thread(self, fn: Callable[[Session], T]) -> T:
        with Session(self._sync_write_engine, expire_on_commit=False) as session, session.begin():
            return fn(session)

    async def read_sync(self, fn: Callable[[Session], T]) -> T:
        """``fn(session)`` in a read transaction (see the module's docstring); ORM objects it returns are loaded
        and detached, like a ``read()`` session's after it closed."""
        if self._read_engine is None:
            async with self.read() as session:
                return await session.run_sync(fn)
        return await self._read_pool.submit(self._read_in_thread, fn)

    def _read_in_thread(self, fn: Callable[[Session], T]) -> T:
        with Session(self._read_engine, expire_on_commit=False) as session:
            return fn(session)

    async def read_core(self, fn: Callable[[Connection], T]) -> T:
        """``fn(connection)`` for Core statements (rows, not ORM objects), in the same hop as ``read_sync``."""
        if self._read_engine is None:
            async with self.engine.connect() as connection:
                return await connection.run_sync(fn)
        return await self._read_pool.submit(self._read_core_in_thread, fn)

    def _read_core_in_thread(self, fn: Callable[[Connection], T]) -> T:
        with self._read_engine.connect() as connection:
            return fn(connection)

    async def fetch(self, prepared: Prepared, params: Mapping[str, Any]) -> list:
        """Every row of ``prepared`` for ``params`` (see the module's docstring): on a SQLite file read on the
        calling thread, so only for short indexed lookups; elsewhere through ``read_core``."""
        if self._inline_engine is None:
            return await self.read_core(lambda connection: prepared.make_rows(
                [tuple(row) for row in connection.execute(prepared.statement, dict(params))], []))
        sql, binds, processors = prepared.compiled(self._inline_engine.dialect)
        arguments = prepared.arguments(binds, params)
        raw = None
        try:
            connection = self._inline_engine.raw_connection()
            try:
                raw = connection.driver_connection.execute(sql, arguments).fetchall()
            finally:
                connection.close()
        except (sqlite3.OperationalError, OperationalError) as exc:  # a connect's PRAGMAs come wrapped
            if not _BUSY.search(str(exc)):
                raise
        if raw is None:  # busy: a read thread waits for it, with the full busy timeout
            raw = await self.read_core(lambda connection: connection.exec_driver_sql(sql, tuple(arguments)).all())
        return prepared.make_rows(raw, processors)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._read_engine is not None:
            self._write_pool.shutdown(wait=True)  # a write under way finishes first
            self._read_engine.dispose()
            self._inline_engine.dispose()
            self._read_pool.shutdown(wait=False)
