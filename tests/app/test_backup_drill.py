"""The restore drill: a backup taken by `foryou backup create` while a real `foryou serve` keeps acknowledging
beacons passes PRAGMA integrity_check, restores into a fresh data dir, and a server started on the restored dir
is healthy and ready with every event that was acknowledged before the backup started."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.app.test_backup import data_settings, event_ids, populate
from tests.live import LiveServer

ROOT = Path(__file__).resolve().parents[2]
CSRF = 'name="csrf-token" content="'
SERVER_ENV = {"FORYOU_MIN_FREE_DISK_MB": "1", "FORYOU_BEACON_BURST": "1000000",
              "FORYOU_BEACON_EVENTS_PER_MINUTE": "1000000", "FORYOU_BEACON_ADDRESS_BURST": "1000000",
              "FORYOU_BEACON_ADDRESS_EVENTS_PER_MINUTE": "1000000"}


class Writer(threading.Thread):
    """A viewer sending beacons as fast as the server answers; records when each event was acknowledged."""

    def __init__(self, url: str, video_id: str) -> None:
        super().__init__(daemon=True)
        self.url, self.video_id = url, video_id
        self.acked: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60.0) as client:
            page = client.get("/", headers={"accept": "text/html"}).text
            csrf = page.split(CSRF, 1)[1].split('"', 1)[0]
            while not self.stop.is_set():
                batch = [{"event_id": uuid.uuid4().hex, "type": "view", "video_id": self.video_id,
                          "watch_duration": 2.5} for _ in range(5)]
                try:
                    answer = client.post("/api/events", content=json.dumps({"csrf": csrf, "events": batch}),
                                         headers={"content-type": "text/plain"})
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if answer.status_code == 202 and answer.json().get("accepted") == len(batch):
                    now = time.monotonic()
                    self.acked.extend((now, event["event_id"]) for event in batch)
                else:
                    self.failures.append(f"{answer.status_code} {answer.text[:200]}")

    def acked_before(self, moment: float) -> set[str]:
        return {event_id for at, event_id in list(self.acked) if at < moment}


def foryou(data_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FORYOU_DATA_DIR": str(data_dir), "FORYOU_LOG_JSON": "false",
           "FORYOU_SECRET_KEY": "live-test-secret", "FORYOU_ALLOW_MODEL_DOWNLOADS": "false"}
    return subprocess.Popen([sys.executable, "-m", "app", "backup", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen, timeout: float = 180) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def test_restore_drill_backup_under_write_load_restores_every_acknowledged_event(tmp_path):
    source = data_settings(tmp_path / "data")
    video_id = populate(source, events=3)
    with LiveServer(source.data_dir, env=SERVER_ENV) as server:
        # A long read (an analytics query, say) stays open through the drill: no checkpoint can move what is
        # written meanwhile from the WAL into the main file, so a plain copy of foryou.db would lack every event
        # below; the online backup must still hold them all.
        reader = sqlite3.connect(source.data_dir / "foryou.db")
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()
        writer = Writer(server.url, video_id)
        writer.start()
        deadline = time.monotonic() + 60
        while len(writer.acked) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(writer.acked) >= 200, writer.failures[:5]

        started = time.monotonic()
        before_backup = writer.acked_before(started)
        code, out, err = finished(foryou(source.data_dir, "create", str(tmp_path / "bk")))
        ended = time.monotonic()
        time.sleep(0.5)
        writer.stop.set()
        writer.join(timeout=90)
        reader.rollback()
        reader.close()
        assert code == 0, out + err
        during = [at for at, _ in writer.acked if started <= at <= ended]
        assert during, "the writer acknowledged nothing while the backup ran: this was not a backup under load"
        assert not writer.failures, writer.failures[:5]

    with sqlite3.connect(f"file:{tmp_path / 'bk' / 'foryou.db'}?mode=ro", uri=True) as con:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    code, out, err = finished(foryou(tmp_path / "unused", "verify", str(tmp_path / "bk")))
    assert code == 0 and "is sound" in out, out + err

    fresh = tmp_path / "restored"
    code, out, err = finished(foryou(fresh, "restore", str(tmp_path / "bk")))
    assert code == 0 and "restored" in out, out + err

    with LiveServer(fresh, env=SERVER_ENV) as restored:
        assert httpx.get(restored.url + "/healthz", timeout=60).status_code == 200
        ready = httpx.get(restored.url + "/readyz", timeout=60)
        assert ready.status_code == 200, ready.text
        page = httpx.get(f"{restored.url}/", headers={"accept": "text/html"}, timeout=90)
        assert page.status_code == 200
        present = event_ids(fresh / "foryou.db")
    missing = before_backup - present
    assert not missing, f"{len(missing)} of {len(before_backup)} acknowledged events are missing after restore"
    assert {"e0", "e1", "e2"} <= present
    print(f"drill: {len(before_backup)} events acknowledged before the backup, {len(during)} during it,"
          f" {len(present)} in the restored database")


def test_restore_refuses_while_a_server_uses_the_data_dir_and_a_server_refuses_to_start_during_a_restore(tmp_path):
    from app.ops.data_dir_lock import DataDirLock

    source = data_settings(tmp_path / "data")
    populate(source, events=3)
    code, out, err = finished(foryou(source.data_dir, "create", str(tmp_path / "bk")))
    assert code == 0, out + err

    with LiveServer(source.data_dir, env=SERVER_ENV) as server:
        before = sorted(p.name for p in source.data_dir.iterdir())
        code, out, err = finished(foryou(source.data_dir, "restore", str(tmp_path / "bk"), "--force"))
        assert code == 1, out + err
        assert "is using the data dir" in err and f"pid {server.process.pid}" in err, err
        assert sorted(p.name for p in source.data_dir.iterdir()) == before  # nothing moved aside
        assert not list(tmp_path.glob("data.before-restore-*"))
        assert httpx.get(server.url + "/readyz", timeout=60).status_code == 200
        server.stop(kill=True)  # a crashed server leaves no stale lock behind (the kernel drops an flock)
    code, out, err = finished(foryou(source.data_dir, "restore", str(tmp_path / "bk"), "--force"))
    assert code == 0 and "restored" in out, out + err

    with DataDirLock(source.data_dir) as restoring:
        restoring.exclusive()
        refused = LiveServer(source.data_dir, env=SERVER_ENV)
        with pytest.raises(RuntimeError, match="error: a restore is running on this data dir"):
            refused.start()
        refused.stop()
