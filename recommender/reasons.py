"""Plain-words reasons for a recommendation that are true and say what they came from.

Each reason is a ``Reason``: its words, the ``kind`` of evidence, the candidate ``source`` it explains, and a
``ref`` naming the evidence (the liked or watched item, the picked tag, the followed creator, the trend's
growth, the view count and threshold). The pipeline keeps them in the trace (``trace["final"][i]["evidence"]``)
so a test can check every served reason against the user's history and the candidate's real source.

The first reason explains the card's own source (or another source that also found it: ``also_from``);
further ones add other true facts. Rules:

* ``ann/long_term`` names the liked video nearest to it ("Because you liked ‹title›"), else an onboarding pick
  it matches ("You picked #maps"), else the nearest video watched with enjoyment;
* ``ann/short_term`` names the video of this session nearest to it ("Because you just watched ‹title›", or
  "Because you liked ‹title›" when it was liked);
* ``item2item`` names the anchor whose neighbours contain it ("People who liked ‹title› also liked this");
* ``following`` and the follow add-on say "‹@creator› you follow" (``CREATOR`` is the placeholder the app
  replaces with the card's creator handle);
* trending says by how much: the trends job stores ``trend = log2(growth) / 3``, so growth = 2 ** (3 * trend);
* "Popular right now" only when the video has at least ``POPULAR_MIN_VIEWS`` views *and* is in the top
  ``POPULAR_TOP_SHARE`` of the catalogue by views; otherwise the popular fallback says what it is;
* a liked-tag reason is only given when a liked video really carries that tag, never for onboarding picks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .features.items import C as COUNTER
from .features.users import UserState
from .types import Item

if TYPE_CHECKING:
    from .state import EngineState

MAX_REASONS = 3
STRONG_TREND = 0.5  # trend factor from which a non-trending card also says it is trending (growth 2.8x)
POPULAR_MIN_VIEWS = 50
POPULAR_TOP_SHARE = 0.10  # top decile by views
CREATOR = "{creator}"  # replaced by the app with the card creator's @handle
TITLE_CHARS = 40
SEED_SIMILARITY = 0.2  # the named seed video must be at least this close (cosine) to the recommended one
MAX_SEEDS = 200  # history items looked at when naming a seed


@dataclass(frozen=True)
class Reason:
    text: str
    kind: str  # liked, watched, picked, follow, trending, popular, cf, sound, fresh, explore, random, sequence...
    source: str  # the candidate source this reason explains
    ref: dict[str, Any] = field(default_factory=dict)

    def as_trace(self) -> dict[str, Any]:
        return {"text": self.text, "kind": self.kind, "source": self.source, **self.ref}


def title_of(item: Item | None) -> str:
    """A short title for an item: the first words of its text (the caption), without hashtags."""
    if item is None:
        return "a video"
    words = [w for w in (item.text or "").split() if not w.startswith("#")]
    text = " ".join(words).strip() or (f"#{item.hashtags[0]}" if item.hashtags else "a video")
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"


def liked_items(user: UserState) -> dict[str, float]:
    return getattr(user, "liked", None) or {}  # snapshots from before ``liked`` existed load without it


class _Context:
    def __init__(self, state: EngineState, user: UserState, now: float) -> None:
        self.state, self.user, self.now = state, user, now
        self.catalog = state.catalog
        self._floor: float | None = None
        self._mats: dict[tuple[str, ...], tuple[list[str], np.ndarray | None]] = {}
        self._enjoyed: dict[float, list[str]] = {}
        self._cf: tuple[list[str], np.ndarray, np.ndarray, np.ndarray] | None = None

    def vector(self, item_id: str) -> np.ndarray | None:
        row = self.catalog.row_of.get(item_id)
        if row is None or not self.catalog.has_vector[row]:
            return None
        return self.catalog.vectors[row]

    def _matrix(self, ids: tuple[str, ...]) -> tuple[list[str], np.ndarray | None]:
        """Unit vectors of the given items (those that have one), computed once per request."""
        cached = self._mats.get(ids)
        if cached is None:
            rows = [(i, self.catalog.row_of[i]) for i in ids if i in self.catalog.row_of]
            rows = [(i, r) for i, r in rows if self.catalog.has_vector[r]]
            if rows:
                mat = self.catalog.vectors[[r for _, r in rows]].astype(np.float32)
                mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-9)
                cached = ([i for i, _ in rows], mat)
            else:
                cached = ([], None)
            self._mats[ids] = cached
        return cached

    def nearest(self, item: Item, candidates: list[str]) -> str | None:
        """The candidate item most similar to ``item`` (cosine >= SEED_SIMILARITY), else None."""
        target = self.vector(item.item_id)
        if target is None or not candidates:
            return None
        ids, mat = self._matrix(tuple(candidates[-MAX_SEEDS:]))
        if mat is None:
            return None
        sims = mat @ (target / max(float(np.linalg.norm(target)), 1e-9))
        if item.item_id in ids:  # the item itself is never its own seed (a scan in C, not a loop here)
            sims[[i for i, other in enumerate(ids) if other == item.item_id]] = -np.inf
        best = int(np.argmax(sims))
        return ids[best] if sims[best] >= SEED_SIMILARITY else None

    def enjoyed(self, since: float = 0.0) -> list[str]:
        """Items with net positive engagement (oldest first), optionally only since a time."""
        if since not in self._enjoyed:
            self._enjoyed[since] = [i for i, (net, at) in self.user.engaged.items() if net > 0 and at >= since]
        return self._enjoyed[since]

    def popular_floor(self) -> float:
        """Views needed for "Popular right now": POPULAR_MIN_VIEWS and the catalogue's top decile."""
        if self._floor is None:
            # The decile is a scan of the catalogue: kept until an item, an event or a recount changes the counts.
            runs = self.state.job_runs
            key = ("popular_floor", self.catalog.version, self.state.events.appended, self.state.events.rewrites,
                   *((runs.get(job) or {}).get("at") for job in ("video_stats", "engagement_farming")))
            cached = self.catalog.query_cache.get("popular_floor")
            if cached is not None and cached[0] == key:
                self._floor = cached[1]
                return self._floor
            n = len(self.catalog)
            views = self.catalog.counts[:n, COUNTER["views"]][self.catalog.available[:n]] if n else np.zeros(0)
            decile = float(np.quantile(views, 1.0 - POPULAR_TOP_SHARE)) if len(views) else 0.0
            self._floor = max(float(POPULAR_MIN_VIEWS), decile)
            self.catalog.query_cache["popular_floor"] = (key, self._floor)
        return self._floor

    def views(self, item: Item) -> float:
        row = self.catalog.row_of.get(item.item_id)
        return float(self.catalog.counts[row, COUNTER["views"]]) if row is not None else 0.0

    def _cf_neighbours(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """The user's last MAX_SEEDS enjoyed items that have neighbours, and all their neighbour entries in
        one array (each entry's anchor number, neighbour, weight): gathered once per request, not per card."""
        if self._cf is None:
            similarity = self.state.similarity
            anchors, positions = [], []
            for anchor in self.enjoyed()[-MAX_SEEDS:]:
                a = similarity.index.get(anchor)
                if a is not None:
                    anchors.append(anchor)
                    positions.append(a)
            at = np.array(positions, dtype=np.int64)
            begin, lengths = similarity.indptr[at], similarity.indptr[at + 1] - similarity.indptr[at]
            offsets = np.cumsum(lengths) - lengths
            take = np.repeat(begin - offsets, lengths) + np.arange(int(lengths.sum()))
            self._cf = (anchors, np.repeat(np.arange(len(anchors)), lengths), similarity.neighbors[take],
                        similarity.weights[take])
        return self._cf

    def cf_anchor(self, item: Item) -> str | None:
        """The engaged item whose item-to-item neighbours include ``item`` with the largest weight (the first
        such anchor, oldest first, on a tie; None when no anchor gives it a positive weight)."""
        target = self.state.similarity.index.get(item.item_id)
        if target is None:
            return None
        anchors, owner, neighbours, weights = self._cf_neighbours()
        hits = np.flatnonzero(neighbours == target)
        if not len(hits):
            return None
        owners = owner[hits]
        first = np.ones(len(hits), dtype=bool)  # each anchor's first entry for the item
        first[1:] = owners[1:] != owners[:-1]
        found = weights[hits[first]]
        found = np.where(found > 0, found, 0)  # only positive weights name an anchor
        best = int(np.argmax(found))  # the first of the largest
        return anchors[int(owners[first][best])] if found[best] > 0 else None


def _trending(item: Item, source: str, trend: float) -> Reason:
    growth = 2.0 ** (3.0 * trend)
    times = f"{growth:.1f}".rstrip("0").rstrip(".")
    where = f" in #{item.category}" if item.category else ""
    return Reason(f"Trending{where}: {times}× more engagement than usual", "trending", source,
                  {"trend": round(trend, 4), "growth": round(growth, 2)})


def _picked(item: Item, user: UserState, source: str) -> Reason | None:
    picked = {t.lower().lstrip("#") for t in user.declared_topics}
    for tag in (item.category, *item.hashtags):
        if tag and tag.lower() in picked:
            return Reason(f"You picked #{tag}", "picked", source, {"tag": tag})
    return None


def _liked_same_tag(ctx: _Context, item: Item, source: str) -> Reason | None:
    """A liked video sharing a hashtag with this one (the most recent such like)."""
    tags = set(item.hashtags)
    if not tags:
        return None
    for liked in reversed(list(liked_items(ctx.user))[-MAX_SEEDS:]):
        other = ctx.catalog.get(liked)
        if other is not None and liked != item.item_id and tags & set(other.hashtags):
            tag = sorted(tags & set(other.hashtags))[0]
            return Reason(f"You liked ‹{title_of(other)}›, also #{tag}", "liked", source,
                          {"item_id": liked, "tag": tag})
    return None


def _sound(item: Item, user: UserState, now: float, source: str) -> Reason | None:
    if item.sound_id and user.long_score(("sound", item.sound_id), now) > 0.5:
        return Reason("Uses a sound you've been enjoying", "sound", source, {"sound_id": item.sound_id})
    return None


def _cf(ctx: _Context, anchor: str) -> Reason:
    verb = "liked" if anchor in liked_items(ctx.user) else "enjoyed"
    return Reason(f"People who {verb} ‹{title_of(ctx.catalog.get(anchor))}› also liked this", "cf", "item2item",
                  {"item_id": anchor, "liked": verb == "liked"})


def _similar_to_watched(ctx: _Context, item: Item, source: str) -> Reason | None:
    seed = ctx.nearest(item, ctx.enjoyed())
    if seed:
        return Reason(f"Similar to ‹{title_of(ctx.catalog.get(seed))}›, which you watched", "watched", source,
                      {"item_id": seed})
    return None


def _primary(ctx: _Context, item: Item, source: str, also_from: list[str], trend: float) -> Reason:
    user, now = ctx.user, ctx.now
    if source.startswith("ann/") and "item2item" in also_from:
        # Found by both: when no watched or liked video is close enough to name, the CF anchor is the truth.
        near = ctx.nearest(item, ctx.enjoyed())
        if near is None and (anchor := ctx.cf_anchor(item)):
            return _cf(ctx, anchor)
    if source == "following":
        return Reason(f"New from {CREATOR}, who you follow", "follow", source, {"creator_id": item.creator_id})
    if source == "ann/short_term":
        seed = ctx.nearest(item, ctx.enjoyed(since=user.session.started_at))
        if seed and seed in liked_items(user):
            return Reason(f"Because you liked ‹{title_of(ctx.catalog.get(seed))}›", "liked", source,
                          {"item_id": seed, "since": user.session.started_at})
        if seed:
            return Reason(f"Because you just watched ‹{title_of(ctx.catalog.get(seed))}›", "watched", source,
                          {"item_id": seed, "since": user.session.started_at})
        if watched := _similar_to_watched(ctx, item, source):
            return watched
        return Reason("Similar to what you're watching now", "similar", source)
    if source == "ann/long_term":
        seed = ctx.nearest(item, list(liked_items(user)))
        if seed:
            return Reason(f"Because you liked ‹{title_of(ctx.catalog.get(seed))}›", "liked", source, {"item_id": seed})
        picked = _picked(item, user, source)
        if picked:
            return picked
        if watched := _similar_to_watched(ctx, item, source):
            return watched
        return Reason("Similar to videos you enjoyed", "similar", source)
    if source == "item2item":
        anchor = ctx.cf_anchor(item)
        if anchor:
            return _cf(ctx, anchor)
        return Reason("People with tastes like yours enjoyed this", "cf", source)
    if source == "sequence/next":
        return Reason("Often watched next after videos like your latest ones", "sequence", source)
    if source == "trending":
        return _trending(item, source, trend)
    if source == "sound":
        return _sound(item, user, now, source) or Reason("Uses a sound that's trending", "sound", source)
    if source == "fresh":
        return Reason("A new upload looking for its first viewers", "fresh", source)
    if source == "explore":
        return Reason("Something new to explore", "explore", source)
    if source == "random":
        return Reason("A random pick, so your feed isn't only what we expect you to like", "random", source)
    views = ctx.views(item)
    floor = ctx.popular_floor()
    if views >= floor:
        return Reason(f"Popular right now: {int(views):,} views", "popular", source,
                      {"views": int(views), "floor": floor})
    return Reason("Others are watching it: one of the best-rated videos you haven't seen", "fallback", source,
                  {"views": int(views), "floor": floor})


def context(state: EngineState, user: UserState, now: float) -> _Context:
    """What explaining one page needs, computed once for all its cards."""
    return _Context(state, user, now)


def explain(state: EngineState, item: Item, source: str, also_from: list[str], user: UserState, trend: float,
            now: float, ctx: _Context | None = None) -> list[Reason]:
    """Up to MAX_REASONS true reasons; the first explains ``source``."""
    ctx = ctx or _Context(state, user, now)
    reasons = [_primary(ctx, item, source, also_from, trend)]
    if source != "following" and item.creator_id in user.follows:
        reasons.append(Reason(f"From {CREATOR}, who you follow", "follow", source, {"creator_id": item.creator_id}))
    if source != "trending" and trend >= STRONG_TREND:
        reasons.append(_trending(item, source, trend))
    if reasons[0].kind not in ("liked", "picked"):
        extra = _liked_same_tag(ctx, item, source) or _picked(item, user, source)
        if extra:
            reasons.append(extra)
    if source != "sound" and (sound := _sound(item, user, now, source)):
        reasons.append(sound)
    unique: dict[str, Reason] = {}
    for reason in reasons:
        unique.setdefault(reason.text, reason)
    return list(unique.values())[:MAX_REASONS]


def fill(text: str, creator_handle: str | None) -> str:
    """A reason as shown: ``CREATOR`` replaced by the creator's @handle (or "a creator" when unknown)."""
    return text.replace(CREATOR, f"@{creator_handle}" if creator_handle else "a creator")


def reasons_for(state: EngineState, item: Item, source: str, also_from: list[str], user: UserState, trend: float,
                now: float) -> list[str]:
    return [r.text for r in explain(state, item, source, also_from, user, trend, now)]
