import sqlite3

from sqlmodel import SQLModel

import app.db.models  # noqa: F401
from app.db.migrate import current_head, upgrade
from tests.conftest import make_settings


def test_migrations_from_empty_to_head_create_every_table(tmp_path):
    settings = make_settings(tmp_path / "data")
    upgrade(settings)
    connection = sqlite3.connect(settings.data_dir / "foryou.db")
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert set(SQLModel.metadata.tables) <= tables
    (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == current_head()


def test_migrations_are_idempotent(tmp_path):
    settings = make_settings(tmp_path / "data")
    upgrade(settings)
    database = settings.data_dir / "foryou.db"

    def schema() -> list[tuple]:
        with sqlite3.connect(database) as connection:
            return connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()

    before = schema()
    upgrade(settings)  # a second run at head is a no-op, not an error
    assert schema() == before
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(current_head(),)]


def test_models_and_migrations_agree(tmp_path):
    """Autogenerate against a migrated database finds nothing to do: no model change lacks a migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    settings = make_settings(tmp_path / "data")
    upgrade(settings)
    engine = create_engine(f"sqlite:///{settings.data_dir / 'foryou.db'}")
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_on_postgresql_migrations_apply_from_empty_and_agree_with_the_models(postgres_server):
    """The session's template database was migrated from empty (tests/conftest.py); a clone of it is checked."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, inspect

    url = postgres_server.clone()
    engine = create_engine(url.replace("+asyncpg", "+psycopg"))
    try:
        with engine.connect() as connection:
            assert set(SQLModel.metadata.tables) <= set(inspect(connection).get_table_names())
            context = MigrationContext.configure(connection)
            assert context.get_current_revision() == current_head()
            assert compare_metadata(context, SQLModel.metadata) == []
    finally:
        engine.dispose()
        postgres_server.drop(url)
