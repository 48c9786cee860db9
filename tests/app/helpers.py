"""Helpers for app tests: direct database set-up through the app's own engine."""

from __future__ import annotations

import asyncio

from litestar.testing import TestClient

from app.db.models import User, Video


def services(client: TestClient):  # noqa: ANN201
    return client.app.state.services


def run(client: TestClient, coroutine):  # noqa: ANN001, ANN201
    """Run a coroutine on the test client's event loop (where the app's engine lives)."""
    portal = client.blocking_portal
    if portal is None:
        return asyncio.run(coroutine)
    return portal.call(lambda: coroutine)


def add_video(client: TestClient, *, creator: str = "creator", state: str = "ready", **fields) -> str:  # noqa: ANN003
    async def _add() -> str:
        async with services(client).db.write() as session:
            user = await session.get(User, f"u_{creator}")
            if user is None:
                session.add(User(id=f"u_{creator}", username=creator, display_name=creator, is_guest=False))
                await session.flush()
            video = Video(creator_id=f"u_{creator}", state=state, caption=fields.pop("caption", "a video"),
                          duration=fields.pop("duration", 10.0), **fields)
            session.add(video)
            await session.flush()
            return video.id

    return run(client, _add())
