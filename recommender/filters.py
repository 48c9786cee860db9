"""Filters: everything a user must not be shown, each named so the trace can say what removed what."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
        words = self.user.muted_words
        if not words:
            return False
        tokens = self.catalog.tokens[row]
        text = None
        for word in words:
            if " " in word:
                text = text if text is not None else self.catalog.items[row].text.lower()
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
