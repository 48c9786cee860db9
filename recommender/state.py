"""The recommender's in-memory state, shared by ingestion, the feed pipeline and the periodic jobs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .catalog import Catalog
from .config import RecommenderConfig
from .events import EventLog
from .features import collaborative
from .features.collaborative import ItemSimilarity, UserCollaborative
from .features.items import DEFAULT_GLOBAL_RATES
from .features.users import UserState

if TYPE_CHECKING:
    from .training.examples import ExampleBuffer
    from .training.registry import RankerRegistry


@dataclass
class EngineState:
    config: RecommenderConfig
    ranker: RankerRegistry
    examples: ExampleBuffer
    catalog: Catalog = field(default_factory=Catalog)
    users: dict[str, UserState] = field(default_factory=dict)
    events: EventLog = field(init=False)
    similarity: ItemSimilarity = field(default_factory=ItemSimilarity.empty)  # item-to-item CF (item_neighbors job)
    trending: list[str] = field(default_factory=list)  # item ids, strongest trend first
    popular: list[str] = field(default_factory=list)
    popular_version: int = -1  # catalog version the popular list was computed at
    global_rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_GLOBAL_RATES))
    category_rates: dict[str, float] = field(default_factory=dict)  # share of positive exposures per topic
    suspicious_users: set[str] = field(default_factory=set)  # engagement farming: ignored by stats/trends/CF
    last_exposure: dict[tuple[str, str], float] = field(default_factory=dict)
    metric_history: list[dict[str, Any]] = field(default_factory=list)
    traces: dict[str, dict[str, Any]] = field(default_factory=dict)  # last recommend() trace per user
    job_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _similarity_rows: tuple[tuple[int, int], object] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.events = EventLog(self.config.max_events)

    def user(self, user_id: str) -> UserState:
        state = self.users.get(user_id)
        if state is None:
            state = self.users[user_id] = UserState(user_id, self.config)
        return state

    def collaborative(self, user: UserState, now: float, config: RecommenderConfig | None = None
                      ) -> UserCollaborative | None:
        """The user's item-to-item scores per catalogue row (None without CF data or positive history)."""
        similarity = self.similarity
        if not similarity.pairs or not user.engaged:
            return None
        key = (self.catalog.version, similarity.version)
        if self._similarity_rows is None or self._similarity_rows[0] != key:
            items = [item.item_id for item in self.catalog.items]
            self._similarity_rows = (key, collaborative.row_positions(similarity, items))
        rows = self._similarity_rows[1]
        return collaborative.for_user(similarity, rows, user, now, config or self.config, self.catalog.version)
