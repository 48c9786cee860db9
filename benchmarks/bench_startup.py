"""Start-up benchmark: seconds until `foryou serve` answers /healthz, and its resident memory then, with 100k and
1M synthetic event rows, first without a recommender snapshot (replay of the last 60 days) and then from the
snapshot the first run wrote at shutdown (replay of nothing after it).

    python benchmarks/bench_startup.py [--rows 100000 1000000] [--timeout 600]

Set-up (not timed): a migrated database with 5,000 ready videos, 2,000 users and the event rows (views,
impressions, likes, skips over the last 30 days) written straight through sqlite3. Every start is bounded by
``--timeout``. Writes benchmarks/results/startup.json with the load average and each start's server CPU seconds
(shared machine: compare the two starts of one size with each other, and CPU rather than wall across runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.config import Settings  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.db.models import User, Video  # noqa: E402
from benchmarks.bench_http import Server, free_port  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "startup.json"
VIDEOS, USERS = 5_000, 2_000
KINDS = ("impression", "impression", "view", "view", "skip", "like")


def build(data_dir: Path, rows: int) -> None:
    settings = Settings(data_dir=data_dir, secret_key="bench")
    settings.ensure_dirs()
    upgrade(settings)
    engine = create_engine(f"sqlite:///{data_dir / 'foryou.db'}")
    with Session(engine) as session:  # the ORM fills every column's default
        session.add_all(User(id=f"u{i}", username=f"user{i}", display_name=f"User {i}", is_guest=False)
                        for i in range(USERS))
        session.flush()
        session.add_all(Video(id=f"v{i}", creator_id=f"u{i % 200}", state="ready", caption=f"clip {i}",
                              topic=f"topic{i % 20}", duration=15.0, width=720, height=1280) for i in range(VIDEOS))
        session.commit()
    engine.dispose()
    db = sqlite3.connect(data_dir / "foryou.db")
    now = datetime.now(UTC).replace(tzinfo=None)
    rng = random.Random(0)
    start = now - timedelta(days=30)
    step = timedelta(days=30) / rows
    chunk = []
    for n in range(rows):
        kind = KINDS[n % len(KINDS)]
        video = rng.randrange(VIDEOS)
        info = '{"final": true, "watch_ratio": 0.6}' if kind == "view" else "{}"
        chunk.append((uuid.uuid4().hex, kind, f"u{rng.randrange(USERS)}", f"v{video}", f"u{video % 200}",
                      (start + n * step).strftime("%Y-%m-%d %H:%M:%S.%f"), 9.0 if kind == "view" else None, info))
        if len(chunk) == 50_000:
            _insert(db, chunk)
            chunk = []
    _insert(db, chunk)
    db.commit()
    db.close()


def _insert(db: sqlite3.Connection, rows: list[tuple]) -> None:
    db.executemany("INSERT INTO events (event_id, event_type, user_id, video_id, creator_id, timestamp,"
                   " watch_duration, additional_info) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def start(data_dir: Path, timeout: float) -> dict:
    server = Server(data_dir, free_port())
    try:
        load = os.getloadavg()[0]
        ready = server.wait_ready(timeout)
        # CPU seconds as well as wall: on a shared machine the wall time mostly says how busy the others were.
        return {"healthz_after_s": round(ready, 2), "cpu_s": round(server.cpu(), 2),
                "rss_mb": round(server.rss_mb(), 1), "load_average_1m_at_start": round(load, 2)}
    finally:
        stopped = time.monotonic()
        server.stop()
        stop_s = round(time.monotonic() - stopped, 2)
    return {"stop_s": stop_s}  # pragma: no cover


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results: dict = {"videos": VIDEOS, "users": USERS, "runs": {}}
    load_before = os.getloadavg()
    for rows in args.rows:
        data_dir = Path(tempfile.mkdtemp(prefix=f"foryou-bench-startup-{rows}-"))
        began = time.perf_counter()
        build(data_dir, rows)
        built_s = time.perf_counter() - began
        snapshot = data_dir / "recommender" / "state.snapshot"
        replay = start(data_dir, args.timeout)
        replay["snapshot_written_mb"] = round(snapshot.stat().st_size / 1e6, 1) if snapshot.exists() else None
        from_snapshot = start(data_dir, args.timeout) if snapshot.exists() else None
        results["runs"][str(rows)] = {"build_s": round(built_s, 1), "replay": replay, "from_snapshot": from_snapshot}
        print(rows, json.dumps(results["runs"][str(rows)]), flush=True)
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in os.getloadavg()],
                          "note": "shared machine (several agents): compare replay and snapshot starts of one size"}
    results["target"] = {"healthz_after_s_at_1M_rows": 10}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
