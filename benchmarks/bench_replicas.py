"""HTTP throughput of one and of two web replicas on PostgreSQL + NATS JetStream (this machine's servers).

    python benchmarks/bench_replicas.py [--seconds 15] [--concurrency 8]

Each configuration starts ``foryou serve --no-worker --no-scheduler`` replicas on a fresh database holding a
synthetic ready catalogue (rows in PostgreSQL, vectors in LanceDB), signs up viewers, then for a fixed time
runs ``concurrency`` simulated viewers, each looping: one For You page (GET /feed/cards, which also logs an
impression per card) and one beacon batch reporting a finished view of every card (POST /api/events). With two
replicas the viewers alternate between them. Reported: pages/s, events/s accepted, page latency, and how many
events each replica applied from the stream (every replica applies every event). The load generator runs on the
same 2 cores as the replicas, PostgreSQL and NATS, so the figures are for this box only; the load average is in
the result. Writes benchmarks/results/replicas.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.adapters.vector_store import VectorStore, VideoVectors  # noqa: E402
from app.db.engine import Database  # noqa: E402
from app.db.models import User, Video  # noqa: E402

PG_SERVER = os.environ.get("FORYOU_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
NATS_URL = os.environ.get("FORYOU_BENCH_NATS_URL", "nats://127.0.0.1:4222")
RESULTS = ROOT / "benchmarks" / "results" / "replicas.json"
CARD_ID = re.compile(r'data-video-id="([^"]+)"')
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CATALOGUE = 300
CREATORS = 60
DIM = 384


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3) as connection:
        connection.execute(sql)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Deployment:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.database = f"foryou_bench_{uuid.uuid4().hex[:8]}"
        self.stream = f"foryou_bench_{uuid.uuid4().hex[:8]}"
        self.processes: list[subprocess.Popen] = []

    def env(self) -> dict[str, str]:
        return {**os.environ, "FORYOU_DATA_DIR": str(self.workdir / "data"), "FORYOU_LOG_JSON": "false",
                "FORYOU_LOG_LEVEL": "WARNING", "FORYOU_SECRET_KEY": "bench-secret",
                "FORYOU_ALLOW_MODEL_DOWNLOADS": "false", "PYTHONPATH": str(ROOT),
                "FORYOU_DATABASE_URL": f"{PG_SERVER}/{self.database}".replace("postgresql://",
                                                                              "postgresql+asyncpg://"),
                "FORYOU_EVENT_STREAM_URL": NATS_URL, "FORYOU_EVENT_STREAM_NAME": self.stream}

    def __enter__(self) -> Deployment:
        pg_admin(f'CREATE DATABASE "{self.database}"')
        subprocess.run([sys.executable, "-m", "app", "db", "upgrade"], cwd=ROOT, env=self.env(), check=True,
                       capture_output=True, timeout=300)
        asyncio.run(self._catalogue())
        return self

    async def _catalogue(self) -> None:
        rng = np.random.default_rng(5)
        db = Database(self.env()["FORYOU_DATABASE_URL"])
        async with db.write() as session:
            session.add_all([User(id=f"u_c{i}", username=f"creator{i}", is_guest=False) for i in range(CREATORS)])
            await session.flush()
            for i in range(CATALOGUE):
                session.add(Video(id=f"v_b{i}", creator_id=f"u_c{i % CREATORS}", state="ready", caption=f"clip {i}",
                                  duration=10.0, created_at=datetime.now(UTC) - timedelta(days=3, minutes=i)))
        await db.dispose()
        vectors = VectorStore(self.workdir / "data" / "lancedb")
        for i in range(CATALOGUE):
            vector = rng.normal(size=DIM)
            vectors.upsert_video(VideoVectors(
                video_id=f"v_b{i}", creator_id=f"u_c{i % CREATORS}", topic="", hashtags=[], caption="clip",
                duration=10.0, created_at=time.time(), content_vector=vector / np.linalg.norm(vector),
                content_model="bench:random"))

    def serve(self, count: int) -> list[str]:
        urls = []
        for i in range(count):
            port = free_port()
            log = open(self.workdir / f"web-{len(self.processes)}.log", "w")  # noqa: SIM115
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--no-worker", "--no-scheduler", "--port", str(port)],
                cwd=ROOT, env={**self.env(), "FORYOU_REPLICA_ID": f"bench-{i}-{port}"}, stdout=log,
                stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 240
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{url} did not start")
                time.sleep(0.3)
        return urls

    def stop_servers(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()

    def __exit__(self, *exc: object) -> None:
        self.stop_servers()
        pg_admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

        async def drop() -> None:
            import nats

            connection = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
            try:
                await connection.jetstream().delete_stream(self.stream)
            except Exception:  # noqa: BLE001 - no stream was created
                pass
            finally:
                await connection.close()

        asyncio.run(drop())


async def viewer_loop(client: httpx.AsyncClient, csrf: str, until: float, stats: dict) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        page = await client.get("/feed/cards", headers={"hx-request": "true"})
        stats["page_ms"].append((time.perf_counter() - started) * 1000)
        if page.status_code != 200:
            stats["errors"] += 1
            continue
        stats["pages"] += 1
        ids = list(dict.fromkeys(CARD_ID.findall(page.text)))
        if not ids:
            await client.post("/feed/restart", headers={"x-csrf-token": csrf, "hx-request": "true"})
            continue
        events = [{"event_id": f"e{uuid.uuid4().hex[:20]}", "type": "view", "video_id": video_id,
                   "watch_duration": 6.0, "info": {"final": True}} for video_id in ids]
        posted = await client.post("/api/events", json={"csrf": csrf, "events": events})
        if posted.status_code == 202:
            stats["events"] += len(events) + len(ids)  # the beacon's views and the page's impressions
        else:
            stats["errors"] += 1


async def drive(urls: list[str], concurrency: int, seconds: float) -> dict:
    clients = []
    for i in range(concurrency):
        client = httpx.AsyncClient(base_url=urls[i % len(urls)], timeout=60)
        login = await client.get("/login")
        csrf = CSRF.search(login.text).group(1)
        signed = await client.post("/signup", data={"username": f"viewer{i}_{uuid.uuid4().hex[:4]}",
                                                    "password": "correct horse", "csrf_token": csrf},
                                   headers={"hx-request": "true"})
        assert signed.status_code == 200, signed.text
        settings_page = await client.get("/settings")
        clients.append((client, CSRF.search(settings_page.text).group(1)))
    stats = {"pages": 0, "events": 0, "errors": 0, "page_ms": []}
    started = time.monotonic()
    await asyncio.gather(*(viewer_loop(client, csrf, started + seconds, stats) for client, csrf in clients))
    elapsed = time.monotonic() - started
    for client, _ in clients:
        await client.aclose()
    latencies = np.array(stats["page_ms"]) if stats["page_ms"] else np.zeros(1)
    return {"seconds": round(elapsed, 1), "pages_per_s": round(stats["pages"] / elapsed, 1),
            "events_per_s": round(stats["events"] / elapsed, 1), "errors": stats["errors"],
            "page_ms_p50": round(float(np.percentile(latencies, 50)), 1),
            "page_ms_p95": round(float(np.percentile(latencies, 95)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    report = {"benchmark": "replicas", "catalogue": CATALOGUE, "concurrency": args.concurrency,
              "seconds_per_run": args.seconds, "machine": {"cpus": os.cpu_count()}, "runs": []}
    for count in (1, 2):  # each on a fresh database and stream: the second run replays nothing of the first
        with tempfile.TemporaryDirectory() as tmp, Deployment(Path(tmp)) as deployment:
            urls = deployment.serve(count)
            load_before = [round(x, 2) for x in os.getloadavg()]
            result = asyncio.run(drive(urls, args.concurrency, args.seconds))
            time.sleep(1.0)  # the stream catches up
            applied = [httpx.get(f"{url}/readyz", timeout=10).json()["checks"]["replication"] for url in urls]
            result.update({"replicas": count, "loadavg_before": load_before,
                           "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                           "stream": [{"published": r["published"], "applied": r["applied"]} for r in applied]})
            report["runs"].append(result)
            print(json.dumps(result), flush=True)
            deployment.stop_servers()
    one, two = report["runs"]
    report["two_vs_one"] = {"pages_per_s": round(two["pages_per_s"] / one["pages_per_s"], 2),
                            "events_per_s": round(two["events_per_s"] / one["events_per_s"], 2)}
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
