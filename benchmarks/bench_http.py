"""HTTP benchmark: a real `foryou serve` on loopback, driven by bounded asyncio/httpx clients.

    python benchmarks/bench_http.py [--quick]

Set-up (not timed): a fresh data dir, migrated, with a catalogue of ready videos (random unit vectors in
LanceDB) from a few creators. The server runs in its own process without the scheduler or media worker; its CPU
time is read from /proc before and after each phase, so "server CPU per request" excludes the load generator.

Phases, each bounded in requests and seconds:
- ``healthz``: GET /healthz at 16 connections, before and again after the feed phases (the mean of the two is
  the reference every page's CPU is a ratio of);
- ``feed_page`` and ``feed_cards``: GET / and GET /feed/cards at 16 connections from a pool of 16 sessions
  (cookie jars), each restarting its feed when caught up; these visitors only read, so they are pending sessions
  (nothing stored for them: app.server.web_session) until the ingest phase's beacons store them;
- ``interactions``: like/unlike and follow/unfollow at 32 connections (signed-in sessions, CSRF header);
- ``ingest``: beacon batches of 20 events at 16 connections; reference in the same run: the same number of rows
  stored by a raw batched Core INSERT into the same table (one transaction per 200 rows, like the writer's);
- ``viewers``: 50 swiping viewers arriving over 2 s, each opening the feed page, then again and again a card
  page, a think time of 1-3 s and a beacon, for a bounded time; errors are counted by kind (status or exception).

Writes benchmarks/results/http.json with the load average: the machine is shared, so compare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.adapters.vector_store import VectorStore, VideoVectors  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db.engine import Database  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.db.models import Event, User, Video  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "http.json"
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
VIDEO_ID = re.compile(r'data-video-id="([^"]+)"')
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def seed(settings: Settings, n_videos: int) -> list[tuple[str, str]]:
    """Ready videos with vectors; returns (video id, creator id)."""
    await asyncio.to_thread(upgrade, settings)
    db = Database(settings.resolved_database_url)
    rng = np.random.default_rng(0)
    made: list[tuple[str, str]] = []
    async with db.write() as session:
        for c in range(10):
            session.add(User(id=f"u_creator{c}", username=f"creator{c}", display_name=f"Creator {c}",
                             is_guest=False))
        await session.flush()
        for i in range(n_videos):
            video = Video(creator_id=f"u_creator{i % 10}", state="ready", caption=f"clip {i} #topic{i % 8}",
                          hashtags=[f"topic{i % 8}"], topic=f"topic{i % 8}", duration=15.0, width=720, height=1280)
            session.add(video)
            await session.flush()
            made.append((video.id, video.creator_id))
    await db.dispose()
    store = VectorStore(settings.lancedb_dir)
    for video_id, creator in made:
        vector = rng.normal(size=32)
        store.upsert_video(VideoVectors(video_id=video_id, creator_id=creator, topic="t", hashtags=[], caption="",
                                        duration=15.0, created_at=time.time(),
                                        content_vector=vector / np.linalg.norm(vector), content_model="bench"))
    return made


class Server:
    def __init__(self, data_dir: Path, port: int) -> None:
        env = {**os.environ, "FORYOU_DATA_DIR": str(data_dir), "FORYOU_PORT": str(port), "FORYOU_HOST": "127.0.0.1",
               "FORYOU_RUN_SCHEDULER": "false", "FORYOU_RUN_WORKER": "false", "FORYOU_LOG_LEVEL": "WARNING",
               "FORYOU_RUN_MIGRATIONS_ON_START": "false", "FORYOU_SECRET_KEY": "bench", "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
               # one address sends every beacon here: throughput is measured, the limits by bench_beacon_flood
               **{f"FORYOU_BEACON_{k}": "100000000" for k in ("BURST", "EVENTS_PER_MINUTE", "ADDRESS_BURST",
                                                               "ADDRESS_EVENTS_PER_MINUTE")}}
        self.url = f"http://127.0.0.1:{port}"
        # the server's warnings go to a file (a pipe nobody reads would block the server once full)
        self.log_path = data_dir / "server.stderr"
        self.proc = subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.log_path.open("wb"))

    def wait_ready(self, timeout: float = 300.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError("server did not answer /healthz")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def phase(server: Server, name: str, clients: list[httpx.AsyncClient], action, total: int,
                max_seconds: float, expect: int = 200) -> dict:
    """Run ``action(client, i)`` (which answers the response's status) ``total`` times spread over the clients
    (one in flight per client); a status other than ``expect`` or an HTTP exception is an error, counted by kind."""
    latencies: list[float] = []
    errors = 0
    error_kinds: dict[str, int] = {}
    counter = iter(range(total))
    deadline = time.monotonic() + max_seconds

    async def loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in counter:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                status = await action(client, i)
                kind = None if status == expect else str(status)
            except httpx.HTTPError as exc:
                kind = type(exc).__name__
            latencies.append(time.perf_counter() - started)
            if kind is not None:
                errors += 1
                error_kinds[kind] = error_kinds.get(kind, 0) + 1

    cpu0, wall0 = server.cpu(), time.perf_counter()
    await asyncio.gather(*(loop(c) for c in clients))
    wall, cpu = time.perf_counter() - wall0, server.cpu() - cpu0
    n = len(latencies)
    result = {"requests": n, "errors": errors, "error_kinds": error_kinds, "connections": len(clients),
              "seconds": round(wall, 2),
              "per_second": round(n / wall, 1), "server_cpu_ms_per_request": round(1000 * cpu / max(n, 1), 3),
              "p50_ms": round(1000 * percentile(latencies, 50), 1),
              "p95_ms": round(1000 * percentile(latencies, 95), 1),
              "p99_ms": round(1000 * percentile(latencies, 99), 1)}
    print(f"{name:>13}: {json.dumps(result)}", flush=True)
    return result


async def session(url: str, signup: str | None = None) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(base_url=url, timeout=30.0)
    page = await client.get("/", headers={"accept": "text/html"})
    csrf = CSRF.search(page.text).group(1)
    if signup:
        await client.post("/signup", data={"username": signup, "password": "bench-password-1", "csrf_token": csrf})
        page = await client.get("/", headers={"accept": "text/html"})
        csrf = CSRF.search(page.text).group(1)
    client.headers["x-csrf-token"] = csrf
    client.csrf = csrf  # type: ignore[attr-defined]
    return client, csrf


def beacon(csrf: str, video_ids: list[str], n: int, offset: int = 0) -> dict:
    """A beacon as the page's outbox sends it: half views with watch time, half impressions, fresh event ids."""
    events = []
    for i in range(n):
        vid = video_ids[(offset + i) % len(video_ids)]
        if i % 2:
            events.append({"event_id": uuid.uuid4().hex, "type": "impression", "video_id": vid,
                           "info": {"position": i, "feed": "foryou"}})
        else:
            events.append({"event_id": uuid.uuid4().hex, "type": "view", "video_id": vid, "watch_duration": 7.5,
                           "info": {"final": True, "watch_ratio": 0.5, "position": i}})
    return {"csrf": csrf, "events": events}


async def raw_insert_rate(settings: Settings, rows: int, users: list[str], videos: list[tuple[str, str]]) -> dict:
    """The reference: the same kind of rows through a raw batched Core INSERT (200 per transaction)."""
    db = Database(settings.resolved_database_url)
    now = time.time()
    from datetime import UTC, datetime
    payload = [{"event_id": uuid.uuid4().hex, "event_type": "view", "user_id": users[i % len(users)],
                "video_id": videos[i % len(videos)][0], "creator_id": videos[i % len(videos)][1],
                "timestamp": datetime.fromtimestamp(now, UTC), "watch_duration": 7.5, "session_id": None,
                "additional_info": {"final": True}} for i in range(rows)]
    started = time.perf_counter()
    for start in range(0, rows, 200):
        async with db.write() as session:
            await session.execute(Event.__table__.insert(), payload[start:start + 200])
    seconds = time.perf_counter() - started
    await db.dispose()
    return {"rows": rows, "seconds": round(seconds, 3), "per_second": round(rows / seconds, 1)}


async def run(args: argparse.Namespace) -> dict:
    scale = 0.25 if args.quick else 1.0
    work = Path(tempfile.mkdtemp(prefix="foryou-bench-http-"))
    settings = Settings(data_dir=work, secret_key="bench")
    settings.ensure_dirs()
    videos = await seed(settings, args.videos)
    video_ids = [v for v, _ in videos]
    server = Server(work, free_port())
    ready_s = server.wait_ready()
    load_before = os.getloadavg()
    results: dict = {"server_ready_s": round(ready_s, 2)}
    try:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        probes = [httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30.0) for _ in range(16)]

        async def healthz(client, _i):  # noqa: ANN001, ANN202
            return (await client.get("/healthz")).status_code

        await phase(server, "warm-up", probes[:4], healthz, 200, 10)
        results["healthz"] = await phase(server, "healthz", probes, healthz, int(3000 * scale), 30)

        viewers = [await session(server.url) for _ in range(16)]
        clients = [c for c, _ in viewers]

        async def feed_page(client, _i):  # noqa: ANN001, ANN202
            response = await client.get("/", headers={"accept": "text/html"})
            if "caught up" in response.text:
                await client.post("/feed/restart")
            return response.status_code

        async def feed_cards(client, i):  # noqa: ANN001, ANN202
            response = await client.get(f"/feed/cards?cursor={i}", headers={"hx-request": "true"})
            if not VIDEO_ID.search(response.text):
                await client.post("/feed/restart", headers={"hx-request": "true"})
            return response.status_code

        results["feed_page"] = await phase(server, "feed_page", clients, feed_page, int(800 * scale), 60)
        results["feed_cards"] = await phase(server, "feed_cards", clients, feed_cards, int(800 * scale), 60)
        # The reference again after the feed phases: on a shared machine the load drifts, so each feed ratio is
        # taken against the mean of the two /healthz figures that bracket it.
        results["healthz_after"] = await phase(server, "healthz", probes, healthz, int(3000 * scale), 30)

        members = [await session(server.url, signup=f"bench{n}") for n in range(32)]
        member_clients = [c for c, _ in members]

        async def interact(client, i):  # noqa: ANN001, ANN202
            video_id, creator = videos[i % len(videos)]
            if i % 2:
                response = await (client.post if (i // 2) % 2 == 0 else client.delete)(
                    f"/videos/{video_id}/like", headers={"hx-request": "true"})
            else:
                response = await (client.post if (i // 2) % 2 == 0 else client.delete)(
                    f"/creators/{creator}/follow", headers={"hx-request": "true"})
            return response.status_code

        results["interactions"] = await phase(server, "interactions", member_clients, interact, int(1500 * scale), 60)

        ingest_statuses: dict[int, int] = {}

        async def ingest(client, _i):  # noqa: ANN001, ANN202
            response = await client.post("/api/events", json=beacon(client.csrf, video_ids, 20))
            ingest_statuses[response.status_code] = ingest_statuses.get(response.status_code, 0) + 1
            return response.status_code

        ingest_result = await phase(server, "ingest", clients, ingest, int(600 * scale), 60, expect=202)
        # 429s are the beacon limits (per visitor and address) doing their job: only 202s count as stored events.
        ingest_result["statuses"] = {str(code): n for code, n in sorted(ingest_statuses.items())}
        ingest_result["events_per_second"] = round(ingest_statuses.get(202, 0) * 20 / ingest_result["seconds"], 1)
        results["ingest"] = ingest_result

        swipe_latency: list[float] = []
        swipe_errors: dict[str, int] = {}  # what went wrong: a status code or an exception's name
        swipers: list[httpx.AsyncClient] = []
        deadline = time.monotonic() + args.viewer_seconds * (0.5 if args.quick else 1.0)

        def failed(kind: str) -> None:
            swipe_errors[kind] = swipe_errors.get(kind, 0) + 1

        async def swipe(arrival_s: float) -> None:
            # Each viewer arrives (opens the page), then swipes: no connection idles past the server's keep-alive
            # before its first swipe, as it did when all 50 pages were opened one after another up front.
            await asyncio.sleep(arrival_s)
            client, _csrf = await session(server.url)
            swipers.append(client)
            rng = random.Random(id(client))
            cursor = 0
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.get(f"/feed/cards?cursor={cursor}", headers={"hx-request": "true"})
                    ok = response.status_code == 200
                    if not ok:
                        failed(str(response.status_code))
                except httpx.HTTPError as exc:
                    ok, response = False, None
                    failed(type(exc).__name__)
                swipe_latency.append(time.perf_counter() - started)
                cursor += 1
                ids = VIDEO_ID.findall(response.text) if response is not None else []
                if ok and not ids:
                    await client.post("/feed/restart", headers={"hx-request": "true"})
                await asyncio.sleep(rng.uniform(1.0, 3.0))
                if ids:
                    try:
                        sent = await client.post("/api/events", json=beacon(client.csrf, ids, 2))
                        if sent.status_code != 202:
                            failed(f"beacon {sent.status_code}")
                    except httpx.HTTPError as exc:
                        failed(f"beacon {type(exc).__name__}")

        cpu0 = server.cpu()
        arrivals = random.Random(1)
        await asyncio.gather(*(swipe(arrivals.uniform(0.0, 2.0)) for _ in range(args.viewers)))
        results["viewers"] = {"viewers": args.viewers, "think_time_s": [1, 3], "arrivals_s": [0, 2],
                              "feed_requests": len(swipe_latency), "errors": sum(swipe_errors.values()),
                              "error_kinds": swipe_errors, "p50_ms": round(1000 * percentile(swipe_latency, 50), 1),
                              "p95_ms": round(1000 * percentile(swipe_latency, 95), 1),
                              "p99_ms": round(1000 * percentile(swipe_latency, 99), 1),
                              "server_cpu_s": round(server.cpu() - cpu0, 2)}
        print(f"{'viewers':>13}: {json.dumps(results['viewers'])}", flush=True)
        results["server_rss_mb"] = round(server.rss_mb(), 1)
        for client in [*probes, *clients, *member_clients, *swipers]:
            await client.aclose()
    finally:
        server.stop()
    # what the server logged at WARNING and above during the run (why an error happened, if one did)
    results["server_log_tail"] = server.log_tail().splitlines()[-20:]
    load_after = os.getloadavg()
    users = [f"u_creator{c}" for c in range(10)]
    results["raw_core_insert"] = await raw_insert_rate(settings, max(2000, results["ingest"]["requests"] * 20),
                                                       users, videos)
    health = (results["healthz"]["server_cpu_ms_per_request"]
              + results["healthz_after"]["server_cpu_ms_per_request"]) / 2
    results["healthz_reference_cpu_ms"] = round(health, 3)
    results["ratios"] = {
        "feed_page_cpu_vs_healthz": round(results["feed_page"]["server_cpu_ms_per_request"] / health, 1),
        "feed_cards_cpu_vs_healthz": round(results["feed_cards"]["server_cpu_ms_per_request"] / health, 1),
        "interaction_cpu_vs_healthz": round(results["interactions"]["server_cpu_ms_per_request"] / health, 1),
        "ingest_vs_raw_core_insert": round(results["ingest"]["events_per_second"]
                                           / results["raw_core_insert"]["per_second"], 3),
    }
    results["targets"] = {"feed_cpu_vs_healthz_max": 10, "feed_cards_per_s_at_16": 100, "viewers_p95_ms": 150,
                          "viewers_p99_ms": 400, "interactions_per_s_at_32": 300, "interactions_p99_ms": 300,
                          "ingest_vs_raw_min": 0.4}
    results["catalogue_videos"] = args.videos
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in load_after],
                          "note": "shared machine (several agents): compare the ratios, not absolute figures"}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the requests, half the viewer time")
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--viewer-seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["ratios"]), f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
