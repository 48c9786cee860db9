"""Sign-up, login and logout pages."""

from __future__ import annotations

import json
from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect

from app.config import Settings
from app.domain.accounts.services import (
    DEVICE_COOKIE,
    DEVICE_COOKIE_DAYS,
    AccountError,
    AccountService,
    LoginThrottled,
    normalise_username,
)
from app.server.guards import safe_next
from app.server.templating import is_htmx, render
from app.server.web_session import WebSession, replace_web_session


def _go(request: Request, target: str) -> Response:
    if is_htmx(request):
        return Response("", status_code=200, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def _signed_in(request: Request, target: str, sheet: bool, web_session: WebSession) -> Response:
    """Where a successful sign-in goes: the ``next`` page, or, from the sign-in sheet, nowhere: the page stays
    put, its navigation is refreshed out of band and ``foryou:signed-in`` carries the new session's CSRF token,
    so static/js/app.js can close the sheet and repeat the request that opened it."""
    if not (sheet and is_htmx(request)):
        return _go(request, target)
    trigger = {"foryou:signed-in": {"csrf": web_session.csrf_token,
                                    "username": web_session.user.username if web_session.user else None}}
    return render(request, "accounts/signed_in.html", {"active": ""},
                  headers={"HX-Reswap": "none", "HX-Trigger": json.dumps(trigger)})


def _form_context(request: Request, next_path: str | None) -> dict:
    sheet = request.query_params.get("sheet") == "1"
    return {"next": safe_next(next_path), "sheet": sheet}


def remember_device(response: Response, accounts: AccountService, settings: Settings, username: str) -> Response:
    """This browser has signed in as ``username``: failed logins elsewhere will not lock it out."""
    response.set_cookie(DEVICE_COOKIE, accounts.devices.issue(normalise_username(username)),
                        max_age=DEVICE_COOKIE_DAYS * 86400, httponly=True, samesite="lax",
                        secure=settings.secure_cookies)
    return response


Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
NextPath = Annotated[str | None, QueryParameter(name="next")]


class AccountController(Controller):
    @get("/signup")
    async def signup_page(self, request: Request, next_path: NextPath = None) -> Response:
        context = _form_context(request, next_path)
        block = "form" if context["sheet"] and is_htmx(request) else None  # the sheet swaps forms in place
        return render(request, "accounts/signup.html", context, block=block)

    @post("/signup")
    async def signup(self, request: Request, data: Form, accounts: AccountService,
                     web_session: WebSession, settings: Settings) -> Response:
        target = safe_next(data.get("next"))
        sheet = data.get("sheet") == "1"
        try:
            _, new_session = await accounts.sign_up(
                web_session, data.get("username", ""), data.get("password", ""),
                data.get("display_name", ""),
            )
        except AccountError as exc:
            context = {"error": str(exc), "next": target, "username": data.get("username", ""), "sheet": sheet}
            return render(request, "accounts/signup.html", context, block="form", status_code=exc.status_code)
        replace_web_session(request, new_session)
        return remember_device(_signed_in(request, target, sheet, new_session), accounts, settings,
                               data.get("username", ""))

    @get("/login")
    async def login_page(self, request: Request, next_path: NextPath = None) -> Response:
        context = _form_context(request, next_path)
        block = "form" if context["sheet"] and is_htmx(request) else None
        return render(request, "accounts/login.html", context, block=block)

    @post("/login")
    async def login(self, request: Request, data: Form, accounts: AccountService,
                    web_session: WebSession, settings: Settings) -> Response:
        target = safe_next(data.get("next"))
        sheet = data.get("sheet") == "1"
        # The peer address, or the forwarded one when the peer is a trusted proxy (FORYOU_TRUSTED_PROXIES).
        client = request.client.host if request.client else "unknown"
        try:
            user, new_session = await accounts.log_in(
                web_session, data.get("username", ""), data.get("password", ""), client,
                request.cookies.get(DEVICE_COOKIE),
            )
        except AccountError as exc:
            context = {"error": str(exc), "next": target, "username": data.get("username", ""), "sheet": sheet}
            headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, LoginThrottled) else None
            return render(request, "accounts/login.html", context, block="form",
                          status_code=exc.status_code, headers=headers)
        replace_web_session(request, new_session)
        return remember_device(_signed_in(request, target, sheet, new_session), accounts, settings, user.username)

    @post("/logout")
    async def logout(self, request: Request, accounts: AccountService, web_session: WebSession) -> Response:
        new_session = await accounts.log_out(web_session)
        replace_web_session(request, new_session)
        return _go(request, "/")
