"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from litestar import Controller, Response, get
from sqlalchemy import text

from app.config import Settings
from app.db.engine import Database
from app.domain.feed.replication import ReplicaSync
from app.domain.system.status import ModelStatus


class HealthController(Controller):
    @get("/healthz", sync_to_thread=False)
    def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz")
    async def readyz(self, settings: Settings, db: Database, model_status: ModelStatus,
                     replication: ReplicaSync | None) -> Response:
        """Ready when the database answers; LanceDB, models and (with replicas) the event stream are reported."""
        checks: dict[str, object] = {}
        ready = True
        try:
            async with db.read() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - the probe reports any failure
            checks["database"] = {"ok": False, "error": str(exc)}
            ready = False
        lancedb_dir = settings.lancedb_dir
        checks["lancedb"] = {"ok": lancedb_dir.is_dir(), "path": str(lancedb_dir)}
        ready = ready and lancedb_dir.is_dir()
        checks["models"] = await asyncio.to_thread(model_status.current)
        checks["replication"] = replication.status() if replication is not None else {"enabled": False}
        return Response({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
