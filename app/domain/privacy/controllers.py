"""/settings: muted words, blocked creators, data export and account deletion."""

from __future__ import annotations

import re

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Stream

from app.domain.accounts.services import verify_password
from app.domain.admin.forms import back, form_of
from app.domain.privacy.service import PrivacyService, stream_and_remove
from app.server.guards import flash_messages, require_account
from app.server.templating import render
from app.server.web_session import SessionStore, WebSession, replace_web_session


class SettingsController(Controller):
    path = "/settings"

    @get("/")
    async def page(self, request: Request, privacy: PrivacyService) -> Response:
        user = require_account(request)
        context = {"muted": (user.preferences or {}).get("muted_words", []),
                   "blocked": await privacy.blocked_creators(user), **flash_messages(request)}
        return render(request, "privacy/settings.html", context)

    @post("/muted")
    async def muted(self, request: Request, privacy: PrivacyService) -> Response:
        user = require_account(request)
        words = await privacy.set_muted_words(user, (await form_of(request)).get("words", ""))
        return back("/settings#muted", f"{len(words)} muted word(s) saved.")

    @post("/blocked")
    async def block(self, request: Request, privacy: PrivacyService) -> Response:
        user = require_account(request)
        creator = await privacy.block_creator(user, (await form_of(request)).get("username"))
        if creator is None:
            return back("/settings#blocked", "No creator by that name.", error=True)
        return back("/settings#blocked", f"@{creator.username} is blocked.")

    @post("/blocked/{creator_id:str}/remove")
    async def unblock(self, request: Request, creator_id: str, privacy: PrivacyService) -> Response:
        user = require_account(request)
        await privacy.unblock_creator(user, creator_id)
        return back("/settings#blocked", "Unblocked.")

    @get("/export")
    async def export(self, request: Request, privacy: PrivacyService) -> Response:
        user = require_account(request)
        path = await privacy.build_export(user)
        name = re.sub(r"[^a-z0-9_.-]", "", user.username or "account")
        return Stream(stream_and_remove(path), media_type="application/zip",
                      headers={"Content-Disposition": f'attachment; filename="foryou-{name}-data.zip"',
                               "Content-Length": str(path.stat().st_size), "Cache-Control": "no-store"})

    @get("/delete")
    async def confirm_delete(self, request: Request) -> Response:
        require_account(request)
        return render(request, "privacy/delete.html", flash_messages(request))

    @post("/delete")
    async def delete(self, request: Request, privacy: PrivacyService, sessions: SessionStore,
                     web_session: WebSession) -> Response:
        user = require_account(request)
        form = await form_of(request)
        if form.get("confirm", "").strip().lstrip("@").lower() != (user.username or ""):
            return back("/settings/delete", "Type your username exactly to confirm.", error=True)
        if not user.password_hash or not await verify_password(user.password_hash, form.get("password", "")):
            return back("/settings/delete", "That password is not right.", error=True)
        await privacy.delete_account(user)
        replace_web_session(request, await sessions.rotate(web_session, None))
        return Redirect("/?msg=account-deleted", status_code=303)
