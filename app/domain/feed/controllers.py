"""The swipe feed: the page, its next cards (htmx, cursor-based) and "start over" once caught up.

The page renders the first cards itself; a loader at the end of the list asks ``GET /feed/cards`` for the
next ones (htmx ``intersect``, and the player's "near the end" signal) and is replaced by them plus a new
loader, or by the "You're all caught up" card when nothing is left. FeedService never serves a video twice
to one browser session (keyed by the session's token hash), so the cursor only numbers the cards.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect
from sqlalchemy import func, select

from app.db.models import Video
from app.domain.feed.services import TABS
from app.domain.interactions.services import REPORT_REASONS
from app.domain.interactions.web import source_words
from app.server.services import services_of, web_session_of
from app.server.templating import is_htmx, render

Tab = Annotated[str, QueryParameter(name="tab")]
Cursor = Annotated[int, QueryParameter(name="cursor", ge=0)]


def player_context(request: Request, tab: str) -> dict[str, Any]:
    """What every page with the swipe player needs (thresholds for the watch-time tracker, labels)."""
    settings = request.app.state.settings
    return {
        "tab": tab,
        "skip_threshold_s": settings.skip_threshold_s,
        "skip_threshold_ratio": settings.skip_threshold_ratio,
        "report_reasons": REPORT_REASONS,
        "source_words": source_words,
    }


async def next_cards(request: Request, tab: str, cursor: int = 0) -> dict[str, Any]:
    """The next page of cards for this browser session, or why there is none."""
    services = services_of(request)
    web_session = web_session_of(request)
    if tab == "following" and not web_session.is_signed_in:
        return {"cards": [], "caught_up": False, "following_prompt": True, "next_cursor": cursor}
    # A guest gets a visitor row on their first feed page, so that their impressions are logged too.
    viewer = await services.accounts.ensure_visitor(web_session)
    cards = await services.feed.next_page(viewer, web_session.token_hash, tab)
    next_cursor = cards[-1].position + 1 if cards else cursor
    return {"cards": cards, "caught_up": not cards, "following_prompt": False, "next_cursor": next_cursor,
            "following_empty": tab == "following" and not cards and cursor == 0}


class FeedController(Controller):
    @get("/")
    async def feed(self, request: Request, tab: Tab = "foryou") -> Response:
        tab = tab if tab in TABS else "foryou"
        services = services_of(request)
        async with services.db.read() as session:
            ready_count = (
                await session.execute(select(func.count()).select_from(Video).where(Video.state == "ready"))
            ).scalar_one()
        context = {**player_context(request, tab), "catalogue_size": ready_count, "cards": []}
        if ready_count:
            context.update(await next_cards(request, tab))
        return render(request, "feed/index.html", context)

    @get("/feed/cards")
    async def cards(self, request: Request, tab: Tab = "foryou", cursor: Cursor = 0) -> Response:
        tab = tab if tab in TABS else "foryou"
        context = {**player_context(request, tab), **await next_cards(request, tab, cursor), "catalogue_size": 1}
        return render(request, "feed/index.html", context, block="cards")

    @post("/feed/restart", status_code=200)
    async def restart(self, request: Request, tab: Tab = "foryou") -> Response:
        """Caught up: forget what this session was served, so the feed can start again from the top."""
        tab = tab if tab in TABS else "foryou"
        services_of(request).feed.served.reset(web_session_of(request).token_hash, tab)
        target = "/?tab=following" if tab == "following" else "/"
        if is_htmx(request):
            return Response("", status_code=200, headers={"HX-Redirect": target})
        return Redirect(target, status_code=303)
