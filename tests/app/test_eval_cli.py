"""`foryou eval` end to end, small: MovieLens-100k (from the recbole wheel on PyPI, cached), every method, JSON out."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.evaluation.claims import check_claims, load_claims
from recommender.evaluation.data import load_movielens_100k

ROOT = Path(__file__).resolve().parents[2]
BASELINES = {"random", "popularity", "recent_popularity", "itemknn", "als", "bpr", "ease", "rp3beta"}
pytestmark = pytest.mark.slow
#: The relative claims of the last full ``make eval`` (committed with its report).
CLAIMS = ROOT / "benchmarks" / "results" / "eval_claims.json"
#: Downloaded once per machine, not once per run (``FORYOU_TEST_CACHE`` moves it).
DATASETS = Path(os.environ.get("FORYOU_TEST_CACHE", Path.home() / ".cache" / "foryou")) / "datasets"


@pytest.fixture(scope="module")
def datasets() -> Path:
    try:
        load_movielens_100k(DATASETS)
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"MovieLens-100k is not cached in {DATASETS} and the package index is unreachable: {exc}")
    return DATASETS


def foryou_eval(out: Path, datasets: Path, *args: str) -> dict:
    env = {**os.environ, "FORYOU_DATA_DIR": str(out / "data"), "FORYOU_LOG_JSON": "false"}
    done = subprocess.run([sys.executable, "-m", "app", "eval", *args, "--quick", "--json", "--hashed",
                           "--datasets", str(datasets)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def report(tmp_path_factory, datasets) -> tuple[dict, Path]:
    """One quick `foryou eval report` for the module: its parts are `run_offline` and `run_simulation` (what
    `foryou eval offline` and `foryou eval simulate` print), merged, so one run checks all three commands'
    output (running each command on its own repeated the same minutes of work)."""
    out = tmp_path_factory.mktemp("eval")
    return foryou_eval(out, datasets, "report", "--out", str(out / "out")), out / "out"


def test_offline_quick_run_reports_every_method_in_both_protocols_with_intervals(report):
    result = report[0]["offline"]
    assert set(result["protocols"]) == {"user_chrono", "global_time"}
    for protocol, block in result["protocols"].items():
        methods = block["methods"]
        assert {"foryou", "foryou_tuned", *BASELINES} == set(methods)
        for name, metrics in methods.items():
            for metric in ("ndcg@10", "recall@20", "page_ndcg@12", "page_recall@12"):
                low, high = metrics[metric]["ci"]
                assert low <= metrics[metric]["value"] <= high, (protocol, name, metric)
        # the served defaults against every baseline, with the interval of the paired difference
        assert set(block["comparisons"]) == {"foryou_tuned", *BASELINES}
        for comparison in block["comparisons"].values():
            for metric in ("ndcg@10", "recall@20"):
                low, high = comparison[metric]["ci"]
                assert low <= comparison[metric]["diff"] <= high
    # A sanity floor that real data gives and shuffled data would not: popularity beats random.
    primary = result["protocols"]["user_chrono"]["methods"]
    assert primary["popularity"]["ndcg@10"]["value"] > primary["random"]["ndcg@10"]["value"]
    # The published relative claims hold in the smoke run: no claimed win is now a significant loss, and no
    # claimed loss a significant win (then the report and the README are out of date: run `make eval`).
    claims = [c for c in load_claims(CLAIMS) if c["kind"] == "offline"]
    assert {c["baseline"] for c in claims} == BASELINES
    assert not check_claims(claims, result)


def test_simulator_quick_run_over_the_demo_catalogue_reports_the_gap_share(report):
    result = report[0]["simulation"]
    world = result["worlds"]["catalogue"]["methods"]
    assert {"foryou", "popularity", "itemknn", "als", "random", "oracle"} <= set(world)
    assert world["random"]["gap_share"]["value"] == 0.0  # the gap is measured from random...
    assert world["oracle"]["gap_share"]["value"] == pytest.approx(1.0)  # ...to the user's true best
    foryou = world["foryou"]
    assert 0.0 < foryou["gap_share"]["value"] <= 1.0
    assert foryou["watch_time_per_session"]["value"] > world["random"]["watch_time_per_session"]["value"]
    claims = [c for c in load_claims(CLAIMS) if c["kind"] == "simulation" and c["where"] == "catalogue"]
    assert claims and not check_claims(claims, result)


def test_report_runs_the_protocols_and_worlds_as_parallel_parts_and_merges_them(report):
    result, out = report
    offline, simulation = result["offline"], result["simulation"]
    assert list(offline["protocols"]) == ["user_chrono", "global_time"]
    assert offline["primary_protocol"] == "user_chrono"
    assert offline["methods"] == offline["protocols"]["user_chrono"]["methods"]
    assert set(offline["protocols"]["global_time"]["comparisons"]) == {"foryou_tuned", *BASELINES}
    assert list(simulation["worlds"]) == ["catalogue"]  # quick: the catalogue world only
    run = offline["run"]
    assert run == simulation["run"] and run["workers"] >= 1
    assert set(run["parts"]) == {"offline/user_chrono", "offline/global_time", "simulation/catalogue"}
    assert all(part["cpu_seconds"] > 0 for part in run["parts"].values())
    assert (out / "eval.md").is_file() and (out / "eval.json").is_file()
