"""Request helpers shared by the feed, interaction and page controllers."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from litestar import Request, Response
from litestar.exceptions import NotFoundException
from litestar.response import Redirect

from app.db.engine import Database
from app.db.models import User, Video
from app.domain.interactions.services import VIDEO_REF_BY_ID, VideoRef
from app.domain.videos.controllers import can_view
from app.server.guards import login_redirect, safe_next
from app.server.templating import is_htmx, render
from app.server.web_session import WebSession

# The candidate sources a card can come from, in plain words ("Why this video?" → "Picked by: ..."). The
# recommender's own reasons (recommender/reasons.py) say the specifics; these only name the source, truthfully.
SOURCE_WORDS = {
    "fresh": "It's new on ForYou",
    "cold_start": "It's new on ForYou",
    "following": "You follow this creator",
    "permalink": "Someone shared the link with you",
    "popular": "It's among the best-rated videos you haven't seen",
    "trending": "Its engagement is growing fast",
    "ann/short_term": "It's close to what you watched this session",
    "ann/long_term": "It's close to what you've liked and watched",
    "item2item": "People who enjoyed the same videos as you enjoyed it",
    "sequence/next": "It's often watched next after what you just watched",
    "sound": "It uses a sound you enjoy, or one that's trending",
    "random": "A random pick, so your feed is never only what we expect",
    "explore": "We're trying something new to learn your taste",
    "exploration": "We're trying something new to learn your taste",
    "search": "It matched your search",
}


NOT_VISIBLE = "That video doesn't exist or isn't available any more."


def source_words(source: str) -> str:
    return SOURCE_WORDS.get(source, f"Picked by the {source.replace('_', ' ')} recommender")


async def request_params(request: Request) -> dict[str, str]:
    """Query parameters plus, for a form post, its fields (htmx sends DELETE parameters in the query)."""
    params = {key: value for key, value in request.query_params.items()}
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params


def go_back(request: Request, default: str) -> Response:
    """A non-htmx form post is answered with a redirect to the page it came from."""
    referer = request.headers.get("referer") or ""
    parts = urlsplit(referer)
    same_site = referer and parts.netloc == request.headers.get("host", "")
    target = safe_next(parts.path + (f"?{parts.query}" if parts.query else "")) if same_site else default
    return Redirect(target, status_code=303)


# What a guest was about to do, in the sign-in sheet's words.
GATED_WORDS = {
    "save": "Log in to save videos",
    "follow": "Log in to follow creators",
    "comment": "Log in to comment",
    "comment_like": "Log in to like comments",
    "report": "Log in to report a video",
}


def sign_in_sheet(request: Request, next_path: str, action: str) -> Response:
    """A guest asked for an action that needs an account.

    htmx gets the sign-in sheet, shown over the page where they are (no navigation), and an
    ``foryou:auth-sheet`` event naming the request to repeat once they have signed in (static/js/app.js does
    it, from the same element, so the feed keeps its place and the action happens). Plain form posts and the
    API keep the redirect to /login?next=.
    """
    if not is_htmx(request) or request.url.path.startswith("/api/"):
        return login_redirect(request, next_path)
    trigger = {"foryou:auth-sheet": {"method": request.method, "path": request.url.path, "action": action}}
    return render(request, "accounts/sheet.html",
                  {"next": safe_next(next_path), "sheet": True, "why": GATED_WORDS.get(action, "Log in to continue")},
                  headers={"HX-Retarget": "#auth-sheet", "HX-Reswap": "innerHTML", "HX-Trigger": json.dumps(trigger)})


def signed_in_user(web_session: WebSession) -> User | None:
    return web_session.user if web_session.is_signed_in else None


async def visible_video(db: Database, web_session: WebSession, video_id: str) -> Video:
    """The video, if this viewer may see it; 404 otherwise (never reveal unpublished videos)."""
    async with db.read() as session:
        video = await session.get(Video, video_id)
    user = web_session.user
    if video is None or not can_view(video, user.id if user else None, user.role if user else None):
        raise NotFoundException(NOT_VISIBLE)
    return video


async def visible_target(db: Database, web_session: WebSession, video_id: str) -> VideoRef:
    """``visible_video`` for actions: the same rule and 404, from one Core row of four columns."""
    row = await db.read_sync(lambda session: session.execute(VIDEO_REF_BY_ID, {"video_id": video_id}).first())
    video = VideoRef(*row) if row is not None else None
    user = web_session.user
    if video is None or not can_view(video, user.id if user else None, user.role if user else None):
        raise NotFoundException(NOT_VISIBLE)
    return video
