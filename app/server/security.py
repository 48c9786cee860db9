"""Security headers on every response (errors and unrouted 404/405 included) and the allowed Host names."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

# No inline scripts and no eval: every script is a file under /static. Inline styles are allowed for
# htmx's indicator style and per-card style attributes.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}


_RAW_HEADERS = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in HEADERS.items()]


async def add_security_headers(message: Message, scope: Scope) -> None:
    """A ``before_send`` hook: Litestar calls it for every response the app sends, routed or not. A header the
    response sets itself is left as it is. (One pass over the raw headers: MutableScopeHeaders' lookups and sets
    decoded every header name per lookup, ~20 us a response.)"""
    if message["type"] != "http.response.start":
        return
    headers = message.get("headers")
    if not isinstance(headers, list):
        headers = message["headers"] = list(headers or [])
    present = {name.lower() for name, _ in headers}
    headers.extend(header for header in _RAW_HEADERS if header[0] not in present)


def host_of(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            raw = value.decode("latin-1").strip().lower()
            if raw.startswith("["):  # [::1]:8000
                return raw[1:].split("]", 1)[0]
            return raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw
    return ""


class AllowedHostsMiddleware(ASGIMiddleware):
    """Answer 400 to a Host header that names another site (host-header injection, cache poisoning)."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.any_host = "*" in allowed
        self.exact = {h for h in allowed if not h.startswith("*.")}
        self.suffixes = tuple(h[1:] for h in allowed if h.startswith("*."))

    def allows(self, host: str) -> bool:
        return self.any_host or host in self.exact or (bool(host) and host.endswith(self.suffixes or ("\0",)))

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if self.allows(host_of(scope)):
            await next_app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "http.response.body", "body": b"Unknown host: this server does not answer for it."})
