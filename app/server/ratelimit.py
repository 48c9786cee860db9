"""Token buckets: a burst allowance refilled at a steady rate, per key, with bounded memory.

Used for beacons (events per visitor and per client address): a request costs as many tokens as it carries
events, so one client can neither send many small batches nor a few huge ones faster than the refill rate.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from app.server.web_session import COOKIE_NAME, hash_token

BEACON_PATH = "/api/events"


class TokenBuckets:
    def __init__(self, burst: int, per_minute: int, max_keys: int = 100_000) -> None:
        self.burst = float(max(burst, 1))
        self.rate = max(per_minute, 1) / 60.0  # tokens per second
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def wait_for(self, key: str, cost: float, now: float | None = None) -> float:
        """Seconds until ``cost`` tokens are there (0: now). A cost above the burst can never pass whole."""
        now = time.monotonic() if now is None else now
        missing = min(cost, self.burst) - self._level(key, now)
        return 0.0 if missing <= 0 else missing / self.rate

    def take(self, key: str, cost: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._buckets[key] = (self._level(key, now) - cost, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:  # the least recently used keys go first (they are full again)
            self._buckets.popitem(last=False)


class Penalties:
    """Keys told to come back later (``Retry-After``) and until when, with bounded memory."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._until: OrderedDict[str, float] = OrderedDict()

    def wait(self, key: str | None, now: float) -> float:
        until = self._until.get(key) if key else None
        if until is None:
            return 0.0
        if until <= now:
            del self._until[key]
            return 0.0
        return until - now

    def hold(self, key: str, seconds: float, now: float) -> None:
        self._until[key] = max(self._until.get(key, 0.0), now + seconds)
        self._until.move_to_end(key)
        while len(self._until) > self.max_keys:
            self._until.popitem(last=False)


@dataclass
class BeaconLimits:
    """Events per visitor (browser session) and per client address, each a burst plus a per-minute rate.

    A refused visitor or address is held until the ``Retry-After`` it was given: until then ``held`` answers
    from memory, so the gate in front of the app (``app.server.limits.BeaconGateMiddleware``) refuses its
    beacons before their body is read, their JSON parsed or their session looked up."""

    per_visitor: TokenBuckets
    per_address: TokenBuckets
    penalties: Penalties = field(default_factory=Penalties)

    @classmethod
    def from_settings(cls, settings) -> BeaconLimits:  # noqa: ANN001 - app.config.Settings
        return cls(TokenBuckets(settings.beacon_burst, settings.beacon_events_per_minute),
                   TokenBuckets(settings.beacon_address_burst, settings.beacon_address_events_per_minute))

    def admit(self, visitor: str, address: str, events: int) -> int:
        """0 when the batch may go in (its tokens are taken), else whole seconds for ``Retry-After``; the key
        whose bucket refused (the visitor, the address or both) is held that long."""
        cost = max(events, 1)
        now = time.monotonic()
        held = self.held(visitor, address, now)
        if held:
            return held
        visitor_wait = self.per_visitor.wait_for(visitor, cost, now)
        address_wait = self.per_address.wait_for(address, cost, now)
        if visitor_wait > 0 or address_wait > 0:
            retry_after = max(1, math.ceil(max(visitor_wait, address_wait)))
            if visitor_wait > 0:
                self.penalties.hold(_VISITOR + visitor, retry_after, now)
            if address_wait > 0:
                self.penalties.hold(_ADDRESS + address, retry_after, now)
            return retry_after
        self.per_visitor.take(visitor, cost, now)
        self.per_address.take(address, cost, now)
        return 0

    def held(self, visitor: str | None, address: str | None, now: float | None = None) -> int:
        """Whole seconds left before a refused visitor or address may send again (0: not held)."""
        now = time.monotonic() if now is None else now
        wait = max(self.penalties.wait(_VISITOR + visitor if visitor else None, now),
                   self.penalties.wait(_ADDRESS + address if address else None, now))
        return math.ceil(wait) if wait > 0 else 0


_VISITOR, _ADDRESS = "v:", "a:"


class BeaconGateMiddleware(ASGIMiddleware):
    """Refuses beacons from a visitor or address still held by ``BeaconLimits`` before anything else runs.

    A held client is answered 429 with the ``Retry-After`` it already had, from memory: no body read, no JSON
    parsed, no session looked up in the database. So a flood from one client costs a dictionary look-up per
    request once its first refusal is out, and other viewers keep their latency. A client that honours
    ``Retry-After`` (the page's outbox does) never meets the gate.

    Cheap refusals alone let a client that ignores ``Retry-After`` spin faster; so a held client's answer is
    also slowed (up to ``tarpit_s``, an idle await that costs the server no CPU), which bounds each of its
    connections to about one refused beacon per ``tarpit_s``. At most ``tarpit_per_address`` answers per address
    wait at once; beyond that they go out at once and the connection is closed."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limits: BeaconLimits, path: str = BEACON_PATH, tarpit_s: float = 1.0,
                 tarpit_per_address: int = 16) -> None:
        self.limits = limits
        self.paths = frozenset({path, path.rstrip("/") + "/"})
        self.tarpit_s = tarpit_s
        self.tarpit_per_address = tarpit_per_address
        self._waiting: dict[str, int] = {}

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["method"] != "POST" or scope["path"] not in self.paths:
            await next_app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        visitor = _visitor_of(scope)
        wait = self.limits.held(visitor, address)
        if not wait:
            await next_app(scope, receive, send)
            return
        headers = [(b"content-type", b"application/json")]
        if self._waiting.get(address, 0) < self.tarpit_per_address and self.tarpit_s > 0:
            self._waiting[address] = self._waiting.get(address, 0) + 1
            try:
                await asyncio.sleep(min(self.tarpit_s, wait))
            finally:
                self._waiting[address] -= 1
                if not self._waiting[address]:
                    del self._waiting[address]
            wait = max(1, self.limits.held(visitor, address))
        else:
            headers.append((b"connection", b"close"))
        body = json.dumps({"error": f"Too many events; send them again in {wait} s.", "problems": []}).encode()
        headers += [(b"content-length", str(len(body)).encode()), (b"retry-after", str(wait).encode())]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _visitor_of(scope: Scope) -> str | None:
    """The visitor key ``BeaconLimits`` uses (the session token's hash), straight from the cookie header."""
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, token = part.strip().partition("=")
                if key == COOKIE_NAME and token:
                    return hash_token(token.strip('"'))
    return None
