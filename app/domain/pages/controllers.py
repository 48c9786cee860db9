"""Pages beyond the feed: a video's permalink, creator profiles, hashtags, saved videos and search."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter
from litestar.response import File
from sqlalchemy import func, select

from app.config import PROJECT_ROOT, Settings
from app.db.engine import Database
from app.db.models import Like, Save, User, Video
from app.domain.accounts.services import AccountService
from app.domain.feed.controllers import player_context
from app.domain.feed.services import FeedService, hidden_for
from app.domain.interactions.services import InteractionService
from app.domain.interactions.web import visible_video
from app.domain.pages.search import PUBLISHED, hashtag_videos, popular_hashtags, search, tiles_for
from app.server.guards import login_redirect
from app.server.templating import render
from app.server.web_session import WebSession

Query = Annotated[str, QueryParameter(name="q", max_length=200)]


def absolute(request: Request, path: str) -> str:
    """An absolute URL on the configured public address (never the request's Host header)."""
    return request.app.state.settings.resolved_public_url + path


FAVICON = PROJECT_ROOT / "static" / "favicon.ico"


class PagesController(Controller):
    @get("/favicon.ico", include_in_schema=False)
    async def favicon(self) -> File:
        return File(FAVICON, media_type="image/x-icon", content_disposition_type="inline",
                    headers={"Cache-Control": "public, max-age=86400"})

    # ---- a video's own page: the same player and actions, then the For You feed continues -----------------
    @get("/v/{video_id:str}")
    async def video(self, request: Request, video_id: str, settings: Settings, db: Database,
                    accounts: AccountService, feed: FeedService, web_session: WebSession) -> Response:
        video = await visible_video(db, web_session, video_id)
        viewer = await accounts.ensure_visitor(web_session)
        card = await feed.shared_card(viewer, web_session.token_hash, video.id)
        if card is None:
            raise NotFoundException()
        handle = f"@{card.creator.username}" if card.creator.username else "ForYou"
        context = {
            **player_context(settings, "foryou"),
            "cards": [card], "caught_up": False, "following_prompt": False, "next_cursor": 1,
            "card": card, "handle": handle,
            "open_comments": request.query_params.get("comments") == "1",
            "og": {
                "title": f"{card.creator.display_name or handle} ({handle}) on ForYou",
                "description": video.caption or f"A video by {handle}",
                "url": absolute(request, f"/v/{video.id}"),
                "image": absolute(request, card.poster_url),
                "video": absolute(request, card.video_url),
                "width": video.width, "height": video.height,
            },
        }
        return render(request, "pages/video.html", context)

    # ---- creator profile: /@username (Litestar path parameters cannot carry a literal prefix) ------------
    @get("/{handle:str}")
    async def profile(self, request: Request, handle: str, db: Database, interactions: InteractionService,
                      web_session: WebSession) -> Response:
        if not handle.startswith("@") or len(handle) < 2:
            raise NotFoundException()
        username = handle[1:].lower()
        async with db.read() as session:
            creator = (await session.execute(
                select(User).where(User.username == username, User.is_guest.is_(False)))).scalar_one_or_none()
            if creator is None or creator.status == "banned":
                raise NotFoundException("No creator by that name.")
            videos = (await session.execute(
                select(Video).where(Video.creator_id == creator.id, *PUBLISHED)
                .order_by(Video.created_at.desc()).limit(120))).scalars().all()
            likes_received = (await session.execute(
                select(func.count()).select_from(Like).join(Video, Video.id == Like.video_id)
                .where(Video.creator_id == creator.id))).scalar_one()
        followers, following = await interactions.follow_counts(creator.id)
        viewer = web_session.user
        context = {
            "creator": creator, "followers": followers, "following_count": following,
            "likes_received": likes_received, "tiles": await tiles_for(db, videos),
            "is_following": await interactions.is_following(viewer.id if viewer else None, creator.id),
            "own": bool(viewer and viewer.id == creator.id),
        }
        return render(request, "pages/profile.html", context)

    @get("/tag/{tag:str}")
    async def hashtag(self, request: Request, tag: str, db: Database, web_session: WebSession) -> Response:
        tag = tag.lstrip("#").lower()[:50]
        viewer = web_session.user
        hidden, _ = await hidden_for(db, viewer.id if viewer else None)
        tiles = await tiles_for(db, await hashtag_videos(db, tag), hidden)
        return render(request, "pages/tag.html", {"tag": tag, "tiles": tiles})

    @get("/saved")
    async def saved(self, request: Request, db: Database, web_session: WebSession) -> Response:
        if not web_session.is_signed_in:
            return login_redirect(request, "/saved")
        async with db.read() as session:
            videos = (await session.execute(
                select(Video).join(Save, Save.video_id == Video.id)
                .where(Save.user_id == web_session.user_id, *PUBLISHED)
                .order_by(Save.created_at.desc()).limit(300))).scalars().all()
        return render(request, "pages/saved.html", {"tiles": await tiles_for(db, videos)})

    @get("/search")
    async def search(self, request: Request, db: Database, web_session: WebSession, q: Query = "") -> Response:
        viewer = web_session.user
        hidden, _ = await hidden_for(db, viewer.id if viewer else None)
        # The semantic-search hook (see app/domain/pages/search.py): set app.state.semantic_search to use it.
        semantic = getattr(request.app.state, "semantic_search", None)
        results = await search(db, q, hidden, semantic)
        context = {"results": results, "q": results.query,
                   "hashtags": [] if results.query else await popular_hashtags(db)}
        return render(request, "pages/search.html", context, block="results")
