"""Threshold alerts: metrics checked against operator-set bounds each time the dashboard is computed.

A breach is shown on the dashboard, logged at WARNING (once per metric per hour) and kept in ``admin_alerts``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from app.db.admin_models import AdminAlert, AdminSetting
from app.db.engine import Database
from app.db.models import utcnow

log = logging.getLogger("foryou.alerts")

KEY = "alert_thresholds"
# metric -> (direction, bound, label)
DEFAULTS: dict[str, tuple[str, float, str]] = {
    "skip_rate": ("max", 0.6, "Skip rate"),
    "media_error_rate": ("max", 0.2, "Media error rate"),
    "ctr": ("min", 0.05, "Click-through rate"),
    "exposure_gini": ("max", 0.85, "Exposure Gini"),
    "retention_d1": ("min", 0.0, "Day-1 retention"),
}
REPEAT_AFTER = timedelta(hours=1)


@dataclass
class Breach:
    name: str
    label: str
    value: float
    direction: str
    bound: float

    @property
    def message(self) -> str:
        word = "above" if self.direction == "max" else "below"
        return f"{self.label} is {self.value:.3f}, {word} the bound of {self.bound:.3f}"


async def thresholds(db: Database) -> dict[str, tuple[str, float, str]]:
    async with db.read() as session:
        row = await session.get(AdminSetting, KEY)
    stored = row.value if row else {}
    return {name: (direction, float(stored.get(name, bound)), label)
            for name, (direction, bound, label) in DEFAULTS.items()}


async def save_thresholds(db: Database, values: dict[str, str]) -> dict[str, float]:
    clean: dict[str, float] = {}
    for name in DEFAULTS:
        raw = values.get(name, "").strip()
        if raw:
            clean[name] = float(raw)  # ValueError -> the caller shows it
    async with db.write() as session:
        row = await session.get(AdminSetting, KEY)
        if row is None:
            session.add(AdminSetting(key=KEY, value=clean))
        else:
            row.value, row.updated_at = clean, utcnow()
    return clean


def breaches(values: dict[str, float | None], bounds: dict[str, tuple[str, float, str]]) -> list[Breach]:
    found = []
    for name, (direction, bound, label) in bounds.items():
        value = values.get(name)
        if value is None:
            continue
        if (direction == "max" and value > bound) or (direction == "min" and value < bound):
            found.append(Breach(name, label, float(value), direction, bound))
    return found


async def record(db: Database, found: list[Breach]) -> None:
    """Log and store each breach, at most once per metric per hour."""
    if not found:
        return
    since = utcnow() - REPEAT_AFTER
    async with db.write() as session:
        recent = set((await session.execute(select(AdminAlert.name).where(AdminAlert.at >= since))).scalars())
        for breach in found:
            if breach.name in recent:
                continue
            log.warning("alert: %s", breach.message, extra={"metric": breach.name, "value": breach.value,
                                                             "bound": breach.bound})
            session.add(AdminAlert(name=breach.name, value=breach.value, threshold=breach.bound,
                                   message=breach.message))


async def recent(db: Database, limit: int = 10) -> list[AdminAlert]:
    async with db.read() as session:
        return list((await session.execute(
            select(AdminAlert).order_by(AdminAlert.at.desc(), AdminAlert.id.desc()).limit(limit))).scalars())
