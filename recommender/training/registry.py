"""Ranker versions: the active model, every candidate ever trained, promotion and rollback.

Version 0 is the untrained prior. Every change is written through the ModelStore port, so a restart
resumes from the version that was active.
"""

from __future__ import annotations

import dataclasses
import logging

from ..ports import ModelStore, ModelVersionRecord
from ..ranking.model import RankerModel
from ..ranking.neural import Ranker, load_ranker

log = logging.getLogger(__name__)


class RankerRegistry:
    def __init__(self, store: ModelStore, affinity_gain: float, collab_gain: float = 0.0,
                 popularity_gain: float = 0.0) -> None:
        self.store = store
        self.records: dict[int, ModelVersionRecord] = {}
        self.models: dict[int, Ranker] = {}
        prior = ModelVersionRecord(version=0, created_at=0.0, status="active", note="untrained prior")
        self.records[0] = prior
        self.models[0] = RankerModel(affinity_gain=affinity_gain, collab_gain=collab_gain,
                                     popularity_gain=popularity_gain)
        self.active_version = 0
        self.trained_until = float("-inf")  # examples opened up to here were used for training
        self._load()

    @property
    def active(self) -> Ranker:
        return self.models[self.active_version]

    def _load(self) -> None:
        loaded = []
        for record, blob in self.store.load_all():
            try:
                self.models[record.version] = load_ranker(blob)
            except (ValueError, KeyError, OSError) as error:
                log.warning("skipping stored ranker version %s: %s", record.version, error)
                continue
            self.records[record.version] = record
            loaded.append(record)
        active = [r for r in loaded if r.status == "active"]
        if active:
            current = max(active, key=lambda r: r.version)
            self.active_version = current.version
            if current.version != 0:
                self.records[0] = dataclasses.replace(self.records[0], status="retired")
        trained = [r.metrics.get("trained_until") for r in loaded if r.metrics.get("trained_until") is not None]
        if trained:
            self.trained_until = max(trained)

    def reload(self) -> None:
        """Read versions another process saved (a web replica follows the scheduler's training)."""
        self._load()

    def _save(self, record: ModelVersionRecord) -> None:
        self.records[record.version] = record
        self.store.save(record, self.models[record.version].to_bytes())

    def _set_status(self, version: int, status: str) -> None:
        self._save(dataclasses.replace(self.records[version], status=status))

    def add_candidate(
        self, model: Ranker, *, promote: bool, now: float, metrics: dict, n_train: int, n_holdout: int,
        note: str = "",
    ) -> ModelVersionRecord:
        version = max(self.records) + 1
        self.models[version] = model
        record = ModelVersionRecord(
            version=version,
            created_at=now,
            status="active" if promote else "rejected",
            parent_version=self.active_version,
            metrics=metrics,
            n_train=n_train,
            n_holdout=n_holdout,
            note=note,
        )
        if promote:
            self._set_status(self.active_version, "retired")
            self.active_version = version
        self._save(record)
        return record

    def rollback(self, version: int) -> ModelVersionRecord:
        if version not in self.models:
            raise KeyError(f"no ranker version {version}")
        if version == self.active_version:
            return self.records[version]
        self._set_status(self.active_version, "retired")
        self.active_version = version
        self._set_status(version, "active")
        return self.records[version]

    def history(self) -> list[dict]:
        return [self.records[v].to_dict() for v in sorted(self.records)]
