"""Filters: everything a user must not be shown, each named so the trace can say what removed what."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .catalog import Catalog
from .config import RecommenderConfig
from .features.users import UserState
from .types import normalize_tag

# Filters that may be relaxed (in this order) when nothing else is left, so a feed is never empty.
RELAXABLE = ("seen", "served_this_session")


def normalize_muted(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({normalize_tag(w) for w in words if normalize_tag(w)}))


@dataclass
class FilterContext:
    user: UserState
    catalog: Catalog
    config: RecommenderConfig
    now: float
    caller_exclude: frozenset[str]

    def seen_recently(self, item_id: str) -> bool:
        at = self.user.seen.get(item_id)
        return at is not None and at >= self.now - self.config.seen_window_seconds

    def muted(self, row: int) -> bool:
        return is_muted(self.catalog, row, self.user.muted_words)


def is_muted(catalog: Catalog, row: int, words: tuple[str, ...]) -> bool:
    if not words:
        return False
    tokens = catalog.tokens[row]
    text = None
    for word in words:
        if " " in word:
            text = text if text is not None else catalog.items[row].text.lower()
            if word in text:
                return True
        elif word in tokens:
            return True
    return False


# Every filter, in the order they are checked (the first that matches is the one reported).
FILTER_NAMES: tuple[str, ...] = (
    "unavailable",
    "own_video",
    "blocked_creator",
    "hidden",
    "reported",
    "muted_word",
    "excluded_by_caller",
    "served_this_session",
    "seen",
)


def first_failing(ctx: FilterContext, row: int, skip: frozenset[str] = frozenset()) -> str | None:
    """Name of the first filter that removes ``row``, or None if it may be shown."""
    item = ctx.catalog.items[row]
    user = ctx.user
    if not ctx.catalog.available[row]:
        return "unavailable"
    if item.creator_id == user.user_id:
        return "own_video"
    if item.creator_id in user.blocked_creators:
        return "blocked_creator"
    if item.item_id in user.hidden_items or item.creator_id in user.hidden_creators:
        return "hidden"
    if item.item_id in user.reported_items:
        return "reported"
    if user.muted_words and ctx.muted(row):
        return "muted_word"
    if item.item_id in ctx.caller_exclude:
        return "excluded_by_caller"
    if item.item_id in user.session.served and "served_this_session" not in skip:
        return "served_this_session"
    if "seen" not in skip and ctx.seen_recently(item.item_id):
        return "seen"
    return None


def known_exclusions(ctx: FilterContext) -> set[str]:
    """Item ids excluded without looking at the item: lets candidate sources skip them while filling quotas."""
    user = ctx.user
    cutoff = ctx.now - ctx.config.seen_window_seconds
    excluded = {item_id for item_id, at in user.seen.items() if at >= cutoff}
    excluded |= user.hidden_items | user.reported_items | user.session.served | set(ctx.caller_exclude)
    return excluded


MAX_REJECTIONS_PER_DRAW = 64


class EligibleRows:
    """Every row ``first_failing`` lets through, without listing them: the size is the available rows less the
    available rows some filter removes, and those are found from the user's own lists (their creators, hidden,
    reported, served and seen items, the caller's exclusions) plus, for muted words, one scan of the catalogue
    cached until the catalogue changes. Draws are uniform by rejection over the catalogue's rows, so they
    depend on the rows alone (a restored snapshot and a replay draw the same items)."""

    def __init__(self, ctx: FilterContext) -> None:
        self.ctx = ctx
        catalog, user = ctx.catalog, ctx.user
        row_of, available = catalog.row_of, catalog.available
        removed: set[int] = set()
        for creator in (user.user_id, *user.blocked_creators, *user.hidden_creators):
            removed.update(row_of[i] for i in catalog.by_creator.get(creator, ()))
        removed.update(row_of[i] for i in known_exclusions(ctx) if i in row_of)
        removed.update(_muted_rows(catalog, user.muted_words))
        self.removed = {row for row in removed if available[row]}
        self.size = catalog.available_count - len(self.removed)

    def sample(self, count: int, rng) -> np.ndarray:  # noqa: ANN001 - np.random.Generator
        catalog = self.ctx.catalog
        n, available = len(catalog), catalog.available
        picked: list[int] = []
        for _ in range(MAX_REJECTIONS_PER_DRAW * count):
            row = int(rng.integers(n))
            if available[row] and row not in self.removed and row not in picked:
                picked.append(row)
                if len(picked) == count:
                    return np.array(picked, dtype=np.int64)
        # Most of the catalogue filtered out for this user: list what is left (the rare slow path).
        rest = np.array([row for row in np.flatnonzero(available[:n]).tolist() if row not in self.removed],
                        dtype=np.int64)
        return rng.choice(rest, size=min(count, len(rest)), replace=False)


def _muted_rows(catalog: Catalog, words: tuple[str, ...]) -> frozenset[int]:
    if not words:
        return frozenset()
    cache = catalog.query_cache.get(("muted", words))
    if cache is not None and cache[0] == catalog.version:
        return cache[1]
    rows = frozenset(row for row in range(len(catalog)) if is_muted(catalog, row, words))
    if len(catalog.query_cache) > 256:
        catalog.query_cache.clear()
    catalog.query_cache[("muted", words)] = (catalog.version, rows)
    return rows
