"""Search and the video grids of the profile, hashtag and saved pages.

Search is plain SQL ``ILIKE`` over captions, hashtags, transcripts and creators (case-insensitive on SQLite and
PostgreSQL alike: PostgreSQL's ``LIKE`` is case-sensitive). A semantic search can be plugged in without touching
this module's callers: set ``app.state.semantic_search`` to an async callable
``(query: str, limit: int) -> list[str]`` returning video ids, best first; its hits are listed before the
keyword hits (deduplicated, and filtered exactly like them: published, not hidden by the viewer).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import String, cast, func, or_, select

from app.db.engine import Database
from app.db.models import Like, User, Video, published_clause

log = logging.getLogger(__name__)

SemanticSearch = Callable[[str, int], Awaitable[list[str]]]
MAX_QUERY = 100
PUBLISHED = published_clause()


@dataclass
class Tile:
    """A video in a grid: poster, caption, like count."""

    video: Video
    likes: int
    creator: User | None = None


@dataclass
class SearchResults:
    query: str
    creators: list[User]
    tiles: list[Tile]
    semantic: bool = False


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def tiles_for(db: Database, videos: Iterable[Video], hidden: set[str] | None = None) -> list[Tile]:
    videos = [v for v in videos if not hidden or v.id not in hidden]
    if not videos:
        return []
    ids = [v.id for v in videos]
    async with db.read() as session:
        likes = dict((await session.execute(
            select(Like.video_id, func.count()).where(Like.video_id.in_(ids)).group_by(Like.video_id))).all())
        creators = {u.id: u for u in (await session.execute(
            select(User).where(User.id.in_({v.creator_id for v in videos})))).scalars()}
    return [Tile(v, likes.get(v.id, 0), creators.get(v.creator_id)) for v in videos]


async def videos_by_ids(db: Database, ids: list[str]) -> list[Video]:
    if not ids:
        return []
    async with db.read() as session:
        rows = {v.id: v for v in (await session.execute(select(Video).where(Video.id.in_(ids), *PUBLISHED)))
                .scalars()}
    return [rows[i] for i in ids if i in rows]


async def hashtag_videos(db: Database, tag: str, limit: int = 90) -> list[Video]:
    """Published videos carrying ``#tag``, newest first (LIKE finds candidates, the list check confirms)."""
    async with db.read() as session:
        rows = (await session.execute(
            select(Video).where(*PUBLISHED, cast(Video.hashtags, String).ilike(like_pattern(f'"{tag}"'), escape="\\"))
            .order_by(Video.created_at.desc()).limit(limit * 2)
        )).scalars().all()
    return [v for v in rows if tag in [str(t).lower() for t in (v.hashtags or [])]][:limit]


async def popular_hashtags(db: Database, limit: int = 12) -> list[tuple[str, int]]:
    async with db.read() as session:
        rows = (await session.execute(
            select(Video.hashtags).where(*PUBLISHED).order_by(Video.created_at.desc()).limit(500))).scalars().all()
    counts = Counter(str(tag).lower() for tags in rows for tag in (tags or []))
    return counts.most_common(limit)


async def search(db: Database, raw_query: str, hidden: set[str], semantic: SemanticSearch | None = None,
                 limit: int = 60) -> SearchResults:
    query = " ".join((raw_query or "").split())[:MAX_QUERY]
    if not query:
        return SearchResults("", [], [])
    term = query.lstrip("#@").lower() or query
    pattern = like_pattern(term)
    async with db.read() as session:
        creators = list((await session.execute(
            select(User).where(User.is_guest.is_(False), User.status != "banned",
                               or_(User.username.ilike(pattern, escape="\\"),
                                   User.display_name.ilike(pattern, escape="\\")))
            .order_by(User.username).limit(10)
        )).scalars())
        keyword_hits = list((await session.execute(
            select(Video).where(*PUBLISHED, or_(
                Video.caption.ilike(pattern, escape="\\"),
                cast(Video.hashtags, String).ilike(pattern, escape="\\"),
                Video.transcript.ilike(pattern, escape="\\"),
                Video.topic.ilike(pattern, escape="\\"),
            )).order_by(Video.created_at.desc()).limit(limit)
        )).scalars())
    # ---- the semantic-search hook: its hits come first --------------------------------------------------
    semantic_hits: list[Video] = []
    if semantic is not None:
        try:
            semantic_hits = await videos_by_ids(db, list(await semantic(query, limit)))
        except Exception:  # noqa: BLE001 - keyword search still answers when the semantic index is down
            log.exception("semantic search failed; keyword results only")
    seen: set[str] = set()
    merged = []
    for video in [*semantic_hits, *keyword_hits]:
        if video.id not in seen:
            seen.add(video.id)
            merged.append(video)
    tiles = await tiles_for(db, merged[:limit], hidden)
    return SearchResults(query, creators, tiles, semantic=bool(semantic_hits))
