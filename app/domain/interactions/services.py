"""What a viewer does to a video or a creator: like, save, follow, comment, hide, report.

Every action changes its state table *and* records its seed event, and only when the state really changed
(liking twice is one like and one ``like`` event). Likes, saves, follows and comments do both in the batched
EventWriter's transaction (a ``StateChange``: Core statements, one write transaction for all the actions that
arrive together), and answer with the count the same transaction saw. Undo actions record their own events
(``unlike``, ``unsave``, ``unfollow``). Shares are reported by the browser through the
beacon endpoint (type ``share`` with ``info.platform``), so they are not here.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from markupsafe import Markup
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.models import (
    Comment,
    CommentLike,
    Follow,
    HiddenCreator,
    HiddenVideo,
    Like,
    Report,
    Save,
    User,
    Video,
    utcnow,
)
from app.domain.events.writer import EventIn, EventWriter, insert_ignoring_duplicates
from app.domain.interactions.text import linkify, mentioned_handles

MAX_COMMENT = 500
REPORT_REASONS = {
    "spam": "Spam or misleading",
    "nudity": "Nudity or sexual content",
    "violence": "Violence or dangerous acts",
    "harassment": "Harassment or bullying",
    "hate": "Hate speech",
    "misinformation": "False information",
    "self_harm": "Suicide or self-harm",
    "other": "Something else",
}
# Where on the page an action happened: copied from the card into the event's additional_info.
CONTEXT_KEYS = ("position", "source", "feed", "request_id")


class InteractionError(ValueError):
    """A request that cannot be done, with a message fit to show."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


def event_id(kind: str) -> str:
    return f"{kind[:4]}-{secrets.token_hex(12)}"


def clean_context(raw: dict[str, Any]) -> dict[str, Any]:
    """The card context a request carried (hx-vals), reduced to short scalar values."""
    info: dict[str, Any] = {}
    for key in CONTEXT_KEYS:
        value = raw.get(key)
        if value is None or value == "":
            continue
        if key == "position":
            try:
                info[key] = int(value)
            except (TypeError, ValueError):
                continue
        else:
            info[key] = str(value)[:64]
    return info


@dataclass
class CommentView:
    id: int
    text: str
    user_id: str
    username: str | None
    display_name: str
    created_at: Any
    mine: bool
    parent_id: int | None = None
    like_count: int = 0
    liked: bool = False
    replies: list[CommentView] = field(default_factory=list)
    known_handles: frozenset[str] = frozenset()
    avatar_path: str | None = None  # the commenter's picture (app.domain.accounts.profile)

    @property
    def ago(self) -> str:
        return time_ago(self.created_at)

    @property
    def html(self) -> Markup:
        """The text, escaped, with #tags and @mentions of existing accounts linked."""
        return linkify(self.text, self.known_handles)


def time_ago(when: datetime, now: datetime | None = None) -> str:
    """1m, 3h, 2d, 5w: how long ago, the way comments show it."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = max(0, int(((now or utcnow()) - when).total_seconds()))
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "now"


class VideoRef(NamedTuple):
    """What an action needs of its video: who made it and whether it is published (not the whole row)."""

    id: str
    creator_id: str
    state: str
    moderation: str


class CreatorRef(NamedTuple):
    """What following needs of a creator (and the follow button shows)."""

    id: str
    username: str


@dataclass(frozen=True)
class Toggled:
    """What a like/save/follow did: whether the state changed, and the target's count after it."""

    changed: bool
    count: int


class InteractionService:
    """Likes, saves, follows, comments, hides and reports: each changes its table and records its event."""

    def __init__(self, db: Database, events: EventWriter) -> None:
        self.db = db
        self.events = events

    # ---- look-ups ---------------------------------------------------------------------------------
    async def video(self, video_id: str) -> Video | None:
        async with self.db.read() as session:
            return await session.get(Video, video_id)

    async def creator(self, user_id: str) -> CreatorRef | None:
        """An account that can be followed (not a guest, has a handle), from one Core row."""
        row = await self.db.read_sync(lambda session: session.execute(_CREATOR_BY_ID, {"user_id": user_id}).first())
        return CreatorRef(*row) if row is not None else None

    async def user(self, user_id: str) -> User | None:
        async with self.db.read() as session:
            return await session.get(User, user_id)

    async def _record(self, kind: str, user: User, video_id: str | None, creator_id: str | None,
                      info: dict[str, Any]) -> None:
        await self.events.submit([EventIn(event_id=event_id(kind), event_type=kind, user_id=user.id,
                                          video_id=video_id, creator_id=creator_id, additional_info=info)])

    # ---- likes and saves --------------------------------------------------------------------------
    async def set_like(self, user: User, video: VideoRef | Video, on: bool, info: dict[str, Any]) -> Toggled:
        return await self._toggle(Like, "like" if on else "unlike", on, user, info, _known(video.id, video.creator_id))

    async def set_save(self, user: User, video: VideoRef | Video, on: bool, info: dict[str, Any]) -> Toggled:
        return await self._toggle(Save, "save" if on else "unsave", on, user, info, _known(video.id, video.creator_id))

    async def like_visible(self, user: User, video_id: str, on: bool, info: dict[str, Any],
                           may_view: Callable[[VideoRef], bool]) -> tuple[VideoRef, Toggled] | None:
        """``set_like`` for a video looked up (and ``may_view`` checked) inside the write batch's transaction: one
        hop to the database instead of a read and then the write. None, and nothing written, when the video is
        missing or not ``may_view``."""
        return await self._toggle_found(Like, "like" if on else "unlike", on, user, info,
                                        _video_target(video_id, may_view))

    # ---- follows -------------------------------------------------------------------------------------
    async def set_follow(self, user: User, creator: User | CreatorRef, on: bool, info: dict[str, Any],
                         video_id: str | None = None) -> Toggled:
        """Follow or unfollow; ``count`` is the creator's follower count after it."""
        if creator.id == user.id:
            raise InteractionError("You can't follow yourself.")
        return await self._toggle(Follow, "follow" if on else "unfollow", on, user, info,
                                  lambda _session: (creator, creator.id, video_id, creator.id))

    async def follow_found(self, user: User, creator_id: str, on: bool, info: dict[str, Any],
                           video_id: str | None = None) -> tuple[CreatorRef, Toggled] | None:
        """``set_follow`` for a creator looked up (``creator``'s rule) inside the write batch's transaction. None,
        and nothing written, when there is no such creator; ``InteractionError`` for following oneself."""
        if creator_id == user.id:
            if await self.creator(creator_id) is None:
                return None
            raise InteractionError("You can't follow yourself.")

        def target(session: Session) -> tuple | None:
            row = session.execute(_CREATOR_BY_ID, {"user_id": creator_id}).first()
            return None if row is None else (CreatorRef(*row), creator_id, video_id, creator_id)

        return await self._toggle_found(Follow, "follow" if on else "unfollow", on, user, info, target)

    async def _toggle(self, model: Any, kind: str, on: bool, user: User, info: dict[str, Any],
                      target: Callable[[Session], tuple | None]) -> Toggled:
        found = await self._toggle_found(model, kind, on, user, info, target)
        assert found is not None  # a known target is always found
        return found[1]

    async def _toggle_found(self, model: Any, kind: str, on: bool, user: User, info: dict[str, Any],
                            target: Callable[[Session], tuple | None]) -> tuple[Any, Toggled] | None:
        """Add or remove one (user, target) row and record the event only when the state really changed, in the
        event writer's batch transaction; the target's row count after it. ``target(session)`` (in the same
        transaction) gives (what the caller gets back, the target's id, the event's video and creator ids), or
        None: nothing is written and the answer is None (not an exception: a batch that fails is retried entry
        by entry, which a stream of requests for missing targets must not be able to force)."""
        def apply(session: Session) -> tuple[tuple[Any, Toggled] | None, list[EventIn]]:
            found = target(session)
            if found is None:
                return None, []
            insert, remove, count = _toggle_statements(model, session.bind.dialect.name)
            ref, target_id, video_id, creator_id = found
            keys = {"user_id": user.id, "target": target_id}
            if on:
                result = session.execute(insert, {**keys, "created_at": utcnow()})
            else:
                result = session.execute(remove, keys)
            changed = result.rowcount == 1
            total = session.execute(count, keys).scalar_one()
            events = [EventIn(event_id=event_id(kind), event_type=kind, user_id=user.id, video_id=video_id,
                              creator_id=creator_id, additional_info=info)] if changed else []
            return (ref, Toggled(changed, total)), events

        return await self.events.change(apply)

    async def follow_counts(self, user_id: str) -> tuple[int, int]:
        """(followers, following) of a user."""
        async with self.db.read() as session:
            followers = (await session.execute(
                select(func.count()).select_from(Follow).where(Follow.creator_id == user_id))).scalar_one()
            following = (await session.execute(
                select(func.count()).select_from(Follow).where(Follow.follower_id == user_id))).scalar_one()
        return followers, following

    async def is_following(self, viewer_id: str | None, creator_id: str) -> bool:
        if not viewer_id:
            return False
        async with self.db.read() as session:
            return await session.get(Follow, (viewer_id, creator_id)) is not None

    # ---- comments ------------------------------------------------------------------------------------
    async def comments(self, video_id: str, viewer: User | None, limit: int = 200) -> list[CommentView]:
        """The thread: top-level comments newest first, each with its replies oldest first, like counts, the
        viewer's own likes, and which @mentions name real accounts (only those are linked)."""
        async with self.db.read() as session:
            rows = (await session.execute(
                select(Comment, User).join(User, User.id == Comment.user_id)
                .where(Comment.video_id == video_id).order_by(Comment.created_at.desc(), Comment.id.desc())
                .limit(limit * 5)
            )).all()
            ids = [c.id for c, _ in rows]
            counts: dict[int, int] = {}
            liked: set[int] = set()
            known: frozenset[str] = frozenset()
            if ids:
                counts = dict((await session.execute(
                    select(CommentLike.comment_id, func.count()).where(CommentLike.comment_id.in_(ids))
                    .group_by(CommentLike.comment_id))).all())
                if viewer is not None:
                    liked = set((await session.execute(
                        select(CommentLike.comment_id).where(CommentLike.user_id == viewer.id,
                                                             CommentLike.comment_id.in_(ids)))).scalars())
                handles = set().union(*(mentioned_handles(c.text) for c, _ in rows))
                if handles:
                    known = frozenset((await session.execute(
                        select(User.username).where(User.username.in_(handles)))).scalars())
        viewer_id = viewer.id if viewer else None
        views = {c.id: CommentView(c.id, c.text, u.id, u.username, u.display_name or u.username or "Guest",
                                   c.created_at, c.user_id == viewer_id, c.parent_id, counts.get(c.id, 0),
                                   c.id in liked, [], known, u.avatar_path) for c, u in rows}
        top: list[CommentView] = []
        for view in views.values():  # newest first
            parent = views.get(view.parent_id) if view.parent_id is not None else None
            if view.parent_id is None:
                top.append(view)
            elif parent is not None:
                parent.replies.insert(0, view)  # so replies read oldest first
        return top[:limit]

    async def comment_video(self, comment_id: int) -> str | None:
        async with self.db.read() as session:
            comment = await session.get(Comment, comment_id)
            return comment.video_id if comment else None

    async def comment_count(self, video_id: str) -> int:
        async with self.db.read() as session:
            return (await session.execute(
                select(func.count()).select_from(Comment).where(Comment.video_id == video_id))).scalar_one()

    async def add_comment(self, user: User, video: VideoRef | Video, text: str, info: dict[str, Any],
                          parent_id: int | None = None) -> Comment:
        """A comment, or a reply: a reply to a reply attaches to the top-level comment (one level only)."""
        text = " ".join((text or "").split())  # one line, no runs of whitespace
        if not text:
            raise InteractionError("Write something first.")
        if len(text) > MAX_COMMENT:
            raise InteractionError(f"Comments are at most {MAX_COMMENT} characters.")
        comments = Comment.__table__

        def apply(session: Session) -> tuple[Comment, list[EventIn]]:
            parent = parent_id
            if parent is not None:
                found = (session.execute(select(comments.c.video_id, comments.c.parent_id)
                                               .where(comments.c.id == parent))).first()
                if found is None or found.video_id != video.id:
                    raise InteractionError("The comment you replied to is gone.", 404)
                parent = found.parent_id or parent
            comment = Comment(video_id=video.id, user_id=user.id, text=text, parent_id=parent)
            comment.id = (session.execute(comments.insert().values(
                video_id=comment.video_id, user_id=comment.user_id, text=comment.text,
                created_at=comment.created_at, parent_id=parent))).inserted_primary_key[0]
            extra = {"parent_id": parent} if parent is not None else {}
            return comment, [EventIn(event_id=event_id("comment"), event_type="comment", user_id=user.id,
                                     video_id=video.id, creator_id=video.creator_id,
                                     additional_info={**info, "text": text, "comment_id": comment.id, **extra})]

        return await self.events.change(apply)

    async def set_comment_like(self, user: User, comment_id: int, on: bool) -> tuple[Comment, int, bool]:
        """Like or unlike a comment (idempotent); (the comment, its like count, whether the user likes it)."""
        async with self.db.write() as session:
            comment = await session.get(Comment, comment_id)
            if comment is None:
                raise InteractionError("That comment is gone.", 404)
            row = await session.get(CommentLike, (user.id, comment_id))
            if on and row is None:
                session.add(CommentLike(user_id=user.id, comment_id=comment_id))
            elif not on and row is not None:
                await session.delete(row)
            await session.flush()
            count = (await session.execute(select(func.count()).select_from(CommentLike)
                                           .where(CommentLike.comment_id == comment_id))).scalar_one()
        return comment, count, on

    async def delete_comment(self, user: User, comment_id: int) -> Comment:
        """Delete a comment (its replies and likes go with it)."""
        async with self.db.write() as session:
            comment = await session.get(Comment, comment_id)
            if comment is None:
                raise InteractionError("That comment is gone.", 404)
            if comment.user_id != user.id and user.role != "admin":
                raise InteractionError("You can only delete your own comments.", 403)
            ids = [comment_id, *(await session.execute(
                select(Comment.id).where(Comment.parent_id == comment_id))).scalars()]
            for like in (await session.execute(
                    select(CommentLike).where(CommentLike.comment_id.in_(ids)))).scalars():
                await session.delete(like)
            for reply in (await session.execute(select(Comment).where(Comment.parent_id == comment_id))).scalars():
                await session.delete(reply)
            await session.flush()
            await session.delete(comment)
        return comment

    # ---- not interested and reports ------------------------------------------------------------------
    async def hide(self, user: User, video: VideoRef | Video, creator_too: bool, info: dict[str, Any]) -> None:
        async with self.db.write() as session:
            if await session.get(HiddenVideo, (user.id, video.id)) is None:
                session.add(HiddenVideo(user_id=user.id, video_id=video.id))
            if creator_too and video.creator_id != user.id and \
                    await session.get(HiddenCreator, (user.id, video.creator_id)) is None:
                session.add(HiddenCreator(user_id=user.id, creator_id=video.creator_id))
        await self._record("hide", user, video.id, video.creator_id,
                           {**info, "scope": "creator" if creator_too else "video"})

    async def report(self, user: User, video: VideoRef | Video, reason: str, details: str,
                     info: dict[str, Any]) -> bool:
        if reason not in REPORT_REASONS:
            raise InteractionError("Pick a reason for the report.")
        details = (details or "").strip()[:500]
        async with self.db.write() as session:
            row = (await session.execute(
                select(Report).where(Report.user_id == user.id, Report.video_id == video.id))).scalar_one_or_none()
            is_new = row is None
            if row is None:
                session.add(Report(user_id=user.id, video_id=video.id, reason=reason, details=details))
            else:
                row.reason, row.details = reason, details or row.details
        if is_new:
            await self._record("report", user, video.id, video.creator_id, {**info, "reason": reason})
        return is_new


def _known(video_id: str, creator_id: str) -> Callable[[Session], tuple]:
    return lambda _session: (None, video_id, video_id, creator_id)


_videos = Video.__table__
#: A video's VideoRef columns by id (``:video_id``): what the like path and ``web.visible_target`` check may-view on.
VIDEO_REF_BY_ID = select(_videos.c.id, _videos.c.creator_id, _videos.c.state, _videos.c.moderation).where(
    _videos.c.id == bindparam("video_id"))
_users = User.__table__
#: An account that can be followed (not a guest, has a handle) by id (``:user_id``).
_CREATOR_BY_ID = select(_users.c.id, _users.c.username).where(
    _users.c.id == bindparam("user_id"), _users.c.is_guest.is_(False), _users.c.username.is_not(None))


def _video_target(video_id: str, may_view: Callable[[VideoRef], bool]) -> Callable[[Session], tuple | None]:
    def find(session: Session) -> tuple | None:
        row = session.execute(VIDEO_REF_BY_ID, {"video_id": video_id}).first()
        video = VideoRef(*row) if row is not None else None
        return None if video is None or not may_view(video) else (video, video.id, video.id, video.creator_id)

    return find


@functools.cache
def _toggle_statements(model: Any, dialect: str) -> tuple:  # noqa: ANN001 - Core statements
    """(insert-or-ignore, delete, count of the target's rows) for a (user, target) table, built once per dialect
    (their compiled forms and cache keys are then reused: nothing is built per request)."""
    table = model.__table__
    user_column, target_column = list(table.primary_key.columns)
    where = (user_column == bindparam("user_id"), target_column == bindparam("target"))
    return (insert_ignoring_duplicates(dialect, table).values({user_column.name: bindparam("user_id"),
                                                               target_column.name: bindparam("target"),
                                                               "created_at": bindparam("created_at")}),
            delete(table).where(*where),
            select(func.count()).select_from(table).where(target_column == bindparam("target")))
