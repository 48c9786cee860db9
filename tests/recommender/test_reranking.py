import numpy as np
import pytest

from recommender import FeedContext, Item
from recommender.reranking import exploration
from recommender.reranking.cold_start import GRADUATED, normalized_performance
from recommender.reranking.diversity import Placed, Ranked, assemble_page

from .conftest import NOW, ev, topic_vectors


def _ranked(item_id, creator, category, score, vector=None):
    return Ranked(0, item_id, creator, category, "ann/long_term", score, vector)


def test_never_two_in_a_row_from_the_same_creator():
    ranked = [_ranked(f"a{i}", "alice", f"t{i}", 10 - i) for i in range(5)] + [_ranked("b0", "bob", "x", 1.0),
                                                                               _ranked("b1", "bob", "y", 0.5)]
    page, decisions = assemble_page(ranked, {}, k=6, mmr_lambda=1.0, max_topic_share=1.0, previous_creator=None)
    creators = [p.entry.creator_id for p in page]
    assert creators == ["alice", "bob", "alice", "bob", "alice"]  # stops rather than repeat alice
    assert decisions[-1]["stopped"]
    assert any(s["why"] == "same creator as the previous video" for d in decisions for s in d.get("passed_over", []))


def test_previous_page_creator_is_not_repeated_across_pages():
    ranked = [_ranked("a0", "alice", "t", 5.0), _ranked("b0", "bob", "u", 1.0)]
    page, _ = assemble_page(ranked, {}, k=1, mmr_lambda=1.0, max_topic_share=1.0, previous_creator="alice")
    assert page[0].entry.item_id == "b0"
    only_alice, _ = assemble_page(ranked[:1], {}, k=1, mmr_lambda=1.0, max_topic_share=1.0, previous_creator="alice")
    assert only_alice[0].entry.item_id == "a0"  # a page of one beats an empty feed


def test_topic_cap_limits_one_topic_per_page():
    ranked = [_ranked(f"c{i}", f"cr{i}", "cats", 10.0 - i) for i in range(8)]
    ranked += [_ranked(f"d{i}", f"dr{i}", "dogs", 1.0 - i / 10) for i in range(4)]
    page, decisions = assemble_page(ranked, {}, k=10, mmr_lambda=1.0, max_topic_share=0.4, previous_creator=None)
    cats = [p for p in page[:8] if p.entry.category == "cats"]
    assert len(page) == 10
    assert sum(p.entry.category == "cats" for p in page[:8]) == 4 == len(cats)  # 4 = 40% of 10, until dogs run out
    assert any(d.get("relaxed") == "topic cap" for d in decisions)


def test_mmr_prefers_a_diverse_item_over_a_near_duplicate():
    centers = topic_vectors()
    near = centers["cats"] + 0.01
    near /= np.linalg.norm(near)
    ranked = [_ranked("cat1", "a", None, 1.0, centers["cats"]), _ranked("cat2", "b", None, 0.95, near),
              _ranked("car1", "c", None, 0.8, centers["cars"])]
    diverse, decisions = assemble_page(ranked, {}, k=2, mmr_lambda=0.5, max_topic_share=1.0, previous_creator=None)
    assert [p.entry.item_id for p in diverse] == ["cat1", "car1"]
    assert decisions[1]["passed_over"][0] == {"item_id": "cat2", "why": "diversity (too similar)"}
    greedy, _ = assemble_page(ranked, {}, k=2, mmr_lambda=1.0, max_topic_share=1.0, previous_creator=None)
    assert [p.entry.item_id for p in greedy] == ["cat1", "cat2"]


def test_reserved_slots_land_on_their_positions():
    ranked = [_ranked(f"r{i}", f"c{i}", None, 5.0 - i) for i in range(6)]
    explore = Placed(_ranked("x", "cx", None, -1.0), "explore", 0.25)
    page, _ = assemble_page(ranked, {3: explore}, k=5, mmr_lambda=1.0, max_topic_share=1.0, previous_creator=None)
    assert page[3].entry.item_id == "x" and page[3].propensity == 0.25 and page[3].kind == "explore"


def test_thompson_propensities_are_probabilities_that_favour_better_arms(rec):
    user = rec._state.user("u")
    for i in range(6):
        rec.record_event(ev("u", "like", NOW + i, f"music-{i}"))
    picks, arms = exploration.choose(["music", "cars", "cars", "cooking"], np.array([0.1, 0.2, 0.3, 0.1]), user,
                                     {}, slots=3, now=NOW + 10, rng=np.random.default_rng(0), samples=2000)
    assert len(picks) == 3 and len({p.arm for p in picks}) == 3
    assert all(0.0 < p.propensity <= 1.0 for p in picks)
    first = {a["arm"]: a for a in arms}
    assert first["music"]["alpha"] > first["cars"]["alpha"]
    assert picks[0].arm == "music" and picks[0].propensity > 0.5
    assert next(p for p in picks if p.arm == "cars").index == 2  # best-scored candidate within the arm


def test_thompson_win_shares_are_computed_once_per_posterior_and_estimate_the_exact_ones(rec):
    # Beta(2, 1) against Beta(1, 1): P(X > Y) = E[Y < X] = E[X] = 2/3
    exploration.win_counts.cache_clear()
    first = exploration.win_counts((2.0, 1.0), (1.0, 1.0), 4000)
    again = exploration.win_counts((2.0, 1.0), (1.0, 1.0), 4000)
    assert first == again and exploration.win_counts.cache_info().hits == 1
    assert sum(first) == 4000 and abs(first[0] / 4000 - 2 / 3) < 0.03
    # the propensity counts the choosing draw as well, so it is never 0 even for an arm that never wins
    user = rec._state.user("nobody")
    picks, _ = exploration.choose(["a", "b"], np.array([0.1, 0.2]), user, {"a": 0.999, "b": 0.001}, slots=2,
                                  now=NOW, rng=np.random.default_rng(1), samples=50)
    assert all(0.0 < p.propensity <= 1.0 for p in picks)


def test_exploration_propensity_is_logged_on_results(rec):
    page = rec.recommend("u", k=10, context=FeedContext(now=NOW))
    trace = rec.inspect_user("u")["last_recommendation"]
    logged = {p["item_id"]: p["propensity"] for p in trace["exploration"]["picks"]}
    assert {r.item_id: r.propensity for r in page if r.propensity is not None} == logged


def test_cold_start_cohort_guarantees_exposure_then_expands_or_graduates(rec):
    for name in ("good-new", "bad-new"):
        rec.upsert_item(Item(name, f"unknown-{name}", topic_vectors()["cars"], topic="cars", duration=20.0,
                             uploaded_at=NOW - 600))
    page = rec.recommend("someone", k=10, context=FeedContext(now=NOW))
    assert {"good-new", "bad-new"} & {r.item_id for r in page}
    assert any("first viewers" in reason for r in page for reason in r.reasons)

    cohort = rec.config.cohort_size
    for v in range(cohort):
        user, t = f"viewer{v}", NOW + 10 * v
        rec.record_event(ev(user, "impression", t, "good-new"))
        rec.record_event(ev(user, "view", t + 5, "good-new", watch_duration=20.0))
        rec.record_event(ev(user, "complete_view", t + 5, "good-new"))
        rec.record_event(ev(user, "impression", t, "bad-new"))
        rec.record_event(ev(user, "skip", t + 1, "bad-new", watch_duration=1.0))
        for other in range(3):  # the catalogue baseline: ordinary half-watched videos
            rec.record_event(ev(user, "impression", t, f"cats-{other}"))
            rec.record_event(ev(user, "view", t + 2, f"cats-{other}", watch_duration=8.0))
    summary = rec.run_job("video_stats", NOW + 1000)
    assert summary["cold_start"]["expanded"] == ["good-new"]
    assert "bad-new" in summary["cold_start"]["graduated"]
    assert rec.inspect_item("good-new")["cold_start_level"] == 1
    assert rec.inspect_item("bad-new")["cold_start_level"] == GRADUATED


def test_normalized_performance_is_one_at_the_baseline():
    baseline = {"watch": 0.4, "complete": 0.2, "skip": 0.3}
    rates = {name: np.array([value]) for name, value in baseline.items()}
    assert normalized_performance(rates, baseline)[0] == pytest.approx(1.0)
    rates["complete"] = np.array([0.4])
    assert normalized_performance(rates, baseline)[0] > 1.0


def test_exploration_page_share_tapers_with_evidence_but_never_stops():
    assert exploration.page_share(10, 0.0, 0.25) == 1.0  # taper off: every page
    assert exploration.page_share(30, 60.0, 0.25) == 1.0  # little evidence yet: every page
    assert exploration.page_share(120, 60.0, 0.25) == pytest.approx(0.5)
    assert exploration.page_share(10_000, 60.0, 0.25) == 0.25  # a long history keeps the floor


def test_served_defaults_explore_on_every_page_early_then_rarely_but_never_stop():
    from recommender import RecommenderConfig

    config = RecommenderConfig()

    def share(n_positive):
        return exploration.page_share(n_positive, config.explore_taper_positives, config.explore_min_page_share)

    assert share(5) == 1.0  # a handful of positives: every page explores
    assert share(10) == pytest.approx(0.5)
    assert share(100) == pytest.approx(0.05)  # a MovieLens-sized history: one page in twenty
    assert share(100_000) == config.explore_min_page_share > 0.0  # exploration never stops


def test_a_confident_viewer_gets_fewer_exploration_slots_with_propensities_that_say_so():
    from recommender import Recommender, RecommenderConfig

    from .conftest import make_items

    items = make_items(per_topic=150)  # big enough that exploration candidates are not all interest matches too

    def explored_pages(config):
        rec = Recommender(config, clock=lambda: NOW)
        rec.upsert_items(items)
        for i, item in enumerate(items[:40]):  # 40 liked and completed cat videos: 120 positive events
            t = NOW - 3_600 + i
            rec.record_event(ev("fan", "view", t, item.item_id, watch_duration=20.0))
            rec.record_event(ev("fan", "complete_view", t, item.item_id))
            rec.record_event(ev("fan", "like", t, item.item_id))
        pages, propensities = 0, []
        for n in range(40):
            page = rec.recommend("fan", k=6, context=FeedContext(now=NOW + n * 7_200.0))  # a new session each time
            trace = rec.inspect_user("fan")["last_recommendation"]
            picks = {p["item_id"] for p in trace.get("exploration", {}).get("picks", [])}
            shown = [r for r in page if r.item_id in picks]
            pages += bool(shown)
            propensities += [r.propensity for r in shown]
        return pages, propensities

    every, _ = explored_pages(RecommenderConfig(explore_taper_positives=0.0))  # no taper
    tapered, propensities = explored_pages(RecommenderConfig(explore_taper_positives=30.0,
                                                             explore_min_page_share=0.25))
    assert every >= 36  # one exploration slot on (nearly) every page
    assert 3 <= tapered <= 20  # 30 / 120 = 0.25 of 40 pages: about 10
    assert propensities and all(0.0 < p <= 0.25 for p in propensities)  # P(slot on the page) is in them
