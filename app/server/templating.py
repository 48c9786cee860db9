"""Page rendering: one Jinja environment; one URL serves a whole page or, for htmx, one named block of it."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.enums import MediaType
from markupsafe import Markup

from app.config import PROJECT_ROOT

TEMPLATES_DIR = PROJECT_ROOT / "templates"


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates change with a deploy: no stat() of every included file per render
    )
    env.filters["compact"] = compact_number
    env.globals["icon"] = _icon_function(env)
    env.globals["cached_fragment"] = FragmentCache()
    # The card's toggles (components/actions.html) as globals: a template that imports them with ``{% from %}``
    # pays a module lookup against its whole context every time it runs (a third of a millisecond per feed page).
    actions = env.get_template("components/actions.html").module
    for name in ACTION_MACROS:
        env.globals[name] = getattr(actions, name)
    return env


ACTION_MACROS = ("like_button", "save_button", "follow_button")


class FragmentCache:
    """``{% call cached_fragment(*key) %}...{% endcall %}``: the body rendered once per key, then reused.

    For the parts of a page that depend only on what the key names (a feed card's video, creator and sound:
    ``Card.fragment_key``), so that rendering them is paid once per version of the video, not once per viewer.
    Bounded: the oldest entries go first. Used on the event loop only (no lock). A key that is just ``None``
    renders the body every time (a fragment cacheable only sometimes: ``cached_fragment(None if ... else key)``)."""

    def __init__(self, max_entries: int = 8192) -> None:
        self.max_entries = max_entries
        self._fragments: dict[tuple, Markup] = {}

    def __call__(self, *key: object, caller) -> Markup:  # noqa: ANN001 - Jinja's call-block macro
        if key == (None,):
            return Markup(caller())
        fragment = self._fragments.get(key)
        if fragment is None:
            if len(self._fragments) >= self.max_entries:
                del self._fragments[next(iter(self._fragments))]
            fragment = self._fragments[key] = Markup(caller())
        return fragment

    def clear(self) -> None:
        self._fragments.clear()


def _icon_function(env: Environment):  # noqa: ANN202 - a template global
    """``{{ icon("heart") }}``: the SVG of templates/components/icons/<name>.svg, rendered once per name.

    The same markup an ``{% include %}`` of the file gives (the icons are static), without an include's
    template lookup and context copy: a feed page of six cards used to make ~60 of them."""
    cache: dict[str, Markup] = {}

    def icon(name: str) -> Markup:
        markup = cache.get(name)
        if markup is None:
            markup = cache[name] = Markup(env.get_template(f"components/icons/{name}.svg").render())
        return markup

    return icon


def compact_number(value: int | float) -> str:
    """1234 -> 1.2K, the way counts are shown on a card."""
    number = float(value or 0)
    for unit, size in (("M", 1_000_000), ("K", 1_000)):
        if number >= size:
            text = f"{number / size:.1f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return str(int(number))


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render ``template``; for an htmx request with ``block`` given, only that block."""
    env: Environment = request.app.state.jinja
    full_context = {**base_context(request), **(context or {})}
    page = env.get_template(template)
    if block and is_htmx(request):
        html = "".join(page.blocks[block](page.new_context(full_context)))
    else:
        html = page.render(full_context)
    response_headers = {"Vary": "HX-Request", **(headers or {})}
    return Response(html, media_type=MediaType.HTML, status_code=status_code, headers=response_headers)


def render_block(request: Request, template: str, block: str, context: dict[str, Any] | None = None) -> str:
    env: Environment = request.app.state.jinja
    page = env.get_template(template)
    return "".join(page.blocks[block](page.new_context({**base_context(request), **(context or {})})))


# One-line notices a redirect can ask for with ``?msg=<key>`` (shown once, in the toast).
NOTICES = {
    "account-deleted": "Your account and everything in it has been deleted.",
    "logged-out": "You're logged out.",
}


def base_context(request: Request) -> dict[str, Any]:
    web_session = request.scope.get("state", {}).get("web_session")
    return {
        "request": request,
        "web_session": web_session,
        "current_user": web_session.user if web_session else None,
        "signed_in": bool(web_session and web_session.is_signed_in),
        "csrf_token": web_session.csrf_token if web_session else "",
        "settings": request.app.state.settings,
        "notice": NOTICES.get(request.query_params.get("msg", "")),
    }
