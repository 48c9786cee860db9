"""build_feed: candidates → filters → ranking → re-ranking → page with reasons, plus a trace of each stage.

A fallback chain keeps the feed from ever being empty: sources → a deeper popular scan → the same scan
with the "seen" and "served this session" filters relaxed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import partial

import numpy as np

from . import fusion
from .candidates import Candidate, CandidateRequest, by_source_trace, gather_scored
from .candidates import fresh as fresh_source
from .candidates import popular as popular_source
from .config import RecommenderConfig
from .features.collaborative import UserCollaborative
from .features.users import UserState
from .filters import RELAXABLE, EligibleRows, FilterContext, first_failing, known_exclusions
from .ranking.features import InterestQueries, build_features, interest_queries
from .ranking.model import TASKS
from .ranking.value import trend_boosted, value_scores
from .reasons import Reason, explain
from .reasons import context as reasons_context
from .reranking import exploration, random_exposure
from .reranking.diversity import Placed, Ranked, assemble_page
from .state import EngineState
from .types import FeedContext, Recommendation

TRACE_CANDIDATES = 40  # scored candidates kept in the trace


class _Deferred:
    """A trace entry written out when the trace is read (``materialised``), from values the request captured:
    the trace is kept for every feed but read only by inspection, and writing its scored candidates out (a dict
    of rounded numbers each) was a fixed cost of every request."""

    __slots__ = ("build",)

    def __init__(self, build) -> None:  # noqa: ANN001 - a callable returning the entry
        self.build = build


def materialised(trace: dict | None) -> dict | None:
    """``trace`` with its deferred entries written out, in place (a later read gets the same objects)."""
    if trace is not None:
        for key, value in list(trace.items()):
            if isinstance(value, _Deferred):
                trace[key] = value.build()
    return trace


@dataclass
class _Request:
    state: EngineState
    config: RecommenderConfig
    user: UserState
    k: int
    now: float
    context: FeedContext
    rng: np.random.Generator
    collaborative: UserCollaborative | None = None
    random_picks: tuple[random_exposure.RandomPick, ...] = ()


def build_feed(state: EngineState, user_id: str, k: int, context: FeedContext, now: float) -> list[Recommendation]:
    config = state.config.with_overrides(context.overrides)
    user = state.user(user_id)
    user.touch_session(now, context.session_id, config.session_gap_seconds)
    seed = [config.random_seed, zlib.crc32(user_id.encode()), int(now * 1000) % (2**32), len(user.session.served)]
    request = _Request(state, config, user, k, now, context, np.random.default_rng(seed))
    trace: dict = {"at": now, "k": k, "overrides": dict(context.overrides or {}), "cold_user": user.is_cold(config)}

    candidates, queries = _candidates(request, trace)
    if not candidates:
        trace["final"] = []
        state.traces[user_id] = trace
        return []
    ranked, in_cohort = _rank(request, candidates, queries, trace)
    page = _rerank(request, ranked, in_cohort, trace)
    recommendations = _finish(request, page, trace)
    state.traces[user_id] = trace
    return recommendations


def _candidates(request: _Request, trace: dict) -> tuple[list[Candidate], InterestQueries]:
    """Candidates after filters (and fallbacks); also stores the user's collaborative scores on the request."""
    state, config, user = request.state, request.config, request.user
    catalog = state.catalog
    queries = interest_queries(user, catalog, request.now, config.declared_interest_weight)
    filter_ctx = FilterContext(user, catalog, config, request.now, request.context.exclude)
    excluded = known_exclusions(filter_ctx)
    quotas = dict(config.candidate_quotas)
    source_request = CandidateRequest(state, config, user, queries, request.now, excluded, request.rng)
    candidates, by_source = gather_scored(source_request, quotas)
    request.collaborative = source_request.collaborative
    trace["candidates_by_source"] = by_source_trace(catalog.items, by_source)

    kept: list[Candidate] = []
    removed: dict[str, int] = {}
    passes = _passes_all(filter_ctx, excluded)
    for candidate, passed in zip(candidates, _passing(filter_ctx, excluded, candidates), strict=True):
        if passed:
            kept.append(candidate)
            continue
        reason = first_failing(filter_ctx, candidate.row)
        if reason is None:
            kept.append(candidate)
        else:
            removed[reason] = removed.get(reason, 0) + 1
    trace["filtered_out"] = removed
    kept = _with_random_slots(request, filter_ctx, kept, trace)

    # Fallback chain: never serve an empty feed while anything at all may be shown.
    if len(kept) < request.k:
        have = {c.row for c in kept}
        relax: frozenset[str] = frozenset()
        for step in ("popular_scan", *RELAXABLE):
            if step != "popular_scan":
                relax = relax | {step}
            extra = _popular_scan(state, filter_ctx, passes, have, request.k * 3, relax)
            kept += extra
            have |= {c.row for c in extra}
            if extra:
                trace.setdefault("fallbacks", []).append({"step": step, "added": len(extra)})
            if len(kept) >= request.k:
                break
    return kept, queries


def _passes_all(ctx: FilterContext, excluded: set[str]):  # noqa: ANN202 - a predicate over rows
    """``first_failing(ctx, row) is None`` in a few set lookups: ``excluded`` (``known_exclusions``) holds every
    item id the item-id filters remove, so only the creator and muted-word filters are left to check. A row it
    rejects fails some filter (``first_failing`` names which)."""
    items, available, user = ctx.catalog.items, ctx.catalog.available, ctx.user
    creators = {user.user_id, *user.blocked_creators, *user.hidden_creators}
    muted = bool(user.muted_words)

    def passes(row: int) -> bool:
        item = items[row]
        return (bool(available[row]) and item.item_id not in excluded and item.creator_id not in creators
                and not (muted and ctx.muted(row)))

    return passes


def _passing(ctx: FilterContext, excluded: set[str], candidates: list[Candidate]) -> list[bool]:
    """``_passes_all(ctx, excluded)`` for each candidate, in one comprehension with availability read for all
    rows at once (a numpy scalar read and a call per candidate were most of its cost)."""
    if not candidates:
        return []
    items, user = ctx.catalog.items, ctx.user
    creators = {user.user_id, *user.blocked_creators, *user.hidden_creators}
    muted = bool(user.muted_words)
    rows = [c.row for c in candidates]
    return [available and (item := items[row]).item_id not in excluded and item.creator_id not in creators
            and not (muted and ctx.muted(row))
            for row, available in zip(rows, ctx.catalog.available[rows].tolist(), strict=True)]


def _with_random_slots(request: _Request, filter_ctx: FilterContext, kept: list[Candidate],
                       trace: dict) -> list[Candidate]:
    """Draw this page's random-exposure slots (``random_exposure_share``) and make sure their items are scored."""
    catalog = request.state.catalog

    picks = random_exposure.draw(request.k, request.config.random_exposure_share, lambda: EligibleRows(filter_ctx),
                                 request.rng)
    if not picks:
        return kept
    request.random_picks = tuple(picks)
    have = {c.row for c in kept}
    extra = [Candidate(p.row, catalog.items[p.row].item_id, random_exposure.NAME, 0.0) for p in picks
             if p.row not in have]
    trace["random_exposure"] = [{"position": p.position, "item_id": catalog.items[p.row].item_id,
                                 "propensity": p.propensity} for p in picks]
    return kept + extra


def _popular_scan(state, filter_ctx, passes, have: set[int], limit: int, relax: frozenset[str]) -> list[Candidate]:
    catalog = state.catalog
    stale = state.popular_version != catalog.version and len(catalog) <= popular_source.LIST_SIZE
    if stale or state.popular_version < 0 or (not state.popular and len(catalog)):
        # Small catalogues: the list is the whole catalogue, refreshed after any change (cheap at that size);
        # larger ones: the video_stats job keeps the top of it current, off the request path.
        popular_source.refresh(state)
    found: list[Candidate] = []
    for rank, item_id in enumerate(state.popular):
        row = catalog.row_of.get(item_id)
        # A row every filter lets through passes the relaxed ones too; with none relaxed, one ``passes`` rejects
        # fails a filter.
        if row is None or row in have or not (passes(row) or relax and first_failing(filter_ctx, row, relax) is None):
            continue
        found.append(Candidate(row, item_id, popular_source.NAME, 1.0 / (1 + rank),
                               ranks={popular_source.NAME: rank}))
        if len(found) >= limit:
            break
    return found


def _rank(request: _Request, candidates: list[Candidate], queries: InterestQueries,
          trace: dict) -> tuple[list[Ranked], list[bool]]:
    """The entries re-ranking can reach, best first, and per entry whether it is still in its cold-start cohort."""
    state, config, user = request.state, request.config, request.user
    catalog = state.catalog
    rows = np.array([c.row for c in candidates], dtype=np.int64)
    X = build_features(config, catalog, state.global_rates, user, queries, rows, request.now, request.context.device,
                       request.collaborative, state.sequence_scores(user, rows))
    probabilities = state.ranker.active.predict(X)
    value = value_scores(probabilities, config.value_weights)
    fused = state.fusion.active if config.fusion_enabled else None
    if fused is not None:
        # The fusion model learned which candidates get chosen (trend included); the engagement value model's
        # score is added on top, weighted by fusion_value_weight.
        F = fusion.features(X, candidates, catalog, state.activity, user, request.now, rows)
        scores = fusion.served_scores(fused, F, value, config)
        trace["fusion_version"] = state.fusion.active_version
    else:
        scores = trend_boosted(value, catalog.trend[rows], config.trend_boost)
    # Only the entries re-ranking can reach become ``Ranked``: the top of the order (the MMR pool plus a page of
    # reserved slots it skips), the best explore candidate of each topic (the bandit's arms: an arm plays its best
    # member, and arms are met in the order of their best), the first cohort members (the cohort slots take the
    # best ones not reserved, and at most a page of entries is reserved) and the random-exposure picks; and the
    # trace's first entries of the order over every cohort member and explore candidate. The rest could never be
    # placed; building them was most of the cost.
    order = np.argsort(-scores, kind="stable")  # as a stable sort by descending score
    pooled = fresh_source.in_pool(catalog, config, request.now, rows)
    top = order[: config.mmr_pool_size + request.k]
    explore = np.array([c.source == "explore" for c in candidates])
    picks = np.zeros(len(rows), dtype=bool)
    for pick in request.random_picks:  # a pick or two: a comparison each, not np.isin's fixed cost
        picks |= rows == pick.row
    traced = pooled | explore | picks
    traced[top] = True
    reachable = picks
    reachable[order[traced[order]][:TRACE_CANDIDATES]] = True
    reachable[top] = True
    reachable[order[pooled[order]][: config.fresh_slots + request.k]] = True
    if explore.any():
        items = catalog.items
        arms: set[str] = set()
        for i in order[explore[order]].tolist():
            arm = items[candidates[i].row].category or exploration.OTHER
            if arm not in arms:
                arms.add(arm)
                reachable[i] = True
    items, vectors, has_vector = catalog.items, catalog.vectors, catalog.has_vector
    score_list, value_list = scores.tolist(), value.tolist()
    ranked = []
    placed = order[reachable[order]].tolist()
    for i, vector_known in zip(placed, has_vector[rows[placed]].tolist(), strict=True):
        candidate = candidates[i]
        row = candidate.row
        item = items[row]
        ranked.append(Ranked(row, candidate.item_id, item.creator_id, item.category, candidate.source,
                             score_list[i], vectors[row] if vector_known else None, probabilities[i],
                             candidate.also_from, value_list[i]))
    trace["ranker_version"] = state.ranker.active_version
    # What the trace's scored entries read, captured now (a job may change the trends later; the Ranked entries
    # and these arrays belong to this request alone); written out when the trace is read.
    traced, shown = ranked[:TRACE_CANDIDATES], placed[:TRACE_CANDIDATES]
    trace["scored"] = _Deferred(partial(_scored_trace, traced, catalog.trend[rows[shown]], probabilities[shown]))
    return ranked, pooled[placed].tolist()  # nothing changes the cohorts before _rerank reads them


def _scored_trace(traced: list[Ranked], trends: np.ndarray, probabilities: np.ndarray) -> list[dict]:
    return [
        {
            "item_id": r.item_id,
            "source": r.source,
            "also_from": r.also_from,
            "value": round(r.value, 4),
            "trend": round(trend, 4),
            "score": round(r.score, 4),
            "probabilities": p,
        }
        for r, trend, p in zip(traced, trends.tolist(), _as_dicts(probabilities), strict=True)
    ]


def _as_dicts(probabilities: np.ndarray) -> list[dict[str, float]]:
    """Each row of ``probabilities`` as {task: P rounded to 4 places} (one rounding for all rows)."""
    return [dict(zip(TASKS, row, strict=True)) for row in np.round(probabilities, 4).tolist()]


def _rerank(request: _Request, ranked: list[Ranked], in_cohort: list[bool], trace: dict) -> list[Placed]:
    state, config, user, k = request.state, request.config, request.user, request.k
    cold = user.is_cold(config)
    reserved: dict[int, Placed] = {}
    taken: set[int] = set()

    # Random-exposure slots first: their position and item were drawn uniformly, nothing may move them.
    picked = {pick.row for pick in request.random_picks}
    by_row = {r.row: r for r in ranked if r.row in picked} if picked else {}
    for pick in request.random_picks:
        entry = by_row.get(pick.row)
        if entry is not None and pick.position < k:
            reserved[pick.position] = Placed(entry, random_exposure.NAME, pick.propensity)
            taken.add(entry.row)

    # Exploration slots (bandit over topics of the explore candidates), evenly spread over the page.
    slots = min(config.cold_user_explore_slots if cold else config.explore_slots, k // 3)
    # A warm viewer's slots taper with evidence: this page carries them with probability `share` (in the propensity).
    share = 1.0 if cold else exploration.page_share(user.n_positive, config.explore_taper_positives,
                                                      config.explore_min_page_share)
    if slots > 0 and share < 1.0 and request.rng.random() >= share:
        slots = 0
    explorable = [r for r in ranked if r.source == "explore"]
    if slots > 0 and explorable:
        picks, arms = exploration.choose(
            [r.category for r in explorable],
            np.array([r.score for r in explorable]),
            user,
            state.category_rates,
            slots,
            request.now,
            request.rng,
            config.bandit_propensity_samples,
        )
        # Evenly spread when explore_slot_position is 0.5; 1.0 stretches the spread toward the page end (cheaper
        # for ranking quality: the top of the page stays the model's); slots pushed onto one position step up.
        stretch = 2.0 * config.explore_slot_position
        positions: list[int] = []
        for i in range(len(picks)):
            position = min(k - 1, int(stretch * (i + 1) * k / (len(picks) + 1)))
            while position in positions and position > 0:
                position -= 1
            positions.append(position)
        for position, pick in zip(positions, picks, strict=True):
            entry = explorable[pick.index]
            if position in reserved or entry.row in taken:
                continue
            reserved[position] = Placed(entry, "explore", pick.propensity * share)
            taken.add(entry.row)
        trace["exploration"] = {
            "slots": slots,
            "page_share": share,
            "arms": arms,
            "picks": [{"item_id": explorable[p.index].item_id, "arm": p.arm, "propensity": p.propensity}
                      for p in picks],
        }

    # Cold-start cohort slots: the best-scoring new upload still inside its guaranteed exposure cohort.
    cohort = [r for r, pooled in zip(ranked, in_cohort, strict=True) if pooled and r.row not in taken]
    position = min(k - 1, int(config.cold_start_slot_position * k))
    for entry in cohort[: config.fresh_slots]:
        while position in reserved and position < k - 1:
            position += 1
        if position in reserved:
            break
        reserved[position] = Placed(entry, "cold_start")
        taken.add(entry.row)
    trace["cold_start_slots"] = [p.entry.item_id for p in reserved.values() if p.kind == "cold_start"]

    remaining = [r for r in ranked if r.row not in taken][: config.mmr_pool_size]
    mmr_lambda = config.cold_user_mmr_lambda if cold else config.mmr_lambda
    page, decisions = assemble_page(
        remaining, reserved, k, mmr_lambda, config.max_topic_share, user.session.last_served_creator
    )
    trace["reranking"] = decisions
    return page


def _finish(request: _Request, page: list[Placed], trace: dict) -> list[Recommendation]:
    state, user = request.state, request.user
    catalog = state.catalog
    recommendations = []
    evidence: list[list[dict]] = []  # per card, what each reason refers to (reasons.Reason.as_trace)
    why = reasons_context(state, user, request.now)
    probabilities = _as_dicts(np.array([placed.entry.probabilities for placed in page])) if page else []
    for position, placed in enumerate(page):
        entry = placed.entry
        item = catalog.items[entry.row]
        source = random_exposure.NAME if placed.kind == random_exposure.NAME else entry.source
        reasons = explain(state, item, source, entry.also_from, user, float(catalog.trend[entry.row]), request.now,
                          why)
        texts = [r.text for r in reasons]
        if placed.kind == "explore" and "Something new to explore" not in texts:
            reasons.insert(0, Reason("Something new to explore", "explore", "explore"))
        if placed.kind == "cold_start" and source != "fresh":
            reasons.insert(1, Reason("A new upload looking for its first viewers", "fresh", "cold_start"))
        reasons = reasons[:3]
        evidence.append([r.as_trace() for r in reasons])
        recommendations.append(
            Recommendation(
                item_id=entry.item_id,
                score=round(entry.score, 6),
                source=source,
                reasons=[r.text for r in reasons],
                probabilities=probabilities[position],
                propensity=placed.propensity,
                position=position,
            )
        )
    user.session.served.update(r.item_id for r in recommendations)
    if page:
        user.session.last_served_creator = page[-1].entry.creator_id
    trace["final"] = [
        {"position": r.position, "item_id": r.item_id, "source": r.source, "score": r.score, "reasons": r.reasons,
         "evidence": why, "placed": placed.kind, "also_from": list(placed.entry.also_from),
         "propensity": r.propensity}
        for r, why, placed in zip(recommendations, evidence, page, strict=True)
    ]
    return recommendations
