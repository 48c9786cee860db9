"""The swipe feed: the page, its next cards (htmx, cursor-based) and "start over" once caught up.

The page renders the first cards itself; a loader at the end of the list asks ``GET /feed/cards`` for the
next ones (htmx ``intersect``, and the player's "near the end" signal) and is replaced by them plus a new
loader, or by the "You're all caught up" card when nothing is left. FeedService never serves a video twice
to one browser session (keyed by the session's token hash), so the cursor only numbers the cards.
"""

from __future__ import annotations

import time
import weakref
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect
from sqlalchemy import exists, func, select

from app.config import Settings
from app.db.engine import Database
from app.db.models import Event, User, Video, published_clause
from app.domain.accounts.services import AccountService
from app.domain.feed.recommender import RecommenderService
from app.domain.feed.services import TABS, FeedService
from app.domain.interactions.services import REPORT_REASONS
from app.domain.interactions.web import source_words
from app.server.templating import is_htmx, render
from app.server.web_session import WebSession, web_session_of

Tab = Annotated[str, QueryParameter(name="tab")]
Cursor = Annotated[int, QueryParameter(name="cursor", ge=0)]


def player_context(settings: Settings, tab: str) -> dict[str, Any]:
    """What every page with the swipe player needs (thresholds for the watch-time tracker, labels)."""
    return {
        "tab": tab,
        "skip_threshold_s": settings.skip_threshold_s,
        "skip_threshold_ratio": settings.skip_threshold_ratio,
        "skip_short_clip_s": settings.skip_short_clip_s,
        "report_reasons": REPORT_REASONS,
        "source_words": source_words,
    }


async def next_cards(feed: FeedService, web_session: WebSession, tab: str, cursor: int = 0) -> dict[str, Any]:
    """The next page of cards for this browser session, or why there is none."""
    if tab == "following" and not web_session.is_signed_in:
        return {"cards": [], "caught_up": False, "following_prompt": True, "next_cursor": cursor}
    # A reading visitor is not stored (app.server.web_session): its impressions wait for its first action.
    viewer = web_session.user
    cards = await feed.next_page(viewer, web_session.token_hash, tab, visitor_id=web_session.visitor_id)
    next_cursor = cards[-1].position + 1 if cards else cursor
    # "Nothing from creators you follow" only when there is truly nothing; otherwise "caught up" + start over.
    following_empty = tab == "following" and not cards and not await feed.following_videos(viewer, limit=1)
    return {"cards": cards, "caught_up": not cards, "following_prompt": False, "next_cursor": next_cursor,
            "following_empty": following_empty}


InterestsForm = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
MAX_ONBOARDING_TOPICS = 12


TOPICS_CACHE_S = 30.0
_topics_cache: weakref.WeakKeyDictionary[Database, tuple[float, list[str]]] = weakref.WeakKeyDictionary()


async def onboarding_topics(db: Database, user: User | None) -> list[str]:
    """Topics to offer a first-time visitor, most common first; empty once they chose or skipped, or swiped.

    The catalogue's topics are kept for a few seconds (every guest's first page shows them): counting the
    published videos on every page view to see whether they changed cost a scan of the catalogue per view."""
    if user is not None and (user.preferences or {}).get("onboarded"):
        return []
    cached = _topics_cache.get(db)
    fresh = cached is not None and time.monotonic() - cached[0] < TOPICS_CACHE_S

    def _read(connection) -> tuple[bool, list[str] | None]:  # noqa: ANN001 - (swiped already, topics unless cached)
        if user is not None and connection.execute(select(Event.id).where(
                Event.user_id == user.id, Event.event_type != "impression").limit(1)).first():
            return True, None
        if fresh:
            return False, None
        return False, [topic for topic, _ in connection.execute(
            select(Video.topic, func.count()).where(*published_clause(), Video.topic.is_not(None))
            .group_by(Video.topic).order_by(func.count().desc()).limit(MAX_ONBOARDING_TOPICS)).all() if topic]

    swiped, topics = (False, None) if user is None and fresh else await db.read_core(_read)
    if swiped:
        return []
    if topics is None:
        return list(cached[1])
    _topics_cache[db] = (time.monotonic(), topics)
    return list(topics)


class FeedController(Controller):
    # The two hot pages take one dependency (a handler with several has Litestar resolve them in a task group
    # per request); the session and settings come with the request.
    @get("/")
    async def feed(self, request: Request, feed: FeedService, tab: Tab = "foryou") -> Response:
        tab = tab if tab in TABS else "foryou"
        web_session, db = web_session_of(request), feed.db

        def _catalogue(connection) -> tuple[bool, int]:  # noqa: ANN001 - any published video; else how many processing
            # EXISTS stops at the first published video: a count here scanned the whole catalogue per page view.
            published = bool(connection.execute(select(exists().where(*published_clause()))).scalar_one())
            return published, 0 if published else connection.execute(
                select(func.count()).select_from(Video).where(Video.state == "processing")).scalar_one()

        # The cards first: served cards are published videos, so the catalogue is only looked at when there are none
        # (nothing published, some processing, or caught up): one database read fewer for nearly every page view.
        page = await next_cards(feed, web_session, tab)
        published, processing = (True, 0) if page["cards"] else await db.read_core(_catalogue)
        # The template only tells an empty catalogue (processing or not) from one with something to show.
        context = {**player_context(request.app.state.settings, tab), "catalogue_size": int(published),
                   "cards": [], "processing_count": processing}
        if published:
            if tab == "foryou":
                context["onboarding_topics"] = await onboarding_topics(db, web_session.user)
            context.update(page)
        return render(request, "feed/index.html", context)

    @post("/onboarding/interests", status_code=200)
    async def choose_interests(self, data: InterestsForm, db: Database, accounts: AccountService, feed: FeedService,
                               recommender: RecommenderService, web_session: WebSession) -> Response:
        """The first-visit "what are you into?" step: declared topics seed a cold feed (or none, to skip)."""
        viewer = await accounts.ensure_visitor(web_session)
        raw = data.get("topics", [])
        chosen = [t.strip().lower()[:48] for t in ([raw] if isinstance(raw, str) else raw) if t.strip()][:12]
        async with db.write() as session:
            user = await session.get(User, viewer.id)
            user.preferences = {**(user.preferences or {}), "categories": chosen, "onboarded": True}
        viewer.preferences = {**(viewer.preferences or {}), "categories": chosen, "onboarded": True}
        if chosen and recommender.engine is not None:
            recommender.engine.set_declared_interests(viewer.id, chosen)
            feed.served.reset(web_session.token_hash, "foryou")  # the first page is redone for them
        return Response("", status_code=200, headers={"HX-Refresh": "true"} if chosen else None)

    @get("/feed/cards")
    async def cards(self, request: Request, feed: FeedService, tab: Tab = "foryou", cursor: Cursor = 0) -> Response:
        tab = tab if tab in TABS else "foryou"
        context = {**player_context(request.app.state.settings, tab),
                   **await next_cards(feed, web_session_of(request), tab, cursor), "catalogue_size": 1}
        return render(request, "feed/index.html", context, block="cards")

    @post("/feed/restart", status_code=200)
    async def restart(self, request: Request, feed: FeedService, web_session: WebSession,
                      tab: Tab = "foryou") -> Response:
        """Caught up: forget what this session was served, so the feed can start again from the top."""
        tab = tab if tab in TABS else "foryou"
        feed.served.reset(web_session.token_hash, tab)
        target = "/?tab=following" if tab == "following" else "/"
        if is_htmx(request):
            return Response("", status_code=200, headers={"HX-Redirect": target})
        return Redirect(target, status_code=303)
