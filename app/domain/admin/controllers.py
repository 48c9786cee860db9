"""The operator pages: dashboard, recommendation inspector, A/B tests and moderation (admins only)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from sqlalchemy import or_, select

from app.db.engine import Database
from app.db.models import MediaJob, User, Video
from app.domain.admin import alerts
from app.domain.admin.forms import back, form_of
from app.domain.analytics import charts
from app.domain.analytics.service import media_queue, platform_overview
from app.domain.experiments import service as experiments
from app.domain.feed.recommender import RecommenderService
from app.domain.moderation.screening import blocked_terms
from app.domain.moderation.service import ModerationError, ModerationService
from app.domain.sounds.services import trending_sounds
from app.domain.system.status import ModelStatus
from app.domain.videos.services import VideoService
from app.server.guards import flash_messages, require_admin
from app.server.templating import render
from recommender import RecommenderConfig


class AdminController(Controller):
    path = "/admin"

    @get("/")
    async def dashboard(self, request: Request, db: Database, recommender: RecommenderService,
                        moderation: ModerationService, videos: VideoService, model_status: ModelStatus) -> Response:
        require_admin(request)
        now = time.time()
        overview = await platform_overview(db, now)
        queue = await media_queue(db)
        engine = recommender.engine
        rankers = list(reversed(engine.ranker_versions())) if engine else []
        job_runs = engine.last_job_runs() if engine else {}
        snap = overview.snapshot
        values = {
            "skip_rate": snap["skip_rate"] if snap["events"] else None,
            "media_error_rate": overview.media_error_rate,
            "ctr": snap["ctr"] if overview.impressions_today else None,
            "exposure_gini": overview.exposure_gini if overview.impressions_week else None,
            "retention_d1": snap["retention_d1"],
        }
        bounds = await alerts.thresholds(db)
        breaches = alerts.breaches(values, bounds)
        await alerts.record(db, breaches)
        figures = {
            "dau": charts.line_chart(overview.days, [charts.Series("Daily active users", overview.dau)],
                                     title="Daily active users, last 14 days"),
            "rates": charts.line_chart(
                overview.days, [charts.Series("CTR", overview.ctr), charts.Series("Skip rate", overview.skip),
                                charts.Series("Engagement", overview.engagement)],
                title="CTR, skip rate and engagement rate per day", fmt=charts.fmt_percent, area=False),
            "lorenz": charts.lorenz_chart(overview.lorenz, title="Lorenz curve of impressions across creators"),
            "sources": charts.hbar_chart(list(overview.sources.items()), title="Views by traffic source, 24 h")
            if overview.sources else None,
            "hashtags": charts.hbar_chart(overview.trending_hashtags[:8], title="Trending hashtags by views, 24 h")
            if overview.trending_hashtags else None,
            "exposure_split": charts.hbar_chart(
                [("New creators", overview.new_creators["impressions_per_creator_new"]),
                 ("Established", overview.new_creators["impressions_per_creator_established"])],
                title="Impressions per creator, 7 days", fmt=charts.fmt_number),
        }
        context = {
            "overview": overview, "snap": snap, "queue": queue, "models": await _model_status(request, model_status),
            "rankers": rankers, "job_runs": job_runs, "breaches": breaches, "bounds": bounds,
            "recent_alerts": await alerts.recent(db), "charts": figures,
            "moderation_counts": await moderation.counts(),
            "defaults": await experiments.promoted_defaults(db),
            "running": next((e for e in await experiments.list_experiments(db) if e.status == "running"), None),
            "steps": videos.pipeline_steps, "tab": "dashboard", **flash_messages(request),
            "trending_sounds": await _trending_sounds(db),
        }
        return render(request, "admin/dashboard.html", context)

    @post("/jobs/retry")
    async def retry_failed(self, request: Request, db: Database, videos: VideoService) -> Response:
        require_admin(request)
        video_id = (await form_of(request)).get("video_id") or None
        async with db.read() as session:
            query = select(MediaJob.video_id).where(MediaJob.status == "failed").distinct()
            if video_id:
                query = query.where(MediaJob.video_id == video_id)
            ids = list((await session.execute(query)).scalars())
        retried = sum([await videos.retry(vid) for vid in ids])
        return back("/admin#media", f"Sent {retried} video(s) back through the pipeline.")

    @post("/rankers/{version:int}/rollback")
    async def rollback(self, request: Request, version: int, recommender: RecommenderService) -> Response:
        require_admin(request)
        engine = recommender.engine
        try:
            await asyncio.to_thread(engine.rollback_ranker, version)
        except KeyError:
            return back("/admin#rankers", f"No ranker version {version}.", error=True)
        return back("/admin#rankers", f"Ranker version {version} is serving now.")

    @post("/alerts")
    async def save_alerts(self, request: Request, db: Database) -> Response:
        require_admin(request)
        try:
            await alerts.save_thresholds(db, await form_of(request))
        except ValueError:
            return back("/admin#alerts", "Thresholds must be numbers.", error=True)
        return back("/admin#alerts", "Alert thresholds saved.")

    # ---- recommendation inspector -------------------------------------------------------------------------
    @get("/inspect")
    async def inspect_search(self, request: Request) -> Response:
        require_admin(request)
        who = (request.query_params.get("user") or "").strip().lstrip("@")
        if who:
            return back(f"/admin/inspect/{who}")
        return render(request, "admin/inspect.html", {"tab": "inspect", "report": None, "target": None})

    @get("/inspect/{who:str}")
    async def inspect(self, request: Request, who: str, db: Database, recommender: RecommenderService) -> Response:
        require_admin(request)
        who = who.lstrip("@")
        async with db.read() as session:
            target = (await session.execute(
                select(User).where(or_(User.id == who, User.username == who.lower())))).scalar_one_or_none()
        if target is None:
            raise NotFoundException("No user by that name or id.")
        engine = recommender.engine
        report = await asyncio.to_thread(engine.inspect_user, target.id) if engine else {"known": False}
        trace = report.get("last_recommendation") or {}
        item_ids = set()
        for entry in trace.get("scored", []) + trace.get("final", []):
            item_ids.add(entry["item_id"])
        for source in (trace.get("candidates_by_source") or {}).values():
            item_ids.update(source.get("items", []))
        creator_ids = {name for scores in (report.get("interests") or {}).values()
                       for name, _ in scores.get("creators", [])}
        async with db.read() as session:
            videos = {v.id: v for v in (await session.execute(select(Video).where(Video.id.in_(item_ids)))).scalars()}
            creator_ids |= {v.creator_id for v in videos.values()}
            creators = {u.id: u for u in (await session.execute(
                select(User).where(User.id.in_(creator_ids)))).scalars()}
        experiment = await experiments.registry_for(db).assignment(target.id)
        final_rows = trace.get("final", [])
        scored = {row["item_id"]: row for row in trace.get("scored", [])}
        decisions = {row.get("item_id"): row for row in trace.get("reranking", []) if row.get("item_id")}
        source_chart = None
        by_source = trace.get("candidates_by_source") or {}
        if by_source:
            source_chart = charts.hbar_chart([(name, data["count"]) for name, data in
                                              sorted(by_source.items(), key=lambda kv: -kv[1]["count"])],
                                             title="Candidates by source")
        context = {
            "tab": "inspect", "target": target, "report": report, "trace": trace, "videos": videos,
            "creators": creators, "assignment": experiment, "final_rows": final_rows, "scored": scored,
            "decisions": decisions, "source_chart": source_chart, "tasks": _tasks(trace),
        }
        return render(request, "admin/inspect.html", context)

    # ---- experiments ---------------------------------------------------------------------------------------
    @get("/experiments")
    async def experiments_page(self, request: Request, db: Database) -> Response:
        require_admin(request)
        now = time.time()
        rows = await experiments.list_experiments(db)
        shown = []
        for experiment in rows[:5]:
            results = await experiments.experiment_results(db, experiment, now)
            shown.append({"experiment": experiment, "results": results, "charts": _experiment_charts(results)})
        config = RecommenderConfig()
        settings = [(f.name, getattr(config, f.name)) for f in dataclasses.fields(config)
                    if isinstance(getattr(config, f.name), int | float | dict)]
        context = {"tab": "experiments", "shown": shown, "older": rows[5:], "settings": settings,
                   "defaults": await experiments.promoted_defaults(db),
                   "running": any(e.status == "running" for e in rows), **flash_messages(request)}
        return render(request, "admin/experiments.html", context)

    @post("/experiments")
    async def create_experiment(self, request: Request, db: Database) -> Response:
        require_admin(request)
        form = await form_of(request)
        variants = []
        for i in range(4):
            name = form.get(f"variant_{i}_name", "").strip()
            if not name:
                continue
            raw = form.get(f"variant_{i}_overrides", "").strip() or "{}"
            try:
                overrides = json.loads(raw)
            except json.JSONDecodeError:
                return back("/admin/experiments", f"Variant {name!r}: overrides are not valid JSON.", error=True)
            variants.append({"name": name, "weight": form.get(f"variant_{i}_weight") or "1", "overrides": overrides})
        try:
            experiment = await experiments.create_experiment(db, form.get("name", ""), variants,
                                                             form.get("description", ""))
        except experiments.ExperimentError as exc:
            return back("/admin/experiments", str(exc), error=True)
        return back("/admin/experiments", f"Experiment {experiment.name!r} is running.")

    @post("/experiments/{experiment_id:int}/stop")
    async def stop_experiment(self, request: Request, experiment_id: int, db: Database) -> Response:
        require_admin(request)
        promote = (await form_of(request)).get("promote") or None
        try:
            experiment = await experiments.stop_experiment(db, experiment_id, promote)
        except experiments.ExperimentError as exc:
            return back("/admin/experiments", str(exc), error=True)
        message = f"Stopped {experiment.name!r}" + (f"; {promote!r} is now everyone's default." if promote else ".")
        return back("/admin/experiments", message)

    @post("/experiments/defaults/reset")
    async def reset_defaults(self, request: Request, db: Database) -> Response:
        require_admin(request)
        await experiments.reset_defaults(db)
        return back("/admin/experiments", "Recommender defaults reset to the built-in settings.")

    # ---- moderation ----------------------------------------------------------------------------------------
    @get("/moderation")
    async def moderation_page(self, request: Request, db: Database, moderation: ModerationService) -> Response:
        require_admin(request)
        context = {"tab": "moderation", "queue": await moderation.queue(),
                   "audit": await moderation.audit_log(), "terms": await blocked_terms(db),
                   "counts": await moderation.counts(), **flash_messages(request)}
        return render(request, "admin/moderation.html", context)

    @post("/moderation/videos/{video_id:str}/{action:str}")
    async def video_action(self, request: Request, video_id: str, action: str,
                           moderation: ModerationService) -> Response:
        admin = require_admin(request)
        note = (await form_of(request)).get("note", "")
        try:
            await moderation.act_on_video(admin, video_id, action, note)
        except ModerationError as exc:
            return back("/admin/moderation", str(exc), error=True)
        return back("/admin/moderation", f"Video {action}: done.")

    @post("/moderation/users/{user_id:str}/{action:str}")
    async def user_action(self, request: Request, user_id: str, action: str,
                          moderation: ModerationService) -> Response:
        admin = require_admin(request)
        note = (await form_of(request)).get("note", "")
        try:
            user = await moderation.act_on_user(admin, user_id, action, note)
        except ModerationError as exc:
            return back("/admin/moderation", str(exc), error=True)
        return back("/admin/moderation", f"@{user.username}: {action} done.")

    @post("/moderation/terms")
    async def add_terms(self, request: Request, moderation: ModerationService) -> Response:
        admin = require_admin(request)
        try:
            added = await moderation.add_terms(admin, (await form_of(request)).get("terms", ""))
        except ModerationError as exc:
            return back("/admin/moderation#terms", str(exc), error=True)
        return back("/admin/moderation#terms", f"Added {len(added)} term(s).")

    @post("/moderation/terms/remove")
    async def remove_term(self, request: Request, moderation: ModerationService) -> Response:
        admin = require_admin(request)
        term = (await form_of(request)).get("term", "")
        await moderation.remove_term(admin, term)
        return back("/admin/moderation#terms", f"Removed {term!r}.")


async def _model_status(request: Request, model_status: ModelStatus, wait_s: float = 3.0) -> dict | None:
    """The models' status without holding the page: locating weights can take seconds the first time
    (it is cached afterwards); past ``wait_s`` the page says so and the check finishes in the background."""
    task = getattr(request.app.state, "model_status_task", None)
    if task is None or task.done():
        task = asyncio.ensure_future(asyncio.to_thread(model_status.current))
        request.app.state.model_status_task = task
    try:
        return await asyncio.wait_for(asyncio.shield(task), wait_s)
    except TimeoutError:
        return None


def _tasks(trace: dict[str, Any]) -> list[str]:
    for row in trace.get("scored", []):
        return list(row.get("probabilities", {}))
    return []


def _experiment_charts(results: list) -> dict[str, Any]:  # noqa: ANN401
    if not results:
        return {}

    def rows(attr: str) -> list[tuple[str, float, float, float]]:
        return [(r.name, getattr(r, attr).mean, getattr(r, attr).low, getattr(r, attr).high) for r in results]

    return {
        "watch_per_session": charts.interval_chart(rows("watch_per_session"), title="Watch time per session (s)",
                                                   fmt=charts.fmt_seconds),
        "skip_rate": charts.interval_chart(rows("skip_rate"), title="Skip rate", fmt=charts.fmt_percent),
        "like_rate": charts.interval_chart(rows("like_rate"), title="Like rate", fmt=charts.fmt_percent),
        "retention": charts.interval_chart(rows("retention"), title="Next-day return rate", fmt=charts.fmt_percent),
    }


async def _trending_sounds(db: Database) -> list:
    async with db.read() as session:
        return await trending_sounds(session)
