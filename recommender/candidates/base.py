"""What every candidate source receives, and the shape of what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import RecommenderConfig
from ..features.collaborative import UserCollaborative
from ..features.users import UserState
from ..membership import in_sorted
from ..ranking.features import InterestQueries
from ..state import EngineState

# (catalogue row, source-specific score: higher is better)
Scored = list[tuple[int, float]]


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` for a small integer array, without its fixed cost (a few times the work here)."""
    values = np.sort(values)
    keep = np.empty(len(values), dtype=bool)
    keep[:1] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


@dataclass
class CandidateRequest:
    state: EngineState
    config: RecommenderConfig
    user: UserState
    queries: InterestQueries
    now: float
    excluded: set[str]  # item ids already known to be filtered for this user (seen, served, hidden, ...)
    rng: np.random.Generator
    # rows of ``excluded`` (sorted): the work per request follows the user's exclusions, never the catalogue
    excluded_rows: np.ndarray = field(init=False)
    collaborative: UserCollaborative | None = field(init=False)  # the user's item-to-item scores per row

    def __post_init__(self) -> None:
        catalog = self.state.catalog
        self.collaborative = self.state.collaborative(self.user, self.now, self.config)
        row_of = catalog.row_of
        self._excluded_set = {row_of[i] for i in self.excluded if i in row_of}
        self.excluded_rows = np.array(sorted(self._excluded_set), dtype=np.int64)

    @property
    def excluded_row_set(self) -> set[int]:
        """Rows of ``excluded`` as a set (do not change it)."""
        return self._excluded_set

    def is_usable(self, row: int) -> bool:
        """Available and not excluded."""
        return bool(self.state.catalog.available[row]) and row not in self._excluded_set

    def usable_mask(self, rows: np.ndarray) -> np.ndarray:
        """``is_usable`` for an array of rows."""
        mask = self.state.catalog.available[rows]
        if len(self.excluded_rows):
            mask &= ~in_sorted(rows, self.excluded_rows)
        return mask

    def take(self, rows_in_order, limit: int) -> Scored:
        """The first ``limit`` usable rows of an iterable of (row, score)."""
        out: Scored = []
        available, excluded = self.state.catalog.available, self._excluded_set
        for row, score in rows_in_order:
            if len(out) >= limit:
                break
            if available[row] and row not in excluded:
                out.append((int(row), float(score)))
        return out
