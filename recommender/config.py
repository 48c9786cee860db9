"""Every tunable of the recommender in one dataclass, with per-request overrides for experiments."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

DAY = 86_400.0
HOUR = 3_600.0


def _event_weights() -> dict[str, float]:
    # How much each event says about interest; views are scaled by watch ratio in events.engagement_weight.
    return {
        "like": 1.0,
        "unlike": -1.0,
        "comment": 1.5,
        "share": 2.0,
        "save": 1.5,
        "unsave": -1.5,
        "follow": 2.0,
        "unfollow": -2.0,
        "view": 0.6,
        "complete_view": 1.0,
        "replay": 1.5,
        "skip": -1.0,
        "hide": -3.0,
        "report": -5.0,
        "impression": 0.0,
        "content_upload": 0.0,
    }


def _candidate_quotas() -> dict[str, int]:
    return {
        "ann/short_term": 80,
        "ann/long_term": 120,
        "item2item": 200,  # EASE/item-to-item finds most of what users pick next: the fusion model sorts them
        "sequence/next": 60,
        "trending": 40,
        "sound": 30,
        "fresh": 30,
        "following": 40,
        "popular": 120,
        "explore": 40,
    }


def _value_weights() -> dict[str, float]:
    # Σ w·P(action). Negative feedback is weighted far more heavily than any single positive action.
    # watch + effective_view: the D2Q pair that replaced the raw watch ratio (weight 1.0) between them.
    return {
        "watch": 0.5,
        "effective_view": 0.5,
        "complete": 0.6,
        "like": 1.0,
        "share": 1.5,
        "comment": 1.0,
        "follow": 1.5,
        "skip": -1.5,
        "negative": -12.0,
    }


@dataclass(frozen=True)
class RecommenderConfig:
    # --- sessions, history --------------------------------------------------------------
    session_gap_seconds: float = 30 * 60
    seen_window_seconds: float = 3 * DAY
    exposure_gap_seconds: float = 30 * 60  # a pair shown again after this long counts as a new exposure
    max_events: int = 500_000  # in-memory event log (the app's database stays the source of truth)

    # --- user interest profiles ---------------------------------------------------------
    short_term_centroids: int = 3
    short_term_half_life: float = 15 * 60
    mid_term_centroids: int = 4
    mid_term_half_life: float = 3 * DAY
    long_term_centroids: int = 5
    long_term_half_life: float = 30 * DAY
    negative_centroids: int = 3
    negative_half_life: float = 7 * DAY
    centroid_merge_similarity: float = 0.75
    short_scores_half_life: float = 1 * HOUR  # topic/hashtag/creator scores, short-term
    long_scores_half_life: float = 14 * DAY
    declared_interest_weight: float = 2.0
    recent_positive_items: int = 10  # unused since item2item sums over all engaged items; old overrides parse
    cold_user_max_positive_events: int = 5
    event_weights: dict[str, float] = field(default_factory=_event_weights)

    # --- candidates -----------------------------------------------------------------------
    candidate_quotas: dict[str, int] = field(default_factory=_candidate_quotas)
    min_candidates_per_centroid: int = 15
    ann_index_min_items: int = 5_000  # below this, nearest-neighbour search is exact over all vectors
    ann_probe_lists: int = 0  # IVF lists scanned per interest centroid when the faiss index is on (0: by size)
    fresh_window_seconds: float = 2 * DAY
    following_window_seconds: float = 14 * DAY
    neighbors_per_item: int = 100
    cf_max_items_per_user: int = 200
    cf_shrinkage: float = 5.0
    cf_min_co_users: int = 2
    cf_ease_max_items: int = 3_000  # EASE by the item-space inverse (n×n: ~3 s, ~300 MB at 3k) up to here
    cf_ease_dual_max_cells: int = 25_000_000  # above: EASE by the user-space inverse while users·items fits
    # 500 (was 250) with cf_anchor_rank_half_life 10, on the user-chrono validation fold (served pages, 300 users):
    # NDCG@10 0.190 against 0.178, Recall@20 0.279 against 0.289; the fusion job's held-out NDCG@10 0.212 against 0.203
    cf_ease_lambda: float = 500.0
    cf_user_history_items: int = 500  # net engagement kept per user (the anchors of item-to-item scores)
    cf_max_anchors: int = 200  # most recent positively engaged items that item-to-item scores sum over
    cf_anchor_half_life: float = 60 * DAY
    # In engagements: the anchor this many engagements back weighs half. 10 (was 20) on the user-chrono validation
    # fold (served pages, 300 users): NDCG@10 0.183 against 0.178, Recall@20 0.286 against 0.289 (λ 250).
    cf_anchor_rank_half_life: float = 10.0

    # --- ranking --------------------------------------------------------------------------
    value_weights: dict[str, float] = field(default_factory=_value_weights)
    rate_prior_strength: float = 20.0  # pseudo-exposures when smoothing an item's rates toward the global rate
    affinity_gain: float = 1.25  # logits per unit of user-item affinity in the prior probabilities
    collab_gain: float = 16.0  # logits per unit of item-to-item score (1 = the user's best-scoring item)
    popularity_gain: float = 3.0  # logits per unit of log(1 + positive engagements) / 10
    freshness_half_life: float = 1 * DAY

    # --- re-ranking ----------------------------------------------------------------------
    mmr_lambda: float = 0.85
    cold_user_mmr_lambda: float = 0.5
    mmr_pool_size: int = 120
    # Two thirds (4 of a page of 6; was half, 3 of 6): on the user-chrono validation fold (served pages, 910
    # users) NDCG@10 0.1890 against 0.1866, +0.0023 [+0.0010, +0.0037], Recall@20 +0.0007 [-0.0017, +0.0036];
    # no cap at all gave +0.0021 [+0.0006, +0.0036]: a cap that keeps two topics on every page costs nothing.
    max_topic_share: float = 0.67
    trend_boost: float = 0.3  # β in score × (1 + β·trend)
    explore_slots: int = 1
    explore_slot_position: float = 1.0  # 0.5: exploration slots evenly spread over the page; 1.0: toward its end
    # Exploration tapers with evidence: a warm viewer with n positive events > this gets the exploration slots on a
    # page with probability max(explore_min_page_share, this / n) (logged in the slot's propensity); 0: every page.
    # Cold viewers keep cold_user_explore_slots on every page. Chosen on the user-chrono validation fold (served
    # pages, 300 users): 5 / 0.02 lifted NDCG@10 by +0.002 [+0.001, +0.004] over 15 / 0.1, where dropping warm
    # viewers' exploration altogether gave +0.003 (kept off: exploration never stops); see tuning.SERVED_GRID.
    explore_taper_positives: float = 5.0
    explore_min_page_share: float = 0.02
    cold_user_explore_slots: int = 3
    bandit_propensity_samples: int = 200
    fresh_slots: int = 1
    # share of impressions served uniformly at random from the eligible pool, logged with their propensity
    # (an unbiased slice for off-policy evaluation); 0 turns the slice off
    random_exposure_share: float = 0.01
    cold_start_slot_position: float = 1.0  # where on the page (share of k) the cohort slot goes: its end
    cohort_size: int = 20
    expansion_factor: float = 4.0
    max_expansion_level: int = 3

    # --- trends ---------------------------------------------------------------------------
    trend_window_seconds: float = 1 * HOUR
    trend_baseline_seconds: float = 24 * HOUR
    trend_min_engagement: float = 5.0
    trend_list_size: int = 200

    # --- engagement farming ---------------------------------------------------------------
    farming_window_seconds: float = 10 * 60
    farming_new_account_seconds: float = 1 * DAY
    farming_min_burst: int = 8
    farming_max_likes_per_minute: int = 20

    # --- ranker training ------------------------------------------------------------------
    # Examples the ranker trains on (and bulk replays log features for): 400 days (was 7), longer than MovieLens'
    # 7 months and the app's 60-day replay, so in practice every example held (the newest max_training_examples).
    # On the validation folds with served pages, all users (sentence-encoder text): global time NDCG@10 0.166 against
    # 0.126, +0.040 [+0.018, +0.065] (60 days: +0.030); user-chrono 0.190 against 0.191, -0.002 [-0.007, +0.003].
    training_window_seconds: float = 400 * DAY
    train_min_examples: int = 200  # new examples (served cards) before a training run; below, the prior serves
    train_batch_size: int = 256
    train_epochs: int = 40  # at most: training stops early on the newest tenth of its examples
    learning_rate: float = 1e-3  # Adam
    l2: float = 1e-4  # weight decay
    train_time_budget_seconds: float = 60.0
    train_calibration_steps: int = 200  # from the prior: fit its per-task scale and bias first (AUC-neutral)
    d2q_buckets: int = 20  # duration buckets (equal frequency) for the debiased watch target
    d2q_effective_quantile: float = 0.5  # an effective view reaches this quantile of its bucket's watch time
    holdout_fraction: float = 0.2
    promotion_min_logloss_gain: float = 1e-4
    promotion_auc_tolerance: float = 0.005
    # refused for value NDCG only when worse by this much and by two standard errors of the paired per-session
    # difference (training.trainer.ndcg_credibly_worse): a day's few dozen held-out sessions move it by ~0.01
    promotion_ndcg_tolerance: float = 0.01
    max_training_examples: int = 200_000

    # --- sequence model (GRU4Rec) -----------------------------------------------------------
    sequence_dim: int = 64
    sequence_max_length: int = 20  # most recent positively engaged items the GRU reads
    sequence_max_items: int = 20_000  # vocabulary: the most engaged items (full softmax over them)
    sequence_epochs: int = 10
    sequence_batch_size: int = 128
    sequence_learning_rate: float = 5e-3
    sequence_weight_decay: float = 1e-5
    sequence_time_budget_seconds: float = 20.0  # full softmax: ~1 s per epoch per 1k users × 1k items
    sequence_min_users: int = 20  # users with a sequence (two or more engaged items) before training
    sequence_recall_k: int = 20
    sequence_retrain_min_growth: float = 0.05  # retrain once the engaged (user, item) pairs grew by this share

    # --- candidate fusion (see recommender.fusion) -------------------------------------------
    fusion_enabled: bool = True  # False: the engagement value model orders the page, as before fusion
    fusion_cuts: str = "user+time"  # "user": each user's own prefix/suffix cut; "time": one cut; "user+time": both
    fusion_suffix_fraction: float = 0.2  # share of each user's items (or of the log, for the time cut) labelled
    fusion_min_user_items: int = 5  # users with fewer items are not cut (they stay whole in the replay)
    fusion_max_users: int = 1_000  # cut users per run (a stable sample): bounds the job's time
    fusion_holdout_fraction: float = 0.2  # cut users judged, not trained on
    fusion_objective: str = "binary"  # LightGBM objective: "binary" (per candidate) or "lambdarank" (per user)
    fusion_trees: int = 150
    fusion_learning_rate: float = 0.05
    fusion_leaves: int = 15
    fusion_min_leaf: int = 100
    fusion_promotion_min_gain: float = 0.0  # held-out NDCG@10 over the current ordering's, to promote
    # + this × the engagement value score, on top of the fusion score: the value score carries the session's own
    # skips and likes, which fusion alone ignored (the swipe simulator's adaptation collapsed with 0). Chosen on the
    # user-chrono validation fold, where 0, 1 and 5 tie; the smallest weight that keeps the session signal.
    fusion_value_weight: float = 1.0
    # The fusion score's scale in that sum: "log_odds" (LightGBM's raw score) or "probability" (P(chosen), mostly a few
    # hundredths beside a value score spread by ~0.7, so the sum was nearly the value ordering). log_odds was chosen on
    # the validation folds with served pages, all users: global time NDCG@10 +0.0081 [+0.0020, +0.0151], user-chrono
    # +0.0007 [-0.0020, +0.0035] over probability.
    fusion_score: str = "log_odds"
    fusion_retrain_min_growth: float = 0.1  # retrain once the log grew by this share since the last run

    random_seed: int = 7

    def with_overrides(self, overrides: dict[str, Any] | None) -> RecommenderConfig:
        """A copy with fields replaced. Dict fields accept dotted keys: ``{"value_weights.like": 2.0}``."""
        if not overrides:
            return self
        names = {f.name for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            name, _, sub = key.partition(".")
            if name not in names:
                raise ValueError(f"unknown recommender setting {key!r}")
            current = changes.get(name, getattr(self, name))
            if sub:
                if not isinstance(current, dict):
                    raise ValueError(f"setting {name!r} is not a mapping; cannot override {key!r}")
                current = {**current, sub: value}
                changes[name] = current
            else:
                expected = type(getattr(self, name))
                if expected is float and isinstance(value, int):
                    value = float(value)
                elif not isinstance(value, expected):
                    raise ValueError(f"setting {name!r} expects {expected.__name__}, got {value!r}")
                changes[name] = value
        return dataclasses.replace(self, **changes)
