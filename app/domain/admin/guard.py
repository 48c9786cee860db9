"""Who may see the operator pages: signed-in users with ``role == "admin"``."""

from __future__ import annotations

from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect

from app.db.models import User
from app.server.services import web_session_of
from app.server.templating import is_htmx


def require_admin(request: Request) -> User | Response:
    """The admin user; guests are sent to log in, signed-in non-admins get 403."""
    web_session = web_session_of(request)
    if not web_session.is_signed_in:
        target = f"/login?next={quote(request.url.path)}"
        if is_htmx(request):
            return Response("", status_code=401, headers={"HX-Redirect": target})
        return Redirect(target, status_code=303)
    user = web_session.user
    if user.role != "admin":
        raise PermissionDeniedException("Operators only.")
    return user


async def form_of(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: str(form.get(key) or "") for key in form}


def back(path: str, message: str | None = None, error: bool = False) -> Redirect:
    if message:
        path, _, fragment = path.partition("#")
        path += ("&" if "?" in path else "?") + ("error=" if error else "msg=") + quote(message)
        path += f"#{fragment}" if fragment else ""
    return Redirect(path, status_code=303)
