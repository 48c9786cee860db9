"""What every candidate source receives, and the shape of what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import RecommenderConfig
from ..features.collaborative import UserCollaborative
from ..features.users import UserState
from ..ranking.features import InterestQueries
from ..state import EngineState

# (catalogue row, source-specific score: higher is better)
Scored = list[tuple[int, float]]


@dataclass
class CandidateRequest:
    state: EngineState
    config: RecommenderConfig
    user: UserState
    queries: InterestQueries
    now: float
    excluded: set[str]  # item ids already known to be filtered for this user (seen, served, hidden, ...)
    rng: np.random.Generator
    usable: np.ndarray = field(init=False)  # per catalogue row: available and not excluded
    collaborative: UserCollaborative | None = field(init=False)  # the user's item-to-item scores per row

    def __post_init__(self) -> None:
        catalog = self.state.catalog
        self.collaborative = self.state.collaborative(self.user, self.now, self.config)
        self.usable = catalog.available[: len(catalog)].copy()
        for item_id in self.excluded:
            row = catalog.row_of.get(item_id)
            if row is not None:
                self.usable[row] = False

    def take(self, rows_in_order, limit: int) -> Scored:
        """The first ``limit`` usable rows of an iterable of (row, score)."""
        out: Scored = []
        usable = self.usable
        for row, score in rows_in_order:
            if len(out) >= limit:
                break
            if usable[row]:
                out.append((int(row), float(score)))
        return out
