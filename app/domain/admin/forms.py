"""Form helpers of the operator and settings pages: read a posted form, go back with a one-line notice."""

from __future__ import annotations

from urllib.parse import quote

from litestar import Request
from litestar.response import Redirect


async def form_of(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: str(form.get(key) or "") for key in form}


def back(path: str, message: str | None = None, error: bool = False) -> Redirect:
    if message:
        path, _, fragment = path.partition("#")
        path += ("&" if "?" in path else "?") + ("error=" if error else "msg=") + quote(message)
        path += f"#{fragment}" if fragment else ""
    return Redirect(path, status_code=303)
