"""Swipe simulator: simulated users with hidden tastes watch one video at a time.

The policy is asked for a page (``page_size`` items, the app's feed page, excluding what the user
already watched this session); the user watches it one video at a time -- watch ratio, like,
skip and hide follow from the user's hidden affinity for the item plus noise, and the policy sees
each event immediately (``observe``) -- then the next page is requested. Users are simulated one
after another through one simulated day, so what earlier users did reaches later ones
(popularity, co-engagement, periodic jobs).

Two worlds of hidden tastes:

* :class:`TopicWorld` -- a topic-preference model over any catalogue of items with topics (the
  app's demo catalogue, or :func:`synthetic_catalogue` in tests): Dirichlet topic preferences,
  per-item quality, per-creator affinity and a text-similarity term;
* :class:`RatingsWorld` -- tastes drawn from real MovieLens ratings (observed ratings as they
  are; unobserved ones completed by a low-rank model fitted to all ratings, minus a
  missing-not-at-random penalty). Background traffic is the real log of the other users.

Half way through each session the user starts liking a topic they were cold on; the share of
each next page from that topic measures adaptation speed.
"""

from __future__ import annotations

import logging
import math
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
    "RatingsWorld",
    "SimConfig",
    "TopicWorld",
    "World",
    "catalogue_from",
    "simulate",
    "synthetic_catalogue",
]


@dataclass
class SimConfig:
    n_users: int = 120
    swipes: int = 48
    page_size: int = 6  # the app's feed page size
    shift_fraction: float = 0.5  # the taste shift happens at this share of the session
    noise: float = 0.15
    n_background_users: int = 300
    background_events: int = 30
    day_seconds: float = 86_400.0
    gap_seconds: float = 1.0  # time between the end of one video and the next
    n_boot: int = 1000
    seed: int = 0


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
    """Hidden tastes. ``affinity[u]`` (0..1) is how much simulated user ``u`` likes each item."""

    name = "world"
    items: list[ItemInfo]
    affinity: np.ndarray  # (n_users, n_items)
    user_ids: list[str]
    background: list[Interaction]
    start_time: float

    def __init__(self) -> None:
        self.item_index = {}
        self.topic_of: np.ndarray = np.zeros(0)
        self.durations: np.ndarray = np.zeros(0)

    def _finish(self) -> None:
        self.item_index = {it.item_id: n for n, it in enumerate(self.items)}
        self.topics = sorted({it.topic or "unknown" for it in self.items})
        tindex = {t: n for n, t in enumerate(self.topics)}
        self.topic_of = np.array([tindex[it.topic or "unknown"] for it in self.items])
        self.durations = np.array([max(it.duration, 1.0) for it in self.items])

    def shift_target(self, u: int, min_items: int) -> int:
        """The topic user ``u`` will start liking: their least-liked topic with enough items."""
        counts = np.bincount(self.topic_of, minlength=len(self.topics))
        means = np.array(
            [self.affinity[u, self.topic_of == t].mean() if counts[t] else np.inf for t in range(len(self.topics))]
        )
        means[counts < min_items] = np.inf
        if not np.isfinite(means).any():
            means = np.where(counts > 0, 0.0, np.inf)
        return int(np.argmin(means))

    def shifted(self, u: int, topic: int, rng: np.random.Generator) -> np.ndarray:
        """User ``u``'s affinities after they start liking ``topic``: its items become the favourites
        (0.75-1.0, by a per-item draw) and every other item loses a fifth of its appeal."""
        a = self.affinity[u] * 0.8
        mask = self.topic_of == topic
        a = a.copy()
        a[mask] = 0.75 + 0.25 * rng.random(int(mask.sum()))
        return a


class TopicWorld(World):
    """Topic-preference tastes over a catalogue of items with topics."""

    name = "topics"

    def __init__(
        self, catalogue: Sequence[ItemInfo], vectors: np.ndarray, config: SimConfig, start_time: float = 1.7e9
    ) -> None:
        super().__init__()
        self.items = list(catalogue)
        self._finish()
        rng = np.random.default_rng(config.seed + 17)
        n_items, n_topics = len(self.items), len(self.topics)
        creators = sorted({it.creator_id for it in self.items})
        cindex = {c: n for n, c in enumerate(creators)}
        creator_of = np.array([cindex[it.creator_id] for it in self.items])
        quality = rng.beta(2.0, 2.0, n_items)
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
        n_all = config.n_users + config.n_background_users

        def tastes(n: int) -> np.ndarray:
            prefs = rng.dirichlet(np.full(n_topics, 0.4), n)
            prefs = prefs / prefs.max(axis=1, keepdims=True)
            creator_aff = rng.normal(0.0, 0.08, (n, len(creators)))
            anchor = unit[rng.integers(0, n_items, n)]
            text = anchor @ unit.T
            a = 0.1 + 0.6 * prefs[:, self.topic_of] + 0.2 * quality[None, :] + creator_aff[:, creator_of] + 0.1 * text
            return np.clip(a, 0.0, 1.0)

        all_aff = tastes(n_all)
        self.affinity = all_aff[: config.n_users]
        self.user_ids = [f"sim{u:04d}" for u in range(config.n_users)]
        self.start_time = start_time
        self.background = _background_log(
            all_aff[config.n_users :], self.items, config, start_time - 2 * 86_400.0, rng
        )


def _background_log(
    affinity: np.ndarray, items: Sequence[ItemInfo], config: SimConfig, t0: float, rng: np.random.Generator
) -> list[Interaction]:
    """Past traffic of background users: what an existing feed showed them (70% taste-driven,
    30% random) and how they reacted, spread over two days before the simulated day."""
    log: list[Interaction] = []
    n_items = len(items)
    span = 2 * 86_400.0
    for b in range(affinity.shape[0]):
        m = min(config.background_events, n_items)
        w = np.exp(affinity[b] / 0.1)
        w /= w.sum()
        liked = rng.choice(n_items, size=m, replace=False, p=w)
        rand = rng.choice(n_items, size=m, replace=False)
        picks = list(dict.fromkeys(np.where(rng.random(m) < 0.7, liked, rand).tolist()))
        t = t0 + rng.random() * span * 0.8
        for j in picks:
            x = react(f"bg{b:04d}", items[j], float(affinity[b, j]), t, config.noise, rng)
            log.append(x)
            t += x.watch_ratio * items[j].duration + config.gap_seconds
    return log


class RatingsWorld(World):
    """Tastes from real ratings (MovieLens). Simulated users are real users whose log is removed
    from the background (they arrive cold); their affinity is their real rating where they rated,
    else a low-rank completion fitted to all ratings minus 0.5 stars (missing-not-at-random)."""

    name = "ratings"

    def __init__(self, dataset: Dataset, config: SimConfig, rank: int = 20) -> None:
        super().__init__()
        self.items = [dataset.items[i] for i in sorted(dataset.items)]
        self._finish()
        users = dataset.user_ids
        uindex = {u: n for n, u in enumerate(users)}
        r = np.zeros((len(users), len(self.items)))
        mask = np.zeros_like(r, dtype=bool)
        for x in dataset.interactions:
            if x.rating is not None and x.item_id in self.item_index:
                r[uindex[x.user_id], self.item_index[x.item_id]] = x.rating
                mask[uindex[x.user_id], self.item_index[x.item_id]] = True
        mu = r[mask].mean()
        n_u = np.maximum(mask.sum(1), 1)
        b_u = ((r - mu) * mask).sum(1) / (n_u + 5)
        n_i = np.maximum(mask.sum(0), 1)
        b_i = ((r - mu - b_u[:, None]) * mask).sum(0) / (n_i + 10)
        base = mu + b_u[:, None] + b_i[None, :]
        resid = np.where(mask, r - base, 0.0)
        u_, s_, vt = np.linalg.svd(resid, full_matrices=False)
        # scale up the low-rank residual: zeros for missing entries shrink it toward the baseline
        density = mask.mean()
        low = (u_[:, :rank] * s_[:rank]) @ vt[:rank] / max(density * 8, 1.0)
        pred = np.clip(base + low - 0.5, 1.0, 5.0)
        full = np.where(mask, r, pred)

        rng = random.Random(config.seed + 23)
        chosen = sorted(rng.sample(users, min(config.n_users, len(users))))
        rows = [uindex[u] for u in chosen]
        self.affinity = (full[rows] - 1.0) / 4.0
        self.user_ids = [f"mlsim{u}" for u in chosen]
        keep = set(chosen)
        self.background = [x for x in dataset.interactions if x.user_id not in keep]
        self.start_time = max(x.timestamp for x in dataset.interactions) + 86_400.0


# -- behaviour -------------------------------------------------------------------------------


def react(
    user: str, item: ItemInfo, affinity: float, t: float, noise: float, rng: np.random.Generator
) -> Interaction:
    """How a user reacts to one video: watch ratio = affinity + noise (clipped to [0.02, 1]);
    complete view at >= 0.95; like with probability sigmoid(12 (a' - 0.8)); skip below 0.2;
    hide with probability 0.3 when a' < 0.1 (a' = noisy affinity)."""
    a = affinity + rng.normal(0.0, noise)
    ratio = float(np.clip(a, 0.02, 1.0))
    liked = bool(rng.random() < 1.0 / (1.0 + math.exp(-12.0 * (a - 0.8))))
    skipped = ratio < 0.2
    hidden = bool(a < 0.1 and rng.random() < 0.3)
    strength = 1.0 if liked else (-1.0 if hidden else (-0.5 if skipped else ratio * 0.6))
    return Interaction(user, item.item_id, t, strength, ratio, liked=liked, skipped=skipped, hidden=hidden)


def expected_watch(affinity: np.ndarray, durations: np.ndarray, noise: float) -> np.ndarray:
    """E[clip(a + N(0, noise), 0.02, 1)] * duration, computed in closed form-ish by quadrature."""
    z = np.linspace(-3, 3, 25)
    w = np.exp(-0.5 * z * z)
    w /= w.sum()
    ratios = np.clip(affinity[..., None] + noise * z, 0.02, 1.0) @ w
    return ratios * durations


# -- simulation ------------------------------------------------------------------------------


class OraclePolicy:
    """Knows the user's true current affinities and shows the best expected watch time first."""

    name = "oracle"

    def __init__(self, world: World, noise: float) -> None:
        self.world = world
        self.noise = noise
        self.current: dict[str, np.ndarray] = {}

    def fit(self, train: Sequence[Interaction], items: Mapping[str, ItemInfo], now: float) -> None:
        return None

    def recommend(self, user: str, k: int, exclude: frozenset[str] = frozenset(), now: float | None = None):
        value = expected_watch(self.current[user], self.world.durations, self.noise).astype(float)
        for i in exclude:
            j = self.world.item_index.get(i)
            if j is not None:
                value[j] = -np.inf
        order = np.argsort(-value, kind="stable")[:k]
        return [self.world.items[j].item_id for j in order if np.isfinite(value[j])]

    def observe(self, event: Interaction) -> None:
        return None


@dataclass
class _Trace:
    watch: list[list[float]] = field(default_factory=list)  # per user, per swipe seconds watched
    likes: list[int] = field(default_factory=list)
    skips: list[int] = field(default_factory=list)
    hides: list[int] = field(default_factory=list)
    shares: list[list[float]] = field(default_factory=list)  # per user, new-topic share of each page
    watched: list[list[int]] = field(default_factory=list)  # per user, item indices watched
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
    n_items = len(world.items)
    swipes, shift_at = _session_shape(n_items, config)
    min_topic_items = min(config.page_size, max(2, n_items // max(len(world.topics), 1) // 2))
    for u, user in enumerate(world.user_ids):
        rng = np.random.default_rng([config.seed, u])
        affinity = world.affinity[u]
        if isinstance(policy, OraclePolicy):
            policy.current[user] = affinity
        target = world.shift_target(u, min_topic_items)
        t = world.start_time + u * config.day_seconds / max(len(world.user_ids), 1)
        seen: list[str] = []
        seen_set: set[str] = set()
        watch, shares, watched = [], [], []
        likes = skips = hides = 0
        shift_rng = np.random.default_rng([config.seed, u, 1])
        s = 0
        while s < swipes:
            if s == shift_at:
                affinity = world.shifted(u, target, shift_rng)
                if isinstance(policy, OraclePolicy):
                    policy.current[user] = affinity
            page = list(policy.recommend(user, config.page_size, frozenset(seen_set), t))
            page = list(dict.fromkeys(i for i in page if i in world.item_index and i not in seen_set))
            page = page[: config.page_size]
            if s >= shift_at:
                shares.append(
                    sum(world.topic_of[world.item_index[i]] == target for i in page) / config.page_size
                )
            while len(page) < config.page_size:  # a short page is topped up at random (counted)
                trace.empty_pages += 1
                rest = [it.item_id for it in world.items if it.item_id not in seen_set and it.item_id not in page]
                if not rest:
                    break
                page.append(rest[int(rng.integers(len(rest)))])
            for item_id in page:
                if s >= swipes:
                    break
                j = world.item_index[item_id]
                x = react(user, world.items[j], float(affinity[j]), t, config.noise, rng)
                policy.observe(x)
                seconds = x.watch_ratio * world.items[j].duration
                watch.append(seconds)
                watched.append(j)
                likes += x.liked
                skips += x.skipped
                hides += x.hidden
                seen.append(item_id)
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
    """Swipes after the shift until a page is at least half from the new topic (pages are requested
    every ``page_size`` swipes; 0 = the first page after the shift already was)."""
    for n, share in enumerate(shares):
        if share >= 0.5:
            return n * page_size
    return None


def _summarise(traces: dict[str, _Trace], world: World, vectors: np.ndarray, config: SimConfig) -> dict:
    n_users = len(world.user_ids)
    totals = {m: np.array([sum(w) for w in tr.watch]) for m, tr in traces.items()}
    idx = bootstrap_indices(n_users, config.n_boot, config.seed)
    lo_ref = totals.get("random")
    hi_ref = totals.get("oracle")
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    n_creators = len({it.creator_id for it in world.items})
    out: dict[str, Any] = {"methods": {}, "comparisons": {}}
    for m, tr in traces.items():
        tot = totals[m]
        res: dict[str, Any] = {
            "watch_time_per_session": mean_with_interval(tot, config.n_boot, config.seed),
            "likes_per_session": mean_with_interval(tr.likes, config.n_boot, config.seed),
            "skip_rate": float(np.sum(tr.skips) / max(sum(len(w) for w in tr.watch), 1)),
            "hide_rate": float(np.sum(tr.hides) / max(sum(len(w) for w in tr.watch), 1)),
            "watch_curve": np.cumsum(np.mean(np.array(tr.watch), axis=0)).tolist(),
            "seconds": tr.seconds,
            "empty_pages": tr.empty_pages,
        }
        if lo_ref is not None and hi_ref is not None:
            gap = hi_ref.mean() - lo_ref.mean()
            point = (tot.mean() - lo_ref.mean()) / gap if gap > 0 else float("nan")
            samples = (tot[idx].mean(1) - lo_ref[idx].mean(1)) / np.maximum(
                hi_ref[idx].mean(1) - lo_ref[idx].mean(1), 1e-9
            )
            res["gap_share"] = {"value": float(point), "ci": list(interval(samples))}
        shares = np.array(tr.shares) if tr.shares and tr.shares[0] else np.zeros((n_users, 0))
        if shares.size:
            halves = [_swipes_to_half(row, config.page_size) for row in shares]
            horizon = shares.shape[1] * config.page_size
            censored = np.array([h if h is not None else horizon for h in halves], dtype=float)
            res["adaptation"] = {
                "curve": shares.mean(axis=0).tolist(),
                "curve_swipes": [n * config.page_size for n in range(shares.shape[1])],
                "swipes_to_half_median": float(np.median(censored)),
                "swipes_to_half_mean_censored": float(censored.mean()),
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
    if "foryou" in totals:
        for m, tot in totals.items():
            if m != "foryou":
                out["comparisons"][m] = {
                    "watch_time_per_session": paired_mean_difference(
                        totals["foryou"], tot, config.n_boot, config.seed
                    )
                }
    return out


def simulate(
    world: World,
    policies: Mapping[str, Callable[[], Policy]],
    config: SimConfig,
    embed_texts: EmbedTexts,
) -> dict[str, Any]:
    """Run every policy (plus random and oracle references) through ``world``; return results."""
    vectors = np.asarray(embed_texts([it.text for it in world.items]), dtype=float)
    factories: dict[str, Callable[[], Any]] = {
        "random": lambda: _random_policy(config.seed),
        "oracle": lambda: OraclePolicy(world, config.noise),
    }
    factories.update(policies)
    traces = {}
    for name, make in factories.items():
        traces[name] = _run_policy(make(), world, config)
        log.info("simulated %s in world %s: %.1fs", name, world.name, traces[name].seconds)
    summary = _summarise(traces, world, vectors, config)
    summary.update(
        {
            "world": world.name,
            "n_users": len(world.user_ids),
            "n_items": len(world.items),
            "n_topics": len(world.topics),
            "n_background_events": len(world.background),
            "swipes": _session_shape(len(world.items), config)[0],
            "page_size": config.page_size,
            "shift_at": _session_shape(len(world.items), config)[1],
        }
    )
    return summary


def _random_policy(seed: int) -> Policy:
    from .policies import RandomPolicy

    return RandomPolicy(seed=seed)
