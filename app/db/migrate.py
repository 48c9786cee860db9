"""Apply Alembic migrations programmatically (``foryou db upgrade`` and app start)."""

from __future__ import annotations

import fcntl

from alembic import command
from alembic.config import Config

from app.config import PROJECT_ROOT, Settings

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate to ``revision``. Processes starting together take turns: on SQLite through a lock file in the
    data dir, on PostgreSQL through an advisory lock taken in the migration transaction (migrations/env.py)."""
    settings.ensure_dirs()
    with open(settings.data_dir / ".migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(alembic_config(settings.resolved_database_url), revision)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def current_head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""
