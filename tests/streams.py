"""This machine's NATS JetStream server for tests (CI runs one at 127.0.0.1:4222): reach it or skip, clean up."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

NATS_URL = os.environ.get("FORYOU_TEST_NATS_URL", "nats://127.0.0.1:4222")


async def require_nats() -> None:
    """Skip the test, saying why, when the server does not answer or has no JetStream."""
    import nats

    try:
        connection = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0,
                                        allow_reconnect=False)
    except Exception as exc:  # noqa: BLE001 - any failure to connect means: not available here
        pytest.skip(f"NATS at {NATS_URL} unreachable ({type(exc).__name__}: {exc}); replication tests skipped")
    try:
        await asyncio.wait_for(connection.jetstream().account_info(), 3)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"NATS at {NATS_URL} has no JetStream ({type(exc).__name__}); replication tests skipped")
    finally:
        await connection.close()


async def drop_stream(name: str) -> None:
    import nats

    with contextlib.suppress(Exception):
        connection = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
        try:
            await connection.jetstream().delete_stream(name)
        finally:
            await connection.close()
