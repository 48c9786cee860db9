"""The recommender's ModelStore port on the app's database (table ``ranker_versions``).

The recommender calls it synchronously (from a training job in a worker thread), so it uses a small
synchronous engine of its own on the same database, with the same SQLite settings.
"""

from __future__ import annotations

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from app.db.engine import BUSY_TIMEOUT_MS
from app.db.models import RankerVersion
from recommender import ModelVersionRecord

SYNC_DRIVERS = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql+psycopg"}


def sync_engine_for(async_url: str) -> Engine:
    url = make_url(async_url)
    engine = create_engine(url.set(drivername=SYNC_DRIVERS.get(url.drivername, url.drivername)))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):  # noqa: ANN001
            dbapi_connection.isolation_level = None
            dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            dbapi_connection.execute("PRAGMA foreign_keys=ON")

        @event.listens_for(engine, "begin")
        def _on_begin(connection):  # noqa: ANN001 - every transaction here writes
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class SqlModelStore:
    def __init__(self, database_url: str) -> None:
        self.engine = sync_engine_for(database_url)

    def save(self, record: ModelVersionRecord, blob: bytes) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(RankerVersion, record.version) or RankerVersion(version=record.version,
                                                                               created_at=record.created_at,
                                                                               status=record.status, blob=blob)
            row.created_at = record.created_at
            row.status = record.status
            row.parent_version = record.parent_version
            row.metrics = dict(record.metrics)
            row.n_train = record.n_train
            row.n_holdout = record.n_holdout
            row.note = record.note
            row.blob = blob
            session.add(row)

    def load_all(self) -> list[tuple[ModelVersionRecord, bytes]]:
        with Session(self.engine) as session:
            rows = session.execute(select(RankerVersion)).scalars().all()
            return [
                (ModelVersionRecord(version=r.version, created_at=r.created_at, status=r.status,
                                    parent_version=r.parent_version, metrics=dict(r.metrics), n_train=r.n_train,
                                    n_holdout=r.n_holdout, note=r.note), bytes(r.blob))
                for r in rows
            ]

    def dispose(self) -> None:
        self.engine.dispose()
