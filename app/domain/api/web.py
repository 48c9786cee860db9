"""/settings/tokens: a signed-in user creates and revokes personal access tokens for the JSON API."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post

from app.domain.admin.forms import back
from app.domain.api.controllers import ApiDep
from app.domain.api.tokens import SCOPES, TokenError
from app.server.guards import flash_messages, require_account
from app.server.templating import render


class ApiTokenController(Controller):
    path = "/settings/tokens"

    @get("/")
    async def page(self, request: Request, api: ApiDep) -> Response:
        user = require_account(request)
        return await _render(request, api, user, **flash_messages(request))

    @post("/")
    async def create(self, request: Request, api: ApiDep) -> Response:
        """Answered with the page itself (not a redirect), so the new secret is shown once and never sits in a URL."""
        user = require_account(request)
        form = await request.form()
        try:
            new = await api.tokens.create(user, str(form.get("name") or ""),
                                          [str(v) for v in form.getall("scopes", [])])
        except TokenError as exc:
            return await _render(request, api, user, flash_error=str(exc), status_code=400)
        return await _render(request, api, user, new_secret=new.secret, new_token=new.token,
                             headers={"Cache-Control": "no-store"})

    @post("/{token_id:str}/revoke")
    async def revoke(self, request: Request, api: ApiDep, token_id: str) -> Response:
        user = require_account(request)
        if await api.tokens.revoke(user, token_id):
            return back("/settings/tokens", "Token revoked: it no longer works.")
        return back("/settings/tokens", "No such token.", error=True)


async def _render(request: Request, api: ApiDep, user, status_code: int = 200, headers: dict | None = None,  # noqa: ANN001
                  **context) -> Response:  # noqa: ANN003
    tokens = await api.tokens.list_for(user)
    return render(request, "privacy/tokens.html", {"tokens": tokens, "scopes": SCOPES, **context},
                  status_code=status_code, headers=headers)
