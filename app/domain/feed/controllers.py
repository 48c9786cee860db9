"""The feed page."""

from __future__ import annotations

from litestar import Controller, Request, Response, get
from sqlalchemy import func, select

from app.db.models import Video
from app.server.services import services_of
from app.server.templating import render


class FeedController(Controller):
    @get("/")
    async def feed(self, request: Request) -> Response:
        services = services_of(request)
        async with services.db.read() as session:
            ready_count = (
                await session.execute(select(func.count()).select_from(Video).where(Video.state == "ready"))
            ).scalar_one()
        return render(request, "feed/index.html", {"catalogue_size": ready_count, "cards": []})
