"""User × item × context feature rows for the ranker. Every column is scaled to roughly [-1, 1] by
construction, so one feature set serves the hand-set prior and the learned model without a scaler."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..catalog import Catalog, ProfileKeys
from ..config import RecommenderConfig
from ..features.collaborative import RowValues, UserCollaborative
from ..features.context import device_one_hot, time_of_day
from ..features.items import _RATE_NUMERATORS, DEFAULT_GLOBAL_RATES, RATE_NAMES, C, freshness, rate_matrix
from ..features.users import UserState
from ..membership import in_sorted

FEATURE_NAMES: tuple[str, ...] = (
    "bias",
    "sim_short",
    "sim_long",
    "sim_negative",
    "topic_short",
    "topic_long",
    "hashtag",
    "creator",
    "follows_creator",
    "log_exposures",
    "rate_watch",
    "rate_complete",
    "rate_like",
    "rate_share",
    "rate_comment",
    "rate_follow",
    "rate_skip",
    "rate_negative",
    "trend",
    "freshness",
    "log_duration",
    "hour_sin",
    "hour_cos",
    "device_mobile",
    "device_desktop",
    "device_tablet",
    "session_depth",
    "user_activity",
    "user_skip_rate",
    "has_vector",
    "collab",
    "collab_support",
    "log_positives",
    "sequence",
)
F = {name: i for i, name in enumerate(FEATURE_NAMES)}
# How many people engaged positively: reach that counts, unlike exposures (which our own feed hands out).
_POSITIVE_COUNTERS = [C[name] for name in ("likes", "shares", "comments", "saves", "completes")]
RATE_COLUMNS = {task: F[f"rate_{task}"] for task in RATE_NAMES}
_RATE_SLICE = slice(RATE_COLUMNS[RATE_NAMES[0]], RATE_COLUMNS[RATE_NAMES[-1]] + 1)
if list(RATE_COLUMNS.values()) != list(range(_RATE_SLICE.start, _RATE_SLICE.stop)):
    raise AssertionError("rate columns must be contiguous and in RATE_NAMES order")


@dataclass(frozen=True)
class InterestQueries:
    """A user's interest vectors at one moment, each with the similarity a random item would have to it."""

    short: np.ndarray  # (a, d)
    short_weights: np.ndarray
    long: np.ndarray  # (b, d): long-term centroids, mid-term centroids, declared-topic vectors
    long_weights: np.ndarray
    negative: np.ndarray  # (c, d)
    baseline: np.ndarray  # (a + b + c,) cos(query, catalogue mean)

    @functools.cached_property
    def all(self) -> np.ndarray:
        """Every query, stacked (once: the queries are cached per user for a few minutes)."""
        return np.vstack([self.short, self.long, self.negative])

    @property
    def empty(self) -> bool:
        return not (len(self.short) or len(self.long) or len(self.negative))


QUERY_CACHE_SECONDS = 300.0  # centroid weights decay slowly; vectors only change with a version bump


def interest_queries(user: UserState, catalog: Catalog, now: float, declared_weight: float) -> InterestQueries:
    """The user's query vectors, cached until a profile or the catalogue changes (or a few minutes pass)."""
    key = (
        user.short_term.version, user.mid_term.version, user.long_term.version, user.negative.version,
        user.declared_topics, catalog.version, int(now // QUERY_CACHE_SECONDS), declared_weight,
    )
    cached = user.query_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    queries = _interest_queries(user, catalog, now, declared_weight)
    user.query_cache = (key, queries)
    return queries


def _interest_queries(user: UserState, catalog: Catalog, now: float, declared_weight: float) -> InterestQueries:
    dim = catalog.dim or 0
    short, short_w = _as_rows(user.short_term.current(now), dim)
    long_parts = [_as_rows(user.long_term.current(now), dim), _as_rows(user.mid_term.current(now), dim)]
    for topic in user.declared_topics:
        vector = catalog.category_vector(topic)
        if vector is not None:
            long_parts.append((vector[None, :].astype(np.float32), np.array([declared_weight])))
    long = np.vstack([p[0] for p in long_parts]) if long_parts else np.zeros((0, dim), np.float32)
    long_w = np.concatenate([p[1] for p in long_parts]) if long_parts else np.zeros(0)
    negative, negative_w = _as_rows(user.negative.current(now), dim)
    mean = catalog.mean_vector()
    stacked = np.vstack([short, long, negative]) if dim else np.zeros((0, 0), np.float32)
    baseline = stacked @ mean if mean is not None and len(stacked) else np.zeros(len(stacked))
    return InterestQueries(short, short_w, long, long_w, negative, baseline.astype(np.float32))


def _as_rows(pair: tuple[np.ndarray, np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    vectors, weights = pair
    if not len(weights):
        return np.zeros((0, dim), dtype=np.float32), np.zeros(0)
    return vectors.astype(np.float32, copy=False), weights


#: Below this many rows the profile columns are looked up item by item: numpy's fixed cost (~45 us, arrays the
#: size of the catalogue's keys) is about seven one-row lookups, and the event worker builds one row per exposure.
PROFILE_LOOP_BELOW = 8


def _profile_columns(catalog: Catalog, user: UserState, rows: np.ndarray, now: float,
                     loop_below: int = PROFILE_LOOP_BELOW) -> np.ndarray:
    """(len(rows), 6) float64: topic short score, topic long score, mean hashtag score (long + short), creator
    score (long + short), follows the creator, duration. Each key's score is looked up once: over the user's
    profile or over the candidates' distinct keys, whichever is smaller; numpy spreads them over the rows."""
    if len(rows) < loop_below:
        return _profile_columns_by_item(catalog, user, rows, now)
    keys = catalog.profile_keys()
    codes = keys.codes[rows]
    size = len(keys.names)
    short_by = np.zeros(size + 1)  # the extra last slot stays 0: code -1 (no key) reads it
    long_by = np.zeros(size + 1)
    profiles = (user.short_scores, user.long_positive, user.long_negative)
    if sum(len(p) for p in profiles) <= codes.size:
        code_of = keys.code_of
        for profile, target, sign in ((user.short_scores, short_by, 1.0), (user.long_positive, long_by, 1.0),
                                      (user.long_negative, long_by, -1.0)):
            for key, value in profile.items(now):
                code = code_of.get(key)  # type: ignore[call-overload]
                if code is not None:
                    target[code] += sign * value
    else:
        names = keys.names
        for code in np.unique(codes[codes >= 0]).tolist():
            key = names[code]
            short_by[code] = user.short_scores.get(key, now)
            long_by[code] = user.long_score(key, now)
    out = np.zeros((len(rows), 6), dtype=np.float64)
    topic = codes[:, ProfileKeys.TOPIC]
    out[:, 0] = short_by[topic]
    out[:, 1] = long_by[topic]
    n_tags = keys.n_tags[rows]
    if codes.shape[1] > ProfileKeys.FIRST_TAG:
        tags = codes[:, ProfileKeys.FIRST_TAG :]
        total = (long_by[tags] + short_by[tags]).sum(axis=1)
        out[:, 2] = np.divide(total, n_tags, out=np.zeros(len(rows)), where=n_tags > 0)
    creator = codes[:, ProfileKeys.CREATOR]
    out[:, 3] = long_by[creator] + short_by[creator]
    if user.follows:
        followed = [keys.code_of[("creator", c)] for c in user.follows if ("creator", c) in keys.code_of]
        out[:, 4] = in_sorted(creator, np.sort(np.array(followed, dtype=creator.dtype)))
    out[:, 5] = keys.duration[rows]
    return out


def _profile_columns_by_item(catalog: Catalog, user: UserState, rows: np.ndarray, now: float) -> np.ndarray:
    """``_profile_columns`` for a few rows, one item at a time (the same columns)."""
    out = np.zeros((len(rows), 6), dtype=np.float64)
    for i, row in enumerate(rows.tolist()):
        item = catalog.items[row]
        if item.category:
            key = ("topic", item.category)
            out[i, 0] = user.short_scores.get(key, now)
            out[i, 1] = user.long_score(key, now)
        if item.hashtags:
            out[i, 2] = sum(user.long_score(("hashtag", tag), now) + user.short_scores.get(("hashtag", tag), now)
                            for tag in item.hashtags) / len(item.hashtags)
        key = ("creator", item.creator_id)
        out[i, 3] = user.long_score(key, now) + user.short_scores.get(key, now)
        out[i, 4] = item.creator_id in user.follows
        out[i, 5] = item.duration
    return out


def build_features(
    config: RecommenderConfig,
    catalog: Catalog,
    global_rates: dict[str, float],
    user: UserState,
    queries: InterestQueries,
    rows: np.ndarray,
    now: float,
    device: str | None,
    collab: UserCollaborative | None = None,
    sequence: np.ndarray | None = None,
) -> np.ndarray:
    """Feature matrix (len(rows), len(FEATURE_NAMES)) as float32. ``collab``: the user's item-to-item scores;
    ``sequence``: the sequence model's next-item scores for ``rows``."""
    n = len(rows)
    X = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    if n == 0:
        return X
    X[:, F["bias"]] = 1.0

    has_vector = catalog.has_vector[rows]
    X[:, F["has_vector"]] = has_vector
    if catalog.dim and not queries.empty:
        sims = catalog.vectors[rows] @ queries.all.T - queries.baseline[None, :]
        sims[~has_vector] = 0.0
        a, b = len(queries.short), len(queries.long)
        for name, block in (("sim_short", sims[:, :a]), ("sim_long", sims[:, a : a + b]),
                            ("sim_negative", sims[:, a + b :])):
            if block.shape[1]:
                X[:, F[name]] = block.max(axis=1)

    columns = _profile_columns(catalog, user, rows, now)
    X[:, F["topic_short"]] = np.tanh(columns[:, 0] / 2.0)
    X[:, F["topic_long"]] = np.tanh(columns[:, 1] / 3.0)
    X[:, F["hashtag"]] = np.tanh(columns[:, 2] / 3.0)
    X[:, F["creator"]] = np.tanh(columns[:, 3] / 3.0)
    X[:, F["follows_creator"]] = columns[:, 4]
    X[:, F["log_duration"]] = np.log1p(np.maximum(columns[:, 5], 0.0)) / 5.0

    counts = catalog.counts[rows]
    X[:, F["log_exposures"]] = np.log1p(counts[:, C["exposures"]]) / 10.0
    X[:, F["log_positives"]] = np.log1p(counts[:, _POSITIVE_COUNTERS].sum(axis=1)) / 10.0
    if collab is not None:
        X[:, F["collab"]] = collab.score[rows]
        X[:, F["collab_support"]] = np.tanh(collab.support[rows] / 5.0)
    if sequence is not None:
        X[:, F["sequence"]] = sequence
    X[:, _RATE_SLICE] = rate_matrix(counts, global_rates, config.rate_prior_strength)
    X[:, F["trend"]] = catalog.trend[rows]
    X[:, F["freshness"]] = freshness(catalog.uploaded_at[rows], now, config.freshness_half_life)

    hour_sin, hour_cos = time_of_day(now)
    X[:, F["hour_sin"]] = hour_sin
    X[:, F["hour_cos"]] = hour_cos
    for name, value in zip(("device_mobile", "device_desktop", "device_tablet"), device_one_hot(device),
                           strict=True):
        X[:, F[name]] = value
    X[:, F["session_depth"]] = math.log1p(user.session.depth) / 4.0
    X[:, F["user_activity"]] = math.log1p(user.n_events) / 8.0
    X[:, F["user_skip_rate"]] = user.skip_rate()
    return X


def feature_row(
    config: RecommenderConfig,
    catalog: Catalog,
    global_rates: dict[str, float],
    user: UserState,
    queries: InterestQueries,
    row: int,
    now: float,
    device: str | None,
    collab: UserCollaborative | None = None,
    sequence: np.ndarray | None = None,
) -> np.ndarray:
    """``build_features(..., rows=[row])[0]``, value for value (tests.recommender.test_ingest holds them equal),
    for the event worker's one row per exposure: built from Python scalars, with each numpy function applied once
    to a few values, since ``build_features``' forty-odd array operations (each with numpy's fixed cost) took most
    of an event's time. Arithmetic is float64 as there (IEEE: Python's is the same), transcendental functions are
    numpy's own, float32 inputs (similarities, collaborative scores, sequence scores, trend) are taken as they
    are, and the row is rounded to float32 once at the end. A change to a column here belongs in
    ``build_features`` too."""
    rows = np.array([row])
    values = _ZERO_ROW.copy()
    values[F["bias"]] = 1.0
    has_vector = bool(catalog.has_vector[row])
    values[F["has_vector"]] = float(has_vector)
    if catalog.dim and not queries.empty and has_vector:  # without a vector every similarity reads 0
        sims = (catalog.vectors[rows] @ queries.all.T - queries.baseline[None, :])[0].tolist()
        a, b = len(queries.short), len(queries.long)
        for name, block in (("sim_short", sims[:a]), ("sim_long", sims[a : a + b]), ("sim_negative", sims[a + b :])):
            if block:
                values[F[name]] = max(block)

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
    values[F["follows_creator"]] = float(item.creator_id in user.follows)

    counts = catalog.counts[row].tolist()
    exposures = counts[C["exposures"]]
    positives = sum(counts[i] for i in _POSITIVE_COUNTERS)
    age = max(now - float(catalog.uploaded_at[row]), 0.0)
    tanh = np.tanh(np.array([topic_short / 2.0, topic_long / 3.0, hashtag / 3.0, creator / 3.0])).tolist()
    log1p = np.log1p(np.array([max(item.duration, 0.0), exposures, positives])).tolist()
    values[F["topic_short"]], values[F["topic_long"]], values[F["hashtag"]], values[F["creator"]] = tanh
    values[F["log_duration"]] = log1p[0] / 5.0
    values[F["log_exposures"]] = log1p[1] / 10.0
    values[F["log_positives"]] = log1p[2] / 10.0
    values[F["freshness"]] = float(np.exp(-math.log(2.0) * age / config.freshness_half_life))
    if collab is not None:
        values[F["collab"]] = float(_row_value(collab.score, row))
        values[F["collab_support"]] = float(np.tanh(_row_value(collab.support, row) / 5.0))  # float32, as there
    if sequence is not None:
        values[F["sequence"]] = float(sequence[0])
    strength = config.rate_prior_strength
    for column, counters, name in _RATE_TERMS:
        numerator = sum(counts[i] for i in counters)
        if strength <= 0:
            values[column] = numerator / max(exposures, 1.0)
        else:
            prior = global_rates.get(name, DEFAULT_GLOBAL_RATES[name])
            values[column] = (numerator + strength * prior) / (exposures + strength)
    values[F["trend"]] = float(catalog.trend[row])

    hour_sin, hour_cos = time_of_day(now)
    values[F["hour_sin"]] = hour_sin
    values[F["hour_cos"]] = hour_cos
    for name, value in zip(("device_mobile", "device_desktop", "device_tablet"), device_one_hot(device),
                           strict=True):
        values[F[name]] = value
    values[F["session_depth"]] = math.log1p(user.session.depth) / 4.0
    values[F["user_activity"]] = math.log1p(user.n_events) / 8.0
    values[F["user_skip_rate"]] = user.skip_rate()
    return np.array(values, dtype=np.float32)


def _row_value(values: RowValues, row: int) -> np.floating:
    """``values[[row]][0]`` for one row, without the array round trip (the value in its own dtype)."""
    rows = values.rows
    at = int(rows.searchsorted(row)) if len(rows) else 0
    return values.values[at] if at < len(rows) and rows[at] == row else values.values.dtype.type(0)


_ZERO_ROW = [0.0] * len(FEATURE_NAMES)
# Per rate: its feature column, the counters summed into its numerator (rate_matrix's 0/1 matrix), its name.
_RATE_TERMS = [(F[f"rate_{name}"], np.flatnonzero(_RATE_NUMERATORS[:, j]).tolist(), name)
               for j, name in enumerate(RATE_NAMES)]
