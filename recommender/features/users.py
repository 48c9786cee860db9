"""Everything the recommender knows about one user, updated on every event."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import RecommenderConfig
from .decay import DecayedScores
from .interests import InterestCentroids


@dataclass
class SessionState:
    """The current session (a gap of ``session_gap_seconds`` without activity starts a new one)."""

    session_id: str | None = None
    started_at: float = 0.0
    last_active_at: float = 0.0
    depth: int = 0  # items consumed in this session
    served: set[str] = field(default_factory=set)
    last_served_creator: str | None = None


class UserState:
    def __init__(self, user_id: str, config: RecommenderConfig) -> None:
        self.user_id = user_id
        merge = config.centroid_merge_similarity
        self.short_term = InterestCentroids(config.short_term_centroids, config.short_term_half_life, merge)
        self.mid_term = InterestCentroids(config.mid_term_centroids, config.mid_term_half_life, merge)
        self.long_term = InterestCentroids(config.long_term_centroids, config.long_term_half_life, merge)
        self.negative = InterestCentroids(config.negative_centroids, config.negative_half_life, merge)
        # Keys are (kind, name) with kind in {"topic", "hashtag", "creator"}.
        self.short_scores = DecayedScores(config.short_scores_half_life)  # signed, this session-ish
        self.long_positive = DecayedScores(config.long_scores_half_life)
        self.long_negative = DecayedScores(config.long_scores_half_life)
        self.declared_topics: tuple[str, ...] = ()
        self.follows: set[str] = set()
        self.blocked_creators: set[str] = set()
        self.muted_words: tuple[str, ...] = ()
        self.hidden_items: set[str] = set()
        self.hidden_creators: set[str] = set()
        self.reported_items: set[str] = set()
        self.seen: dict[str, float] = {}  # item -> last exposure time
        # Net engagement per item (item -> (Σ weights, last at)), least recent first; anchors for item-to-item CF.
        self.engaged: dict[str, tuple[float, float]] = {}
        self.engaged_version = 0
        self.liked: dict[str, float] = {}  # item -> when liked (unlike removes it), for "Because you liked ‹title›"
        self.collab_cache: tuple | None = None  # (key, UserCollaborative | None), see features.collaborative
        self.session = SessionState()
        self.query_cache: tuple | None = None  # (key, InterestQueries), see ranking.features
        self.first_seen_at: float | None = None
        self.account_created_at: float | None = None
        self.last_event_at = 0.0
        self.n_events = 0
        self.n_positive = 0
        self.n_exposures = 0
        self.n_skips = 0

    def record_engagement(self, item_id: str, weight: float, at: float, limit: int) -> None:
        net, _ = self.engaged.pop(item_id, (0.0, at))
        self.engaged[item_id] = (net + weight, at)  # re-inserted: dict order is recency
        if len(self.engaged) > limit:
            del self.engaged[next(iter(self.engaged))]
        self.engaged_version += 1

    def long_score(self, key: tuple[str, str], now: float) -> float:
        return self.long_positive.get(key, now) - self.long_negative.get(key, now)

    def is_cold(self, config: RecommenderConfig) -> bool:
        return self.n_positive < config.cold_user_max_positive_events and not self.declared_topics

    def skip_rate(self) -> float:
        return (self.n_skips + 1.0) / (self.n_exposures + 3.0)

    def touch_session(self, now: float, session_id: str | None, gap: float) -> bool:
        """Advance the session clock; True when a new session started (short-term state resets)."""
        session = self.session
        new_session = (session.last_active_at == 0.0 or now - session.last_active_at > gap) or (
            session_id is not None and session.session_id is not None and session_id != session.session_id
        )
        if new_session:
            self.session = SessionState(session_id=session_id, started_at=now, last_active_at=now)
            self.short_term.clear()
            return True
        if session_id is not None and session.session_id is None:
            session.session_id = session_id
        session.last_active_at = max(session.last_active_at, now)
        return False
