"""Database.read_sync / write_sync hop to their own threads (app.db.engine._Threads): results and errors come
back, a write whose caller gives up still commits and frees the write lock, and nothing runs after dispose."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import text

from app.db.engine import Database


@pytest.fixture
def db(tmp_path):
    return Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")


async def test_results_errors_and_threads(db):
    await db.write_sync(lambda s: s.execute(text("CREATE TABLE t (n INTEGER)")))
    await db.write_sync(lambda s: s.execute(text("INSERT INTO t VALUES (1), (2)")))
    where = await asyncio.gather(*(db.read_sync(lambda s: (s.execute(text("SELECT sum(n) FROM t")).scalar(),
                                                           threading.current_thread().name)) for _ in range(8)))
    assert {total for total, _ in where} == {3}
    assert all(name.startswith("db-read_") for _, name in where)
    with pytest.raises(ZeroDivisionError):
        await db.read_sync(lambda s: 1 / 0)
    def refused(session):  # noqa: ANN001
        session.execute(text("INSERT INTO t VALUES (5)"))
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await db.write_sync(refused)
    assert await db.read_sync(lambda s: s.execute(text("SELECT count(*) FROM t")).scalar()) == 2  # rolled back
    await db.dispose()
    with pytest.raises(RuntimeError):
        await db.read_sync(lambda s: 1)


async def test_a_cancelled_write_still_commits_and_releases_the_lock(db):
    await db.write_sync(lambda s: s.execute(text("CREATE TABLE t (n INTEGER)")))
    started = threading.Event()

    def slow(session):  # noqa: ANN001
        started.set()
        threading.Event().wait(0.3)
        session.execute(text("INSERT INTO t VALUES (7)"))

    task = asyncio.create_task(db.write_sync(slow))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The next write waits for the lock the cancelled one held until its thread finished, then sees its row.
    count = await asyncio.wait_for(db.write_sync(lambda s: s.execute(text("SELECT count(*) FROM t")).scalar()), 5)
    assert count == 1
    cancelled_read = asyncio.create_task(db.read_sync(lambda s: threading.Event().wait(0.2)))
    await asyncio.sleep(0.05)
    cancelled_read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled_read
    assert await db.read_sync(lambda s: s.execute(text("SELECT n FROM t")).scalar()) == 7  # the pool still works
    await db.dispose()


async def test_fetch_gives_the_rows_sqlalchemy_gives(db):
    """Database.fetch runs a Prepared SELECT over plain pysqlite on the event loop: the same values, of the same
    types, as SQLAlchemy's own execution (datetimes, JSON, booleans and the statement's own IN list included)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import String, bindparam, select

    from app.db.engine import Prepared
    from app.db.models import AuthSession, User

    await db.write_sync(lambda s: User.metadata.create_all(s.connection(), tables=[User.__table__,
                                                                                    AuthSession.__table__]))
    seen = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def add(session):  # noqa: ANN001
        session.add(User(id="u_a", username="ann", is_guest=False, preferences={"muted_words": ["x"]},
                         created_at=seen, last_seen_at=seen))
        session.add(User(id="u_b", status="banned"))
        session.flush()
        session.add(AuthSession(token_hash="h", user_id="u_a", csrf_token="c", expires_at=seen + timedelta(days=1)))

    await db.write_sync(add)
    statement = (select(User.__table__, AuthSession.expires_at, (User.status == "active").label("active"))
                 .outerjoin(AuthSession, AuthSession.user_id == User.id)
                 .where(User.id.in_([bindparam("first", type_=String()), bindparam("second", type_=String())]),
                        User.status.in_(("active", "banned")))
                 .order_by(User.id))
    prepared = Prepared(statement)
    params = {"first": "u_a", "second": "u_b"}
    expected = await db.read_core(lambda connection: connection.execute(statement, params).all())
    rows = await db.fetch(prepared, params)
    assert [tuple(row) for row in rows] == [tuple(row) for row in expected] and len(rows) == 2
    assert [type(value) for value in rows[0]] == [type(value) for value in expected[0]]
    assert rows[0].preferences == {"muted_words": ["x"]} and rows[0].created_at == seen
    assert rows[0].is_guest is False and rows[0].active is True and rows[1].active is False
    assert rows[1].expires_at is None
    await db.dispose()


async def test_fetch_on_a_busy_database_waits_in_a_read_thread(db, tmp_path):
    """A fetch that finds the file locked gives up on the loop after a few milliseconds, and a read thread waits
    for the lock instead (with the full busy timeout): the loop is not held, and the read still succeeds."""
    import sqlite3

    from sqlalchemy import literal, literal_column, select

    from app.db.engine import INLINE_BUSY_TIMEOUT_MS, Prepared

    # Before the database opens anything: an exclusive lock on a WAL file needs no other connection on it.
    holder = sqlite3.connect(tmp_path / "db.sqlite", check_same_thread=False, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE t (n INTEGER)")
    holder.execute("INSERT INTO t VALUES (4)")
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO t VALUES (5)")  # holds the file's exclusive lock: every reader is refused
    prepared = Prepared(select(literal_column("sum(n)").label("total"), literal(1).label("one")).select_from(text("t")))
    ticks = 0

    async def ticking() -> None:  # the loop keeps running while the read waits
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(ticking())
    threading.Timer(0.5, lambda: (holder.execute("COMMIT"), holder.close())).start()
    rows = await db.fetch(prepared, {})
    ticker.cancel()
    assert [tuple(row) for row in rows] == [(9, 1)]
    assert ticks >= 10  # not blocked for the lock's 0.5 s: at most INLINE_BUSY_TIMEOUT_MS
    assert INLINE_BUSY_TIMEOUT_MS <= 100
    await db.dispose()
