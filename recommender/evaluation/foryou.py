"""``ForYouPolicy``: the recommender's public library API behind the harness's Policy protocol.

Nothing here scores items: the adapter only translates. Items go in through ``upsert_items``
(with their text embedded by the injected ``embed_texts``), interactions go in as the events
the app would log (``record_events`` / ``record_event``), the periodic jobs run as the app's
scheduler would run them, and rankings come from ``Recommender.recommend``.

Event mapping of one :class:`~.data.Interaction` (watch ratio r, video duration d):
``impression`` at t, then ``view`` with ``watch_duration = r*d`` at t + r*d, plus
``complete_view`` when r >= 0.95, ``like`` when liked, ``skip`` when skipped and ``hide``
when hidden (all at t + r*d).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .data import Interaction, ItemInfo
from .embedding import EmbedTexts

log = logging.getLogger(__name__)

__all__ = ["ForYouPolicy", "to_events"]


def to_events(x: Interaction, duration: float, creator_id: str | None = None) -> list[Any]:
    """The events the app would log for one interaction (see the module docstring)."""
    from recommender import Event

    base = f"{x.user_id}|{x.item_id}|{x.timestamp:.3f}"
    watched = max(x.watch_ratio, 0.0) * duration
    t_end = x.timestamp + watched
    out = [
        Event(f"{base}|impression", x.user_id, "impression", x.timestamp, x.item_id, creator_id),
        Event(f"{base}|view", x.user_id, "view", t_end, x.item_id, creator_id, watch_duration=watched),
    ]
    if x.watch_ratio >= 0.95:
        out.append(Event(f"{base}|complete_view", x.user_id, "complete_view", t_end, x.item_id, creator_id,
                         watch_duration=watched))
    if x.liked:
        out.append(Event(f"{base}|like", x.user_id, "like", t_end, x.item_id, creator_id))
    if x.skipped:
        out.append(Event(f"{base}|skip", x.user_id, "skip", t_end, x.item_id, creator_id,
                         watch_duration=watched))
    if x.hidden:
        out.append(Event(f"{base}|hide", x.user_id, "hide", t_end, x.item_id, creator_id))
    return out


def _job_intervals() -> dict[str, float]:
    try:
        from recommender.jobs import JOBS

        return {name: float(spec.interval_seconds) for name, spec in JOBS.items()}
    except Exception:  # pragma: no cover - jobs module layout is the recommender's business
        return {}


class ForYouPolicy:
    """Our recommender as a :class:`~.policies.Policy` (named ``foryou`` in results).

    ``overrides`` are ``RecommenderConfig`` field overrides (dotted keys for dict fields).
    The clock is fixed: it reads the harness's current simulated/offline time.
    ``periodic_jobs``: during a simulation, run each job when its scheduler interval has passed
    (as the app's scheduler would); jobs always run once after ``fit``.
    """

    name = "foryou"

    def __init__(
        self,
        embed_texts: EmbedTexts,
        overrides: Mapping[str, Any] | None = None,
        periodic_jobs: bool = True,
        vectors: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.embed_texts = embed_texts
        self.overrides = dict(overrides or {})
        self.periodic_jobs = periodic_jobs
        self.vectors_cache = dict(vectors or {})
        self.now = 0.0
        self.rec: Any = None
        self.last_page: list[Any] = []
        self.durations: dict[str, float] = {}
        self.creators: dict[str, str] = {}
        self.job_seconds: dict[str, float] = {}
        self.job_results: dict[str, Any] = {}
        self._last_run: dict[str, float] = {}
        self._intervals = _job_intervals()

    # -- setup ----------------------------------------------------------------------------
    def _items(self, items: Mapping[str, ItemInfo], first_seen: Mapping[str, float], now: float) -> list[Any]:
        from recommender import Item

        missing = [i for i in items if i not in self.vectors_cache]
        if missing:
            vecs = np.asarray(self.embed_texts([items[i].text for i in missing]), dtype=np.float32)
            self.vectors_cache.update(zip(missing, vecs, strict=True))
        out = []
        for item_id, info in items.items():
            # upload time: the harness's catalogue carries the first training event; never later than the log
            uploaded = min(info.uploaded_at, first_seen.get(item_id, info.uploaded_at))
            out.append(
                Item(
                    item_id=item_id,
                    creator_id=info.creator_id or f"creator-{item_id}",
                    vector=self.vectors_cache[item_id],
                    text=info.text,
                    hashtags=info.hashtags,
                    topic=info.topic,
                    duration=info.duration,
                    uploaded_at=min(uploaded, now),
                )
            )
        return out

    def fit(self, train: Sequence[Interaction], items: Mapping[str, ItemInfo], now: float) -> None:
        from recommender import Recommender, RecommenderConfig

        t0 = time.perf_counter()
        self.now = now
        config = RecommenderConfig().with_overrides(self.overrides) if self.overrides else RecommenderConfig()
        self.rec = Recommender(config=config, clock=lambda: self.now)
        first_seen: dict[str, float] = {}
        for x in train:
            if x.item_id not in first_seen or x.timestamp < first_seen[x.item_id]:
                first_seen[x.item_id] = x.timestamp
        self.durations = {i: info.duration for i, info in items.items()}
        self.creators = {i: info.creator_id or f"creator-{i}" for i, info in items.items()}
        self.rec.upsert_items(self._items(items, first_seen, now))
        events = []
        for x in sorted(train, key=lambda e: e.timestamp):
            events.extend(to_events(x, self.durations.get(x.item_id, 0.0), self.creators.get(x.item_id)))
        self.rec.record_events(events)
        self.fit_seconds = {"ingest": time.perf_counter() - t0}
        self.run_jobs(now, force=True)
        self.fit_seconds["total"] = time.perf_counter() - t0

    def run_jobs(self, now: float, force: bool = False) -> None:
        for name in self.rec.job_names():
            interval = self._intervals.get(name, 3600.0)
            last = self._last_run.get(name)
            if not force and last is not None and now - last < interval:
                continue
            t0 = time.perf_counter()
            try:
                self.job_results[name] = self.rec.run_job(name, now=now)
            except Exception as exc:  # a failing job is a finding, not a crash of the evaluation
                log.warning("job %s failed: %s", name, exc)
                self.job_results[name] = {"error": repr(exc)}
            self.job_seconds[name] = self.job_seconds.get(name, 0.0) + time.perf_counter() - t0
            self._last_run[name] = now

    # -- Policy ---------------------------------------------------------------------------
    def recommend(
        self, user: str, k: int, exclude: frozenset[str] = frozenset(), now: float | None = None
    ) -> list[str]:
        from recommender import FeedContext

        if now is not None:
            self.now = max(self.now, now)
        if self.periodic_jobs and now is not None:
            self.run_jobs(self.now)
        recs = self.rec.recommend(user, k=k, context=FeedContext(now=self.now, exclude=frozenset(exclude)))
        self.last_page = recs  # with sources and propensities (the random-exposure slice reads them)
        return [r.item_id for r in recs]

    def observe(self, event: Interaction) -> None:
        self.now = max(self.now, event.timestamp)
        for e in to_events(event, self.durations.get(event.item_id, 0.0), self.creators.get(event.item_id)):
            self.rec.record_event(e)
        self.now = max(self.now, event.timestamp + event.watch_ratio * self.durations.get(event.item_id, 0.0))
