"""In-memory implementations of the ports (tests, evaluation, a server without persistence)."""

from __future__ import annotations

from .ports import ModelVersionRecord


class InMemoryModelStore:
    def __init__(self) -> None:
        self._versions: dict[int, tuple[ModelVersionRecord, bytes]] = {}

    def save(self, record: ModelVersionRecord, blob: bytes) -> None:
        self._versions[record.version] = (record, blob)

    def load_all(self) -> list[tuple[ModelVersionRecord, bytes]]:
        return [self._versions[v] for v in sorted(self._versions)]
