"""Structured logs: one JSON object per line (or readable lines on a terminal), and access logs.

Every line logged while a request is handled carries that request's id (also sent back as ``X-Request-ID``),
so an access line and the errors of the same request can be found together. Paths are logged without their
query string and no header or body is logged, so tokens and passwords never reach the log.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"request_id", "color_message"}
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "request_id", None):
            payload["request_id"] = record.request_id
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class ReadableFormatter(logging.Formatter):
    """For a developer's terminal: ``12:00:01 INFO foryou.access GET /feed/cards 200 12.3ms [id]``."""

    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        if record.name == "foryou.access":
            parts = [extra.pop("method", ""), extra.pop("path", ""), extra.pop("status", "")]
            text = " ".join(str(part) for part in parts) + f" {extra.pop('ms', '')}ms"
        else:
            text = record.getMessage()
        if extra:
            text += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        if getattr(record, "request_id", None):
            text += f" [{record.request_id}]"
        line = f"{stamp} {record.levelname} {record.name}: {text}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def wants_json(as_json: bool | None, stream: object = None) -> bool:
    """JSON unless told otherwise; ``None`` means JSON when the output is not a terminal."""
    if as_json is not None:
        return as_json
    stream = stream or sys.stderr
    return not (hasattr(stream, "isatty") and stream.isatty())


def configure_logging(level: str = "INFO", as_json: bool | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if wants_json(as_json, sys.stderr) else ReadableFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries log through the root handler (uvicorn's own handlers are not installed: log_config=None).
    for name in ("uvicorn", "uvicorn.error", "litestar"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # APScheduler warns on every tick that finds the previous run still going: by design (max_instances=1).
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    for noisy in ("uvicorn.access", "httpx", "numba", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


access_log = logging.getLogger("foryou.access")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if REQUEST_ID_RE.match(candidate) else None
    return None


class AccessLogMiddleware(ASGIMiddleware):
    """One line per request: method, path (no query string), status, duration in ms, client, request id."""

    scopes = (ScopeType.HTTP,)
    should_bypass_for_scope = staticmethod(lambda scope: scope["path"].startswith("/static/"))

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = time.perf_counter()
        status = {"code": 500}
        request_id = _incoming_request_id(scope) or secrets.token_hex(8)
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await next_app(scope, receive, capture)
        finally:
            client = scope.get("client")
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status["code"],
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "client": client[0] if client else None,
                },
            )
            request_id_var.reset(token)
