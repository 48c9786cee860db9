"""The JSON API, ``/api/v1``: recommendations (seed 004), video metadata, events in, the caller's likes and
follows, search. Callers authenticate with a personal access token (``Authorization: Bearer fy_...``) whose
scopes say what it may do (``read``, ``write``); each token may make ``api_rate_per_second`` calls a second
(seed 002's gateway limit), answered 429 with ``Retry-After`` beyond that. Documented at ``/schema``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from sqlalchemy import and_, func, or_, select

from app.db.models import Comment, Follow, Like, User, Video, published_clause
from app.domain.api import schemas as s
from app.domain.api.feeds import ApiFeedService, CursorCodec, InvalidCursor
from app.domain.api.tokens import Caller, TokenService
from app.domain.events.schemas import EventValidationError, parse_beacon_batch
from app.domain.events.writer import EventIn
from app.domain.feed.services import hidden_for
from app.domain.pages.search import search as search_catalogue
from app.domain.sounds.services import sounds_of_videos
from app.server.errors import http_exception_handler

SECURITY_SCHEME = "PersonalAccessToken"
MAX_SEARCH_QUERY = 200


@dataclass
class ApiKit:
    """What the API's handlers need, built once by the app factory (``app.state.api``)."""

    db: Any
    events: Any
    tokens: TokenService
    feeds: ApiFeedService
    cursors: CursorCodec
    semantic_search: Any = None


ApiDep = NamedDependency[ApiKit]


def _iso(when: datetime) -> str:
    return when.isoformat()


# ---- authentication, scopes, rate limit ---------------------------------------------------------------------

def _bearer(request: Request) -> str:
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


async def provide_caller(request: Request, api: ApiDep) -> Caller:
    secret = _bearer(request)
    if not secret:
        raise NotAuthorizedException("Send a personal access token: Authorization: Bearer <token>.",
                                     headers={"WWW-Authenticate": 'Bearer realm="foryou"'})
    caller = await api.tokens.authenticate(secret)
    if caller is None:
        raise NotAuthorizedException("This token is unknown or revoked.",
                                     headers={"WWW-Authenticate": 'Bearer realm="foryou", error="invalid_token"'})
    needed = request.route_handler.opt.get("scope", "read")
    if needed not in caller.scopes:
        raise PermissionDeniedException(f"This token lacks the {needed!r} scope.")
    return caller


def rate_limit_key(request: Request) -> str:
    """Per token (a hash of the presented secret); callers without one share their address's budget."""
    secret = _bearer(request)
    return "token:" + hashlib.sha256(secret.encode()).hexdigest() if secret else "addr:" + get_remote_address(request)


def too_many_requests(request: Request, exc: TooManyRequestsException) -> Response:
    response = http_exception_handler(request, exc)
    reset = (exc.headers or {}).get("RateLimit-Reset", "1")
    response.headers["Retry-After"] = str(max(1, int(reset) if str(reset).isdigit() else 1))
    return response


class ApiProblem(HTTPException):
    """A client error answered as ``{"error", "problems"}`` (the beacon's shape for invalid events)."""

    def __init__(self, status_code: int, error: str, problems: list[str] | None = None) -> None:
        super().__init__(detail=error, status_code=status_code)
        self.problems = problems or []


def api_problem(_request: Request, exc: ApiProblem) -> Response:
    return Response({"error": exc.detail, "problems": exc.problems}, status_code=exc.status_code)


ERRORS = {
    400: ResponseSpec(s.Problem, description="Invalid request or cursor."),
    401: ResponseSpec(s.Problem, description="Missing, unknown or revoked token."),
    403: ResponseSpec(s.Problem, description="The token lacks the scope."),
    429: ResponseSpec(s.Problem, description="Over the per-token rate limit; see Retry-After."),
}


# ---- hydration ------------------------------------------------------------------------------------------------

def _creator(user: User) -> s.Creator:
    return s.Creator(id=user.id, username=user.username, display_name=user.display_name or user.username or "")


async def video_views(api: ApiKit, ids: list[str]) -> list[s.VideoOut]:
    """Published videos by id, in the given order, with counts and their sound."""
    if not ids:
        return []
    async with api.db.read() as session:
        videos = {v.id: v for v in (await session.execute(
            select(Video).where(Video.id.in_(ids), *published_clause()))).scalars()}
        creators = {u.id: u for u in (await session.execute(
            select(User).where(User.id.in_({v.creator_id for v in videos.values()})))).scalars()}
        likes = dict((await session.execute(select(Like.video_id, func.count()).where(Like.video_id.in_(ids))
                                            .group_by(Like.video_id))).all())
        comments = dict((await session.execute(select(Comment.video_id, func.count())
                                               .where(Comment.video_id.in_(ids)).group_by(Comment.video_id))).all())
        sounds = await sounds_of_videos(session, ids)
    out = []
    for vid in ids:
        video = videos.get(vid)
        if video is None or video.creator_id not in creators:
            continue
        sound = sounds.get(vid)
        out.append(s.VideoOut(
            id=video.id, creator=_creator(creators[video.creator_id]), caption=video.caption,
            hashtags=[str(t) for t in video.hashtags or []], topic=video.topic, duration=float(video.duration),
            width=video.width, height=video.height, language=video.language, created_at=_iso(video.created_at),
            like_count=likes.get(vid, 0), comment_count=comments.get(vid, 0),
            sound=s.SoundRef(sound.id, sound.title, sound.usage_count) if sound else None,
            video_url=f"/media/{vid}/video.mp4", poster_url=f"/media/{vid}/poster.jpg",
            captions_url=f"/media/{vid}/captions.vtt" if video.transcript else None,
        ))
    return out


def _bad_cursor(exc: InvalidCursor) -> ApiProblem:
    return ApiProblem(400, str(exc))


# ---- the endpoints ----------------------------------------------------------------------------------------------

CallerDep = NamedDependency[Caller]
Query = Annotated[str, Parameter(min_length=1, max_length=MAX_SEARCH_QUERY, description="What to look for.")]
LimitQuery = Annotated[int, Parameter(ge=1, le=50, description="How many items (1-50).")]
CursorQuery = Annotated[str | None, Parameter(max_length=1024, description="next_cursor of the previous page.")]


class ApiV1Controller(Controller):
    path = "/"
    tags = ["api"]

    @get("/me", responses=ERRORS, summary="The token's owner and scopes")
    async def me(self, caller: CallerDep) -> s.Me:
        user = caller.user
        return s.Me(id=user.id, username=user.username, display_name=user.display_name,
                    scopes=sorted(caller.scopes))

    @post("/recommendations", status_code=200, responses=ERRORS, summary="Recommendations (seed 004)")
    async def recommendations(self, data: JSONBody[s.RecommendationsRequest], caller: CallerDep,
                              api: ApiDep) -> s.RecommendationsPage:
        """The caller's For You feed, one page at a time. Pass ``next_cursor`` back as ``cursor`` for the next
        page: pages never repeat or skip an item. ``reason`` is why the recommender picked the video."""
        if data.user_id is not None and data.user_id != caller.user.id:
            raise PermissionDeniedException("A token can only ask for its owner's recommendations.")
        try:
            page = await api.feeds.page(caller.user.id, data.limit, data.cursor)
        except InvalidCursor as exc:
            raise _bad_cursor(exc) from None
        return s.RecommendationsPage(
            items=[s.RecommendationItem(i.video_id, i.score, i.reason, i.reasons, i.source) for i in page.items],
            has_more=page.has_more, next_cursor=page.next_cursor)

    @get("/videos/{video_id:str}", responses={**ERRORS, 404: ResponseSpec(s.Problem, description="No such video.")},
         summary="A published video's metadata")
    async def video(self, video_id: str, caller: CallerDep, api: ApiDep) -> s.VideoOut:
        views = await video_views(api, [video_id[:64]])
        if not views:
            raise NotFoundException("No published video has this id.")
        return views[0]

    @post("/events", status_code=202, opt={"scope": "write"},
          responses={**ERRORS, 422: ResponseSpec(s.Problem, description="Invalid events; none were stored.")},
          summary="Send watch events (the beacon's rules)")
    async def events(self, data: JSONBody[s.EventsRequest], caller: CallerDep, api: ApiDep) -> s.EventsAccepted:
        """The same validation as the feed page's beacon (all or nothing) and the same de-duplication: an
        ``event_id`` sent again is counted as a duplicate and changes nothing (a view's watch time may grow)."""
        payload = msgspec.to_builtins(data)
        try:
            _, events = parse_beacon_batch(payload)
        except EventValidationError as exc:
            raise ApiProblem(422, "Some events are invalid; none were stored.", exc.problems) from None
        video_ids = {event.video_id for event in events}
        async with api.db.read() as session:
            creators = dict((await session.execute(
                select(Video.id, Video.creator_id).where(Video.id.in_(video_ids)))).all())
        unknown = sorted(video_ids - set(creators))
        if unknown:
            raise ApiProblem(422, "Some events are invalid; none were stored.",
                             [f"Unknown video id {vid!r}." for vid in unknown])
        stored = await api.events.submit([
            EventIn(event_id=event.event_id, event_type=event.event_type, user_id=caller.user.id,
                    video_id=event.video_id, creator_id=creators[event.video_id],
                    watch_duration=event.watch_duration, additional_info={**event.info, "platform": "api"})
            for event in events
        ])
        new = sum(1 for item in stored if item.is_new)
        return s.EventsAccepted(accepted=new, duplicates=len(stored) - new)

    @get("/me/likes", responses=ERRORS, summary="Videos the caller liked, newest first")
    async def likes(self, caller: CallerDep, api: ApiDep, limit: LimitQuery = 20,
                    cursor: CursorQuery = None) -> s.LikesPage:
        query = select(Like.video_id, Like.created_at).where(Like.user_id == caller.user.id)
        rows, next_cursor = await _newest_first_page(api, caller.user.id, "likes", query, Like.created_at,
                                                     Like.video_id, cursor, limit, key=lambda row: row[0])
        return s.LikesPage(items=[s.LikeOut(video_id=vid, liked_at=_iso(at)) for vid, at in rows],
                           has_more=next_cursor is not None, next_cursor=next_cursor)

    @get("/me/follows", responses=ERRORS, summary="Creators the caller follows, newest first")
    async def follows(self, caller: CallerDep, api: ApiDep, limit: LimitQuery = 20,
                      cursor: CursorQuery = None) -> s.FollowsPage:
        query = (select(User, Follow.created_at).join(Follow, Follow.creator_id == User.id)
                 .where(Follow.follower_id == caller.user.id))
        rows, next_cursor = await _newest_first_page(api, caller.user.id, "follows", query, Follow.created_at,
                                                     Follow.creator_id, cursor, limit, key=lambda row: row[0].id)
        return s.FollowsPage(items=[s.FollowOut(creator=_creator(user), followed_at=_iso(at)) for user, at in rows],
                             has_more=next_cursor is not None, next_cursor=next_cursor)

    @get("/search", responses=ERRORS, summary="Search videos and creators")
    async def search(self, caller: CallerDep, api: ApiDep, q: Query, limit: LimitQuery = 20) -> s.SearchOut:
        hidden, _ = await hidden_for(api.db, caller.user.id)
        results = await search_catalogue(api.db, q, hidden, api.semantic_search, limit=limit)
        videos = await video_views(api, [tile.video.id for tile in results.tiles])
        return s.SearchOut(query=results.query, creators=[_creator(u) for u in results.creators], videos=videos)


def api_router(rate_per_second: int) -> Router:
    limiter = RateLimitConfig(rate_limit=("second", rate_per_second), identifier_for_request=rate_limit_key,
                              store="api_rate_limit")
    return Router(
        path="/api/v1", route_handlers=[ApiV1Controller],
        dependencies={"caller": Provide(provide_caller)},
        middleware=[limiter.middleware],
        exception_handlers={TooManyRequestsException: too_many_requests, ApiProblem: api_problem},
        security=[{SECURITY_SCHEME: []}],
    )


async def _newest_first_page(api, user_id: str, kind: str, query, at_column, id_column,  # noqa: ANN001
                             cursor: str | None, limit: int, key) -> tuple[list, str | None]:  # noqa: ANN001
    """One keyset page of ``query`` (rows ending in the timestamp), newest first, ties broken by id descending."""
    try:
        if cursor:
            at, last = api.cursors.decode(user_id, kind, cursor)
            when = datetime.fromisoformat(at)
            query = query.where(or_(at_column < when, and_(at_column == when, id_column < last)))
    except (InvalidCursor, ValueError, TypeError) as exc:
        raise _bad_cursor(exc if isinstance(exc, InvalidCursor) else InvalidCursor("Bad cursor.")) from None
    async with api.db.read() as session:
        rows = (await session.execute(query.order_by(at_column.desc(), id_column.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = api.cursors.encode(user_id, kind, _iso(rows[-1][1]), key(rows[-1])) if more else None
    return rows, next_cursor
