"""Error pages that look like the app (HTML for pages, JSON for the API)."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException

from app.server.disk import out_of_space
from app.server.templating import is_htmx, render

log = logging.getLogger(__name__)

TITLES = {
    400: "That request didn't make sense",
    401: "Please log in",
    403: "You can't do that",
    404: "Nothing here",
    405: "Not allowed",
    413: "That's too big",
    429: "Slow down a little",
    500: "Something broke on our side",
    503: "Please try again in a minute",
    507: "The server is out of space",
}


def _wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return True
    return not is_htmx(request) and "text/html" not in request.headers.get("accept", "")


def error_response(request: Request, status: int, detail: str) -> Response:
    if _wants_json(request):
        return Response({"error": detail, "status": status}, status_code=status)
    title = TITLES.get(status, "Something went wrong")
    context = {"status": status, "title": title, "detail": detail}
    if is_htmx(request):
        # htmx swaps 4xx HTML in place (static/js/app.js): the message goes to the toast, the page stays.
        headers = {"HX-Retarget": "#toast", "HX-Reswap": "innerHTML"}
        return render(request, "components/error_fragment.html", context, status_code=status, headers=headers)
    try:
        return render(request, "error.html", context, status_code=status)
    except Exception:  # noqa: BLE001 - never fail while reporting a failure
        log.exception("error page failed to render")
        return Response(f"{status} {title}", status_code=status, media_type="text/plain")


def http_exception_handler(request: Request, exc: HTTPException) -> Response:
    detail = exc.detail if exc.detail and exc.detail != TITLES.get(exc.status_code) else ""
    if exc.status_code == 413 and not detail:
        detail = "The request body is larger than allowed."
    response = error_response(request, exc.status_code, detail or TITLES.get(exc.status_code, ""))
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


def internal_error_handler(request: Request, exc: Exception) -> Response:
    if out_of_space(exc):
        # Nothing was stored: 503 tells clients (the page's outbox, a retrying form) to keep it and come back.
        log.error("write failed: out of disk space on %s %s", request.method, request.url.path)
        response = error_response(request, 503, "The server is short of disk space right now; nothing was "
                                                "saved. Please try again in a minute.")
        response.headers["Retry-After"] = "60"
        return response
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "We've logged it and will look into it.")
