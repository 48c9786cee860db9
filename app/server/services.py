"""The composition root: the app's long-lived objects, built once at start-up and shared by every request, job
and command. Handlers receive them through Litestar's dependency injection (``dependencies()``, keyed by
parameter name); the domain never imports this module."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from litestar.di import Provide

from app.adapters.event_stream import EventStream
from app.adapters.object_storage import storage_for
from app.adapters.vector_store import VectorStore
from app.config import Settings
from app.db.engine import Database
from app.db.leases import PeriodicLeases, process_owner
from app.domain.accounts.services import AccountService, DeviceCookies, LoginRateLimiter
from app.domain.api.controllers import ApiKit
from app.domain.api.feeds import ApiFeedService, CursorCodec, recommend_via
from app.domain.api.tokens import TokenService
from app.domain.events.writer import EventWriter
from app.domain.feed.recommender import RecommenderService
from app.domain.feed.replication import ReplicaSync
from app.domain.feed.services import FeedService
from app.domain.feed.snapshots import JobSnapshots
from app.domain.interactions.services import InteractionService
from app.domain.moderation.service import ModerationService
from app.domain.pages.semantic import semantic_search_for
from app.domain.privacy.service import PrivacyService
from app.domain.system.status import ModelStatus
from app.domain.videos.jobs import JobRunner
from app.domain.videos.pipeline import PIPELINE_STEPS, MediaPipeline
from app.domain.videos.removal import VideoRemoval
from app.domain.videos.services import VideoService
from app.ops.backup import scheduled_backup
from app.ops.data_dir_lock import DataDirLock
from app.server.ratelimit import BeaconLimits
from app.server.scheduler import ScheduledJob, Scheduler
from app.server.web_session import SessionStore, web_session_of
from media.models.registry import ModelRegistry, ModelSettings
from recommender import JOBS

log = logging.getLogger(__name__)


def model_settings(settings: Settings) -> ModelSettings:
    return ModelSettings(
        models_dir=str(settings.models_dir),
        whisper=settings.whisper_model,
        whisper_download=settings.allow_model_downloads,
        clip_arch=settings.clip_arch,
        clip_pretrained=settings.clip_weights or settings.clip_pretrained,
        clip_download=settings.allow_model_downloads,
    )


@dataclass
class Services:
    settings: Settings
    db: Database
    sessions: SessionStore
    accounts: AccountService
    events: EventWriter
    feed: FeedService
    videos: VideoService
    models: ModelRegistry
    vectors: VectorStore
    recommender: RecommenderService
    pipeline: MediaPipeline
    jobs: JobRunner
    interactions: InteractionService
    removal: VideoRemoval
    moderation: ModerationService
    privacy: PrivacyService
    model_status: ModelStatus
    api: ApiKit
    beacon_limits: BeaconLimits
    replication: ReplicaSync | None = field(default=None)  # with FORYOU_EVENT_STREAM_URL
    snapshots: JobSnapshots | None = field(default=None)  # periodic-job outputs shared between replicas
    owner: str = field(default_factory=process_owner)  # this process's name on the leases it holds
    scheduler: Scheduler | None = field(default=None)
    _worker: asyncio.Task | None = field(default=None, repr=False)
    _data_dir_lock: DataDirLock | None = field(default=None, repr=False)
    _stop_worker: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @classmethod
    def build(cls, settings: Settings, models: ModelRegistry | None = None) -> Services:
        settings.ensure_dirs()
        db = Database(settings.resolved_database_url)
        sessions = SessionStore(db, settings.session_days, settings.effective_secret_key().encode())
        events = EventWriter(db, settings.event_batch_max, settings.event_flush_interval_ms / 1000)
        storage = storage_for(settings.storage_url, settings.storage_endpoint, settings.storage_access_key,
                              settings.storage_secret_key, settings.storage_region)
        vectors = VectorStore(*storage.lancedb_location()) if storage.remote else VectorStore(settings.lancedb_dir)
        models = models or ModelRegistry(model_settings(settings))
        recommender = RecommenderService(db, vectors, settings.resolved_database_url,
                                         snapshot_path=settings.recommender_snapshot_path,
                                         snapshot_every_s=settings.recommender_snapshot_interval_s)
        events.add_listener(recommender.on_events)
        replication = snapshots = None
        if settings.event_stream_url:
            replication = ReplicaSync(EventStream(settings.event_stream_url, settings.event_stream_name,
                                                  settings.effective_replica_id), recommender)
            events.add_listener(replication.on_events)
            recommender.announce = replication.announce_video
            recommender.announce_forget = replication.announce_forget
            snapshots = JobSnapshots(db, recommender, settings.effective_replica_id,
                                     announce=replication.announce_snapshot)
            recommender.after_job = snapshots.publish
            replication.load_snapshot = snapshots.load
            replication.snapshot_versions = snapshots.loaded
        feed = FeedService(db, events, settings.feed_page_size, recommend=recommender.recommend)
        pipeline = MediaPipeline(settings, db, models, vectors, events, on_published=recommender.refresh_video,
                                 storage=storage)
        videos = VideoService(settings, db, PIPELINE_STEPS, storage=storage)
        removal = VideoRemoval(videos, vectors, recommender)
        cursors = CursorCodec(settings.effective_secret_key())
        api = ApiKit(db=db, events=events, tokens=TokenService(db), cursors=cursors,
                     feeds=ApiFeedService(db, events, recommend_via(recommender), cursors),
                     semantic_search=semantic_search_for(vectors, models))
        owner = process_owner()
        return cls(
            settings=settings, db=db, sessions=sessions,
            accounts=AccountService(db, sessions, LoginRateLimiter(settings.login_attempts_per_minute),
                                    settings.admin_usernames,
                                    DeviceCookies(settings.effective_secret_key().encode()),
                                    settings.login_attempts_per_address_per_minute),
            events=events, feed=feed, videos=videos, models=models,
            vectors=vectors, recommender=recommender, pipeline=pipeline,
            jobs=JobRunner(db, pipeline.run_step, owner=owner, lease_s=settings.job_lease_s), owner=owner,
            replication=replication, snapshots=snapshots,
            interactions=InteractionService(db, events), removal=removal,
            moderation=ModerationService(db, recommender),
            privacy=PrivacyService(settings, db, recommender, removal), model_status=ModelStatus(models), api=api,
            beacon_limits=BeaconLimits.from_settings(settings),
        )

    def __post_init__(self) -> None:
        self.accounts.on_new_guest.append(self.feed.adopt)  # a pending visitor's held impressions

    # ---- lifecycle ---------------------------------------------------------------------------------
    def hold_data_dir(self) -> None:
        """The data dir's shared in-use lock, held until :meth:`stop` (take it before migrating: a restore may be
        replacing the database). Raises DataDirBusy while a restore runs."""
        if self._data_dir_lock is None:
            lock = DataDirLock(self.settings.data_dir)
            lock.share()
            self._data_dir_lock = lock

    async def start(self, *, worker: bool = False, scheduler: bool = False, recommender: bool = True) -> None:
        """Start this process's share of the work: the event writer, the recommender's state (web, scheduler),
        the media worker loop and the periodic-job scheduler. Other processes may be running on the same
        database: nothing here resets their work (steps whose lease expired are reclaimed, live ones never).
        Refused (DataDirBusy) while ``foryou backup restore`` is replacing the data dir."""
        self.hold_data_dir()
        await asyncio.to_thread(self.videos.storage.start)
        await self.events.start()
        await self.jobs.reclaim_expired()
        await self.videos.sweep_orphans()
        if self.replication is not None:
            await self.replication.start()
        if recommender:  # a media worker holds no recommender (it announces what it publishes)
            await self.recommender.bootstrap()
            if self.snapshots is not None:
                await self.snapshots.load_all()
            if self.replication is not None:
                await self.replication.follow()
        if worker:
            self._worker = asyncio.create_task(self.jobs.work(self._stop_worker, self.settings.worker_poll_s))
        if scheduler:
            self.scheduler = Scheduler(self.scheduled_jobs(),
                                       PeriodicLeases(self.db, self.owner, self.settings.job_lease_s))
            await self.scheduler.start()

    async def stop(self, worker_grace_s: float = 30.0) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop(worker_grace_s)
        if self._worker is not None:
            # Let a running step finish; past the grace its lease expires and another worker takes it over.
            self._stop_worker.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._worker), worker_grace_s)
            except TimeoutError:
                self._worker.cancel()
            self._worker = None
        await self.events.stop()
        if self.replication is not None:
            await self.replication.stop()
        await asyncio.to_thread(self.recommender.close)  # writes the final state snapshot
        await self.db.dispose()
        if self._data_dir_lock is not None:
            self._data_dir_lock.release()
            self._data_dir_lock = None

    def scheduled_jobs(self) -> list[ScheduledJob]:
        """The one table of every periodic job (the media pipeline is not one: workers run it continuously)."""
        jobs = [ScheduledJob("uploads:sweep", self.settings.job_interval("uploads:sweep", UPLOAD_SWEEP_S),
                             self.videos.sweep_orphans, "remove partial uploads no live upload holds"),
                ScheduledJob("guests:sweep", self.settings.job_interval("guests:sweep", GUEST_SWEEP_S),
                             lambda: self.sessions.sweep_idle(self.settings.guest_idle_days),
                             "remove idle guest sessions and guest users with no activity")]
        if self.settings.backup_every_hours > 0:
            jobs.append(ScheduledJob(
                "backups:daily", self.settings.job_interval("backups:daily", self.settings.backup_every_hours * 3600),
                lambda: asyncio.to_thread(scheduled_backup, self.settings),
                f"back up the data dir into {self.settings.backups_dir} (keep the newest {self.settings.backup_keep})"))
        for spec in JOBS.values() if isinstance(JOBS, dict) else JOBS:
            name = f"recommender:{spec.name}"
            jobs.append(ScheduledJob(name, self.settings.job_interval(name, spec.interval_seconds),
                                     _job_runner(self.recommender, spec.name), spec.description))
        return jobs

    async def delete_video(self, video_id: str) -> None:
        await self.removal.delete(video_id)

    def dependencies(self) -> dict[str, Provide]:
        """What handlers may ask for by parameter name (``feed: FeedService``, ``web_session: WebSession``...)."""
        shared = {name: getattr(self, name) for name in INJECTED}
        provided = {name: Provide(_constant(value), use_cache=True, sync_to_thread=False)
                    for name, value in shared.items()}
        provided["web_session"] = Provide(web_session_of, sync_to_thread=False)
        return provided


UPLOAD_SWEEP_S = 600.0
GUEST_SWEEP_S = 6 * 3600.0

# The long-lived services a handler can receive by naming them.
INJECTED = ("settings", "db", "sessions", "accounts", "events", "feed", "videos", "recommender", "interactions",
            "removal", "moderation", "privacy", "model_status", "api", "replication", "beacon_limits")


def _constant(value: object):  # noqa: ANN202
    def provide() -> object:
        return value

    return provide


def _job_runner(recommender: RecommenderService, name: str):  # noqa: ANN202
    async def run() -> dict:
        return await recommender.run_job(name)

    return run
