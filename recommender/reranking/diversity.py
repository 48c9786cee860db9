"""Page assembly: MMR diversity over content vectors under two hard rules and one soft one.

* never two videos in a row from the same creator (hard; across pages too unless the page would be empty);
* at most ``max_topic_share`` of the page from one topic (relaxed only when nothing else is left);
* reserved slots (exploration, cold-start cohort) are placed at their positions when the rules allow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(eq=False, slots=True)
class Ranked:
    row: int
    item_id: str
    creator_id: str
    category: str | None
    source: str
    score: float  # value score after the trend boost: what the page is ordered by
    vector: np.ndarray | None
    probabilities: np.ndarray | None = None  # P(outcome) in ranking.model.TASKS order
    also_from: list[str] = field(default_factory=list)
    value: float = 0.0  # Σ w·P(action) before the trend boost


@dataclass(eq=False, slots=True)
class Placed:
    entry: Ranked
    kind: str  # "ranked", "explore" or "cold_start"
    propensity: float | None = None


class _Similarity:
    """Similarity of a placed entry to every ranked entry: cosine when both have vectors, else same topic."""

    def __init__(self, ranked: list[Ranked]) -> None:
        with_vector = [i for i, r in enumerate(ranked) if r.vector is not None]
        self.has_vector = np.zeros(len(ranked), dtype=bool)
        self.has_vector[with_vector] = True
        dim = len(ranked[with_vector[0]].vector) if with_vector else 0
        self.vectors = np.zeros((len(ranked), dim), dtype=np.float32)
        if with_vector:
            # one concatenate of the equal-length vectors: np.stack without its per-array Python calls
            self.vectors[with_vector] = np.concatenate([ranked[i].vector for i in with_vector]).reshape(
                len(with_vector), dim)
        # topics as small integer codes: comparing them is one integer pass, not a string comparison per entry
        self.topic_code: dict[str, int] = {}
        self.topics = np.array([self.topic_code.setdefault(r.category or "", len(self.topic_code)) for r in ranked],
                               dtype=np.int64)

    def to(self, entry: Ranked) -> np.ndarray:
        same_topic = (self.topics == self.topic_code.get(entry.category, -1)).astype(np.float64) \
            if entry.category else None
        sims = np.zeros(len(self.has_vector)) if same_topic is None else same_topic
        if entry.vector is not None and self.vectors.shape[1] == len(entry.vector):
            sims = np.where(self.has_vector, self.vectors @ entry.vector, sims)
        return sims


def assemble_page(
    ranked: list[Ranked],
    reserved: dict[int, Placed],
    k: int,
    mmr_lambda: float,
    max_topic_share: float,
    previous_creator: str | None,
) -> tuple[list[Placed], list[dict]]:
    """``ranked`` best first (reserved entries must not be in it). Returns the page and its decisions."""
    topic_cap = max(1, math.floor(max_topic_share * k))
    scores = np.array([r.score for r in ranked], dtype=np.float64)
    relevance = (scores - scores.min()) / (np.ptp(scores) + 1e-9) if len(scores) else scores
    max_sim = np.zeros(len(ranked))
    similarity = _Similarity(ranked)
    used = np.zeros(len(ranked), dtype=bool)
    topic_counts: dict[str, int] = {}
    page: list[Placed] = []
    decisions: list[dict] = []
    waiting = sorted(reserved.items())  # (slot position, entry) not placed yet
    rule = {"previous_creator": previous_creator}

    def creator_ok(entry: Ranked) -> bool:
        previous = page[-1].entry.creator_id if page else rule["previous_creator"]
        return entry.creator_id != previous

    def topic_ok(entry: Ranked) -> bool:
        return entry.category is None or topic_counts.get(entry.category, 0) < topic_cap

    def ranked_topic_ok(entry: Ranked) -> bool:
        # Reserved entries still waiting hold their topic's room, so a later slot is not squeezed out by the cap.
        held = sum(1 for _, placed in waiting if placed.entry.category == entry.category) if entry.category else 0
        return entry.category is None or topic_counts.get(entry.category, 0) + held < topic_cap

    def any_topic(entry: Ranked) -> bool:
        return True

    def place(placed: Placed, decision: dict) -> None:
        page.append(placed)
        entry = placed.entry
        if entry.category is not None:
            topic_counts[entry.category] = topic_counts.get(entry.category, 0) + 1
        np.maximum(max_sim, similarity.to(entry), out=max_sim)
        decisions.append({"position": len(page) - 1, "item_id": entry.item_id, **decision})

    def place_reserved(candidates: list[tuple[int, Placed]], check_topic: bool) -> bool:
        for slot in candidates:
            placed = slot[1]
            if creator_ok(placed.entry) and (not check_topic or topic_ok(placed.entry)):
                waiting.remove(slot)
                place(placed, {"kind": placed.kind, "propensity": placed.propensity})
                return True
        return False

    for position in range(k):
        # A reserved entry whose slot has come (or passed) goes first, if the rules allow it here.
        if place_reserved([slot for slot in waiting if slot[0] <= position], check_topic=True):
            continue
        choice, skipped = _mmr_choice(ranked, used, relevance, max_sim, mmr_lambda, creator_ok, ranked_topic_ok)
        relaxed = None
        if choice is None:  # nothing passes the topic cap: relax it rather than end the page
            choice, _ = _mmr_choice(ranked, used, relevance, max_sim, mmr_lambda, creator_ok, any_topic)
            relaxed = "topic cap" if choice is not None else None
        if choice is None and not page and previous_creator is not None:
            # Only the previous page's last creator is left: a page of one beats an empty feed.
            rule["previous_creator"] = None
            choice, _ = _mmr_choice(ranked, used, relevance, max_sim, mmr_lambda, creator_ok, any_topic)
            relaxed = "creator of the previous page" if choice is not None else None
        if choice is None:
            if place_reserved(list(waiting), check_topic=False):
                continue
            decisions.append({"position": position, "stopped": "no candidate satisfies the creator rule"})
            break
        used[choice] = True
        decision = {
            "kind": "ranked",
            "relevance": round(float(relevance[choice]), 4),
            "diversity_penalty": round(float(max_sim[choice]), 4),
        }
        if skipped:
            decision["passed_over"] = skipped
        if relaxed:
            decision["relaxed"] = relaxed
        place(Placed(ranked[choice], "ranked"), decision)
    return page, decisions


def _mmr_choice(ranked, used, relevance, max_sim, mmr_lambda, creator_ok, topic_ok):
    """Best MMR candidate that passes the rules; also names better-relevance items it passed over and why."""
    if not len(ranked):
        return None, []
    mmr = mmr_lambda * relevance - (1.0 - mmr_lambda) * max_sim
    mmr = np.where(used, -np.inf, mmr)
    skipped: list[dict] = []
    # Usually the best MMR entry passes the rules: without NaNs, argmax is the stable sort's first entry.
    best = int(np.argmax(mmr))
    if np.isfinite(mmr[best]) and creator_ok(ranked[best]) and topic_ok(ranked[best]):
        top_relevance = int(np.argmax(np.where(used, -np.inf, relevance)))
        if top_relevance != best:
            skipped.append({"item_id": ranked[top_relevance].item_id, "why": "diversity (too similar)"})
        return best, skipped
    for index in np.argsort(-mmr, kind="stable"):
        if not np.isfinite(mmr[index]):
            break
        entry = ranked[index]
        if not creator_ok(entry):
            reason = "same creator as the previous video"
        elif not topic_ok(entry):
            reason = "topic cap reached"
        else:
            top_relevance = int(np.argmax(np.where(used, -np.inf, relevance)))
            if top_relevance != index and not any(s["item_id"] == ranked[top_relevance].item_id for s in skipped):
                skipped.append({"item_id": ranked[top_relevance].item_id, "why": "diversity (too similar)"})
            return int(index), skipped[:5]
        if len(skipped) < 5:
            skipped.append({"item_id": entry.item_id, "why": reason})
    return None, skipped[:5]
