"""The replication stream on NATS JetStream: what one process stores, every other process hears, with replay.

One JetStream stream (``<name>``) holds four kinds of message under ``<name>.<kind>``: ``event`` (a stored event
the recommender applies), ``video`` (a video whose catalogue entry changed: re-read it), ``user`` (an account
deleted: forget it) and ``snapshot`` (a periodic job published new outputs: load them). Every process that keeps a
recommender has its own durable consumer, named after its replica id, so after a restart it resumes from the last
message it acknowledged (the server keeps that position); a replica seen for the first time starts from the moment
it bootstrapped from the database. Publishing sets ``Nats-Msg-Id``, so a message sent twice (a retry, or two
processes announcing the same upload) is stored once within the duplicate window.

Why JetStream rather than PostgreSQL LISTEN/NOTIFY plus catch-up by event id: an event's id order in
PostgreSQL is not commit order (a transaction holding a lower id can commit after a higher one), so catching up
by "id greater than the last one I saw" silently skips events; JetStream assigns the sequence at publish time,
keeps each consumer's position on the server, and serves SQLite and PostgreSQL deployments alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)

KINDS = ("event", "video", "user", "snapshot")
PUBLISH_TIMEOUT_S = 5.0
RETENTION_S = 7 * 86_400.0  # a replica away longer than this rebuilds from the database at start-up anyway


@dataclass(frozen=True)
class StreamMessage:
    kind: str  # one of KINDS
    body: dict
    sequence: int  # the stream's sequence number: the order every consumer sees


Handler = Callable[[StreamMessage], Awaitable[None]]


class EventStream:
    """Publish to and consume from the replication stream. ``start`` connects; ``consume`` binds this replica's
    durable consumer; ``publish`` queues a message and returns at once (a background task sends it)."""

    def __init__(self, url: str, name: str, replica_id: str, retention_s: float = RETENTION_S) -> None:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"stream name {name!r}: letters, digits, '-' and '_' only")
        self.url = url
        self.name = name
        self.replica_id = replica_id
        self.retention_s = retention_s
        self._nc = None
        self._js = None
        self._subscription = None
        self._outbox: asyncio.Queue[tuple[str, bytes, str]] | None = None
        self._sender: asyncio.Task | None = None
        self.published = 0
        self.applied = 0
        self.last_sequence = 0

    @property
    def consumer_name(self) -> str:
        return "replica-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in self.replica_id)

    async def start(self) -> None:
        import nats
        from nats.js.api import StreamConfig

        self._nc = await nats.connect(self.url, connect_timeout=3, max_reconnect_attempts=-1, name=self.replica_id)
        self._js = self._nc.jetstream()
        config = StreamConfig(name=self.name, subjects=[f"{self.name}.>"], max_age=self.retention_s,
                              duplicate_window=120.0)
        try:
            await self._js.add_stream(config)
        except Exception:  # noqa: BLE001 - it exists (perhaps with other limits): keep the operator's settings
            await self._js.stream_info(self.name)
        self._outbox = asyncio.Queue()
        self._sender = asyncio.create_task(self._send_forever(), name="event-stream-publisher")

    async def consume(self, handler: Handler, first_start: datetime) -> None:
        """Bind this replica's durable consumer. Created the first time with delivery from ``first_start``
        (the database read that bootstrapped the recommender covers what came before); on later starts it
        resumes after the last acknowledged message. Each message is acknowledged once ``handler`` returns."""
        import nats.js.errors
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        assert self._js is not None, "start() first"

        async def on_message(msg) -> None:  # noqa: ANN001 - nats.aio.msg.Msg
            kind = msg.subject.rsplit(".", 1)[-1]
            sequence = msg.metadata.sequence.stream
            try:
                body = json.loads(msg.data)
            except ValueError:
                log.error("unreadable stream message dropped", extra={"sequence": sequence})
                await msg.ack()
                return
            try:
                await handler(StreamMessage(kind, body, sequence))
            except Exception:  # noqa: BLE001 - not acknowledged: the server delivers it again after ack_wait
                log.exception("stream message failed", extra={"sequence": sequence, "kind": kind})
                return
            self.applied += 1
            self.last_sequence = max(self.last_sequence, sequence)
            await msg.ack()

        config = ConsumerConfig(durable_name=self.consumer_name, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.BY_START_TIME,
                                opt_start_time=first_start.astimezone(UTC), ack_wait=30.0, max_ack_pending=20_000,
                                # a replica gone for good stops holding a consumer on the server
                                inactive_threshold=self.retention_s)
        try:
            self._subscription = await self._subscribe(on_message, config)
        except nats.js.errors.Error as exc:
            if "already bound" not in str(exc):
                raise
            # Another live process has this replica id (a second scheduler, a command beside a server on the
            # same host and port): this one takes a consumer of its own rather than sharing the other's position.
            log.warning("replica id in use; following under a per-process name",
                        extra={"replica": self.replica_id, "pid": os.getpid()})
            self.replica_id = f"{self.replica_id}-{os.getpid()}"
            config.durable_name = self.consumer_name
            self._subscription = await self._subscribe(on_message, config)

    async def _subscribe(self, on_message, config):  # noqa: ANN001, ANN202 - nats-py callback and config types
        return await self._js.subscribe(f"{self.name}.>", stream=self.name, durable=self.consumer_name,
                                        cb=on_message, manual_ack=True, config=config, pending_msgs_limit=200_000)

    def publish(self, kind: str, body: dict, message_id: str) -> None:
        """Queue one message (the caller's transaction is committed: this must not block it)."""
        if kind not in KINDS:
            raise ValueError(f"unknown stream message kind {kind!r}")
        if self._outbox is None:
            log.warning("event stream not started: message not published", extra={"kind": kind})
            return
        self._outbox.put_nowait((f"{self.name}.{kind}", json.dumps(body).encode(), message_id))

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued message is acknowledged by the server (tests, shutdown)."""
        if self._outbox is not None:
            await asyncio.wait_for(self._outbox.join(), timeout_s)

    async def _send_forever(self) -> None:
        assert self._outbox is not None and self._js is not None
        while True:
            subject, payload, message_id = await self._outbox.get()
            while True:
                try:
                    await self._js.publish(subject, payload, timeout=PUBLISH_TIMEOUT_S,
                                           headers={"Nats-Msg-Id": message_id})
                    self.published += 1
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the server is away: keep the order, retry until it is back
                    log.warning("stream publish failed; retrying", exc_info=True)
                    await asyncio.sleep(1.0)
            self._outbox.task_done()

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await self.flush(timeout_s=5.0)
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None

    def status(self) -> dict:
        return {"stream": self.name, "replica": self.replica_id, "published": self.published,
                "applied": self.applied, "last_sequence": self.last_sequence,
                "queued": self._outbox.qsize() if self._outbox is not None else 0}
