"""The recommender's ports: what it needs from storage, implemented by adapters in the app.

The library keeps its working state in memory and is rebuilt at startup by replaying items and events
(``upsert_items`` / ``record_events``). The one thing it must persist itself is the ranker: every model
version goes through a :class:`ModelStore`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ModelVersionRecord:
    """Metadata of one ranker version. ``status`` is one of:

    * ``active``   - the version serving now (exactly one record is active at a time);
    * ``retired``  - was active earlier, replaced by a promotion or rollback (a rollback target);
    * ``rejected`` - a trained candidate that did not beat the active version on held-out events.
    """

    version: int
    created_at: float
    status: str
    parent_version: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # candidate & baseline holdout AUC / log loss
    n_train: int = 0
    n_holdout: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelVersionRecord:
        return cls(**data)


@runtime_checkable
class ModelStore(Protocol):
    def save(self, record: ModelVersionRecord, blob: bytes) -> None:
        """Insert or replace the version ``record.version`` (status changes are re-saved with the same blob)."""

    def load_all(self) -> list[tuple[ModelVersionRecord, bytes]]:
        """Every stored version, any order."""
