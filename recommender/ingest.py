"""Applying one event to the state: relationships, explicit feedback, exposures and training labels,
item counters, and the user's interest profile (short-term vectors and topic scores update immediately)."""

from __future__ import annotations

import math

import numpy as np

from .events import EXPOSURE_EVENTS, engagement_weight
from .features import items as item_features
from .features.collaborative import RowValues
from .features.context import device_one_hot, time_of_day
from .features.items import DEFAULT_GLOBAL_RATES, C
from .features.users import UserState
from .ranking.features import FEATURE_NAMES, interest_queries
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
    """The ranker's feature row for (user, item) as of now, before this event changes the profile.

    The same row ``build_features`` gives for ``rows=[row]``, value for value (tests.recommender.test_ingest
    holds them equal): built from Python scalars, with each numpy function applied once to a few values, since
    the event worker builds one row per exposure and ``build_features``' forty-odd array operations (each with
    numpy's fixed cost) took most of an event's time. Arithmetic is float64 as there (IEEE: Python's is the
    same), transcendental functions are numpy's own, float32 inputs (similarities, collaborative scores,
    sequence scores, trend) are taken as they are, and the row is rounded to float32 once at the end."""
    config, catalog = state.config, state.catalog
    queries = interest_queries(user, catalog, now, config.declared_interest_weight)
    rows = np.array([row])
    collab = state.collaborative(user, now)
    sequence = state.sequence_scores(user, rows)
    values = _ZERO_ROW.copy()
    values[_F["bias"]] = 1.0
    has_vector = bool(catalog.has_vector[row])
    values[_F["has_vector"]] = float(has_vector)
    if catalog.dim and not queries.empty and has_vector:  # without a vector every similarity reads 0
        sims = (catalog.vectors[rows] @ queries.all.T - queries.baseline[None, :])[0].tolist()
        a, b = len(queries.short), len(queries.long)
        for name, block in (("sim_short", sims[:a]), ("sim_long", sims[a : a + b]), ("sim_negative", sims[a + b :])):
            if block:
                values[_F[name]] = max(block)

    item = catalog.items[row]
    topic_short = topic_long = hashtag = 0.0
    if item.category:
        key = ("topic", item.category)
        topic_short = user.short_scores.get(key, now)
        topic_long = user.long_score(key, now)
    if item.hashtags:
        hashtag = sum(user.long_score(("hashtag", tag), now) + user.short_scores.get(("hashtag", tag), now)
                      for tag in item.hashtags) / len(item.hashtags)
    key = ("creator", item.creator_id)
    creator = user.long_score(key, now) + user.short_scores.get(key, now)
    values[_F["follows_creator"]] = float(item.creator_id in user.follows)

    counts = catalog.counts[row].tolist()
    exposures = counts[C["exposures"]]
    positives = sum(counts[i] for i in _POSITIVE_COUNTERS)
    age = max(now - float(catalog.uploaded_at[row]), 0.0)
    tanh = np.tanh(np.array([topic_short / 2.0, topic_long / 3.0, hashtag / 3.0, creator / 3.0])).tolist()
    log1p = np.log1p(np.array([max(item.duration, 0.0), exposures, positives])).tolist()
    values[_F["topic_short"]], values[_F["topic_long"]], values[_F["hashtag"]], values[_F["creator"]] = tanh
    values[_F["log_duration"]] = log1p[0] / 5.0
    values[_F["log_exposures"]] = log1p[1] / 10.0
    values[_F["log_positives"]] = log1p[2] / 10.0
    values[_F["freshness"]] = float(np.exp(-math.log(2.0) * age / config.freshness_half_life))
    if collab is not None:
        values[_F["collab"]] = float(_row_value(collab.score, row))
        values[_F["collab_support"]] = float(np.tanh(_row_value(collab.support, row) / 5.0))  # float32, as there
    if sequence is not None:
        values[_F["sequence"]] = float(sequence[0])
    strength = config.rate_prior_strength
    for column, counters, name in _RATE_TERMS:
        numerator = sum(counts[i] for i in counters)
        if strength <= 0:
            values[column] = numerator / max(exposures, 1.0)
        else:
            prior = state.global_rates.get(name, DEFAULT_GLOBAL_RATES[name])
            values[column] = (numerator + strength * prior) / (exposures + strength)
    values[_F["trend"]] = float(catalog.trend[row])

    hour_sin, hour_cos = time_of_day(now)
    values[_F["hour_sin"]] = hour_sin
    values[_F["hour_cos"]] = hour_cos
    for name, value in zip(("device_mobile", "device_desktop", "device_tablet"), device_one_hot(device),
                           strict=True):
        values[_F[name]] = value
    values[_F["session_depth"]] = math.log1p(user.session.depth) / 4.0
    values[_F["user_activity"]] = math.log1p(user.n_events) / 8.0
    values[_F["user_skip_rate"]] = user.skip_rate()
    return np.array(values, dtype=np.float32)


def _row_value(values: RowValues, row: int) -> np.floating:
    """``values[[row]][0]`` for one row, without the array round trip (the value in its own dtype)."""
    rows = values.rows
    at = int(rows.searchsorted(row)) if len(rows) else 0
    return values.values[at] if at < len(rows) and rows[at] == row else values.values.dtype.type(0)


_F = {name: i for i, name in enumerate(FEATURE_NAMES)}
_ZERO_ROW = [0.0] * len(FEATURE_NAMES)
_POSITIVE_COUNTERS = [C[name] for name in ("likes", "shares", "comments", "saves", "completes")]
# Per rate: its feature column, the counters summed into its numerator (rate_matrix's 0/1 matrix), its name.
_RATE_TERMS = [(_F[f"rate_{name}"], np.flatnonzero(item_features._RATE_NUMERATORS[:, j]).tolist(), name)
               for j, name in enumerate(item_features.RATE_NAMES)]


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
