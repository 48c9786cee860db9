"""Who may do what: the one place that sends a guest to log in, and the account and admin checks.

Handlers call ``require_account`` / ``require_admin`` and return the response they get back when it is one
(a redirect to the login page that comes back to where the visitor was).
"""

from __future__ import annotations

from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect

from app.db.models import User
from app.server.services import web_session_of
from app.server.templating import is_htmx


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


def require_account(request: Request) -> User | Response:
    """The signed-in user, or the way to log in."""
    web_session = web_session_of(request)
    return web_session.user if web_session.is_signed_in else login_redirect(request)


def require_admin(request: Request) -> User | Response:
    """The admin user; guests are sent to log in, signed-in non-admins get 403."""
    user = require_account(request)
    if isinstance(user, User) and user.role != "admin":
        raise PermissionDeniedException("Operators only.")
    return user


def flash_messages(request: Request) -> dict[str, str | None]:
    """The one-line notices that form posts leave for the page they redirect back to."""
    return {"flash": request.query_params.get("msg"), "flash_error": request.query_params.get("error")}
