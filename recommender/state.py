"""The recommender's in-memory state, shared by ingestion, the feed pipeline and the periodic jobs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .catalog import Catalog
from .config import RecommenderConfig
from .events import EventLog
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
    neighbors: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # item-to-item CF
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

    def __post_init__(self) -> None:
        self.events = EventLog(self.config.max_events)

    def user(self, user_id: str) -> UserState:
        state = self.users.get(user_id)
        if state is None:
            state = self.users[user_id] = UserState(user_id, self.config)
        return state
