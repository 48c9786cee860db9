"""A/B tests of recommender settings.

* An experiment has variants, each a name, a weight and recommender overrides (field names of
  ``recommender.RecommenderConfig``; dict fields take dotted keys such as ``value_weights.like``), validated
  when the experiment is created. One experiment runs at a time, so variants never mix.
* Assignment is deterministic: SHA-256 of ``salt:user_id`` mapped to [0, 1) and cut by the variants' weights.
  Nothing is stored per user, so a user keeps their variant across restarts and machines.
* ``RecommenderService.recommend`` asks :func:`registry_for` for the user's overrides: the promoted defaults
  (a stopped experiment's winning variant, applied to everyone), then the running variant's on top.
* Impressions carry ``experiment`` and ``variant`` in additional_info (``FeedService._log_impressions``). Other
  events (views, skips, likes...) are attributed by joining on the user's assignment, which is the same pure
  function of (salt, user id): see :func:`experiment_results`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import secrets
import time
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select

from app.db.admin_models import AdminSetting, Experiment
from app.db.engine import Database
from app.db.models import utcnow
from app.domain.analytics.metrics import watch_time_per_session
from app.domain.analytics.service import DAY, Row, load_rows
from app.domain.experiments import stats
from recommender import RecommenderConfig

log = logging.getLogger(__name__)

DEFAULTS_KEY = "recommender_defaults"
CACHE_SECONDS = 5.0
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ExperimentError(ValueError):
    pass


# ---- assignment ------------------------------------------------------------------------------------------
def bucket(user_id: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(user_id: str, salt: str, variants: list[dict]) -> str:
    """The variant of ``user_id``: deterministic, in proportion to the variants' weights."""
    total = sum(float(v.get("weight", 1.0)) for v in variants)
    point = bucket(user_id, salt) * total
    running = 0.0
    for variant in variants:
        running += float(variant.get("weight", 1.0))
        if point < running:
            return variant["name"]
    return variants[-1]["name"]


# ---- validation ------------------------------------------------------------------------------------------
def validate_overrides(raw: dict) -> dict:
    """Check overrides against ``RecommenderConfig`` (names, types, dict keys); returns them cleaned."""
    if not isinstance(raw, dict):
        raise ExperimentError("Overrides must be a JSON object of setting names to values.")
    base = RecommenderConfig()
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    clean: dict = {}
    for key, value in raw.items():
        name, _, sub = str(key).partition(".")
        if name not in fields:
            raise ExperimentError(f"Unknown recommender setting {key!r}.")
        current = fields[name]
        if isinstance(value, bool) and not isinstance(current, bool):
            raise ExperimentError(f"{key!r} expects a number, not {value!r}.")
        if sub:
            if not isinstance(current, dict) or sub not in current:
                raise ExperimentError(f"{name!r} has no key {sub!r}.")
            if not isinstance(value, int | float):
                raise ExperimentError(f"{key!r} expects a number.")
            clean[key] = float(value)
            continue
        if isinstance(current, int) and not isinstance(current, bool) and isinstance(value, float):
            if not value.is_integer():
                raise ExperimentError(f"{key!r} expects a whole number.")
            value = int(value)
        clean[key] = value
    try:
        base.with_overrides(clean)
    except ValueError as exc:
        raise ExperimentError(str(exc)) from exc
    return clean


def validate_variants(variants: list[dict]) -> list[dict]:
    if not isinstance(variants, list) or len(variants) < 2:
        raise ExperimentError("An experiment needs at least two variants.")
    seen, clean = set(), []
    for variant in variants:
        name = str(variant.get("name", "")).strip()
        if not NAME_RE.match(name) or name in seen:
            raise ExperimentError(f"Variant names must be unique, 1-64 letters, digits, '.', '_' or '-': {name!r}.")
        try:
            weight = float(variant.get("weight", 1.0))
        except (TypeError, ValueError) as exc:
            raise ExperimentError(f"Variant {name!r}: the weight must be a number.") from exc
        if not weight > 0:
            raise ExperimentError(f"Variant {name!r}: the weight must be positive.")
        seen.add(name)
        clean.append({"name": name, "weight": weight, "overrides": validate_overrides(variant.get("overrides") or {})})
    return clean


# ---- the per-process view used on every feed request -----------------------------------------------------
@dataclass
class Assignment:
    experiment: str | None = None
    variant: str | None = None
    overrides: dict = field(default_factory=dict)


class ExperimentRegistry:
    """Caches the running experiment and the promoted defaults for a few seconds (feed requests are hot)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._loaded_at = 0.0
        self._running: Experiment | None = None
        self._defaults: dict = {}

    def invalidate(self) -> None:
        self._loaded_at = 0.0

    async def _refresh(self) -> None:
        if time.monotonic() - self._loaded_at < CACHE_SECONDS:
            return
        async with self.db.read() as session:
            running = (await session.execute(
                select(Experiment).where(Experiment.status == "running").order_by(Experiment.id.desc()).limit(1)
            )).scalar_one_or_none()
            defaults = await session.get(AdminSetting, DEFAULTS_KEY)
        try:
            self._defaults = validate_overrides((defaults.value if defaults else {}).get("overrides", {}))
        except ExperimentError:
            log.warning("ignoring invalid promoted recommender defaults", exc_info=True)
            self._defaults = {}
        self._running = running
        self._loaded_at = time.monotonic()

    async def assignment(self, user_id: str) -> Assignment:
        await self._refresh()
        overrides = dict(self._defaults)
        experiment = self._running
        if experiment is None or not experiment.variants:
            return Assignment(overrides=overrides)
        name = assign(user_id, experiment.salt, experiment.variants)
        variant = next(v for v in experiment.variants if v["name"] == name)
        try:
            overrides.update(validate_overrides(variant.get("overrides") or {}))
        except ExperimentError:
            log.warning("experiment %s variant %s has invalid overrides", experiment.name, name)
        return Assignment(experiment.name, name, overrides)

    async def defaults(self) -> dict:
        await self._refresh()
        return dict(self._defaults)


_registries: weakref.WeakKeyDictionary[Database, ExperimentRegistry] = weakref.WeakKeyDictionary()


def registry_for(db: Database) -> ExperimentRegistry:
    registry = _registries.get(db)
    if registry is None:
        registry = _registries[db] = ExperimentRegistry(db)
    return registry


# ---- administration --------------------------------------------------------------------------------------
async def list_experiments(db: Database) -> list[Experiment]:
    async with db.read() as session:
        return list((await session.execute(select(Experiment).order_by(Experiment.id.desc()))).scalars())


async def create_experiment(db: Database, name: str, variants: list[dict], description: str = "") -> Experiment:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ExperimentError("Name the experiment with 1-64 letters, digits, '.', '_' or '-'.")
    clean = validate_variants(variants)
    async with db.write() as session:
        if (await session.execute(select(Experiment.id).where(Experiment.name == name))).first():
            raise ExperimentError("An experiment with that name exists already.")
        running = (await session.execute(select(Experiment.name).where(Experiment.status == "running"))).first()
        if running:
            raise ExperimentError(f"Experiment {running[0]!r} is running: stop it first (one runs at a time).")
        experiment = Experiment(name=name, description=(description or "").strip()[:500], variants=clean,
                                salt=secrets.token_hex(8), status="running")
        session.add(experiment)
        await session.flush()
    registry_for(db).invalidate()
    log.info("experiment started", extra={"experiment": name, "variants": [v["name"] for v in clean]})
    return experiment


async def stop_experiment(db: Database, experiment_id: int, promote: str | None = None) -> Experiment:
    """Stop an experiment; with ``promote``, that variant's overrides become everyone's defaults."""
    async with db.write() as session:
        experiment = await session.get(Experiment, experiment_id)
        if experiment is None:
            raise ExperimentError("No such experiment.")
        if promote is not None:
            variant = next((v for v in experiment.variants if v["name"] == promote), None)
            if variant is None:
                raise ExperimentError(f"No variant {promote!r} in {experiment.name!r}.")
            setting = await session.get(AdminSetting, DEFAULTS_KEY)
            value = {"overrides": dict(variant.get("overrides") or {}), "experiment": experiment.name,
                     "variant": promote, "at": utcnow().isoformat()}
            if setting is None:
                session.add(AdminSetting(key=DEFAULTS_KEY, value=value))
            else:
                setting.value, setting.updated_at = value, utcnow()
            experiment.promoted_variant = promote
        if experiment.status == "running":
            experiment.status = "stopped"
            experiment.stopped_at = utcnow()
    registry_for(db).invalidate()
    log.info("experiment stopped", extra={"experiment": experiment.name, "promoted": promote})
    return experiment


async def reset_defaults(db: Database) -> None:
    async with db.write() as session:
        setting = await session.get(AdminSetting, DEFAULTS_KEY)
        if setting is not None:
            await session.delete(setting)
    registry_for(db).invalidate()


async def promoted_defaults(db: Database) -> dict:
    async with db.read() as session:
        setting = await session.get(AdminSetting, DEFAULTS_KEY)
    return dict(setting.value) if setting else {}


# ---- results ---------------------------------------------------------------------------------------------
@dataclass
class VariantResult:
    name: str
    weight: float
    overrides: dict
    users: int
    impressions: int
    sessions: int
    watch_per_session: stats.Estimate
    skip_rate: stats.Estimate
    like_rate: stats.Estimate
    retention: stats.Estimate
    vs_control: dict = field(default_factory=dict)


def _ts(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def variant_results(experiment: Experiment, rows: list[Row], now: float) -> list[VariantResult]:
    """Per-variant metrics with 95% intervals, and tests of each variant against the first (the control).

    * watch time per session: seconds of views per session (Welch's t-test);
    * skip rate: skipped / exposed distinct (user, video) pairs (two-proportion z-test);
    * like rate: liked / viewed distinct (user, video) pairs (z-test);
    * retention: of users first seen at least a day before ``now``, the share active again on a later day (z-test).
    """
    by_user: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row.user_id:
            by_user[row.user_id].append(row)
    groups: dict[str, dict[str, list[Row]]] = {v["name"]: {} for v in experiment.variants}
    for user_id, user_rows in by_user.items():
        groups[assign(user_id, experiment.salt, experiment.variants)][user_id] = user_rows
    results: list[VariantResult] = []
    raw: dict[str, dict] = {}
    for variant in experiment.variants:
        users = groups[variant["name"]]
        events = [e for user_rows in users.values() for e in (r.as_event() for r in user_rows) if e is not None]
        per_session = watch_time_per_session(events)
        exposed, skipped, viewed, liked = set(), set(), set(), set()
        for e in events:
            if not e.item_id:
                continue
            pair = (e.user_id, e.item_id)
            if e.event_type in ("impression", "view", "complete_view", "skip"):
                exposed.add(pair)
            if e.event_type == "skip":
                skipped.add(pair)
            if e.event_type in ("view", "complete_view"):
                viewed.add(pair)
            if e.event_type == "like":
                liked.add(pair)
        eligible = returned = 0
        for user_rows in users.values():
            first = min(r.ts for r in user_rows)
            if first <= now - DAY:
                eligible += 1
                first_day = int(first // DAY)
                returned += any(int(r.ts // DAY) > first_day for r in user_rows)
        liked_viewed = len(liked & viewed) if viewed else 0
        raw[variant["name"]] = {"sessions": per_session, "skip": (len(skipped), len(exposed)),
                                "like": (liked_viewed, len(viewed)), "retention": (returned, eligible)}
        results.append(VariantResult(
            name=variant["name"], weight=variant["weight"], overrides=variant.get("overrides") or {}, users=len(users),
            impressions=sum(1 for e in events if e.event_type == "impression"), sessions=len(per_session),
            watch_per_session=stats.mean_ci(per_session),
            skip_rate=stats.proportion_ci(len(skipped), len(exposed)),
            like_rate=stats.proportion_ci(liked_viewed, len(viewed)),
            retention=stats.proportion_ci(returned, eligible),
        ))
    control = raw[experiment.variants[0]["name"]]
    for result in results[1:]:
        mine = raw[result.name]
        result.vs_control = {
            "watch_per_session": stats.welch_t_test(mine["sessions"], control["sessions"]),
            "skip_rate": stats.two_proportion_z_test(*mine["skip"], *control["skip"]),
            "like_rate": stats.two_proportion_z_test(*mine["like"], *control["like"]),
            "retention": stats.two_proportion_z_test(*mine["retention"], *control["retention"]),
        }
    return results


async def experiment_results(db: Database, experiment: Experiment, now: float) -> list[VariantResult]:
    until = _ts(experiment.stopped_at) if experiment.stopped_at else now
    rows = await load_rows(db, _ts(experiment.started_at), until + 1)
    return variant_results(experiment, rows, min(now, until))
