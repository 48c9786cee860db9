"""Shared fixtures: an app on a temporary data dir with a real SQLite file, and its test client.

Test modules marked ``pytest.mark.both_databases`` run every test that uses the ``settings`` (or ``client``)
fixture twice: on SQLite, and on PostgreSQL (this machine's server at 127.0.0.1:5432, or
``FORYOU_TEST_POSTGRES_URL``). The PostgreSQL run uses a database of its own: one migrated template per test
session (``foryou_test_<random>``), cloned for each test and dropped after it. Without a reachable server those
runs are skipped, and the summary says so.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.config import Settings

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    # Litestar's test client sends "Host: testserver.local": the tests' site is configured at that address
    # (absolute URLs come from FORYOU_PUBLIC_URL). Tests never reach for the network: a test about downloads
    # turns them on itself.
    defaults = {"run_worker": False, "run_scheduler": False, "log_json": False, "secret_key": "test-secret",
                "allowed_hosts": ("testserver.local",), "public_url": "http://testserver.local",
                "allow_model_downloads": False}
    return Settings(data_dir=data_dir, **{**defaults, **overrides})


class PostgresServer:
    """An admin connection to the test server, a migrated template database, and a clone per test."""

    ADMIN_URLS = ("postgresql://postgres@127.0.0.1:5432/postgres", "postgresql://root@127.0.0.1:5432/postgres")

    def __init__(self, admin, tmp: Path) -> None:  # noqa: ANN001 - a psycopg connection
        self.admin = admin
        info = self.admin.info
        self.base = f"postgresql+asyncpg://{info.user}@{info.host}:{info.port}"
        self.template = f"foryou_test_{secrets.token_hex(4)}"
        self.clones: list[str] = []
        self.admin.execute(f'CREATE DATABASE "{self.template}"')
        from app.db.migrate import upgrade

        upgrade(make_settings(tmp / "template", database_url=f"{self.base}/{self.template}"))

    @classmethod
    def connect_admin(cls):  # noqa: ANN206
        """The admin connection, or the reason there is none (the only failure that skips rather than fails)."""
        import psycopg

        configured = os.environ.get("FORYOU_TEST_POSTGRES_URL")
        errors = []
        for url in (configured,) if configured else cls.ADMIN_URLS:
            try:
                return psycopg.connect(url, autocommit=True, connect_timeout=3), None
            except psycopg.Error as exc:
                errors.append(f"{url}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
        return None, "; ".join(errors)

    def clone(self) -> str:
        name = f"{self.template}_{len(self.clones)}"
        self.admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.clones.append(name)
        return f"{self.base}/{name}"

    def drop(self, url: str) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    def close(self) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        self.admin.close()


_postgres_skip_reason: list[str] = []
_postgres_ran: list[str] = []


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    admin, unreachable = PostgresServer.connect_admin()
    if admin is None:
        _postgres_skip_reason.append(unreachable)
        pytest.skip(f"PostgreSQL not reachable, the PostgreSQL run of this test is skipped: {unreachable}")
    server = PostgresServer(admin, tmp_path_factory.mktemp("postgres"))  # a failing migration fails the tests
    try:
        yield server
    finally:
        server.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_databases") and "settings" in metafunc.fixturenames:
        metafunc.parametrize("database", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """The database URL for one test: "" (SQLite in the data dir) or a fresh PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield ""
        return
    if _postgres_skip_reason:
        pytest.skip(f"PostgreSQL not reachable, the PostgreSQL run of this test is skipped: {_postgres_skip_reason[0]}")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.clone()
    _postgres_ran.append(request.node.nodeid)
    try:
        yield url
    finally:
        server.drop(url)


@pytest.fixture
def settings(tmp_path: Path, database: str) -> Settings:
    return make_settings(tmp_path / "data", database_url=database)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    if _postgres_skip_reason:
        terminalreporter.write_line(f"PostgreSQL runs SKIPPED (server not reachable): {_postgres_skip_reason[0]}",
                                    yellow=True)
    elif _postgres_ran:
        terminalreporter.write_line(f"PostgreSQL: {len(_postgres_ran)} tests ran against a fresh PostgreSQL database")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    from app.server.app import create_app

    with TestClient(create_app(settings)) as test_client:
        yield test_client


def csrf_of(client: TestClient, path: str = "/") -> str:
    """Open a page as the browser would and read the session's CSRF token from it."""
    response = client.get(path, headers={"accept": "text/html"})
    match = CSRF_META.search(response.text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)
