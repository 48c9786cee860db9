"""The keyword index behind search: exact and prefix matches on handles, hashtags, captions and transcripts.

``keyword_ranking(db, query, limit)`` is the one door. On SQLite it asks an FTS5 table ranked by bm25 (a
handle match weighs most, then hashtags, caption, transcript); exact-word matches come before prefix-only
ones. The FTS table is a derived index, like LanceDB: made (and filled from ``videos``) on first use, kept in
step by triggers, re-made if a table rebuild dropped the triggers. Elsewhere (PostgreSQL) the same ranking is
computed portably over ``LIKE`` candidates, so callers never see which one answered.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import weakref

from sqlalchemy import String, cast, or_, select, text

from app.db.engine import Database
from app.db.models import User, Video, published_clause

log = logging.getLogger(__name__)

TABLE = "video_search"
# bm25 column weights: video_id (unindexed), handle, hashtags, caption, transcript.
WEIGHTS = (0.0, 10.0, 6.0, 3.0, 1.0)
WORD = re.compile(r"[^\W_]+", re.UNICODE)
MAX_TERMS = 8

_SOURCE = ("SELECT v.id, COALESCE(u.username, ''), v.hashtags, COALESCE(v.caption, ''),"
           " COALESCE(v.transcript, '') FROM videos v LEFT JOIN users u ON u.id = v.creator_id")
_DDL = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5(video_id UNINDEXED, handle, hashtags, caption,"
    " transcript, tokenize='unicode61 remove_diacritics 2')",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_ai AFTER INSERT ON videos BEGIN
        INSERT INTO {TABLE}(video_id, handle, hashtags, caption, transcript) VALUES (new.id,
          COALESCE((SELECT username FROM users WHERE id = new.creator_id), ''), new.hashtags,
          COALESCE(new.caption, ''), COALESCE(new.transcript, '')); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_au AFTER UPDATE OF caption, hashtags, transcript, creator_id ON videos
        BEGIN DELETE FROM {TABLE} WHERE video_id = old.id;
        INSERT INTO {TABLE}(video_id, handle, hashtags, caption, transcript) VALUES (new.id,
          COALESCE((SELECT username FROM users WHERE id = new.creator_id), ''), new.hashtags,
          COALESCE(new.caption, ''), COALESCE(new.transcript, '')); END""",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_ad AFTER DELETE ON videos BEGIN"
    f" DELETE FROM {TABLE} WHERE video_id = old.id; END",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_uu AFTER UPDATE OF username ON users BEGIN
        UPDATE {TABLE} SET handle = COALESCE(new.username, '')
        WHERE video_id IN (SELECT id FROM videos WHERE creator_id = new.id); END""",
]
_TRIGGERS = {f"{TABLE}_ai", f"{TABLE}_au", f"{TABLE}_ad", f"{TABLE}_uu"}


def terms_of(query: str) -> list[str]:
    """The query's words, lower-cased, without #, @ or punctuation ("@lab.bench" -> lab, bench)."""
    return [w.lower() for w in WORD.findall(query)][:MAX_TERMS]


class KeywordIndex:
    """Per database: whether the FTS5 index is known to be in place in this process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.ready = False
        self.fts = db.is_sqlite
        self._lock = asyncio.Lock()

    async def ensure(self) -> bool:
        if not self.fts or self.ready:
            return self.fts
        async with self._lock:
            if self.ready:
                return True
            try:
                async with self.db.write() as session:
                    present = set((await session.execute(text(
                        "SELECT name FROM sqlite_master WHERE name LIKE :p"), {"p": f"{TABLE}%"})).scalars())
                    if TABLE not in present or not present >= _TRIGGERS:
                        # First use, or a table rebuild dropped the triggers: (re)fill from the videos table.
                        for statement in _DDL:
                            await session.execute(text(statement))
                        await session.execute(text(f"DELETE FROM {TABLE}"))
                        await session.execute(text(
                            f"INSERT INTO {TABLE}(video_id, handle, hashtags, caption, transcript) {_SOURCE}"))
                self.ready = True
            except Exception:  # noqa: BLE001 - an SQLite without FTS5: the portable ranking answers
                log.exception("the FTS5 search index is unavailable; using the portable keyword ranking")
                self.fts = False
        return self.fts


_indexes: weakref.WeakKeyDictionary[Database, KeywordIndex] = weakref.WeakKeyDictionary()


def index_for(db: Database) -> KeywordIndex:
    if db not in _indexes:
        _indexes[db] = KeywordIndex(db)
    return _indexes[db]


async def keyword_ranking(db: Database, query: str, limit: int = 60) -> list[str]:
    """Video ids matching the query's words, best first: exact-word matches, then prefix-only ones."""
    terms = terms_of(query)
    if not terms:
        return []
    if await index_for(db).ensure():
        return await _fts_ranking(db, terms, limit)
    return await portable_ranking(db, terms, limit)


async def _fts_ranking(db: Database, terms: list[str], limit: int) -> list[str]:
    weights = ", ".join(str(w) for w in WEIGHTS)
    statement = text(f"SELECT video_id FROM {TABLE} WHERE {TABLE} MATCH :match"
                     f" ORDER BY bm25({TABLE}, {weights}) LIMIT :limit")
    exact = " AND ".join(f'"{t}"' for t in terms)
    prefix = " AND ".join(f'"{t}"*' for t in terms)
    ranked: dict[str, None] = {}
    async with db.read() as session:
        for match in (exact, prefix):
            for video_id in (await session.execute(statement, {"match": match, "limit": 2 * limit})).scalars():
                ranked.setdefault(video_id, None)
    return list(ranked)[:limit]


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def portable_ranking(db: Database, terms: list[str], limit: int = 60, candidates: int = 2000) -> list[str]:
    """The same order without FTS5: every term must appear; a field's word equal to the term scores more than
    one starting with it, weighted per field as bm25's weights are, damped by field length."""
    conditions = []
    for term in terms:
        pattern = _like(term)
        conditions.append(or_(User.username.ilike(pattern, escape="\\"),
                              cast(Video.hashtags, String).ilike(pattern, escape="\\"),
                              Video.caption.ilike(pattern, escape="\\"), Video.transcript.ilike(pattern, escape="\\")))
    async with db.read() as session:
        rows = (await session.execute(
            select(Video.id, User.username, cast(Video.hashtags, String), Video.caption, Video.transcript)
            .join(User, User.id == Video.creator_id, isouter=True)
            .where(*published_clause(), *conditions).limit(candidates))).all()
    scored = []
    for video_id, *fields in rows:
        words = [terms_of(field or "") for field in fields]
        exact = prefix = 0.0
        for term in terms:
            for weight, field_words in zip(WEIGHTS[1:], words, strict=True):
                if not field_words:
                    continue
                damp = 1 / math.log2(2 + len(field_words))
                if term in field_words:
                    exact += weight * damp
                elif any(w.startswith(term) for w in field_words):
                    prefix += weight * damp
        every_term_exact = all(any(t in ws for ws in words) for t in terms)
        if exact or prefix:
            scored.append((0 if every_term_exact else 1, -(exact + 0.5 * prefix), video_id))
    return [video_id for *_, video_id in sorted(scored)][:limit]


def reciprocal_rank_fusion(rankings: list[tuple[list[str], float]], k: int = 60) -> list[str]:
    """Fuse ranked lists: each id scores sum(weight / (k + rank)). A heavier list leads; items in several rise."""
    scores: dict[str, float] = {}
    for ranking, weight in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores, key=lambda item: -scores[item])
