"""The README's quality table is generated from the committed full run (benchmarks/results/eval.json)."""

import json
from pathlib import Path

from recommender.evaluation.report import best_baseline, readme_table

ROOT = Path(__file__).resolve().parents[2]


def _entry(value, lo, hi):
    return {"value": value, "ci": [lo, hi]}


def test_the_table_lists_every_method_and_the_paired_difference_against_the_best_baseline():
    block = {
        "n_eval_users": 10, "n_train": 100, "n_test": 20,
        "methods": {
            "foryou": {"ndcg@10": _entry(0.20, 0.18, 0.22), "recall@20": _entry(0.3, 0.28, 0.32)},
            "ease": {"ndcg@10": _entry(0.19, 0.17, 0.21), "recall@20": _entry(0.29, 0.27, 0.31)},
            "popularity": {"ndcg@10": _entry(0.10, 0.09, 0.11), "recall@20": _entry(0.12, 0.11, 0.13)},
        },
        "comparisons": {"ease": {"ndcg@10": {"diff": 0.01, "ci": [0.002, 0.02]},
                                 "recall@20": {"diff": 0.01, "ci": [-0.01, 0.03]}}},
    }
    assert best_baseline(block) == "ease"
    table = readme_table({"protocols": {"user_chrono": block}})
    assert "| foryou (served defaults, pages of 6) | 0.200 [0.180, 0.220] | 0.300 [0.280, 0.320] |" in table
    assert table.index("| ease |") < table.index("| popularity |")
    assert "| Δ foryou − ease (paired) | +0.010 [+0.002, +0.020] wins | +0.010 [-0.010, +0.030] tied |" in table


def test_the_readme_quotes_the_committed_full_run():
    results = json.loads((ROOT / "benchmarks" / "results" / "eval.json").read_text())
    readme = (ROOT / "README.md").read_text()
    missing = [line for line in readme_table(results["offline"]).splitlines() if line and line not in readme]
    assert not missing, f"README is out of date with eval.json (regenerate with readme_table): {missing[:3]}"
