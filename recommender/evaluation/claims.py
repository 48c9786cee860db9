"""The evaluation's relative claims (ForYou vs each baseline, by the paired interval) and a regression check.

``claims_from(results)`` reads a full report's results and records, per protocol / world and baseline, whether
ForYou's served defaults were ``better`` (interval above zero), ``worse`` (below zero) or ``tied``. The smoke run
(``--quick``) is checked against them by ``check_claims``: a claimed win must not come out as a significant loss.
Losses and ties are not checked: the smoke run's baselines are untuned and fitted on 200 users, so they are
weaker than in the full run (ALS most of all) and a claimed loss may legitimately look like a win there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["CLAIM_METRICS", "check_claims", "claims_from", "load_claims"]

#: Comparisons that are not claims against a baseline: the oracle is the ceiling, foryou_tuned is ForYou itself.
NOT_BASELINES = frozenset({"oracle", "foryou_tuned"})
#: The offline metrics the claims are about, and the simulator's.
CLAIM_METRICS = ("ndcg@10", "recall@20")
SIM_CLAIM_METRICS = ("gap_share",)


def _verdict(entry: dict[str, Any]) -> str | None:
    ci = entry.get("ci") or [None, None]
    if ci[0] is None or ci[1] is None:
        return None
    return "better" if ci[0] > 0 else ("worse" if ci[1] < 0 else "tied")


def _parts(results: dict[str, Any]) -> tuple[dict | None, dict | None]:
    if results.get("kind") == "offline":
        return results, None
    if results.get("kind") == "simulation":
        return None, results
    return results.get("offline"), results.get("simulation")


def claims_from(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (where, baseline, metric) verdict of ForYou's served defaults in a full run's results."""
    offline, simulation = _parts(results)
    sections = (("offline", (offline or {}).get("protocols"), CLAIM_METRICS),
                ("simulation", (simulation or {}).get("worlds"), SIM_CLAIM_METRICS))
    out = []
    for kind, blocks, metrics in sections:
        for where, block in (blocks or {}).items():
            for baseline, comp in block.get("comparisons", {}).items():
                if baseline in NOT_BASELINES:
                    continue
                for metric in metrics:
                    verdict = _verdict(comp.get(metric, {}))
                    if verdict:
                        out.append({"kind": kind, "where": where, "baseline": baseline, "metric": metric,
                                    "verdict": verdict, "diff": comp[metric].get("diff"), "ci": comp[metric]["ci"]})
    return out


def check_claims(claims: list[dict[str, Any]], results: dict[str, Any]) -> list[str]:
    """Claims that ``results`` (a smoke run) contradicts significantly; an empty list when none does."""
    offline, simulation = _parts(results)
    violations = []
    for claim in claims:
        if claim["verdict"] != "better":
            continue
        source = offline if claim["kind"] == "offline" else simulation
        container = (source or {}).get("protocols" if claim["kind"] == "offline" else "worlds") or {}
        block = container.get(claim["where"])
        if block is None:
            continue  # the smoke run does not cover this protocol / world
        entry = block.get("comparisons", {}).get(claim["baseline"], {}).get(claim["metric"])
        if not entry:
            continue
        now = _verdict(entry)
        if now == "worse":
            violations.append(
                f"{claim['where']}: foryou vs {claim['baseline']} on {claim['metric']} was {claim['verdict']} "
                f"({claim['diff']:+.4f} {claim['ci']}), the smoke run says {now} ({entry.get('diff'):+.4f} "
                f"{entry.get('ci')})"
            )
    return violations


def load_claims(path: str | Path) -> list[dict[str, Any]]:
    return json.loads(Path(path).read_text())["claims"]
