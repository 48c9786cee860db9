"""Search and the video grids of the profile, hashtag and saved pages.

Search ranks words first: exact and prefix matches on handles, hashtags, captions and transcripts
(``search_index.keyword_ranking``: FTS5 + bm25 on SQLite, a portable ranking elsewhere). Semantic matches
(``app.state.semantic_search``, an async ``(query, limit) -> video ids``) come after, fused with the keyword
list by reciprocal rank fusion with the keyword list weighted double: a video found both ways rises, a video
found only by meaning never passes the leading word matches. Creators are matched on their handle (whole,
prefix, or a prefix of one of its parts: "lena" finds @lab.bench.lena) and display name.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import String, cast, func, or_, select

from app.db.engine import Database
from app.db.models import Like, Save, User, Video, published_clause
from app.domain.pages.search_index import keyword_ranking, reciprocal_rank_fusion

log = logging.getLogger(__name__)

SemanticSearch = Callable[[str, int], Awaitable[list[str]]]
MAX_QUERY = 100
PUBLISHED = published_clause()


@dataclass
class Tile:
    """A video in a grid: poster, caption, like count (and on profile grids, its view count)."""

    video: Video
    likes: int
    creator: User | None = None
    views: int | None = None


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


async def profile_videos(db: Database, creator_id: str, limit: int = 120) -> list[Video]:
    """A creator's published videos, newest first (the profile grid)."""
    async with db.read() as session:
        return list((await session.execute(
            select(Video).where(Video.creator_id == creator_id, *PUBLISHED)
            .order_by(Video.created_at.desc()).limit(limit))).scalars())


async def saved_videos(db: Database, user_id: str, limit: int = 300) -> list[Video]:
    """What a user saved, last saved first (the saved grid)."""
    return await _marked_videos(db, Save, user_id, limit)


async def liked_videos(db: Database, user_id: str, limit: int = 300) -> list[Video]:
    """What a user liked, last liked first (their private Liked tab)."""
    return await _marked_videos(db, Like, user_id, limit)


async def _marked_videos(db: Database, mark: type[Like] | type[Save], user_id: str, limit: int) -> list[Video]:
    async with db.read() as session:
        return list((await session.execute(
            select(Video).join(mark, mark.video_id == Video.id)
            .where(mark.user_id == user_id, *PUBLISHED)
            .order_by(mark.created_at.desc()).limit(limit))).scalars())


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


# RRF weights: keyword matches lead, semantic ones follow.
KEYWORD_WEIGHT = 1.0
SEMANTIC_WEIGHT = 0.5


async def matching_creators(db: Database, query: str, limit: int = 10) -> list[User]:
    """Creators whose handle or display name matches: exact handle, handle prefix, a handle part's prefix,
    then display-name word prefix, then anywhere in the handle."""
    term = query.strip().lstrip("#@").lower()
    if not term:
        return []
    pattern = like_pattern(term)
    async with db.read() as session:
        rows = list((await session.execute(
            select(User).where(User.is_guest.is_(False), User.status != "banned",
                               or_(User.username.ilike(pattern, escape="\\"),
                                   User.display_name.ilike(pattern, escape="\\")))
            .limit(200))).scalars())

    def rank(user: User) -> tuple[int, str]:
        name = (user.username or "").lower()
        parts = re.split(r"[._]", name)
        words = (user.display_name or "").lower().split()
        if name == term:
            return (0, name)
        if name.startswith(term):
            return (1, name)
        if any(part.startswith(term) for part in parts):
            return (2, name)
        if any(word.startswith(term) for word in words):
            return (3, name)
        return (4, name)

    return sorted(rows, key=rank)[:limit]


async def search(db: Database, raw_query: str, hidden: set[str], semantic: SemanticSearch | None = None,
                 limit: int = 60) -> SearchResults:
    query = " ".join((raw_query or "").split())[:MAX_QUERY]
    if not query:
        return SearchResults("", [], [])
    creators = await matching_creators(db, query)
    keyword_ids = await keyword_ranking(db, query, limit)
    semantic_ids: list[str] = []
    if semantic is not None:
        try:
            semantic_ids = list(await semantic(query, limit))
        except Exception:  # noqa: BLE001 - keyword search still answers when the semantic index is down
            log.exception("semantic search failed; keyword results only")
    fused = reciprocal_rank_fusion([(keyword_ids, KEYWORD_WEIGHT), (semantic_ids, SEMANTIC_WEIGHT)])
    videos = await videos_by_ids(db, fused)
    tiles = await tiles_for(db, videos[:limit], hidden)
    found_by_meaning = set(semantic_ids) - set(keyword_ids)
    return SearchResults(query, creators, tiles, semantic=any(t.video.id in found_by_meaning for t in tiles))
