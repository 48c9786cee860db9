"""What a profile shows besides its videos: liked videos, follower and following lists, view counts.

A *view* is one ``view`` event: the player logs one per playback of a card (it grows in place while the same
playback goes on, so a replay-loop is still one view), whatever the watch time, skips included. The creator's
own playbacks are not counted. Impressions (a card shown on screen) are counted apart, in the studio only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, or_, select

from app.db.engine import Database
from app.db.models import Event, Follow, User, Video

MAX_LIST = 500


@dataclass
class Person:
    """A row of a follower/following list."""

    user: User
    viewer_follows: bool


def _ids(videos: Iterable[Video | str]) -> list[str]:
    return [v if isinstance(v, str) else v.id for v in videos]


async def event_counts(db: Database, videos: Iterable[Video], event_type: str) -> dict[str, int]:
    """``event_type`` events per video id, not counting its creator's own."""
    rows = list(videos)
    if not rows:
        return {}
    async with db.read() as session:
        counts = (await session.execute(
            select(Event.video_id, func.count()).join(Video, Video.id == Event.video_id)
            .where(Event.video_id.in_(_ids(rows)), Event.event_type == event_type,
                   or_(Event.user_id.is_(None), Event.user_id != Video.creator_id))
            .group_by(Event.video_id))).all()
    return {video_id: count for video_id, count in counts}


async def view_counts(db: Database, videos: Iterable[Video]) -> dict[str, int]:
    return await event_counts(db, videos, "view")


def _listed() -> tuple:
    """Who appears in follower lists (and so in their counts): accounts, not guests or banned ones."""
    return (User.is_guest.is_(False), User.status != "banned")


async def follow_counts(db: Database, user_id: str) -> tuple[int, int]:
    """(followers, following) as the lists show them."""
    async with db.read() as session:
        followers = (await session.execute(
            select(func.count()).select_from(Follow).join(User, User.id == Follow.follower_id)
            .where(Follow.creator_id == user_id, *_listed()))).scalar_one()
        following = (await session.execute(
            select(func.count()).select_from(Follow).join(User, User.id == Follow.creator_id)
            .where(Follow.follower_id == user_id, *_listed()))).scalar_one()
    return followers, following


async def follow_list(db: Database, user_id: str, direction: str, viewer_id: str | None,
                      limit: int = MAX_LIST) -> list[Person]:
    """``direction`` "followers": who follows ``user_id``; "following": whom they follow. Newest first."""
    mine, other = ((Follow.creator_id, Follow.follower_id) if direction == "followers"
                   else (Follow.follower_id, Follow.creator_id))
    async with db.read() as session:
        users = list((await session.execute(
            select(User).join(Follow, other == User.id).where(mine == user_id, *_listed())
            .order_by(Follow.created_at.desc()).limit(limit))).scalars())
        followed: set[str] = set()
        if viewer_id and users:
            followed = set((await session.execute(select(Follow.creator_id).where(
                Follow.follower_id == viewer_id, Follow.creator_id.in_([u.id for u in users])))).scalars())
    return [Person(u, u.id in followed) for u in users]
