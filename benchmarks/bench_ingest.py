"""Event ingest over HTTP against a raw batched Core insert of the same rows, in the same run.

    python benchmarks/bench_ingest.py [--events-per-beacon 100] [--connections 16] [--beacons 400]

A real ``foryou serve`` on loopback (no scheduler, no media worker) with a catalogue of ready videos. A pool of
visitors (one session cookie each) posts beacon batches as the page's outbox does (``text/plain`` JSON with the
CSRF token inside, fresh event ids, half views with watch time, half impressions); every answer must be 202.
The beacon limits are raised for the run (one address sends everything here; the limits are what the flood
benchmark measures). Then, with the server stopped, the reference: the same number of rows through a raw batched
Core ``INSERT`` into the same table (200 rows per transaction, the writer's batch size). Server CPU is read from
/proc. Writes benchmarks/results/ingest.json with the load average: the machine is shared, compare the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db.engine import Database  # noqa: E402
from app.db.models import Event  # noqa: E402
from benchmarks.bench_http import CSRF, beacon, cpu_seconds  # noqa: E402
from tests.live import LiveServer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "ingest.json"


def seed(data_dir: Path, n_videos: int) -> list[tuple[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FORYOU_DATA_DIR": str(data_dir)}
    subprocess.run([sys.executable, "-m", "app", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    videos = [(f"v_bench{i}", f"u_bench{i % 5}") for i in range(n_videos)]
    with sqlite3.connect(data_dir / "foryou.db") as db:
        for c in range(5):
            db.execute("INSERT INTO users (id, username, display_name, is_guest, role, bio, status, demographics, "
                       "preferences, created_at, last_seen_at) VALUES (?, ?, 'bench', 0, 'user', '', 'active', "
                       "'{}', '{}', datetime('now'), datetime('now'))", (f"u_bench{c}", f"bench{c}"))
        db.executemany("INSERT INTO videos (id, creator_id, created_at, caption, hashtags, duration, size_bytes, "
                       "width, height, state, moderation, transcript, metadata, ready_at) VALUES (?, ?, "
                       "datetime('now'), 'bench', '[]', 10, 0, 360, 640, 'ready', 'ok', '', '{}', datetime('now'))",
                       videos)
    return videos


def beacon_body(csrf: str, video_ids: list[str], n: int, offset: int) -> bytes:
    return json.dumps(beacon(csrf, video_ids, n, offset)).encode()


async def ingest(url: str, pid: int, video_ids: list[str], connections: int, beacons: int, per_beacon: int) -> dict:
    clients = []
    for _ in range(connections):
        client = httpx.AsyncClient(base_url=url, timeout=60.0)
        page = await client.get(f"/v/{video_ids[0]}", headers={"accept": "text/html"})
        clients.append((client, CSRF.search(page.text).group(1)))
    # Bodies are built before the clock starts: the load generator shares the two cores with the server.
    per_client = max(1, beacons // connections)
    bodies = [[beacon_body(csrf, video_ids, per_beacon, i * per_client + j) for j in range(per_client)]
              for i, (_client, csrf) in enumerate(clients)]
    # Warm-up (first guest creation, statement caches), not counted.
    for client, csrf in clients:
        response = await client.post("/api/events", content=beacon_body(csrf, video_ids, 2, 0),
                                     headers={"content-type": "text/plain;charset=UTF-8"})
        assert response.status_code == 202, response.text
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def loop(index: int) -> None:
        client, _csrf = clients[index]
        for body in bodies[index]:  # each body carries its own visitor's CSRF token
            started = time.perf_counter()
            response = await client.post("/api/events", content=body,
                                         headers={"content-type": "text/plain;charset=UTF-8"})
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(connections)))
    wall, cpu = time.perf_counter() - wall0, cpu_seconds(pid) - cpu0
    for client, _ in clients:
        await client.aclose()
    latencies.sort()
    n = len(latencies)
    events = statuses.get(202, 0) * per_beacon
    return {"beacons": n, "events_per_beacon": per_beacon, "connections": connections, "statuses": statuses,
            "seconds": round(wall, 2), "events_per_second": round(events / wall, 1),
            "server_cpu_ms_per_event": round(1000 * cpu / max(events, 1), 4),
            "p50_ms": round(1000 * latencies[n // 2], 1), "p95_ms": round(1000 * latencies[int(n * 0.95)], 1)}


async def raw_insert(database_url: str, rows: int, videos: list[tuple[str, str]]) -> dict:
    db = Database(database_url)
    now = datetime.now(UTC)
    payload = [{"event_id": uuid.uuid4().hex, "event_type": "view", "user_id": videos[i % 5][1],
                "video_id": videos[i % len(videos)][0], "creator_id": videos[i % len(videos)][1], "timestamp": now,
                "watch_duration": 7.5, "session_id": None, "additional_info": {"final": True}} for i in range(rows)]
    started = time.perf_counter()
    for start in range(0, rows, 200):
        async with db.write() as session:
            await session.execute(Event.__table__.insert(), payload[start:start + 200])
    seconds = time.perf_counter() - started
    await db.dispose()
    return {"rows": rows, "rows_per_transaction": 200, "seconds": round(seconds, 3),
            "per_second": round(rows / seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events-per-beacon", type=int, default=100, help="the outbox sends up to 100 per beacon")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--beacons", type=int, default=300)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to wait before the phase (attach py-spy)")
    parser.add_argument("--profile", type=Path, help="run the server under cProfile, writing its stats here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="foryou-bench-ingest-") as tmp:
        data_dir = Path(tmp) / "data"
        videos = seed(data_dir, args.videos)
        limits = {"FORYOU_BEACON_BURST": "100000000", "FORYOU_BEACON_EVENTS_PER_MINUTE": "100000000",
                  "FORYOU_BEACON_ADDRESS_BURST": "100000000", "FORYOU_BEACON_ADDRESS_EVENTS_PER_MINUTE": "100000000"}
        server = LiveServer(data_dir, env={"FORYOU_LOG_LEVEL": "WARNING", "FORYOU_RUN_WORKER": "false",
                                           "OMP_NUM_THREADS": "1", **limits})
        if args.profile:
            real_popen = subprocess.Popen

            def profiled(command, **kwargs):  # noqa: ANN001, ANN202
                return real_popen([command[0], "-m", "cProfile", "-o", str(args.profile), *command[1:]], **kwargs)

            subprocess.Popen = profiled  # type: ignore[misc]
        server.start()
        load_before = os.getloadavg()
        try:
            if args.hold:
                print(f"server pid {server.process.pid}; phase starts in {args.hold} s", flush=True)
                time.sleep(args.hold)
            result = asyncio.run(ingest(server.url, server.process.pid, [v for v, _ in videos], args.connections,
                                        args.beacons, args.events_per_beacon))
        finally:
            if args.profile:  # cProfile writes its stats on a clean exit
                import signal
                server.process.send_signal(signal.SIGINT)
                server.process.wait(timeout=60)
            server.stop()
        with sqlite3.connect(data_dir / "foryou.db") as db:
            stored = db.execute("SELECT count(*) FROM events WHERE event_type IN ('view', 'impression')").fetchone()[0]
        result["rows_stored"] = stored
        database_url = f"sqlite+aiosqlite:///{(data_dir / 'foryou.db').resolve()}"
        reference = asyncio.run(raw_insert(database_url, max(2000, args.beacons * args.events_per_beacon), videos))
    out = {"benchmark": "ingest", "ingest": result, "raw_core_insert": reference,
           "ratio_vs_raw_core_insert": round(result["events_per_second"] / reference["per_second"], 3),
           "goal": "ratio >= 0.4 and >= 5000 events/s",
           "load_average_before": [round(x, 2) for x in load_before],
           "load_average_after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
