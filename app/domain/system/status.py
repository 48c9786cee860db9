"""The models' status for the readiness probe and the dashboard, cached briefly: locating weights reads and
hashes files, and probes poll."""

from __future__ import annotations

import time

from media.models.registry import ModelRegistry


class ModelStatus:
    def __init__(self, models: ModelRegistry, max_age_s: float = 30.0) -> None:
        self.models = models
        self.max_age_s = max_age_s
        self._cached: tuple[float, dict] | None = None

    def current(self) -> dict:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self.max_age_s:
            self._cached = (now, self.models.status())
        return self._cached[1]
