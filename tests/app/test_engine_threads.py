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
