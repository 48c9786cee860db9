"""Alembic environment: runs migrations on the app's async engine (batch mode, so SQLite can alter tables)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import app.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata
MIGRATION_LOCK_ID = 0x0F0E_0015
# Derived indexes the app makes and fills itself (app/domain/pages/search_index.py), not schema to migrate.
DERIVED_TABLE_PREFIXES = ("video_search",)


def include_object(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001
    return not (type_ == "table" and reflected and str(name).startswith(DERIVED_TABLE_PREFIXES))


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several processes may start at once: one migrates, the others wait and then find the head.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"))
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      render_as_batch=True, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
