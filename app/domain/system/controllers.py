"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from litestar import Controller, Response, get
from sqlalchemy import text

from app.config import Settings
from app.db.engine import Database
from app.domain.feed.replication import ReplicaSync
from app.domain.system.status import ModelStatus
from app.server.disk import MB, free_bytes


class HealthController(Controller):
    @get("/healthz", sync_to_thread=False)
    def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz")
    async def readyz(self, settings: Settings, db: Database, model_status: ModelStatus,
                     replication: ReplicaSync | None) -> Response:
        """Ready when the database answers, LanceDB is there and free disk space is above the margin; models
        and (with replicas) the event stream are reported."""
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
        free = free_bytes(settings.data_dir)
        disk_ok = free >= settings.min_free_disk_mb * MB
        checks["disk"] = {"ok": disk_ok, "free_mb": free // MB, "margin_mb": settings.min_free_disk_mb}
        ready = ready and disk_ok
        checks["models"] = await asyncio.to_thread(model_status.current)
        checks["replication"] = replication.status() if replication is not None else {"enabled": False}
        return Response({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
