"""Video files (with Range support) and the creator's upload and studio pages."""

from __future__ import annotations

import asyncio

from litestar import Controller, Request, Response, delete, get, head, post
from litestar.exceptions import InternalServerException, NotFoundException
from sqlalchemy import select

from app.config import Settings
from app.db.engine import Database
from app.db.models import MediaJob, User, Video, is_published
from app.db.sound_models import Sound
from app.domain.pages.people import event_counts
from app.domain.videos.files import file_response, object_response
from app.domain.videos.pipeline import STEP_LABELS
from app.domain.videos.removal import VideoRemoval
from app.domain.videos.services import DuplicateUpload, UploadTooLarge, VideoService, rejection_message
from app.server.disk import MB, below_margin, out_of_space
from app.server.guards import require_account
from app.server.templating import render
from app.server.web_session import WebSession
from media.errors import MediaRejected

# The files of a video that may be served, by public name.
SERVABLE = {"video.mp4", "poster.jpg", "captions.vtt"}


def can_view(video: Video, viewer_id: str | None, viewer_role: str | None) -> bool:
    """Anyone may watch a published video; only its creator and admins see one in processing or review."""
    return is_published(video) or viewer_id == video.creator_id or viewer_role == "admin"


class MediaController(Controller):
    path = "/media"

    @get("/{video_id:str}/{name:str}")
    async def serve(self, request: Request, video_id: str, name: str, db: Database, videos: VideoService,
                    web_session: WebSession) -> Response:
        return await media_response(request, video_id, name, db, videos, web_session, with_body=True)

    @head("/{video_id:str}/{name:str}")
    async def serve_head(self, request: Request, video_id: str, name: str, db: Database, videos: VideoService,
                         web_session: WebSession) -> Response[None]:
        """What GET would answer (status, length, type, ranges, ETag), without the body."""
        return await media_response(request, video_id, name, db, videos, web_session, with_body=False)


async def media_response(request: Request, video_id: str, name: str, db: Database, videos: VideoService,
                         web_session: WebSession, with_body: bool) -> Response:
    if name not in SERVABLE:
        raise NotFoundException()
    async with db.read() as session:
        video = await session.get(Video, video_id)
    user = web_session.user
    if video is None or not can_view(video, user.id if user else None, user.role if user else None):
        raise NotFoundException()
    if videos.storage.remote:
        stored = await asyncio.to_thread(videos.storage.stat, video_id, name)
        if stored is None:
            raise NotFoundException()
        return object_response(videos.storage, video_id, name, stored, request.headers.get("range"),
                               request.headers.get("if-none-match"), with_body=with_body)
    path = videos.folder(video_id) / name
    if not path.is_file():
        raise NotFoundException()
    return file_response(path, request.headers.get("range"), request.headers.get("if-none-match"),
                         with_body=with_body)


async def owned_video(db: Database, video_id: str, user: User) -> Video:
    async with db.read() as session:
        video = await session.get(Video, video_id)
    if video is None or (video.creator_id != user.id and user.role != "admin"):
        raise NotFoundException()
    return video


async def job_rows(db: Database, video_id: str) -> list[MediaJob]:
    async with db.read() as session:
        return list((await session.execute(
            select(MediaJob).where(MediaJob.video_id == video_id).order_by(MediaJob.position))).scalars())


class StudioController(Controller):
    """Creators: upload, watch processing move step by step, and manage their videos."""

    @get("/upload")
    async def upload_page(self, request: Request, settings: Settings, db: Database) -> Response:
        require_account(request)
        sound = None
        if request.query_params.get("sound"):  # "use this sound", from a sound's page
            async with db.read() as session:
                sound = await session.get(Sound, request.query_params["sound"][:32])
        return render(request, "videos/upload.html", {"max_upload_mb": settings.max_upload_mb,
                                                       "topics": SUGGESTED_TOPICS, "sound": sound})

    # The file is the raw request body (streamed to disk, never held in memory); the caption and topic
    # travel in the query string. Our own size check replaces Litestar's body limit.
    @post("/api/uploads", request_max_body_size=None, status_code=201)
    async def upload(self, request: Request, settings: Settings, videos: VideoService) -> Response:
        user = require_account(request)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes:
            return Response({"error": str(UploadTooLarge(settings.max_upload_bytes)), "code": "too_large"},
                            status_code=413)
        if below_margin(settings.data_dir, settings.min_free_disk_mb + int(declared or 0) // MB):
            return no_space()
        try:
            tmp = await videos.receive_stream(request.stream())
        except UploadTooLarge as exc:
            return Response({"error": str(exc), "code": "too_large"}, status_code=413)
        except OSError as exc:
            if out_of_space(exc):  # the disk filled up while the file arrived; the partial file is gone
                return no_space()
            raise
        except InternalServerException:  # the browser went away mid-upload; the partial file is already gone
            return Response({"error": "The upload was interrupted. Please try again.", "code": "interrupted"},
                            status_code=400)
        try:
            video = await videos.accept(
                user.id, tmp, request.query_params.get("caption", ""), request.query_params.get("topic"),
                sound_id=request.query_params.get("sound") or None,
                sound_mode=request.query_params.get("sound_mode", "replace"),
            )
        except DuplicateUpload as exc:  # the same creator, the same bytes: 409 naming the video they have
            return Response({**rejection_message(exc), "existing_id": exc.existing_id,
                             "existing_url": exc.existing_url}, status_code=409)
        except MediaRejected as exc:
            return Response(rejection_message(exc), status_code=422)
        return Response({"id": video.id, "state": video.state, "status_url": f"/videos/{video.id}/status",
                         "url": f"/v/{video.id}"}, status_code=201)

    @get("/studio")
    async def studio_page(self, request: Request, db: Database) -> Response:
        return await self.studio(request, db)

    async def studio(self, request: Request, db: Database) -> Response:
        user = require_account(request)
        async with db.read() as session:
            videos = list((await session.execute(
                select(Video).where(Video.creator_id == user.id).order_by(Video.created_at.desc()))).scalars())
        # Views: playbacks (one ``view`` event each, the creator's own left out); impressions: times shown.
        views = await event_counts(db, videos, "view")
        impressions = await event_counts(db, videos, "impression")
        return render(request, "videos/studio.html", {"videos": videos, "views": views, "impressions": impressions},
                      block="videos")

    @get("/videos/{video_id:str}/status")
    async def status(self, request: Request, video_id: str, db: Database) -> Response:
        return await self.status_fragment(request, db, video_id)

    async def status_fragment(self, request: Request, db: Database, video_id: str) -> Response:
        user = require_account(request)
        video = await owned_video(db, video_id, user)
        jobs = await job_rows(db, video_id)
        return render(request, "videos/status.html", {"video": video, "jobs": jobs, "step_labels": STEP_LABELS},
                      block="status")

    @post("/videos/{video_id:str}/retry")
    async def retry(self, request: Request, video_id: str, db: Database, videos: VideoService) -> Response:
        user = require_account(request)
        video = await owned_video(db, video_id, user)
        await videos.retry(video.id)
        if request.query_params.get("view") == "studio":
            return await self.studio(request, db)
        return await self.status_fragment(request, db, video_id)

    @delete("/videos/{video_id:str}", status_code=200)
    async def remove(self, request: Request, video_id: str, db: Database, removal: VideoRemoval) -> Response:
        user = require_account(request)
        video = await owned_video(db, video_id, user)
        await removal.delete(video.id)
        return Response("", status_code=200, headers={"HX-Trigger": "video-deleted"})


def no_space() -> Response:
    return Response({"error": "The server is short of disk space and cannot take uploads right now. Nothing "
                              "was stored; please try again later.", "code": "insufficient_storage"},
                    status_code=507, headers={"Retry-After": "300"})


SUGGESTED_TOPICS = ("comedy", "music", "dance", "food", "travel", "pets", "sports", "science", "tech", "art",
                    "nature", "space", "learning", "fashion", "gaming")
