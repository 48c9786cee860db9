"""The claims regression check: a claimed win that turns into a significant loss in the smoke run is caught."""

from recommender.evaluation.claims import check_claims, claims_from


def _offline(diff: float, lo: float, hi: float) -> dict:
    return {"kind": "offline", "protocols": {"user_chrono": {"comparisons": {
        "ease": {"ndcg@10": {"diff": diff, "ci": [lo, hi]}, "recall@20": {"diff": 0.0, "ci": [-0.01, 0.01]}},
        "foryou_tuned": {"ndcg@10": {"diff": -0.1, "ci": [-0.2, -0.05]}}}}}}


def test_claims_are_read_from_the_paired_intervals():
    claims = claims_from(_offline(0.02, 0.01, 0.03))
    assert {(c["baseline"], c["metric"], c["verdict"]) for c in claims} == {
        ("ease", "ndcg@10", "better"), ("ease", "recall@20", "tied")}  # foryou_tuned is ours, not a baseline


def test_a_flipped_claim_is_reported_and_a_wider_interval_is_not():
    claims = claims_from(_offline(0.02, 0.01, 0.03))
    assert not check_claims(claims, _offline(0.01, -0.02, 0.04))  # the smoke run is just less sure
    assert check_claims(claims, _offline(-0.03, -0.05, -0.01))  # a claimed win is now a loss
    assert not check_claims(claims, {"kind": "offline", "protocols": {}})  # not covered by the smoke run
    lost = claims_from(_offline(-0.02, -0.03, -0.01))
    assert not check_claims(lost, _offline(0.03, 0.01, 0.05))  # losses are not checked: quick baselines are weaker
