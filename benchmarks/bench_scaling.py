"""Figures for docs/SCALING.md: what one web replica absorbs from the replication stream, memory per item,
periodic-job snapshot sizes and load times.

    python benchmarks/bench_scaling.py [--quick]

Needs this machine's NATS JetStream (127.0.0.1:4222, FORYOU_BENCH_NATS_URL) for the stream part; without it
that part is reported as skipped. Writes benchmarks/results/scaling.json. Every part is bounded in count.

- ``stream``: events published once into a fresh JetStream stream, then applied by 1 and by 2 replica
  processes at once (each its own consumer and its own recommender over the same catalogue, through the app's
  own ``ReplicaSync.handle``), events/s per replica. Reference in the same run: the same events applied by
  ``Recommender.record_events`` directly (no stream), so the stream's cost reads as a ratio.
- ``memory``: resident memory added by the catalogue at two sizes, per million items (extrapolated linearly).
- ``snapshots``: every periodic job's published outputs after a history on a 10k catalogue: bytes, export and
  load seconds, against the seconds the job itself took (what each replica saves by loading instead).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender import Recommender  # noqa: E402
from recommender.synthetic import make_world, simulate_history  # noqa: E402

NOW = 1_700_000_000.0
RESULTS = Path(__file__).parent / "results" / "scaling.json"
NATS_URL = os.environ.get("FORYOU_BENCH_NATS_URL", "nats://127.0.0.1:4222")


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def world_and_history(n_items: int, n_users: int, n_events: int, seed: int = 1):
    world = make_world(n_items, n_users, dim=512, n_topics=50, n_creators=max(50, n_items // 30), now=NOW,
                       spread=0.6, seed=seed)
    history = []
    for event in simulate_history(world, sessions_per_user=4, swipes_per_session=15, start=NOW - 3 * 86_400,
                                  end=NOW - 3_600, seed=seed):
        history.append(event)
        if len(history) >= n_events:
            break
    return world, history


# ---- stream ---------------------------------------------------------------------------------------------
async def publish_events(stream_name: str, history) -> dict:
    from datetime import UTC, datetime

    from app.adapters.event_stream import EventStream
    from app.domain.events.writer import EventIn, StoredEvent
    from app.domain.feed.replication import event_body

    stream = EventStream(NATS_URL, stream_name, "bench-publisher")
    await stream.start()
    started = time.perf_counter()
    for event in history:
        stored = StoredEvent(EventIn(event_id=event.event_id, event_type=event.event_type, user_id=event.user_id,
                                     video_id=event.item_id, watch_duration=event.watch_duration,
                                     timestamp=datetime.fromtimestamp(event.timestamp, UTC),
                                     additional_info={"final": True}), is_new=True, session_id=None)
        stream.publish("event", event_body(stored), message_id=f"event:{event.event_id}")
    await stream.flush(timeout_s=300)
    seconds = time.perf_counter() - started
    await stream.stop()
    return {"events": len(history), "seconds": round(seconds, 2), "events_per_s": round(len(history) / seconds)}


async def consume(stream_name: str, replica: str, n_items: int, n_users: int, n_events: int) -> dict:
    """One replica: its own recommender over the catalogue, applying the stream through ReplicaSync.handle."""
    from datetime import UTC, datetime

    from app.adapters.event_stream import EventStream
    from app.domain.feed.replication import ReplicaSync

    world, _ = world_and_history(n_items, n_users, 0)
    rec = Recommender(clock=lambda: NOW)
    rec.upsert_items(world.items)
    stream = EventStream(NATS_URL, stream_name, replica)
    sync = ReplicaSync(stream, SimpleNamespace(engine=rec))
    await stream.start()
    started = time.perf_counter()
    await stream.consume(sync.handle, first_start=datetime(2000, 1, 1, tzinfo=UTC))
    while stream.applied < n_events:
        await asyncio.sleep(0.01)
        if time.perf_counter() - started > 300:
            break
    seconds = time.perf_counter() - started
    applied = stream.applied
    await stream.stop()
    return {"replica": replica, "applied": applied, "seconds": round(seconds, 2),
            "events_per_s": round(applied / seconds)}


def run_replicas(stream_name: str, count: int, n_items: int, n_users: int, n_events: int) -> list[dict]:
    tag = uuid.uuid4().hex[:6]
    processes = [subprocess.Popen([sys.executable, __file__, "--consume", stream_name, f"r{count}-{i}-{tag}",
                                   str(n_items), str(n_users), str(n_events)], stdout=subprocess.PIPE, text=True)
                 for i in range(count)]
    return [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in processes]


def bench_stream(n_items: int, n_users: int, n_events: int) -> dict:
    import nats

    async def reachable() -> bool:
        try:
            connection = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
        except Exception:  # noqa: BLE001
            return False
        await connection.close()
        return True

    if not asyncio.run(reachable()):
        return {"skipped": f"NATS at {NATS_URL} unreachable"}
    world, history = world_and_history(n_items, n_users, n_events)
    direct = Recommender(clock=lambda: NOW)
    direct.upsert_items(world.items)
    started = time.perf_counter()
    for event in history:
        direct.record_event(event)
    direct_s = time.perf_counter() - started
    del direct, world
    gc.collect()

    stream_name = f"foryou_bench_{uuid.uuid4().hex[:8]}"
    try:
        published = asyncio.run(publish_events(stream_name, history))
        one = run_replicas(stream_name, 1, n_items, n_users, len(history))
        two = run_replicas(stream_name, 2, n_items, n_users, len(history))
    finally:
        async def drop() -> None:
            connection = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
            try:
                await connection.jetstream().delete_stream(stream_name)
            finally:
                await connection.close()

        asyncio.run(drop())
    direct_rate = len(history) / direct_s
    return {
        "catalogue_items": n_items, "users": n_users, "events": len(history),
        "reference_record_event_in_process": {"seconds": round(direct_s, 2), "events_per_s": round(direct_rate)},
        "publish": published,
        "one_replica": one,
        "two_replicas": two,
        "per_replica_events_per_s": {"one": one[0]["events_per_s"],
                                     "two": [r["events_per_s"] for r in two]},
        "stream_apply_vs_direct": round(one[0]["events_per_s"] / direct_rate, 3),
        "note": "two replicas on a 2-core box share the cores with each other, the NATS server and the load;"
                " each replica applies every event (that is the design: replicas add read capacity, not write)",
    }


# ---- memory ---------------------------------------------------------------------------------------------
def bench_memory(sizes: list[int]) -> dict:
    points = []
    for n_items in sizes:
        gc.collect()
        world = make_world(n_items, 10, dim=512, n_topics=50, n_creators=max(50, n_items // 30), now=NOW,
                           spread=0.6, seed=3)
        items = world.items
        del world
        gc.collect()
        before = rss_mb()
        rec = Recommender(clock=lambda: NOW)
        rec.upsert_items(items)
        rec.run_job("vector_index", NOW)
        gc.collect()
        added = rss_mb() - before
        points.append({"items": n_items, "catalogue_rss_mb": round(added, 1),
                       "mb_per_million_items": round(added / n_items * 1e6)})
        del rec, items
        gc.collect()
    return {"dim": 512, "float32_vector_mb_per_million": round(512 * 4 * 1e6 / 2**20), "points": points,
            "note": "resident memory added by upserting the items and building the coarse index; the vectors "
                    "(512 x float32 = 2 KiB each) dominate; per million is a linear extrapolation"}


# ---- snapshots ------------------------------------------------------------------------------------------
def bench_snapshots(n_items: int, n_users: int, n_events: int) -> dict:
    world, history = world_and_history(n_items, n_users, n_events, seed=2)
    scheduler = Recommender(clock=lambda: NOW)
    replica = Recommender(clock=lambda: NOW, model_store=scheduler._state.ranker.store)
    for rec in (scheduler, replica):
        rec.upsert_items(world.items)
        rec.record_events(history)
    jobs = {}
    for name in scheduler.job_names():
        started = time.perf_counter()
        scheduler.run_job(name, NOW)
        run_s = time.perf_counter() - started
        started = time.perf_counter()
        blob = scheduler.export_job_outputs(name)
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        replica.load_job_outputs(name, blob)
        load_s = time.perf_counter() - started
        jobs[name] = {"run_s": round(run_s, 4), "bytes": len(blob), "export_s": round(export_s, 4),
                      "load_s": round(load_s, 4), "load_vs_run": round(load_s / run_s, 3) if run_s else None}
    return {"catalogue_items": n_items, "users": n_users, "history_events": len(history), "jobs": jobs,
            "total_bytes": sum(j["bytes"] for j in jobs.values()),
            "total_load_s": round(sum(j["load_s"] for j in jobs.values()), 3),
            "total_run_s": round(sum(j["run_s"] for j in jobs.values()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (about a minute)")
    parser.add_argument("--consume", nargs=5, metavar=("STREAM", "REPLICA", "ITEMS", "USERS", "EVENTS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:
        stream, replica, items, users, events = args.consume
        print(json.dumps(asyncio.run(consume(stream, replica, int(items), int(users), int(events)))))
        return
    quick = args.quick
    load_before = os.getloadavg()
    report = {
        "benchmark": "scaling",
        "mode": "quick" if quick else "full",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": [round(x, 2) for x in load_before]},
    }
    report["stream"] = bench_stream(10_000, 1_000, 5_000 if quick else 20_000)
    print(json.dumps({"stream": report["stream"].get("per_replica_events_per_s", report["stream"])}), flush=True)
    report["memory"] = bench_memory([10_000, 50_000] if quick else [20_000, 100_000])
    print(json.dumps({"memory": report["memory"]["points"]}), flush=True)
    report["snapshots"] = bench_snapshots(10_000, 1_000, 20_000 if quick else 60_000)
    print(json.dumps({"snapshots": {k: report["snapshots"][k] for k in ("total_bytes", "total_load_s",
                                                                        "total_run_s")}}), flush=True)
    report["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
