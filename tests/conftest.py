"""Shared fixtures: an app on a temporary data dir with a real SQLite file, and its test client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.config import Settings

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    defaults = {"run_worker": False, "run_scheduler": False, "log_json": False, "secret_key": "test-secret"}
    return Settings(data_dir=data_dir, **{**defaults, **overrides})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


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
