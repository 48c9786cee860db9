"""Handlers' plain-function dependencies are called in turn, without a task group per request
(app.server.dependencies); async providers keep Litestar's own concurrent resolution."""

from __future__ import annotations

import litestar._kwargs.kwargs_model as kwargs_model
from litestar import Litestar, get
from litestar.di import Provide
from litestar.testing import TestClient

from app.server import dependencies
from tests.app.test_accounts import signup
from tests.conftest import csrf_of


def test_a_like_resolves_its_dependencies_without_a_task_group(client, monkeypatch):
    from tests.app.helpers import add_video

    video = add_video(client, state="ready")
    signup(client, username="dee")
    csrf = csrf_of(client)
    opened = []
    real = kwargs_model.create_task_group
    monkeypatch.setattr(kwargs_model, "create_task_group", lambda: opened.append(1) or real())
    liked = client.post(f"/videos/{video}/like", headers={"hx-request": "true", "x-csrf-token": csrf})
    assert liked.status_code == 200 and 'hx-delete="/videos/' in liked.text
    assert opened == []  # db, accounts, interactions, web_session: four plain providers, no task group


def test_async_providers_keep_litestars_resolution(monkeypatch):
    assert dependencies.install()
    opened = []
    real = kwargs_model.create_task_group
    monkeypatch.setattr(kwargs_model, "create_task_group", lambda: opened.append(1) or real())

    async def one() -> int:
        return 1

    def two() -> int:
        return 2

    @get("/sum", sync_to_thread=False)
    def total(a: int, b: int) -> dict:
        return {"sum": a + b}

    app = Litestar([total], dependencies={"a": Provide(one), "b": Provide(two, sync_to_thread=False)})
    with TestClient(app) as client:
        assert client.get("/sum").json() == {"sum": 3}
    assert opened == [1]  # one async provider in the batch: Litestar's task group, as before
