"""`foryou eval` end to end, small: MovieLens-100k fetched from PyPI at run time, every method, JSON out."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASELINES = {"random", "popularity", "recent_popularity", "itemknn", "als", "bpr", "ease"}
pytestmark = pytest.mark.slow


def foryou_eval(tmp_path: Path, *args: str) -> dict:
    env = {**os.environ, "FORYOU_DATA_DIR": str(tmp_path / "data"), "FORYOU_LOG_JSON": "false"}
    done = subprocess.run([sys.executable, "-m", "app", "eval", *args, "--quick", "--json", "--hashed"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_offline_quick_run_reports_every_method_with_intervals(tmp_path):
    result = foryou_eval(tmp_path, "offline")
    methods = result["methods"]
    assert {"foryou", *BASELINES} <= set(methods)
    for name, metrics in methods.items():
        for metric in ("ndcg@10", "recall@20", "precision@10"):
            low, high = metrics[metric]["ci"]
            assert low <= metrics[metric]["value"] <= high, (name, metric)
    # A sanity floor that real data gives and shuffled data would not: popularity beats random.
    assert methods["popularity"]["ndcg@10"]["value"] > methods["random"]["ndcg@10"]["value"]
    assert set(result["comparisons"]) >= BASELINES


def test_simulator_quick_run_over_the_demo_catalogue_reports_the_gap_share(tmp_path):
    result = foryou_eval(tmp_path, "simulate")
    world = result["worlds"]["catalogue"]["methods"]
    assert {"foryou", "popularity", "itemknn", "als", "random", "oracle"} <= set(world)
    assert world["random"]["gap_share"]["value"] == 0.0  # the gap is measured from random...
    assert world["oracle"]["gap_share"]["value"] == pytest.approx(1.0)  # ...to the user's true best
    foryou = world["foryou"]
    assert 0.0 < foryou["gap_share"]["value"] <= 1.0
    assert foryou["watch_time_per_session"]["value"] > world["random"]["watch_time_per_session"]["value"]
