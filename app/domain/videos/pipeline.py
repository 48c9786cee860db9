"""The app side of the media pipeline: runs ``media.steps`` as durable jobs, then indexes and publishes.

Steps (one ``media_jobs`` row each, in order): the media library's pure steps (probe, transcode, frames,
clip_images, audio, fingerprint, transcript, captions, text_embedding), then ``sound`` (the video joins a known
sound or founds one, ``app.domain.sounds``), ``index`` (vectors and transcript lines into
LanceDB, upserted by id) and ``publish`` (ready, the content_upload event, the recommender told). Each is
idempotent, so a crash anywhere is repaired by running the step again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import numpy as np

from app.adapters.object_storage import LocalStorage, MediaStorage
from app.adapters.vector_store import VectorStore, VideoVectors
from app.config import Settings
from app.db.engine import Database
from app.db.models import MediaJob, Video, utcnow
from app.domain.events.writer import EventIn, EventWriter
from app.domain.moderation.screening import screen_upload
from app.domain.moderation.service import record_flags
from app.domain.sounds.services import assign_sound
from app.domain.videos.services import SOUND_FILE, ffmpeg_tools, media_limits
from media import steps as media_steps
from media.fingerprint import Fingerprint
from media.models.registry import ModelRegistry
from media.transcode import TranscodeOptions

log = logging.getLogger(__name__)

MEDIA_STEPS = dict(media_steps.PIPELINE)
PIPELINE_STEPS: tuple[str, ...] = (*MEDIA_STEPS, "sound", "index", "publish")
STEP_LABELS = {
    "probe": "Checking the file",
    "transcode": "Making it play everywhere",
    "frames": "Picking key frames",
    "clip_images": "Understanding the picture",
    "audio": "Extracting the sound",
    "fingerprint": "Listening to the sound",
    "transcript": "Transcribing speech",
    "captions": "Writing captions",
    "text_embedding": "Understanding the words",
    "sound": "Recognising the sound",
    "index": "Adding to search",
    "publish": "Publishing",
}

Publisher = Callable[[str], Awaitable[None]]


def content_vector(visual: dict | None, text: dict | None) -> tuple[np.ndarray | None, str]:
    """The video's vector for recommendation and search, and the model that made it.

    With CLIP, frames and words share one space: their normalised sum. Without CLIP, the sentence
    encoder's text vector alone (the visual vector, if any, lives in another space and is kept apart)."""
    text_vec = np.asarray(text["vector"], dtype=np.float32) if text and text.get("vector") else None
    visual_vec = (np.asarray(visual["vector"], dtype=np.float32)
                  if visual and visual.get("status") == "ok" and visual.get("vector") else None)
    if visual_vec is not None and (text_vec is None or text.get("model_id") == visual.get("model_id")):
        combined = visual_vec if text_vec is None else visual_vec + text_vec
        return combined / max(float(np.linalg.norm(combined)), 1e-12), visual["model_id"]
    if text_vec is not None:
        return text_vec / max(float(np.linalg.norm(text_vec)), 1e-12), text["model_id"]
    return None, ""


class MediaPipeline:
    def __init__(self, settings: Settings, db: Database, models: ModelRegistry, vectors: VectorStore,
                 events: EventWriter, on_published: Publisher | None = None,
                 storage: MediaStorage | None = None) -> None:
        self.settings = settings
        self.storage = storage or LocalStorage()
        self.db = db
        self.models = models
        self.vectors = vectors
        self.events = events
        self.on_published = on_published
        self.limits = media_limits(settings)

    def context(self, video: Video) -> media_steps.StepContext:
        folder = self.settings.media_dir / video.id
        use_sound = (video.metadata_ or {}).get("use_sound") or {}
        return media_steps.StepContext(
            sound=folder / SOUND_FILE if use_sound else None, sound_mode=use_sound.get("mode", "replace"),
            work_dir=folder, source=folder / "original", caption=video.caption, limits=self.limits,
            transcode=TranscodeOptions(max_long_side=self.settings.max_long_side,
                                       preset=self.settings.transcode_preset),
            n_frames=self.settings.frames_per_video, tools=ffmpeg_tools(self.settings),
        )

    async def run_step(self, video: Video, job: MediaJob) -> dict:
        """Run one step. With object storage, the step's inputs are pulled first and its outputs pushed after,
        so the next step may run on another worker."""
        ctx = self.context(video)
        if self.storage.remote:
            ctx.work_dir.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(self.storage.pull, video.id, ctx.work_dir)
        result = await self._run_step(video, job, ctx)
        if self.storage.remote:
            await asyncio.to_thread(self.storage.push, video.id, ctx.work_dir)
        return result

    async def _run_step(self, video: Video, job: MediaJob, ctx: media_steps.StepContext) -> dict:
        if job.step in MEDIA_STEPS:
            result = await asyncio.to_thread(MEDIA_STEPS[job.step], ctx, self.models)
            await self._record(video.id, job.step, result)
            return _summary(result)
        if job.step == "sound":
            return await self._sound(video, ctx)
        if job.step == "index":
            return await asyncio.to_thread(self._index, video, ctx)
        if job.step == "publish":
            return await self._publish(video, job, ctx)
        raise ValueError(f"unknown pipeline step {job.step!r}")

    async def _record(self, video_id: str, step: str, result: dict) -> None:
        """Copy what the pages show from a step's result onto the video row."""
        changes: dict = {}
        models: dict = {}
        if step == "transcode":
            changes = {"width": result["width"], "height": result["height"], "duration": result["duration_s"]}
        elif step == "transcript":
            changes = {"language": result.get("language"), "transcript": result.get("text") or ""}
            models = {"speech": result.get("model_id"), "speech_status": result.get("status"),
                      "speech_reason": result.get("reason")}
        elif step == "clip_images":
            models = {"visual": result.get("model_id"), "visual_status": result.get("status"),
                      "visual_reason": result.get("reason"), "visual_random": bool(result.get("random"))}
        elif step == "text_embedding":
            models = {"text": result.get("model_id"), "text_random": bool(result.get("random"))}
        if not changes and not models:
            return
        async with self.db.write() as session:
            video = await session.get(Video, video_id)
            if video is not None:
                for key, value in changes.items():
                    setattr(video, key, value)
                if models:
                    video.metadata_ = {**video.metadata_, "models": {**video.metadata_.get("models", {}), **models}}

    async def _sound(self, video: Video, ctx: media_steps.StepContext) -> dict:
        fingerprint = media_steps.load_result(ctx, "fingerprint") or {}
        fp = (await asyncio.to_thread(Fingerprint.load, ctx.path(fingerprint["file"]))
              if fingerprint.get("status") == "ok" and fingerprint.get("file") else None)
        async with self.db.write() as session:
            link = await assign_sound(session, video, fp, (video.metadata_.get("use_sound") or {}).get("id"))
            if link is None:
                return {"sound_id": None, "reason": fingerprint.get("status", "no fingerprint")}
            return {"sound_id": link.sound_id, "how": link.how, "matches": link.matches, "offset_s": link.offset_s}

    def _index(self, video: Video, ctx: media_steps.StepContext) -> dict:
        visual = media_steps.load_result(ctx, "clip_images")
        text = media_steps.load_result(ctx, "text_embedding")
        transcript = media_steps.load_result(ctx, "transcript") or {}
        vector, model_id = content_vector(visual, text)
        if vector is not None:
            self.vectors.upsert_video(VideoVectors(
                video_id=video.id, creator_id=video.creator_id, topic=video.topic or "",
                hashtags=list(video.hashtags), caption=video.caption, duration=video.duration,
                created_at=video.created_at.timestamp(), content_vector=vector, content_model=model_id,
                visual_vector=(np.asarray(visual["vector"], dtype=np.float32)
                               if visual and visual.get("status") == "ok" else None),
                visual_model=(visual or {}).get("model_id") or "",
            ))
        segments = [s for s in transcript.get("segments", []) if str(s.get("text", "")).strip()]
        embedder = self.models.text_embedder()
        if segments and embedder is not None:
            seg_vectors = embedder.embed_texts([s["text"].strip() for s in segments])
            self.vectors.replace_segments(video.id, segments, seg_vectors, embedder.model_id)
        else:
            self.vectors.replace_segments(video.id, [], np.zeros((0, 1), dtype=np.float32), "")
        return {"content_model": model_id, "has_vector": vector is not None, "segments": len(segments),
                "visual_model": (visual or {}).get("model_id"), "text_model": (text or {}).get("model_id")}

    async def _publish(self, video: Video, job: MediaJob, ctx: media_steps.StepContext) -> dict:
        # Automated moderation first: a flagged video is published as "flagged" and stays out of every feed
        # until an operator approves it (app.domain.moderation).

        flags = await screen_upload(self.db, self.models, video.id, ctx)
        async with self.db.read() as session:
            row = await session.get(Video, video.id)
            if row is None:
                return {"state": "gone"}
            creator_id, caption, hashtags = row.creator_id, row.caption, list(row.hashtags)
        # A fixed event id makes the upload event idempotent when this step runs twice.
        await self.events.submit([EventIn(
            event_id=f"upload-{video.id}", event_type="content_upload", user_id=creator_id, video_id=video.id,
            creator_id=creator_id, additional_info={"caption": caption[:200], "hashtags": hashtags,
                                                    "topic": video.topic, "duration": video.duration},
        )])
        result = {"state": "ready", **({"moderation": "flagged"} if flags else {})}
        # The video goes ready and this step's row succeeds in one transaction: a kill on either side of it
        # leaves either a publish to redo (the video still processing) or nothing to do, never a row left
        # pending for a video that is already ready.
        async with self.db.write() as session:
            row = await session.get(Video, video.id)
            if row is None:
                return {"state": "gone"}
            if flags:
                record_flags(session, row, flags)
            row.state = "ready"
            row.ready_at = row.ready_at or utcnow()
            job_row = await session.get(MediaJob, job.id)
            if job_row is not None and job_row.status == "running" and job_row.lease_owner == job.lease_owner:
                job_row.status, job_row.progress, job_row.error = "succeeded", 1.0, None
                job_row.finished_at = utcnow()
                job_row.result = result
        await asyncio.to_thread(media_steps.remove_intermediates, ctx)
        await asyncio.to_thread(self.storage.prune, video.id, ctx.work_dir)
        if self.on_published is not None:
            await self.on_published(video.id)
        return result


def _summary(result: dict) -> dict:
    """A job row keeps a small summary of its step's result, not vectors."""
    return {key: value for key, value in result.items()
            if key not in ("vector", "frame_vectors", "segments", "frame_times", "frames")}
