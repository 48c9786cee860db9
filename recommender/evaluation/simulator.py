"""Swipe simulator: simulated users with hidden tastes watch one video at a time.

The policy is asked for a page (``page_size`` items, the app's feed page, excluding what the user already
watched this session); the user watches it one video at a time and the policy sees each event immediately
(``observe``); then the next page is requested. Users are simulated one after another through one simulated
day, so what earlier users did reaches later ones (popularity, co-engagement, periodic jobs).

The world is not ForYou's model. Tastes live on latent factors, and the recommender never sees the data they
were fitted on:

* :class:`CatalogueWorld` -- any catalogue (the app's demo clips, or :func:`synthetic_catalogue`): item factors
  drawn around per-topic and per-creator centres (topics explain part of the taste, not all of it), an item
  quality bias, users drawn from the same factor distribution; background traffic from other drawn users;
* :class:`MovieLensWorld` -- a biased matrix factorisation fitted (alternating least squares on the ratings)
  to a held-out share of MovieLens users; the simulated users are those held-out users, and the recommender's
  background log is the real log of the OTHER users only.

Reactions come from :class:`WatchModel`, with its own parameters (an early swipe-away probability, a Beta-
distributed partial watch, a watch-to-the-end probability, like and hide rates): none of them is a ForYou
threshold. Each world has a validation twin (other users from the same world) that policies are tuned on.

Half way through each session the user's taste changes to another user's (their factors are swapped); the
share of each next page from the new taste's favourites (its top decile, less the old top decile) measures
adaptation.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bootstrap import bootstrap_indices, interval, mean_with_interval, paired_mean_difference
from .data import Dataset, Interaction, ItemInfo
from .embedding import EmbedTexts
from .policies import Policy

log = logging.getLogger(__name__)

__all__ = [
    "CatalogueWorld",
    "MovieLensWorld",
    "OracleFactorPolicy",
    "SimConfig",
    "WatchModel",
    "World",
    "catalogue_from",
    "fit_rating_factors",
    "off_policy_check",
    "simulate",
    "synthetic_catalogue",
    "tune_in_world",
]


@dataclass
class SimConfig:
    n_users: int = 120
    swipes: int = 48
    page_size: int = 6  # the app's feed page size
    shift_fraction: float = 0.5  # the taste shift happens at this share of the session
    n_background_users: int = 300
    background_events: int = 30
    day_seconds: float = 86_400.0
    gap_seconds: float = 1.0  # time between the end of one video and the next
    n_boot: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class WatchModel:
    """How a simulated user reacts to a video of affinity ``a`` in (0, 1).

    * swipes away early with probability ``sigmoid((away_at - a) / away_width)``: watches a ``U(0.01, 0.12)``
      share, flagged as a skip; hides it with probability ``hide_rate * (1 - a)^3``;
    * otherwise watches to the end with probability ``a^full_power``, else a ``Beta`` share with mean
      ``watch_floor + watch_span * a`` and concentration ``concentration``; likes it with probability
      ``like_rate * a^3``.
    """

    away_at: float = 0.35
    away_width: float = 0.08
    watch_floor: float = 0.25
    watch_span: float = 0.7
    concentration: float = 5.0
    full_power: float = 2.0
    like_rate: float = 0.5
    hide_rate: float = 0.15

    def p_away(self, a: np.ndarray | float) -> np.ndarray | float:
        return 1.0 / (1.0 + np.exp(-(self.away_at - np.asarray(a)) / self.away_width))

    def expected_ratio(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=float)
        p_full = a**self.full_power
        stay = p_full + (1.0 - p_full) * (self.watch_floor + self.watch_span * a)
        away = self.p_away(a)
        return away * 0.065 + (1.0 - away) * stay

    def react(self, user: str, item: ItemInfo, a: float, t: float, rng: np.random.Generator) -> Interaction:
        if rng.random() < float(self.p_away(a)):
            ratio = float(rng.uniform(0.01, 0.12))
            hidden = bool(rng.random() < self.hide_rate * (1.0 - a) ** 3)
            return Interaction(user, item.item_id, t, -1.0 if hidden else -0.5, ratio, skipped=True, hidden=hidden)
        if rng.random() < a**self.full_power:
            ratio = 1.0
        else:
            mean = self.watch_floor + self.watch_span * a
            ratio = float(np.clip(rng.beta(self.concentration * mean, self.concentration * (1 - mean)), 0.0, 1.0))
        liked = bool(rng.random() < self.like_rate * a**3)
        return Interaction(user, item.item_id, t, 1.0 if liked else ratio, ratio, liked=liked)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# -- catalogues -------------------------------------------------------------------------------

_TOPIC_WORDS = {
    "space": "rocket launch astronaut orbit moon mars shuttle nasa",
    "cats": "cat kitten purr whiskers tabby meow paws nap",
    "coffee": "espresso latte crema barista beans roast brew cafe",
    "cooking": "recipe pasta kitchen chef garlic sauce oven bake",
    "fitness": "workout gym squat run cardio stretch muscle yoga",
    "music": "guitar piano song beat drum melody concert vocal",
    "travel": "beach mountain city flight hotel passport island hike",
    "gaming": "console speedrun boss level controller pixel quest arcade",
    "science": "experiment lab microscope chemistry physics cell atom data",
    "comedy": "joke prank sketch funny standup laugh meme parody",
    "dance": "choreography dance moves ballet hiphop spin rhythm stage",
    "diy": "woodwork tools build craft paint repair garden workshop",
}


def synthetic_catalogue(
    n_items: int = 300, n_topics: int = 8, n_creators: int = 40, seed: int = 0
) -> list[ItemInfo]:
    """A deterministic synthetic catalogue: items with a topic, a creator (each creator has a
    home topic and posts there 80% of the time), topic words in the text and a 5-60 s duration."""
    rng = random.Random(seed)
    topics = list(_TOPIC_WORDS)[:n_topics]
    creators = [(f"creator{c:03d}", topics[c % len(topics)]) for c in range(n_creators)]
    generic = ["today", "new", "video", "watch", "this", "best", "ever", "short", "clip", "wow", "look"]
    items = []
    for n in range(n_items):
        creator, home = creators[rng.randrange(n_creators)]
        topic = home if rng.random() < 0.8 else rng.choice(topics)
        words = rng.sample(_TOPIC_WORDS[topic].split(), 3) + rng.sample(generic, 2)
        items.append(
            ItemInfo(
                item_id=f"v{n:04d}",
                text=" ".join(words) + f" #{topic}",
                topic=topic,
                creator_id=creator,
                duration=float(rng.randint(5, 60)),
                hashtags=(topic,),
            )
        )
    return items


def catalogue_from(catalogue: Iterable[Any]) -> list[ItemInfo]:
    """Normalise a catalogue: :class:`ItemInfo`, objects with the recommender ``Item`` fields, or
    dicts (``item_id``/``id``, ``creator_id``/``creator``, ``text``/``caption``, ``topic``,
    ``duration``/``duration_s``, ``hashtags``)."""
    out = []
    for obj in catalogue:
        if isinstance(obj, ItemInfo):
            out.append(obj)
            continue
        get = obj.get if isinstance(obj, Mapping) else (lambda k, d=None, o=obj: getattr(o, k, d))
        item_id = get("item_id") or get("id")
        text = get("text") or get("caption") or ""
        hashtags = tuple(get("hashtags") or ())
        topic = get("topic") or (hashtags[0] if hashtags else None) or "unknown"
        duration = float(get("duration") or get("duration_s") or 15.0)
        out.append(
            ItemInfo(
                item_id=str(item_id),
                text=str(text),
                topic=str(topic),
                creator_id=str(get("creator_id") or get("creator") or f"creator-{item_id}"),
                duration=duration,
                hashtags=hashtags,
                uploaded_at=float(get("uploaded_at") or 0.0),
            )
        )
    return out


# -- worlds ----------------------------------------------------------------------------------


class World:
    """Hidden tastes: ``affinity[u]`` (0..1) is how much simulated user ``u`` likes each item before the taste
    shift, ``shifted[u]`` after it; both follow from the world's latent factors."""

    name = "world"
    items: list[ItemInfo]
    affinity: np.ndarray  # (n_users, n_items)
    shifted: np.ndarray  # (n_users, n_items): the user's taste after the shift
    user_ids: list[str]
    background: list[Interaction]
    start_time: float
    watch: WatchModel

    def _finish(self) -> None:
        self.item_index = {it.item_id: n for n, it in enumerate(self.items)}
        self.topics = sorted({it.topic or "unknown" for it in self.items})
        tindex = {t: n for n, t in enumerate(self.topics)}
        self.topic_of = np.array([tindex[it.topic or "unknown"] for it in self.items])
        self.durations = np.array([max(it.duration, 1.0) for it in self.items])
        # the new taste's favourites: its top decile by expected watch time, less the old top decile
        n_top = max(1, len(self.items) // 10)
        new_top = np.argsort(-self.expected_watch(self.shifted), axis=1)[:, :n_top]
        old_top = np.argsort(-self.expected_watch(self.affinity), axis=1)[:, :n_top]
        self.new_favourites = np.zeros_like(self.affinity, dtype=bool)
        for u in range(self.affinity.shape[0]):
            self.new_favourites[u, new_top[u]] = True
            self.new_favourites[u, old_top[u]] = False

    def expected_watch(self, affinity: np.ndarray) -> np.ndarray:
        """Expected seconds watched of every item for a user with these affinities."""
        return self.watch.expected_ratio(affinity) * self.durations


def _swap_tastes(affinity: np.ndarray) -> np.ndarray:
    """After the shift each user has another simulated user's taste (half the population away)."""
    n = affinity.shape[0]
    return affinity[(np.arange(n) + max(n // 2, 1)) % n] if n > 1 else affinity.copy()


class CatalogueWorld(World):
    """Latent-factor tastes over any catalogue. Item factors: ``0.6`` x a topic centre + ``0.5`` x a creator style
    + ``0.6`` x the item's own draw (topics explain about a third of the taste); an item quality bias; users drawn
    from a standard normal. ``variant`` 0 is the test world, 1 its validation twin (same items and background,
    other users)."""

    name = "catalogue"

    def __init__(self, catalogue: Sequence[ItemInfo], config: SimConfig, variant: int = 0, dim: int = 8,
                 start_time: float = 1.7e9, watch: WatchModel | None = None) -> None:
        self.items = list(catalogue)
        self.watch = watch or WatchModel()
        items_rng = np.random.default_rng(config.seed + 101)
        topics = sorted({it.topic or "unknown" for it in self.items})
        creators = sorted({it.creator_id for it in self.items})
        centres = items_rng.normal(size=(len(topics), dim))
        styles = items_rng.normal(size=(len(creators), dim))
        tix = {t: n for n, t in enumerate(topics)}
        cix = {c: n for n, c in enumerate(creators)}
        self.item_factors = (
            0.6 * centres[[tix[it.topic or "unknown"] for it in self.items]]
            + 0.5 * styles[[cix[it.creator_id] for it in self.items]]
            + 0.6 * items_rng.normal(size=(len(self.items), dim))
        )
        self.item_bias = items_rng.normal(0.0, 0.4, len(self.items))
        users_rng = np.random.default_rng(config.seed + 211 + 7919 * variant)
        self.user_factors = users_rng.normal(size=(config.n_users, dim))
        self.affinity = self.affinity_of(self.user_factors)
        self.shifted = _swap_tastes(self.affinity)
        self.user_ids = [f"sim{variant}-{u:04d}" for u in range(config.n_users)]
        self.start_time = start_time
        background_rng = np.random.default_rng(config.seed + 307)
        background_users = background_rng.normal(size=(config.n_background_users, dim))
        self.background = _background_log(self.affinity_of(background_users), self.items, config,
                                          start_time - 2 * 86_400.0, background_rng, self.watch)
        self._finish()

    def affinity_of(self, user_factors: np.ndarray) -> np.ndarray:
        return _sigmoid(0.35 * user_factors @ self.item_factors.T + self.item_bias[None, :] - 0.3)


def _background_log(affinity: np.ndarray, items: Sequence[ItemInfo], config: SimConfig, t0: float,
                    rng: np.random.Generator, watch: WatchModel) -> list[Interaction]:
    """Past traffic of background users: what an earlier feed showed them (half taste-driven, half random) and
    how they reacted, spread over the two days before the simulated day."""
    out: list[Interaction] = []
    n_items = len(items)
    span = 2 * 86_400.0
    for b in range(affinity.shape[0]):
        m = min(config.background_events, n_items)
        w = np.exp(affinity[b] / 0.1)
        w /= w.sum()
        liked = rng.choice(n_items, size=m, replace=False, p=w)
        rand = rng.choice(n_items, size=m, replace=False)
        picks = list(dict.fromkeys(np.where(rng.random(m) < 0.5, liked, rand).tolist()))
        t = t0 + rng.random() * span * 0.8
        for j in picks:
            x = watch.react(f"bg{b:04d}", items[j], float(affinity[b, j]), t, rng)
            out.append(x)
            t += x.watch_ratio * items[j].duration + config.gap_seconds
    return out


def fit_rating_factors(
    ratings: Sequence[tuple[int, int, float]], n_users: int, n_items: int, rank: int = 16, reg: float = 8.0,
    iterations: int = 8, seed: int = 0,
) -> dict[str, Any]:
    """Biased matrix factorisation of explicit ratings by alternating ridge regressions:
    ``r ~ mu + b_u + b_i + U_u . V_i``. Returns ``mu``, ``user_bias``, ``item_bias``, ``U``, ``V``."""
    rng = np.random.default_rng(seed)
    arr = np.asarray(ratings, dtype=float)
    users, items, r = arr[:, 0].astype(int), arr[:, 1].astype(int), arr[:, 2]
    mu = float(r.mean())
    U = rng.normal(0.0, 0.1, (n_users, rank))
    V = rng.normal(0.0, 0.1, (n_items, rank))
    bu, bi = np.zeros(n_users), np.zeros(n_items)
    by_user = [np.flatnonzero(users == u) for u in range(n_users)]
    by_item = [np.flatnonzero(items == i) for i in range(n_items)]
    eye = np.eye(rank + 1) * reg
    for _ in range(iterations):
        for u, idx in enumerate(by_user):
            if idx.size:
                x = np.hstack([V[items[idx]], np.ones((idx.size, 1))])
                sol = np.linalg.solve(x.T @ x + eye, x.T @ (r[idx] - mu - bi[items[idx]]))
                U[u], bu[u] = sol[:-1], sol[-1]
        for i, idx in enumerate(by_item):
            if idx.size:
                x = np.hstack([U[users[idx]], np.ones((idx.size, 1))])
                sol = np.linalg.solve(x.T @ x + eye, x.T @ (r[idx] - mu - bu[users[idx]]))
                V[i], bi[i] = sol[:-1], sol[-1]
            else:
                V[i], bi[i] = 0.0, 0.0
    return {"mu": mu, "user_bias": bu, "item_bias": bi, "U": U, "V": V}


_ML_FITS: dict[tuple[str, int, int], dict[str, Any]] = {}


class MovieLensWorld(World):
    """Tastes from a factor model fitted on MovieLens users the recommender never sees.

    A seeded ``held_out`` share of the users is set aside: the factor model is fitted on their ratings only,
    and they are the simulated users (``variant`` 0: every other one of them, the test world; 1: the rest, the
    validation world). The recommender's background log is the real log of the OTHER users. Affinity is
    ``sigmoid(1.5 (predicted rating - 3.6))``; a taste shift swaps in another held-out user's factors."""

    name = "ml-100k"

    def __init__(self, dataset: Dataset, config: SimConfig, variant: int = 0, held_out: float = 0.4,
                 watch: WatchModel | None = None) -> None:
        self.watch = watch or WatchModel()
        users = dataset.user_ids
        order = users[:]
        random.Random(config.seed + 23).shuffle(order)
        world_users = sorted(order[: int(len(order) * held_out)])
        keep_out = set(world_users)
        self.background = [x for x in dataset.interactions if x.user_id not in keep_out]
        first_seen: dict[str, float] = {}
        for x in self.background:
            first_seen.setdefault(x.item_id, x.timestamp)
        ids = sorted(dataset.items)
        self.items = [dataclasses.replace(dataset.items[i], uploaded_at=first_seen.get(i, 0.0)) for i in ids]
        index = {i: n for n, i in enumerate(ids)}
        uindex = {u: n for n, u in enumerate(world_users)}
        key = (dataset.name, config.seed, len(dataset.interactions))
        if key not in _ML_FITS:
            ratings = [(uindex[x.user_id], index[x.item_id], x.rating) for x in dataset.interactions
                       if x.user_id in keep_out and x.rating is not None and x.item_id in index]
            _ML_FITS[key] = fit_rating_factors(ratings, len(world_users), len(ids), seed=config.seed)
        fit = _ML_FITS[key]
        chosen = list(range(variant % 2, len(world_users), 2))[: config.n_users]
        self.user_factors = fit["U"][chosen]
        self.user_bias = fit["user_bias"][chosen]
        self.fit = fit
        self.affinity = self.affinity_of(self.user_factors, self.user_bias)
        self.shifted = _swap_tastes(self.affinity)
        self.user_ids = [f"mlsim{world_users[c]}" for c in chosen]
        self.start_time = max(x.timestamp for x in dataset.interactions) + 86_400.0
        self._finish()

    def affinity_of(self, user_factors: np.ndarray, user_bias: np.ndarray) -> np.ndarray:
        f = self.fit
        predicted = f["mu"] + user_bias[:, None] + f["item_bias"][None, :] + user_factors @ f["V"].T
        return _sigmoid(1.5 * (predicted - 3.6))


# -- simulation ------------------------------------------------------------------------------


class OracleFactorPolicy:
    """Reads the world's latent factors: knows each user's current affinities (the shift included) and shows
    the best expected watch time first. No policy can beat it in expectation; the simulator must say so."""

    name = "oracle"

    def __init__(self, world: World) -> None:
        self.world = world
        self.current: dict[str, np.ndarray] = {}

    def fit(self, train: Sequence[Interaction], items: Mapping[str, ItemInfo], now: float) -> None:
        return None

    def recommend(self, user: str, k: int, exclude: frozenset[str] = frozenset(), now: float | None = None):
        value = self.world.expected_watch(self.current[user]).astype(float)
        for i in exclude:
            j = self.world.item_index.get(i)
            if j is not None:
                value[j] = -np.inf
        order = np.argsort(-value, kind="stable")[:k]
        return [self.world.items[j].item_id for j in order if np.isfinite(value[j])]

    def observe(self, event: Interaction) -> None:
        return None


@dataclass
class LoggedSlot:
    """One impression of the random-exposure slice: the context at the page request, the item, its propensity
    and the watch ratio the user gave it."""

    user: int
    user_id: str
    exclude: frozenset[str]
    t: float
    events_before: int  # how many events of the run's log came before the page request
    item: int
    propensity: float
    ratio: float
    shifted: bool


@dataclass
class _Trace:
    watch: list[list[float]] = field(default_factory=list)  # per user, per swipe seconds watched
    likes: list[int] = field(default_factory=list)
    skips: list[int] = field(default_factory=list)
    hides: list[int] = field(default_factory=list)
    shares: list[list[float]] = field(default_factory=list)  # per user, new-taste share of each page
    watched: list[list[int]] = field(default_factory=list)  # per user, item indices watched
    events: list[Interaction] = field(default_factory=list)
    random_slots: list[LoggedSlot] = field(default_factory=list)
    impressions: int = 0
    empty_pages: int = 0
    seconds: float = 0.0


def _session_shape(n_items: int, config: SimConfig) -> tuple[int, int]:
    """(swipes, shift_at): whole pages, capped by the catalogue; the shift falls on a page boundary."""
    page = max(config.page_size, 1)
    swipes = min(config.swipes, max(n_items - page, 2))
    swipes = max(page, swipes - swipes % page)
    shift_at = int(round(swipes * config.shift_fraction / page)) * page
    return swipes, min(shift_at, swipes - page)


def _run_policy(policy: Policy, world: World, config: SimConfig) -> _Trace:
    """Each user: ask for a page (``page_size`` items, the app's feed page), watch it one video at a
    time (every event observed immediately), then ask for the next page."""
    t_start = time.perf_counter()
    items_by_id = {it.item_id: it for it in world.items}
    policy.fit(world.background, items_by_id, world.start_time)
    trace = _Trace()
    swipes, shift_at = _session_shape(len(world.items), config)
    for u, user in enumerate(world.user_ids):
        rng = np.random.default_rng([config.seed, u])
        affinity = world.affinity[u]
        if isinstance(policy, OracleFactorPolicy):
            policy.current[user] = affinity
        t = world.start_time + u * config.day_seconds / max(len(world.user_ids), 1)
        seen_set: set[str] = set()
        watch, shares, watched = [], [], []
        likes = skips = hides = 0
        s = 0
        while s < swipes:
            if s == shift_at:
                affinity = world.shifted[u]
                if isinstance(policy, OracleFactorPolicy):
                    policy.current[user] = affinity
            exclude = frozenset(seen_set)
            page = list(policy.recommend(user, config.page_size, exclude, t))
            page = list(dict.fromkeys(i for i in page if i in world.item_index and i not in seen_set))
            page = page[: config.page_size]
            randomised = {r.item_id: r.propensity for r in getattr(policy, "last_page", ())
                          if getattr(r, "source", None) == "random" and r.propensity}
            trace.impressions += len(page)
            if s >= shift_at:
                shares.append(sum(world.new_favourites[u, world.item_index[i]] for i in page) / config.page_size)
            while len(page) < config.page_size:  # a short page is topped up at random (counted)
                trace.empty_pages += 1
                rest = [it.item_id for it in world.items if it.item_id not in seen_set and it.item_id not in page]
                if not rest:
                    break
                page.append(rest[int(rng.integers(len(rest)))])
            events_before = len(trace.events)
            for item_id in page:
                if s >= swipes:
                    break
                j = world.item_index[item_id]
                x = world.watch.react(user, world.items[j], float(affinity[j]), t, rng)
                policy.observe(x)
                trace.events.append(x)
                if item_id in randomised:
                    trace.random_slots.append(LoggedSlot(u, user, exclude, t, events_before, j,
                                                         randomised[item_id], x.watch_ratio, s >= shift_at))
                seconds = x.watch_ratio * world.items[j].duration
                watch.append(seconds)
                watched.append(j)
                likes += x.liked
                skips += x.skipped
                hides += x.hidden
                seen_set.add(item_id)
                t += seconds + config.gap_seconds
                s += 1
        trace.watch.append(watch)
        trace.likes.append(likes)
        trace.skips.append(skips)
        trace.hides.append(hides)
        trace.shares.append(shares)
        trace.watched.append(watched)
    trace.seconds = time.perf_counter() - t_start
    return trace


def _swipes_to_half(shares: Sequence[float], page_size: int) -> int | None:
    """Swipes after the shift until a page is at least half from the new taste's favourites (pages are
    requested every ``page_size`` swipes; 0 = the first page after the shift already was)."""
    for n, share in enumerate(shares):
        if share >= 0.5:
            return n * page_size
    return None


def _summarise(traces: dict[str, _Trace], world: World, vectors: np.ndarray, config: SimConfig,
               ours: str = "foryou") -> dict:
    n_users = len(world.user_ids)
    totals = {m: np.array([sum(w) for w in tr.watch]) for m, tr in traces.items()}
    idx = bootstrap_indices(n_users, config.n_boot, config.seed)
    lo_ref = totals.get("random")
    hi_ref = totals.get("oracle")
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    n_creators = len({it.creator_id for it in world.items})
    out: dict[str, Any] = {"methods": {}, "comparisons": {}}

    def gap_samples(tot: np.ndarray) -> np.ndarray:
        return (tot[idx].mean(1) - lo_ref[idx].mean(1)) / np.maximum(hi_ref[idx].mean(1) - lo_ref[idx].mean(1),
                                                                      1e-9)

    for m, tr in traces.items():
        tot = totals[m]
        n_swipes = max(sum(len(w) for w in tr.watch), 1)
        res: dict[str, Any] = {
            "watch_time_per_session": mean_with_interval(tot, config.n_boot, config.seed),
            "likes_per_session": mean_with_interval(tr.likes, config.n_boot, config.seed),
            "skip_rate": float(np.sum(tr.skips) / n_swipes),
            "hide_rate": float(np.sum(tr.hides) / n_swipes),
            "watch_curve": np.cumsum(np.mean(np.array(tr.watch), axis=0)).tolist(),
            "seconds": tr.seconds,
            "empty_pages": tr.empty_pages,
        }
        if lo_ref is not None and hi_ref is not None:
            gap = hi_ref.mean() - lo_ref.mean()
            point = (tot.mean() - lo_ref.mean()) / gap if gap > 0 else float("nan")
            res["gap_share"] = {"value": float(point), "ci": list(interval(gap_samples(tot)))}
        shares = np.array(tr.shares) if tr.shares and tr.shares[0] else np.zeros((n_users, 0))
        if shares.size:
            halves = [_swipes_to_half(row, config.page_size) for row in shares]
            horizon = shares.shape[1] * config.page_size
            censored = np.array([h if h is not None else horizon for h in halves], dtype=float)
            res["adaptation"] = {
                "curve": shares.mean(axis=0).tolist(),
                "curve_swipes": [n * config.page_size for n in range(shares.shape[1])],
                "new_taste_share": mean_with_interval(shares.mean(axis=1), config.n_boot, config.seed),
                "swipes_to_half_median": float(np.median(censored)),
                "reached_half": float(np.mean([h is not None for h in halves])),
                "horizon": horizon,
            }
        ild, topics_per = [], []
        for seq in tr.watched:
            if len(seq) >= 2:
                mat = unit[seq]
                sims = mat @ mat.T
                m_ = len(seq)
                ild.append(1.0 - (sims.sum() - np.trace(sims)) / (m_ * (m_ - 1)))
            topics_per.append(len({int(world.topic_of[j]) for j in seq}))
        all_watched = {j for seq in tr.watched for j in seq}
        res["feed_diversity"] = {
            "ild": float(np.mean(ild)) if ild else 0.0,
            "distinct_topics_per_session": float(np.mean(topics_per)) if topics_per else 0.0,
        }
        res["creator_coverage"] = len({world.items[j].creator_id for j in all_watched}) / max(n_creators, 1)
        res["catalogue_coverage"] = len(all_watched) / max(len(world.items), 1)
        out["methods"][m] = res
    if ours in totals:
        for m, tot in totals.items():
            if m == ours:
                continue
            comp: dict[str, Any] = {
                "watch_time_per_session": paired_mean_difference(totals[ours], tot, config.n_boot, config.seed)}
            if lo_ref is not None and hi_ref is not None:
                diff = gap_samples(totals[ours]) - gap_samples(tot)
                point = out["methods"][ours]["gap_share"]["value"] - out["methods"][m]["gap_share"]["value"]
                comp["gap_share"] = {"diff": float(point), "ci": list(interval(diff))}
            out["comparisons"][m] = comp
    return out


def simulate(
    world: World,
    policies: Mapping[str, Callable[[], Policy]],
    config: SimConfig,
    embed_texts: EmbedTexts,
    ours: str = "foryou",
) -> dict[str, Any]:
    """Run every policy (plus the random and oracle references) through ``world``; return results."""
    vectors = np.asarray(embed_texts([it.text for it in world.items]), dtype=float)
    factories: dict[str, Callable[[], Any]] = {
        "random": lambda: _random_policy(config.seed),
        "oracle": lambda: OracleFactorPolicy(world),
    }
    factories.update(policies)
    traces = {}
    for name, make in factories.items():
        traces[name] = _run_policy(make(), world, config)
        log.info("simulated %s in world %s: %.1fs", name, world.name, traces[name].seconds)
    summary = _summarise(traces, world, vectors, config, ours=ours)
    swipes, shift_at = _session_shape(len(world.items), config)
    summary.update(
        {
            "world": world.name,
            "n_users": len(world.user_ids),
            "n_items": len(world.items),
            "n_topics": len(world.topics),
            "n_background_events": len(world.background),
            "swipes": swipes,
            "page_size": config.page_size,
            "shift_at": shift_at,
        }
    )
    return summary


def tune_in_world(
    make: Callable[[dict[str, Any]], Policy], grid: Sequence[dict[str, Any]], world: World, config: SimConfig,
    budget: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Try up to ``budget`` configs in a validation world; the best by mean watch time per session wins."""
    configs = list(grid[:budget]) or [{}]
    if len(configs) == 1:
        return configs[0], [{"config": configs[0], "note": "one config: not tuned"}]
    trials = []
    for cfg in configs:
        trace = _run_policy(make(cfg), world, config)
        trials.append({"config": cfg, "watch_time_per_session": float(np.mean([sum(w) for w in trace.watch])),
                       "seconds": trace.seconds})
    best = max(trials, key=lambda t: t["watch_time_per_session"])
    return best["config"], trials


def off_policy_check(
    world: World, logging_policy: Policy, targets: Mapping[str, Callable[[], Policy]], config: SimConfig,
    share: float,
) -> dict[str, Any]:
    """Log a run of ``logging_policy`` (whose random-exposure slice is set to ``share``), then for each target
    policy compare its SNIPS estimate of mean watch ratio from the random slots with the simulated truth (the
    mean expected watch ratio of the target's own page at the same contexts). The target replays the log: it
    observes every event that came before each logged page request, then is asked for its page there."""
    from scipy.stats import binomtest

    from .off_policy import snips

    trace = _run_policy(logging_policy, world, config)
    slots = sorted(trace.random_slots, key=lambda s: s.events_before)
    shown = len(slots)
    result: dict[str, Any] = {
        "logging_share": share,
        "impressions": trace.impressions,
        "random_impressions": shown,
        "share_test": {"observed": shown / max(trace.impressions, 1),
                       "p_value": float(binomtest(shown, max(trace.impressions, 1), share).pvalue) if shown else None},
        "targets": {},
    }
    for name, make in targets.items():
        policy = make()
        policy.fit(world.background, {it.item_id: it for it in world.items}, world.start_time)
        done = 0
        in_page, truths = [], []
        for slot in slots:
            while done < slot.events_before:
                policy.observe(trace.events[done])
                done += 1
            affinity = world.shifted[slot.user] if slot.shifted else world.affinity[slot.user]
            if isinstance(policy, OracleFactorPolicy):
                policy.current[slot.user_id] = affinity
            page = [world.item_index[i] for i in policy.recommend(slot.user_id, config.page_size, slot.exclude,
                                                                  slot.t) if i in world.item_index]
            in_page.append(slot.item in page)
            truths.append(float(world.watch.expected_ratio(affinity[page]).mean()) if page else float("nan"))
        target_prob = np.array(in_page, dtype=float) / config.page_size
        estimate = snips(np.array([s.ratio for s in slots]), target_prob, np.array([s.propensity for s in slots]),
                         groups=np.array([s.user for s in slots]), n_boot=config.n_boot, seed=config.seed)
        truth = float(np.nanmean(truths)) if truths else float("nan")
        lo, hi = estimate["ci"]
        estimate.update({"truth": truth, "truth_in_interval": bool(lo <= truth <= hi) if lo is not None else None})
        result["targets"][name] = estimate
    return result


def _random_policy(seed: int) -> Policy:
    from .policies import RandomPolicy

    return RandomPolicy(seed=seed)
