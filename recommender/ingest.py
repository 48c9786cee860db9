"""Applying one event to the state: relationships, explicit feedback, exposures and training labels,
item counters, and the user's interest profile (short-term vectors and topic scores update immediately)."""

from __future__ import annotations

import numpy as np

from .events import EXPOSURE_EVENTS, engagement_weight
from .features import items as item_features
from .features.users import UserState
from .ranking.features import feature_row, interest_queries
from .state import EngineState
from .types import Event, Item

_UNDO_EVENTS = frozenset({"unlike", "unsave", "unfollow"})


def apply_event(state: EngineState, event: Event, *, log_features: bool = True) -> bool:
    """Apply ``event``; False if it was a duplicate (same event id) and changed nothing."""
    if not state.events.append(event):
        return False
    config = state.config
    ts = event.timestamp
    user = state.user(event.user_id)
    user.n_events += 1
    if user.first_seen_at is None or ts < user.first_seen_at:
        user.first_seen_at = ts
    if event.info and event.info.get("account_created_at") is not None:
        user.account_created_at = float(event.info["account_created_at"])
    if event.event_type == "content_upload":
        return True
    user.touch_session(ts, (event.info or {}).get("session_id"), config.session_gap_seconds)
    user.last_event_at = max(user.last_event_at, ts)

    item = state.catalog.get(event.item_id)
    creator = event.creator_id or (item.creator_id if item else None)
    _apply_relationships(user, event, creator)
    weight = engagement_weight(event, item.duration if item else 0.0, config.event_weights)
    if item is None:
        state.examples.observe(event, None, None)  # still activity: it keeps the user's session open
        # Creator-level events (a follow from a profile page) still tell us about the creator.
        if creator:
            _update_scores(user, [("creator", creator)], weight, ts, undo=event.event_type in _UNDO_EVENTS)
        return True

    row = state.catalog.row_of[item.item_id]
    new_exposure = False
    if event.event_type in EXPOSURE_EVENTS:
        last = user.seen.get(item.item_id)
        new_exposure = last is None or ts - last > config.exposure_gap_seconds
        user.seen[item.item_id] = ts
        if new_exposure:
            user.n_exposures += 1
            user.session.depth += 1
    if event.event_type == "skip":
        user.n_skips += 1
    device = (event.info or {}).get("device")
    state.examples.observe(event, item.duration,
                           (lambda: exposure_features(state, user, row, ts, device)) if log_features else None)
    if event.user_id not in state.suspicious_users:
        item_features.apply_event(state.catalog.counts[row], event, item.duration, new_exposure)
    vector = state.catalog.vectors[row] if state.catalog.has_vector[row] else None
    update_profile(user, item, vector, weight, ts, undo=event.event_type in _UNDO_EVENTS)
    if weight != 0:
        user.record_engagement(item.item_id, weight, ts, config.cf_user_history_items)
    return True


def exposure_features(state: EngineState, user: UserState, row: int, now: float, device: str | None) -> np.ndarray:
    """The ranker's feature row for (user, item) as of now, before this event changes the profile (one row per
    exposure, so ``feature_row``, not ``build_features``' array pipeline)."""
    queries = interest_queries(user, state.catalog, now, state.config.declared_interest_weight)
    return feature_row(state.config, state.catalog, state.global_rates, user, queries, row, now, device,
                       state.collaborative(user, now), state.sequence_scores(user, np.array([row])))


def update_profile(
    user: UserState, item: Item, vector: np.ndarray | None, weight: float, ts: float, *, undo: bool = False
) -> None:
    keys = [("creator", item.creator_id)] + [("hashtag", tag) for tag in item.hashtags]
    if item.category:
        keys.append(("topic", item.category))
    if item.sound_id:
        keys.append(("sound", item.sound_id))  # engagement per sound (recommender.candidates.sound)
    _update_scores(user, keys, weight, ts, undo=undo)
    if undo or weight == 0:
        return
    if weight > 0:
        user.n_positive += 1
        if vector is not None:
            user.short_term.add(vector, weight, ts)
            user.mid_term.add(vector, weight, ts)
    elif vector is not None:
        user.negative.add(vector, -weight, ts)


def _update_scores(user: UserState, keys: list[tuple[str, str]], weight: float, ts: float, *, undo: bool) -> None:
    for key in keys:
        user.short_scores.add(key, weight, ts)
        if undo or weight > 0:
            user.long_positive.add(key, weight, ts)  # an undo subtracts the positive it cancels
        elif weight < 0:
            user.long_negative.add(key, -weight, ts)


def _apply_relationships(user: UserState, event: Event, creator: str | None) -> None:
    kind = event.event_type
    scope = (event.info or {}).get("scope")
    if kind in ("like", "unlike") and event.item_id:  # what reasons may call "you liked"
        liked = user.__dict__.setdefault("liked", {})
        liked.pop(event.item_id, None)
        if kind == "like":
            liked[event.item_id] = event.timestamp
            if len(liked) > 500:
                del liked[next(iter(liked))]
    elif kind == "follow" and creator:
        user.follows.add(creator)
    elif kind == "unfollow" and creator:
        user.follows.discard(creator)
    elif kind == "hide":
        if event.item_id and scope != "creator":
            user.hidden_items.add(event.item_id)
        if creator and (scope == "creator" or event.item_id is None):
            user.hidden_creators.add(creator)
    elif kind == "report" and event.item_id:
        user.reported_items.add(event.item_id)
