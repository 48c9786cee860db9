"""Who may do what: the one place that sends a guest to log in, and the account and admin checks.

Handlers call ``require_account`` / ``require_admin`` and get the user; for a guest they raise ``LoginRequired``,
which the app answers with a redirect to the login page that comes back to where the visitor was.
"""

from __future__ import annotations

from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect

from app.db.models import User
from app.server.templating import is_htmx
from app.server.web_session import web_session_of


def safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect to another host after login."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def login_redirect(request: Request, next_path: str | None = None) -> Response:
    """To the login page, then back to ``next_path`` (default: this page). JSON for the API, HX-Redirect for htmx."""
    target = f"/login?next={quote(safe_next(next_path or request.url.path), safe='/@')}"
    if request.url.path.startswith("/api/"):
        return Response({"error": "Please log in first.", "login": target}, status_code=401)
    if is_htmx(request):
        return Response("", status_code=200, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


class LoginRequired(Exception):
    """A guest asked for something that needs an account."""


def login_required_handler(request: Request, _exc: LoginRequired) -> Response:
    return login_redirect(request)


def require_account(request: Request) -> User:
    """The signed-in user (a guest raises ``LoginRequired``)."""
    web_session = web_session_of(request)
    if not web_session.is_signed_in:
        raise LoginRequired()
    return web_session.user


def require_admin(request: Request) -> User:
    """The admin user; guests are sent to log in, signed-in non-admins get 403."""
    user = require_account(request)
    if user.role != "admin":
        raise PermissionDeniedException("Operators only.")
    return user


def flash_messages(request: Request) -> dict[str, str | None]:
    """The one-line notices that form posts leave for the page they redirect back to."""
    return {"flash": request.query_params.get("msg"), "flash_error": request.query_params.get("error")}
