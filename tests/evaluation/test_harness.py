"""The offline harness end to end on a small synthetic dataset: no leakage, results schema, report."""

from __future__ import annotations

import json

import pytest

from recommender.evaluation import run_offline, write_report
from recommender.evaluation.offline import MethodSpec, baseline_spec, run_offline_on
from recommender.evaluation.policies import make_baseline
from recommender.evaluation.splits import global_temporal_split, user_chronological_split


class SpyPolicy:
    """Popularity, recording every event it is shown."""

    def __init__(self, log: list[dict]):
        self.inner = make_baseline("popularity")
        self.name = "spy"
        self.log = log

    def fit(self, train, items, now):
        self.log.append({"fit": {(x.user_id, x.item_id, x.timestamp) for x in train}, "now": now})
        self.inner.fit(train, items, now)

    def recommend(self, user, k, exclude=frozenset(), now=None):
        return self.inner.recommend(user, k, exclude, now)

    def observe(self, event):
        self.log.append({"observe": (event.user_id, event.item_id, event.timestamp)})
        self.inner.observe(event)


def _keys(events):
    return {(x.user_id, x.item_id, x.timestamp) for x in events}


def test_no_test_event_reaches_any_fit(dataset):
    log: list[dict] = []
    spec = MethodSpec("spy", lambda cfg: SpyPolicy(log), [{}, {}])
    run_offline_on(dataset, [spec], n_boot=20, budget=2, kfold=0, secondary=True)
    primary = user_chronological_split(dataset.interactions, 0.2)
    temporal = global_temporal_split(dataset.interactions, 0.2)
    fits = [entry for entry in log if "fit" in entry]
    assert len(fits) == 2 + 2  # two tuning configs, then primary and temporal
    assert not [entry for entry in log if "observe" in entry]
    primary_test, temporal_test = _keys(primary.test), _keys(temporal.test)
    for entry in fits[:2]:  # tuning: a validation split carved from primary TRAIN
        assert entry["fit"] < _keys(primary.train)
        assert not entry["fit"] & primary_test
    assert fits[2]["fit"] == _keys(primary.train)
    assert fits[3]["fit"] == _keys(temporal.train)
    assert not fits[3]["fit"] & temporal_test
    assert fits[3]["now"] < min(x.timestamp for x in temporal.test)


def test_results_schema_and_report(dataset, embed, tmp_path):
    methods = [baseline_spec(n) for n in ("random", "popularity", "ease")]
    res = run_offline_on(dataset, methods, n_boot=50, budget=2, kfold=3, secondary=True)
    assert set(res["methods"]) == {"random", "popularity", "ease"}
    for metrics in res["methods"].values():
        assert set(metrics) == {"ndcg@10", "recall@20", "precision@10", "auc", "coverage@10", "ild@10", "novelty@10"}
        for name, entry in metrics.items():
            if name == "coverage@10":  # not a mean over users: resampled users cover less (biased low)
                continue
            lo, hi = entry["ci"]
            assert lo <= entry["value"] + 1e-9 and entry["value"] <= hi + 1e-9
    assert set(res["splits"]) == {"user_chrono", "global_temporal"}
    assert set(res["kfold"]["methods"]) == {"popularity", "ease"}
    # the taste structure is learnable: EASE beats random
    assert res["methods"]["ease"]["ndcg@10"]["value"] > res["methods"]["random"]["ndcg@10"]["value"]
    json.dumps(res)  # machine-readable
    md = write_report({"offline": res}, tmp_path)
    text = md.read_text()
    assert "ndcg@10" in text and "ease" in text
    assert (tmp_path / "eval_offline_user_chrono.png").stat().st_size > 1000
    assert json.loads((tmp_path / "eval.json").read_text())["offline"]["kind"] == "offline"


def test_run_offline_with_foryou_quick(dataset, embed):
    pytest.importorskip("recommender.api")
    res = run_offline(embed_texts=embed, quick=True, dataset=dataset, methods=["popularity", "ease"])
    assert {"foryou", "popularity", "ease"} <= set(res["methods"])
    comp = res["comparisons"]
    assert set(comp) == {"popularity", "ease"}
    for entry in comp.values():
        assert len(entry["ndcg@10"]["ci"]) == 2
    assert res["tuning"]["foryou"]["trials"][0]["config"] == {}
