"""Profile pages beyond the grid: editing your profile (name, bio, avatar), the avatar files, your private
Liked tab, and follower / following lists. The profile page itself is ``PagesController.profile``."""

from __future__ import annotations

import asyncio

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.response import Redirect
from sqlalchemy import select

from app.config import Settings
from app.db.engine import Database
from app.db.models import User
from app.domain.accounts.profile import (
    MAX_AVATAR_BYTES,
    MAX_BIO,
    MAX_DISPLAY_NAME,
    ProfileError,
    ProfileService,
)
from app.domain.pages.people import follow_counts, follow_list, view_counts
from app.domain.pages.search import liked_videos, tiles_for
from app.domain.videos.files import file_response, object_response
from app.domain.videos.services import VideoService
from app.server.guards import login_redirect
from app.server.templating import is_htmx, render
from app.server.web_session import WebSession

# The whole multipart body of the edit form: the picture's limit plus room for the text fields.
MAX_EDIT_BODY = MAX_AVATAR_BYTES + 256 * 1024


def profiles_for(settings: Settings, db: Database, videos: VideoService) -> ProfileService:
    return ProfileService(db, settings.data_dir, settings.media_dir, videos.storage)


async def creator_by_handle(db: Database, handle: str) -> User:
    if not handle.startswith("@") or len(handle) < 2:
        raise NotFoundException()
    async with db.read() as session:
        creator = (await session.execute(select(User).where(
            User.username == handle[1:].lower(), User.is_guest.is_(False)))).scalar_one_or_none()
    if creator is None or creator.status == "banned":
        raise NotFoundException("No creator by that name.")
    return creator


def _go(request: Request, target: str) -> Response:
    if is_htmx(request):
        return Response("", status_code=200, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


class ProfileController(Controller):
    @get("/profile/edit")
    async def edit_page(self, request: Request, web_session: WebSession) -> Response:
        if not web_session.is_signed_in:
            return login_redirect(request, "/profile/edit")
        user = web_session.user
        return render(request, "pages/profile_edit.html", self._form(user.display_name, user.bio))

    @staticmethod
    def _form(name: str, bio: str, error: str | None = None, field: str | None = None) -> dict:
        return {"name": name, "bio": bio, "error": error, "error_field": field, "max_name": MAX_DISPLAY_NAME,
                "max_bio": MAX_BIO, "max_avatar_mb": MAX_AVATAR_BYTES // (1024 * 1024)}

    # Multipart (name, bio, picture) from the htmx form, or url-encoded (name and bio only) from a plain one.
    @post("/profile/edit", request_max_body_size=MAX_EDIT_BODY)
    async def edit(self, request: Request, settings: Settings, db: Database, videos: VideoService,
                   web_session: WebSession) -> Response:
        if not web_session.is_signed_in:
            return login_redirect(request, "/profile/edit")
        user = web_session.user
        form = await request.form()
        name, bio = str(form.get("display_name") or ""), str(form.get("bio") or "")
        picture = form.get("avatar")
        data: bytes | None = None
        if isinstance(picture, UploadFile) and (picture.filename or picture.size):
            data = await picture.read()
        try:
            await profiles_for(settings, db, videos).update(user.id, name, bio, data,
                                                             remove_avatar=form.get("remove_avatar") == "1")
        except ProfileError as exc:
            return render(request, "pages/profile_edit.html", self._form(name, bio, str(exc), exc.field),
                          block="form", status_code=exc.status_code)
        return _go(request, f"/@{user.username}")

    @get("/media/avatars/{user_id:str}/{name:str}")
    async def avatar(self, request: Request, user_id: str, name: str, settings: Settings, db: Database,
                     videos: VideoService) -> Response:
        profiles = profiles_for(settings, db, videos)
        found = await profiles.file_for(user_id, name)
        if found is None:
            raise NotFoundException()
        path, remote_only = found
        if remote_only:
            if not videos.storage.remote:
                raise NotFoundException()
            key = profiles.store_key(user_id)
            stored = await asyncio.to_thread(videos.storage.stat, key, name)
            if stored is None:
                raise NotFoundException()
            return object_response(videos.storage, key, name, stored, request.headers.get("range"),
                                   request.headers.get("if-none-match"), max_age=86400)
        # Each picture has a new name: safe to cache for a day.
        return file_response(path, request.headers.get("range"), request.headers.get("if-none-match"),
                             max_age=86400)

    # ---- your likes: a tab only you see (anyone else, signed in or not, gets 404) --------------------------
    @get("/{handle:str}/liked")
    async def liked(self, request: Request, handle: str, db: Database, web_session: WebSession) -> Response:
        creator = await creator_by_handle(db, handle)
        viewer = web_session.user
        if not web_session.is_signed_in or viewer is None or viewer.id != creator.id:
            raise NotFoundException("No such page.")
        videos = await liked_videos(db, creator.id)
        context = {"creator": creator, "tiles": await tiles_for(db, videos), "grid_from": "liked",
                   "tab": "liked", "own": True}
        return render(request, "pages/liked.html", context)

    @get("/{handle:str}/followers")
    async def followers(self, request: Request, handle: str, db: Database, web_session: WebSession) -> Response:
        return await self._people(request, handle, "followers", db, web_session)

    @get("/{handle:str}/following")
    async def following(self, request: Request, handle: str, db: Database, web_session: WebSession) -> Response:
        return await self._people(request, handle, "following", db, web_session)

    async def _people(self, request: Request, handle: str, direction: str, db: Database,
                      web_session: WebSession) -> Response:
        creator = await creator_by_handle(db, handle)
        viewer = web_session.user if web_session.is_signed_in else None
        people = await follow_list(db, creator.id, direction, viewer.id if viewer else None)
        followers, following = await follow_counts(db, creator.id)
        context = {"creator": creator, "people": people, "direction": direction, "followers": followers,
                   "following_count": following, "viewer_id": viewer.id if viewer else None}
        return render(request, "pages/people.html", context)


async def profile_tiles(db: Database, videos: list) -> list:
    """Grid tiles with their view counts (the profile grid shows plays, as TikTok's does)."""
    tiles = await tiles_for(db, videos)
    views = await view_counts(db, [t.video for t in tiles])
    for tile in tiles:
        tile.views = views.get(tile.video.id, 0)
    return tiles
