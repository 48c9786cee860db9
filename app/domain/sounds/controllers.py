"""/sound/<id>: a sound's page (title, original video, every video using it, usage count) and its renaming
by the first uploader."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException

from app.db.engine import Database
from app.domain.admin.forms import back, form_of
from app.domain.feed.services import hidden_for
from app.domain.pages.search import tiles_for
from app.domain.sounds.services import rename_sound, sound_page
from app.server.guards import flash_messages, require_account
from app.server.templating import render
from app.server.web_session import WebSession


class SoundController(Controller):
    path = "/sound"

    @get("/{sound_id:str}")
    async def page(self, request: Request, sound_id: str, db: Database, web_session: WebSession) -> Response:
        async with db.read() as session:
            page = await sound_page(session, sound_id[:32])
        if page is None:
            raise NotFoundException("No such sound.")
        viewer = web_session.user
        hidden, _ = await hidden_for(db, viewer.id if viewer else None)
        others = [v for v in page.videos if v.id != page.sound.original_video_id]
        context = {
            "page": page, "tiles": await tiles_for(db, others, hidden),
            "original_tiles": await tiles_for(db, [page.original], hidden) if page.original else [],
            "can_rename": bool(web_session.is_signed_in and viewer and viewer.id == page.sound.creator_id),
            **flash_messages(request),
        }
        return render(request, "sounds/sound.html", context)

    @post("/{sound_id:str}/title")
    async def rename(self, request: Request, sound_id: str, db: Database) -> Response:
        user = require_account(request)
        title = (await form_of(request)).get("title", "")
        try:
            async with db.write() as session:
                await rename_sound(session, sound_id[:32], user, title)
        except LookupError:
            raise NotFoundException("No such sound.") from None
        except PermissionError as exc:
            raise PermissionDeniedException(str(exc)) from None
        except ValueError as exc:
            return back(f"/sound/{sound_id}", str(exc), error=True)
        return back(f"/sound/{sound_id}", "Sound renamed.")
