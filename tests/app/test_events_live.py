"""A real ``foryou serve``: beacons acknowledged (202) before a kill -9 are all stored after a restart.

The writer answers a request only after the transaction holding its events committed (group commit of up to
``event_batch_max`` events), so nothing acknowledged can be lost by a crash, whatever was in flight.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

from tests.live import ROOT, LiveServer

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def _seed(data_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FORYOU_DATA_DIR": str(data_dir)}
    subprocess.run([sys.executable, "-m", "app", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=120)
    with sqlite3.connect(data_dir / "foryou.db") as db:
        db.execute("INSERT INTO users (id, username, display_name, is_guest, role, bio, status, demographics, "
                   "preferences, created_at, last_seen_at) VALUES ('u_live', 'live', 'live', 0, 'user', '', "
                   "'active', '{}', '{}', datetime('now'), datetime('now'))")
        db.execute("INSERT INTO videos (id, creator_id, created_at, caption, hashtags, duration, size_bytes, width, "
                   "height, state, moderation, transcript, metadata, ready_at) VALUES ('v_live', 'u_live', "
                   "datetime('now'), 'live', '[]', 10, 0, 360, 640, 'ready', 'ok', '', '{}', datetime('now'))")


def test_kill_9_mid_burst_loses_no_acknowledged_event(tmp_path):
    data_dir = tmp_path / "data"
    _seed(data_dir)
    limits = {"FORYOU_BEACON_BURST": "1000000", "FORYOU_BEACON_EVENTS_PER_MINUTE": "1000000",
              "FORYOU_BEACON_ADDRESS_BURST": "1000000", "FORYOU_BEACON_ADDRESS_EVENTS_PER_MINUTE": "1000000"}
    server = LiveServer(data_dir, env={"FORYOU_LOG_LEVEL": "WARNING", "FORYOU_RUN_WORKER": "false", **limits})
    server.start()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def visitor() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            csrf = CSRF_META.search(client.get("/v/v_live", headers={"accept": "text/html"}).text).group(1)
            while not stop.is_set():
                ids = [uuid.uuid4().hex for _ in range(50)]
                body = json.dumps({"csrf": csrf, "events": [
                    {"event_id": i, "type": "impression", "video_id": "v_live"} for i in ids]})
                try:
                    response = client.post("/api/events", content=body)
                except httpx.HTTPError:
                    return  # the server is gone: whatever was in flight was never acknowledged
                if response.status_code == 202:
                    with lock:
                        acknowledged.extend(ids)

    threads = [threading.Thread(target=visitor) for _ in range(6)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 3000 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.stop(kill=True)  # SIGKILL with beacons in flight
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
    finally:
        stop.set()
        server.stop(kill=True)
    assert len(acknowledged) >= 3000
    restarted = LiveServer(data_dir, env={"FORYOU_LOG_LEVEL": "WARNING", "FORYOU_RUN_WORKER": "false"}).start()
    try:
        assert httpx.get(restarted.url + "/healthz", timeout=10).status_code == 200
    finally:
        restarted.stop()
    with sqlite3.connect(data_dir / "foryou.db") as db:
        stored = {row[0] for row in db.execute("SELECT event_id FROM events WHERE event_type = 'impression'")}
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged events lost"
