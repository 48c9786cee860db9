"""Recommender latency and throughput on a synthetic catalogue (clustered 512-d vectors, power-law
popularity) with a simulated event history.

    python benchmarks/bench_recommender.py [--quick]

Writes benchmarks/results/recommender.json. Targets on the 2-core box: feed of 10 at 10k videos / 1k users
p99 < 50 ms, at 100k videos p99 < 100 ms; record_event p99 < 5 ms; --quick finishes in under a minute.
"""

from __future__ import annotations

import os

# One BLAS thread: on a small shared box, threaded BLAS spins against the web workers and is slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from recommender import Event, FeedContext, Recommender  # noqa: E402
from recommender.candidates.ann import search  # noqa: E402
from recommender.synthetic import make_world, simulate_history  # noqa: E402

NOW = 1_700_000_000.0
RESULTS = Path(__file__).parent / "results" / "recommender.json"


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    values = np.array(samples_ms)
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p95_ms": round(float(np.percentile(values, 95)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
        "max_ms": round(float(values.max()), 3),
    }


def ann_recall(rec: Recommender, n_queries: int, top: int, seed: int) -> dict:
    """Recall@top of the coarse index against exact search, one interest-like query at a time (an item
    vector plus noise), and the share of the catalogue each query scans."""
    catalog = rec._state.catalog
    if catalog.coarse_centroids is None:
        return {"index": "exact search (no approximation)", "recall": 1.0}
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(catalog), size=n_queries, replace=False)
    queries = catalog.vectors[rows] + rng.normal(size=(n_queries, catalog.dim)).astype(np.float32) * 0.02
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    recalls, scanned, exact_ms, approx_ms = [], [], [], []
    for query in queries:
        t = time.perf_counter()
        exact = catalog.active_vectors() @ query
        truth = set(np.argpartition(-exact, top)[:top].tolist())
        exact_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        found_rows, approx = search(catalog, query[None, :], rec.config.ann_probe_lists)
        found = set(found_rows[np.argpartition(-approx[0], top)[:top]].tolist())
        approx_ms.append((time.perf_counter() - t) * 1000)
        recalls.append(len(truth & found) / top)
        scanned.append(len(found_rows) / len(catalog))
    return {
        "index": f"coarse, {len(catalog.coarse_centroids)} lists, probe {rec.config.ann_probe_lists}",
        f"recall_at_{top}": round(float(np.mean(recalls)), 4),
        "scanned_share_per_query": round(float(np.mean(scanned)), 4),
        "exact_query_ms_p50": round(float(np.median(exact_ms)), 3),
        "coarse_query_ms_p50": round(float(np.median(approx_ms)), 3),
    }


def run_scale(n_items: int, n_users: int, sessions: int, swipes: int, requests: int, events: int, seed: int) -> dict:
    started = time.perf_counter()
    world = make_world(n_items, n_users, dim=512, n_topics=50, n_creators=max(50, n_items // 30), now=NOW,
                       spread=0.6, seed=seed)
    history = list(simulate_history(world, sessions_per_user=sessions, swipes_per_session=swipes,
                                    start=NOW - 7 * 86_400, end=NOW - 3_600, seed=seed))
    clock_now = [NOW]
    rec = Recommender(clock=lambda: clock_now[0])
    result: dict = {"items": n_items, "users": n_users, "history_events": len(history), "dim": 512}

    t = time.perf_counter()
    rec.upsert_items(world.items)
    result["upsert_items_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    rec.record_events(history)
    elapsed = time.perf_counter() - t
    result["record_events"] = {"seconds": round(elapsed, 3), "events_per_s": round(len(history) / elapsed)}

    result["jobs_s"] = {}
    for name in rec.job_names():
        t = time.perf_counter()
        rec.run_job(name, NOW)
        result["jobs_s"][name] = round(time.perf_counter() - t, 3)
    active = rec.ranker_versions()[rec._state.ranker.active_version]
    result["ranker"] = {"version": active["version"], "kind": active["metrics"].get("kind", "hand-set prior"),
                        "training": rec.last_job_runs()["ranker_training"]}

    rng = np.random.default_rng(seed)
    users = [f"u{u}" for u in rng.integers(0, n_users, size=requests)]

    def feeds(label: str, offset: float) -> None:
        """Wall and CPU (this thread's) milliseconds per feed of 10; CPU time is what load does not inflate."""
        latencies, cpu = [], []
        for i, user in enumerate(users):
            context = FeedContext(now=NOW + offset + i, device="mobile", session_id=f"bench-{label}-{user}")
            t, c = time.perf_counter(), time.thread_time()
            page = rec.recommend(user, k=10, context=context)
            cpu.append((time.thread_time() - c) * 1000)
            latencies.append((time.perf_counter() - t) * 1000)
            assert len(page) == 10
        result[label] = percentiles(latencies)
        result[f"{label}_cpu"] = percentiles(cpu)

    feeds("recommend_k10", 0.0)
    # The same requests with the hand-set prior serving: the reference the learned ranker is compared to.
    active_version = rec._state.ranker.active_version
    if active_version:
        rec.rollback_ranker(0)
        feeds("recommend_k10_prior", 0.0)
        rec.rollback_ranker(active_version)
        result["learned_vs_prior_cpu_p99"] = round(result["recommend_k10_cpu"]["p99_ms"]
                                                   / result["recommend_k10_prior_cpu"]["p99_ms"], 3)
    cold = []
    for i in range(min(50, requests)):
        t = time.perf_counter()
        rec.recommend(f"newcomer{i}", k=10, context=FeedContext(now=NOW + i))
        cold.append((time.perf_counter() - t) * 1000)
    result["recommend_k10_cold_user"] = percentiles(cold)

    record_latencies = []
    kinds = ["impression", "view", "like", "skip", "complete_view"]
    for i in range(events):
        item = world.items[int(rng.integers(0, n_items))]
        kind = kinds[i % len(kinds)]
        event = Event(f"bench{i}", users[i % len(users)], kind, NOW + 1000 + i, item.item_id,
                      watch_duration=item.duration * 0.8 if kind == "view" else None)
        t = time.perf_counter()
        rec.record_event(event)
        record_latencies.append((time.perf_counter() - t) * 1000)
    result["record_event"] = percentiles(record_latencies)
    result["ann"] = ann_recall(rec, n_queries=50, top=50, seed=seed)
    result["total_s"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k items only, a shorter history (< 60 s)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    scales = (
        [dict(n_items=10_000, n_users=1_000, sessions=1, swipes=12, requests=300, events=1000, seed=1)]
        if args.quick
        else [
            dict(n_items=10_000, n_users=1_000, sessions=3, swipes=15, requests=500, events=3000, seed=1),
            dict(n_items=100_000, n_users=1_000, sessions=3, swipes=15, requests=500, events=3000, seed=2),
        ]
    )
    report = {
        "benchmark": "recommender",
        "mode": "quick" if args.quick else "full",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "loadavg_before": [round(x, 2) for x in load_before],
        },
        "targets_ms": {"recommend_p99_10k": 50, "recommend_p99_100k": 100, "record_event_p99": 5},
        "scales": [],
    }
    for scale in scales:
        outcome = run_scale(**scale)
        outcome["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        report["scales"].append(outcome)
        print(json.dumps({k: outcome.get(k) for k in ("items", "recommend_k10", "recommend_k10_cpu",
                                                      "recommend_k10_prior_cpu", "learned_vs_prior_cpu_p99",
                                                      "record_event", "total_s")}))
        print(json.dumps({"ranker": {k: v for k, v in outcome["ranker"].items() if k != "training"},
                          "jobs_s": outcome["jobs_s"]}))
    report["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
