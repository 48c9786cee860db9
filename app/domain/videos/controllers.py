"""Video files (with Range support) and the creator's upload and studio pages."""

from __future__ import annotations

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException

from app.db.models import Video
from app.domain.videos.files import file_response
from app.server.services import services_of, web_session_of

# The files of a video that may be served, by public name.
SERVABLE = {"video.mp4", "poster.jpg", "captions.vtt"}


def can_view(video: Video, viewer_id: str | None, viewer_role: str | None) -> bool:
    """Anyone may watch a published video; only its creator and admins see one in processing or review."""
    if video.state == "ready" and video.moderation in ("ok", "flagged_ok"):
        return True
    return viewer_id == video.creator_id or viewer_role == "admin"


class MediaController(Controller):
    path = "/media"

    @get("/{video_id:str}/{name:str}")
    async def serve(self, request: Request, video_id: str, name: str) -> Response:
        services = services_of(request)
        if name not in SERVABLE:
            raise NotFoundException()
        async with services.db.read() as session:
            video = await session.get(Video, video_id)
        user = web_session_of(request).user
        if video is None or not can_view(video, user.id if user else None, user.role if user else None):
            raise NotFoundException()
        path = services.videos.folder(video_id) / name
        if not path.is_file():
            raise NotFoundException()
        return file_response(path, request.headers.get("range"), request.headers.get("if-none-match"))
