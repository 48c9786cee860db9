"""The public facade: one object the app holds for the life of the process."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from .config import RecommenderConfig
from .events import sorted_events
from .features.items import item_statistics
from .filters import normalize_muted
from .ingest import apply_event
from .jobs import JOBS
from .pipeline import build_feed, materialised
from .ports import ModelStore
from .published import export_outputs, load_outputs
from .state import EngineState
from .stores import InMemoryModelStore
from .training.examples import ExampleBuffer
from .training.registry import RankerRegistry
from .types import Event, FeedContext, Item, Recommendation, normalize_tag

TOP_N = 5


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic collector off for one feed: a feed allocates a few thousand containers (candidates, their
    lists, trace entries) that all die with it, by reference counting, since none is in a cycle. With the
    collector on, young-generation collections ran in the middle of each feed only to traverse them; paused, they
    are freed before any collection counts them (an allocation counted while paused is uncounted when it is
    freed), so the collections do not run later either. Left as it was when the caller had it off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Recommender:
    """Thread-safe: every public method takes the state lock (jobs only briefly, see ``jobs``)."""

    def __init__(
        self,
        config: RecommenderConfig | None = None,
        clock: Callable[[], float] = time.time,
        model_store: ModelStore | None = None,
    ) -> None:
        self.config = config or RecommenderConfig()
        self.clock = clock
        self._state = EngineState(
            config=self.config,
            ranker=RankerRegistry(model_store or InMemoryModelStore(), self.config.affinity_gain,
                                  self.config.collab_gain, self.config.popularity_gain),
            examples=ExampleBuffer(self.config.max_training_examples, self.config.session_gap_seconds),
        )

    # ----- catalogue ------------------------------------------------------------------------
    def upsert_item(self, item: Item) -> None:
        with self._state.lock:
            self._state.catalog.upsert(item)

    def upsert_items(self, items: Iterable[Item]) -> int:
        """Upsert many items; when that takes the catalogue past ``ann_index_min_items`` without a vector index
        (at start-up, say), the faiss index is built right away rather than by the next hourly job."""
        count = 0
        with self._state.lock:
            catalog = self._state.catalog
            for item in items:
                catalog.upsert(item)
                count += 1
            if catalog.index is None and catalog.index_due(self.config.ann_index_min_items) == "build":
                catalog.set_index(catalog.train_index(self.config.random_seed))
        return count

    def remove_item(self, item_id: str) -> bool:
        with self._state.lock:
            return self._state.catalog.remove(item_id)

    def item_ids(self) -> list[str]:
        """Every item in the catalogue (available or not)."""
        with self._state.lock:
            return list(self._state.catalog.row_of)

    # ----- events ---------------------------------------------------------------------------
    def record_event(self, event: Event) -> bool:
        """Apply one event now (short-term interests and topic scores update immediately).
        False for a duplicate event id."""
        with self._state.lock:
            return apply_event(self._state, event)

    def record_live_events(self, events: Iterable[Event]) -> int:
        """Apply events as they arrive, in the order given (the app's commit order), under one acquisition of the
        state lock: ``record_event`` for each, without a lock round trip per event. Returns how many were new."""
        with self._state.lock:
            return sum(apply_event(self._state, event) for event in events)

    def record_events(self, events: Iterable[Event], history_end: float | None = None,
                      features_from: float | None = None) -> int:
        """Bulk replay (startup, backfill), in time order. Ranking features for training are logged only for
        the most recent ``training_window_seconds`` of the history (which ends at ``history_end`` when the
        history is replayed in chunks, else at the batch's last event), and not before ``features_from``: a
        caller that knows the whole history passes the time of its ``max_training_examples``-th newest
        impression (each impression opens an example, and the buffer keeps no more than that many newest ones,
        so features logged before it would only be dropped). Returns how many were new."""
        ordered = sorted_events(events)
        if not ordered:
            return 0
        end = ordered[-1].timestamp if history_end is None else history_end
        horizon = end - self.config.training_window_seconds
        if features_from is not None:
            horizon = max(horizon, features_from)
        applied = 0
        with self._state.lock:
            for event in ordered:
                applied += apply_event(self._state, event, log_features=event.timestamp >= horizon)
        return applied

    def forget_user(self, user_id: str, replacement: str = "deleted") -> int:
        """Erase a user (account deletion): their profile, traces and flags go; their events stay for item
        statistics under an anonymous id, as the app's event log keeps them. Returns the events rewritten."""
        with self._state.lock:
            state = self._state
            state.users.pop(user_id, None)
            state.traces.pop(user_id, None)
            state.suspicious_users.discard(user_id)
            for key in [key for key in state.last_exposure if key[0] == user_id]:
                del state.last_exposure[key]
            return state.events.anonymise(user_id, replacement)

    # ----- user settings --------------------------------------------------------------------
    def set_follows(self, user_id: str, creator_ids: Iterable[str]) -> None:
        with self._state.lock:
            self._state.user(user_id).follows = set(creator_ids)

    def set_user_filters(
        self,
        user_id: str,
        blocked_creators: Iterable[str] | None = None,
        muted_words: Iterable[str] | None = None,
    ) -> None:
        """Replace the user's blocked creators and/or muted words (None leaves one unchanged)."""
        with self._state.lock:
            user = self._state.user(user_id)
            if blocked_creators is not None:
                user.blocked_creators = set(blocked_creators)
            if muted_words is not None:
                user.muted_words = normalize_muted(muted_words)

    def set_declared_interests(self, user_id: str, topics: Iterable[str]) -> None:
        """"Pick a few interests" onboarding: seeds topic scores and adds topic vectors to the interests."""
        now = self.clock()
        with self._state.lock:
            user = self._state.user(user_id)
            user.declared_topics = tuple(dict.fromkeys(t.strip() for t in topics if t.strip()))
            weight = self.config.declared_interest_weight
            for topic in user.declared_topics:
                user.long_positive.add(("topic", topic), weight, now)
                user.long_positive.add(("hashtag", normalize_tag(topic)), weight, now)

    # ----- feed -----------------------------------------------------------------------------
    def recommend(self, user_id: str, k: int = 10, context: FeedContext | None = None) -> list[Recommendation]:
        context = context or FeedContext()
        now = context.now if context.now is not None else self.clock()
        with self._state.lock, _collector_paused():
            return build_feed(self._state, user_id, k, context, now)

    # ----- jobs -----------------------------------------------------------------------------
    def job_names(self) -> list[str]:
        return list(JOBS)

    def run_job(self, name: str, now: float | None = None) -> dict:
        spec = JOBS.get(name)
        if spec is None:
            raise KeyError(f"unknown job {name!r}; known: {', '.join(JOBS)}")
        at = self.clock() if now is None else now
        started = time.perf_counter()
        summary = spec.run(self._state, at)
        summary = {"job": name, "at": at, "seconds": round(time.perf_counter() - started, 4), **summary}
        with self._state.lock:
            self._state.job_runs[name] = summary
        return summary

    def export_job_outputs(self, name: str) -> bytes | None:
        """What job ``name`` last computed, as bytes another replica can load (None: nothing to publish)."""
        return export_outputs(self._state, name)

    def load_job_outputs(self, name: str, blob: bytes) -> dict:
        """Take outputs another process computed instead of running the job here."""
        return load_outputs(self._state, name, blob)

    def last_job_runs(self) -> dict[str, dict]:
        with self._state.lock:
            return dict(self._state.job_runs)

    # ----- ranker versions ------------------------------------------------------------------
    def ranker_versions(self) -> list[dict]:
        """Every ranker version (the prior is version 0) with status, metrics and lineage."""
        with self._state.lock:
            return self._state.ranker.history()

    def sequence_versions(self) -> list[dict]:
        """Every trained sequence model with its held-out recall (the serving one is "active")."""
        with self._state.lock:
            return [dict(v) for v in self._state.sequence_versions]

    def rollback_ranker(self, version: int) -> dict:
        with self._state.lock:
            return self._state.ranker.rollback(version).to_dict()

    # ----- inspection -----------------------------------------------------------------------
    def metric_history(self) -> list[dict]:
        with self._state.lock:
            return list(self._state.metric_history)

    def inspect_item(self, item_id: str) -> dict | None:
        with self._state.lock:
            state = self._state
            row = state.catalog.row_of.get(item_id)
            if row is None:
                return None
            item = state.catalog.items[row]
            return {
                "item_id": item_id,
                "creator_id": item.creator_id,
                "topic": item.category,
                "hashtags": list(item.hashtags),
                "available": item.available,
                "has_vector": bool(state.catalog.has_vector[row]),
                "trend": float(state.catalog.trend[row]),
                "cold_start_level": int(state.catalog.cold_level[row]),
                "stats": item_statistics(
                    state.catalog.counts[row], state.global_rates, self.config.rate_prior_strength
                ),
                "neighbors": state.similarity.neighbors_of(item_id, 10),
            }

    def inspect_user(self, user_id: str) -> dict:
        """Interest profile (short- vs long-term topics, hashtags, creators; what the user avoids) and the
        trace of the last recommend() call for this user."""
        now = self.clock()
        with self._state.lock:
            state = self._state
            user = state.users.get(user_id)
            if user is None:
                return {"user_id": user_id, "known": False, "last_recommendation": None}

            def top(scores):
                return {
                    kind + "s": [(name, round(v, 3)) for name, v in scores.top(now, TOP_N, kind=kind)]
                    for kind in ("topic", "hashtag", "creator")
                }

            return {
                "user_id": user_id,
                "known": True,
                "events": user.n_events,
                "positive_events": user.n_positive,
                "exposures": user.n_exposures,
                "cold_user": user.is_cold(self.config),
                "suspicious": user_id in state.suspicious_users,
                "session": {
                    "id": user.session.session_id,
                    "started_at": user.session.started_at,
                    "depth": user.session.depth,
                    "served": len(user.session.served),
                },
                "interests": {
                    "short_term": top(user.short_scores),
                    "long_term": top(user.long_positive),
                    "avoided": top(user.long_negative),
                },
                "interest_vectors": {
                    name: [round(float(w), 3) for w in profile.current(now)[1]]
                    for name, profile in (("short_term", user.short_term), ("mid_term", user.mid_term),
                                          ("long_term", user.long_term), ("negative", user.negative))
                },
                "declared_topics": list(user.declared_topics),
                "follows": sorted(user.follows),
                "blocked_creators": sorted(user.blocked_creators),
                "muted_words": list(user.muted_words),
                "hidden_items": len(user.hidden_items),
                "hidden_creators": sorted(user.hidden_creators),
                "reported_items": len(user.reported_items),
                "last_recommendation": materialised(state.traces.get(user_id)),
            }
