"""The recommender's in-memory state, shared by ingestion, the feed pipeline and the periodic jobs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .catalog import Catalog
from .config import RecommenderConfig
from .events import EventLog
from .features import collaborative
from .features.collaborative import ItemSimilarity, UserCollaborative
from .features.items import DEFAULT_GLOBAL_RATES
from .features.users import UserState
from .fusion import FusionRegistry, ItemActivity
from .sequence.model import SequenceModel, UserSequence, user_sequence

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
    sequence: SequenceModel | None = None  # GRU4Rec (sequence_model job)
    sequence_versions: list[dict[str, Any]] = field(default_factory=list)
    _sequence_users: dict[str, tuple[tuple[int, int], UserSequence | None]] = field(default_factory=dict, repr=False)
    _sequence_rows: tuple[tuple[int, int], tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)
    recount_checkpoint: Any = field(default=None, repr=False)  # video_stats job: counts so far (not saved)
    fusion: FusionRegistry = field(default_factory=FusionRegistry)  # candidate fusion (candidate_fusion job)
    activity: ItemActivity = field(default_factory=ItemActivity.empty)  # popularity windows (item_activity job)

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
            self._similarity_rows = (key, collaborative.catalog_rows(similarity, self.catalog.row_of))
        rows = self._similarity_rows[1]
        return collaborative.for_user(similarity, rows, user, now, config or self.config, self.catalog.version)

    def user_sequence(self, user: UserState) -> UserSequence | None:
        """The user's GRU state under the serving sequence model (None without a model or positive history),
        cached until they engage again or the model changes."""
        model = self.sequence
        if model is None or not user.engaged:
            return None
        key = (user.engaged_version, model.version)
        cached = self._sequence_users.get(user.user_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        positions = user_sequence(user.engaged, model.index)
        result = UserSequence.of(model, positions) if positions else None
        self._sequence_users[user.user_id] = (key, result)
        return result

    def sequence_vocabulary(self) -> tuple[np.ndarray, np.ndarray]:
        """(vocabulary positions, their catalogue rows) for the model's items the catalogue holds: O(vocabulary)
        when the catalogue or the model changes, nothing per request."""
        model = self.sequence
        key = (self.catalog.version, model.version if model is not None else -1)
        if self._sequence_rows is None or self._sequence_rows[0] != key:
            row_of = self.catalog.row_of
            ids = model.ids if model is not None else ()
            rows = np.fromiter((row_of.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
            positions = np.flatnonzero(rows >= 0)
            self._sequence_rows = (key, (positions, rows[positions]))
        return self._sequence_rows[1]

    def _vocabulary_of_rows(self, model: SequenceModel) -> np.ndarray:
        """Per catalogue row, the item's position in ``model``'s vocabulary (-1: not in it): O(vocabulary) when
        the catalogue or the model changes, one gather per request. Kept out of the dataclass fields: a
        snapshot does not save it."""
        catalog = self.catalog
        cached = self.__dict__.get("_row_vocabulary")
        if cached is not None and cached[0] is catalog and cached[1] == catalog.version and cached[2] is model:
            return cached[3]
        positions = np.full(len(catalog), -1, dtype=np.int64)
        if model is self.sequence and len(set(model.ids)) == len(model.ids):
            known, rows = self.sequence_vocabulary()
            positions[rows] = known
        else:  # an older model a cached user state still holds, or repeated ids (the index keeps the last)
            row_of = catalog.row_of
            for item_id, position in model.index.items():
                row = row_of.get(item_id)
                if row is not None:
                    positions[row] = position
        self.__dict__["_row_vocabulary"] = (catalog, catalog.version, model, positions)
        return positions

    def sequence_scores(self, user: UserState, rows: np.ndarray) -> np.ndarray | None:
        """Next-item scores in (-1, 1) for catalogue ``rows`` (0 where the model does not know the item)."""
        sequence = self.user_sequence(user)
        if sequence is None:
            return None
        vocab = self._vocabulary_of_rows(sequence.model)[rows]
        out = np.zeros(len(rows), dtype=np.float32)
        known = vocab >= 0
        out[known] = sequence.for_vocabulary(vocab[known])
        return out
