"""Pages beyond the feed: a video's permalink, creator profiles, hashtags, saved videos and search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter
from litestar.response import File
from sqlalchemy import func, select

from app.config import PROJECT_ROOT, Settings
from app.db.engine import Database
from app.db.models import Like, User, Video
from app.domain.accounts.services import AccountService
from app.domain.feed.controllers import player_context
from app.domain.feed.services import FeedService, hidden_for
from app.domain.interactions.services import InteractionService
from app.domain.interactions.web import visible_video
from app.domain.pages.people import follow_counts
from app.domain.pages.profile import profile_tiles
from app.domain.pages.search import (
    hashtag_videos,
    liked_videos,
    popular_hashtags,
    profile_videos,
    saved_videos,
    search,
    tiles_for,
)
from app.server.guards import login_redirect
from app.server.templating import render
from app.server.web_session import WebSession

Query = Annotated[str, QueryParameter(name="q", max_length=200)]


def absolute(request: Request, path: str) -> str:
    """An absolute URL on the configured public address (never the request's Host header)."""
    return request.app.state.settings.resolved_public_url + path


FAVICON = PROJECT_ROOT / "static" / "favicon.ico"
MAX_GRID_CARDS = 30


@dataclass
class OpenedFrom:
    """The grid a video was opened from: its traffic source, the videos from this one on, and the way back."""

    source: str
    ids: list[str]
    reason: str
    back_href: str
    back_label: str


async def opened_from(request: Request, db: Database, web_session: WebSession, video_id: str) -> OpenedFrom | None:
    """The grid named by ``?from=``, recomputed as its page showed it, from ``video_id`` on (None: no grid)."""
    origin = (request.query_params.get("from") or "")[:120]
    kind, _, value = origin.partition(":")
    viewer = web_session.user
    hidden, _ = await hidden_for(db, viewer.id if viewer else None)
    if kind == "profile" and value:
        async with db.read() as session:
            creator = (await session.execute(select(User).where(User.username == value.lower()))).scalar_one_or_none()
        if creator is None:
            return None
        ids = [v.id for v in await profile_videos(db, creator.id)]
        found = OpenedFrom("profile", ids, f"You opened it from @{creator.username}'s profile",
                           f"/@{creator.username}", f"Back to @{creator.username}")
    elif kind == "tag" and value:
        tag = value.lstrip("#").lower()[:50]
        ids = [v.id for v in await hashtag_videos(db, tag) if v.id not in hidden]
        found = OpenedFrom("hashtag", ids, f"You opened it from #{tag}", f"/tag/{quote(tag)}", f"Back to #{tag}")
    elif kind == "search" and value:
        results = await search(db, value, hidden, getattr(request.app.state, "semantic_search", None))
        ids = [t.video.id for t in results.tiles]
        found = OpenedFrom("search", ids, f"It matched your search “{results.query}”",
                           f"/search?q={quote(results.query)}", "Back to your search")
    elif kind == "saved" and viewer is not None and web_session.is_signed_in:
        ids = [v.id for v in await saved_videos(db, viewer.id)]
        found = OpenedFrom("saved", ids, "You saved it", "/saved", "Back to your saved videos")
    elif kind == "liked" and viewer is not None and web_session.is_signed_in:
        ids = [v.id for v in await liked_videos(db, viewer.id)]
        found = OpenedFrom("profile", ids, "You liked it", f"/@{viewer.username}/liked", "Back to your likes")
    else:
        return None
    if video_id not in found.ids:
        found.ids = [video_id]
    start = found.ids.index(video_id)
    found.ids = found.ids[start:start + MAX_GRID_CARDS]
    return found


class PagesController(Controller):
    @get("/favicon.ico", include_in_schema=False)
    async def favicon(self) -> File:
        return File(FAVICON, media_type="image/x-icon", content_disposition_type="inline",
                    headers={"Cache-Control": "public, max-age=86400"})

    # ---- a video's own page: the same player and actions. Opened from a grid (``from=profile:<name>``,
    # ``tag:<tag>``, ``search:<query>``, ``saved``) it swipes on through that grid in order; otherwise (a shared
    # link, ``share=1``, or a typed one) the For You feed continues after it. ---------------------------------
    @get("/v/{video_id:str}")
    async def video(self, request: Request, video_id: str, settings: Settings, db: Database,
                    accounts: AccountService, feed: FeedService, web_session: WebSession) -> Response:
        video = await visible_video(db, web_session, video_id)
        viewer = web_session.user  # a reading visitor is not stored (app.server.web_session)
        opened = await opened_from(request, db, web_session, video.id)
        if opened is not None:
            cards = await feed.opened_cards(viewer, web_session.token_hash, opened.ids, opened.source, opened.reason,
                                            visitor_id=web_session.visitor_id)
        else:
            shared = request.query_params.get("share") == "1"
            reason = "Someone shared this link with you" if shared else "You opened its link"
            card = await feed.shared_card(viewer, web_session.token_hash, video.id, "share" if shared else "direct",
                                          reason, visitor_id=web_session.visitor_id)
            cards = [card] if card else []
        if not cards or cards[0].video.id != video.id:
            raise NotFoundException()
        card = cards[0]
        handle = f"@{card.creator.username}" if card.creator.username else "ForYou"
        context = {
            **player_context(settings, "foryou"),
            "cards": cards, "caught_up": False, "following_prompt": False, "next_cursor": len(cards),
            "card": card, "handle": handle, "grid_end": opened,
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
            likes_received = (await session.execute(
                select(func.count()).select_from(Like).join(Video, Video.id == Like.video_id)
                .where(Video.creator_id == creator.id))).scalar_one()
        videos = await profile_videos(db, creator.id)
        followers, following = await follow_counts(db, creator.id)
        viewer = web_session.user
        context = {
            "creator": creator, "followers": followers, "following_count": following,
            "likes_received": likes_received, "tiles": await profile_tiles(db, videos), "tab": "videos",
            "is_following": await interactions.is_following(viewer.id if viewer else None, creator.id),
            "own": bool(viewer and viewer.id == creator.id), "grid_from": f"profile:{creator.username}",
        }
        return render(request, "pages/profile.html", context)

    @get("/tag/{tag:str}")
    async def hashtag(self, request: Request, tag: str, db: Database, web_session: WebSession) -> Response:
        tag = tag.lstrip("#").lower()[:50]
        viewer = web_session.user
        hidden, _ = await hidden_for(db, viewer.id if viewer else None)
        tiles = await tiles_for(db, await hashtag_videos(db, tag), hidden)
        return render(request, "pages/tag.html", {"tag": tag, "tiles": tiles, "grid_from": f"tag:{tag}"})

    @get("/saved")
    async def saved(self, request: Request, db: Database, web_session: WebSession) -> Response:
        if not web_session.is_signed_in:
            return login_redirect(request, "/saved")
        videos = await saved_videos(db, web_session.user_id)
        return render(request, "pages/saved.html", {"tiles": await tiles_for(db, videos), "grid_from": "saved"})

    @get("/search")
    async def search(self, request: Request, db: Database, web_session: WebSession, q: Query = "") -> Response:
        viewer = web_session.user
        hidden, _ = await hidden_for(db, viewer.id if viewer else None)
        # The semantic-search hook (see app/domain/pages/search.py): set app.state.semantic_search to use it.
        semantic = getattr(request.app.state, "semantic_search", None)
        results = await search(db, q, hidden, semantic)
        context = {"results": results, "q": results.query, "grid_from": f"search:{results.query}",
                   "hashtags": [] if results.query else await popular_hashtags(db)}
        return render(request, "pages/search.html", context, block="results")
