"""Pure analytics functions the recommender's ``recommender.metrics`` does not already provide.

Platform metrics (DAU, retention, session length, CTR, engagement, skip rate) come from ``recommender.metrics``;
this module adds what creators and the fairness check need, over plain numbers and ``recommender.Event``s:

* watch ratio of a view: watch_duration / video duration, capped at 1 (replays are counted separately);
* completion: a view whose watch ratio reaches ``COMPLETE_RATIO``;
* retention curve: at each second t of a video, the share of its views whose watch time reached t;
* Gini coefficient of exposure: 0 when every creator got the same number of impressions, → 1 when one got all;
* traffic source: where a view or impression came from (For You, Following, profile, search, share link...).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from recommender import Event
from recommender.metrics import SESSION_GAP, sessions

COMPLETE_RATIO = 0.95
SOURCE_LABELS = ("For You", "Following", "Profile", "Search", "Hashtag", "Saved", "Share link", "Direct link", "Other")
# Where a card was opened (the ``feed`` a page puts on its cards' events), as analytics names it.
OPENED_FROM = {"following": "Following", "profile": "Profile", "search": "Search", "hashtag": "Hashtag",
               "saved": "Saved", "share": "Share link", "direct": "Direct link", "foryou": "For You"}
ENGAGEMENT_TYPES = ("like", "comment", "share", "save", "follow")


def watch_ratio(watch_duration: float | None, duration: float) -> float:
    if not watch_duration or duration <= 0:
        return 0.0
    return max(0.0, min(1.0, watch_duration / duration))


def completion_rate(watch_durations: Sequence[float | None], duration: float) -> float:
    if not watch_durations:
        return 0.0
    return sum(1 for w in watch_durations if watch_ratio(w, duration) >= COMPLETE_RATIO) / len(watch_durations)


def retention_curve(watch_durations: Sequence[float | None], duration: float, step: float = 1.0) -> list[float]:
    """Share of views still watching at t = 0, step, 2·step ... up to the video's end (one value per point)."""
    if duration <= 0:
        return []
    watched = [min(float(w or 0.0), duration) for w in watch_durations]
    points = int(math.floor(duration / step + 1e-9)) + 1
    if not watched:
        return [0.0] * points
    n = len(watched)
    # At t=0 everyone who started is watching; afterwards, those who watched at least t seconds.
    return [1.0 if i == 0 else sum(1 for w in watched if w >= i * step - 1e-9) / n for i in range(points)]


def relative_retention_curve(views: Sequence[tuple[float | None, float]], buckets: int = 20) -> list[float]:
    """Retention across videos of different lengths: at 0%, 5% ... 100% of each video (views as (watch, duration))."""
    usable = [(min(float(w or 0.0), d), d) for w, d in views if d > 0]
    if not usable:
        return [0.0] * (buckets + 1)
    return [1.0 if i == 0 else sum(1 for w, d in usable if w / d >= i / buckets - 1e-9) / len(usable)
            for i in range(buckets + 1)]


def gini(values: Iterable[float]) -> float:
    """Gini coefficient of non-negative values (0 = perfectly even). Empty or all-zero: 0."""
    xs = sorted(float(v) for v in values)
    n = len(xs)
    total = sum(xs)
    if n == 0 or total <= 0:
        return 0.0
    weighted = sum((i + 1) * x for i, x in enumerate(xs))
    return (2.0 * weighted) / (n * total) - (n + 1.0) / n


def lorenz_curve(values: Iterable[float]) -> list[tuple[float, float]]:
    """Points (share of creators, share of exposure) from the least to the most exposed, starting at (0, 0)."""
    xs = sorted(float(v) for v in values)
    total = sum(xs)
    points = [(0.0, 0.0)]
    if not xs or total <= 0:
        return [*points, (1.0, 1.0)]
    running = 0.0
    for i, x in enumerate(xs):
        running += x
        points.append(((i + 1) / len(xs), running / total))
    return points


def traffic_source(info: dict | None) -> str:
    """Which door a view or impression came through, from its additional_info ``feed`` and ``source``."""
    info = info or {}
    feed = str(info.get("feed") or "").lower()
    source = str(info.get("source") or "").lower()
    if feed in OPENED_FROM and feed != "foryou":
        return OPENED_FROM[feed]
    if feed == "following" or source == "following":
        return "Following"
    if source == "profile":  # not "creator": that is a For You candidate source (creators you enjoy)
        return "Profile"
    if source == "search" or feed == "search":
        return "Search"
    if source in ("tag", "hashtag"):
        return "Hashtag"
    if source in ("permalink", "share", "share_link", "link"):
        return "Share link"
    if feed == "foryou" or source:
        return "For You"
    return "Other"


def traffic_by_source(infos: Iterable[dict | None]) -> dict[str, int]:
    counts = Counter(traffic_source(info) for info in infos)
    return {label: counts[label] for label in SOURCE_LABELS if counts[label]}


def videos_per_session(events: Iterable[Event], gap: float = SESSION_GAP) -> float:
    """Mean number of distinct videos viewed per session (sessions as in ``recommender.metrics``)."""
    counts = [len({e.item_id for e in session if e.event_type == "view" and e.item_id})
              for session in sessions(events, gap)]
    return sum(counts) / len(counts) if counts else 0.0


def watch_time_per_session(events: Iterable[Event], gap: float = SESSION_GAP) -> list[float]:
    """Seconds watched (sum of view watch durations) in each session."""
    return [sum(e.watch_duration or 0.0 for e in session if e.event_type == "view")
            for session in sessions(events, gap)]


def normalised_entropy(counts: Iterable[int]) -> float:
    """Shannon entropy of a distribution divided by its maximum (1 = spread evenly over every category seen)."""
    values = [c for c in counts if c > 0]
    total = sum(values)
    if len(values) < 2 or total <= 0:
        return 0.0
    entropy = -sum(c / total * math.log(c / total) for c in values)
    return entropy / math.log(len(values))
