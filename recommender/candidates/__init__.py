"""Candidate generation: named sources, each with a quota, merged into one pool.

Every candidate keeps the name of the source that produced it (and of any other source that also found
it), so reasons, inspection and evaluation can attribute results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ann, explore, following, fresh, item_to_item, popular, sequence, sound, trending
from .base import CandidateRequest, Scored

# Priority order: when several sources find the same item, the first one here is its source.
SOURCE_ORDER: tuple[str, ...] = (
    following.NAME,
    ann.SHORT_TERM,
    item_to_item.NAME,
    sequence.NAME,
    ann.LONG_TERM,
    trending.NAME,
    sound.NAME,
    fresh.NAME,
    explore.NAME,
    popular.NAME,
)
_SIMPLE_SOURCES = {
    item_to_item.NAME: item_to_item.generate,
    sequence.NAME: sequence.generate,
    trending.NAME: trending.generate,
    sound.NAME: sound.generate,
    fresh.NAME: fresh.generate,
    following.NAME: following.generate,
    popular.NAME: popular.generate,
    explore.NAME: explore.generate,
}


@dataclass(slots=True)
class Candidate:
    row: int
    item_id: str
    source: str
    source_score: float
    also_from: list[str] = field(default_factory=list)
    ranks: dict[str, int] = field(default_factory=dict)  # position in each source's list that found it


def gather(request: CandidateRequest, quotas: dict[str, int]) -> tuple[list[Candidate], dict[str, list[str]]]:
    """Run every source within its quota; returns merged candidates and per-source item ids (in each source's
    order, ``SOURCE_ORDER`` between sources)."""
    candidates, by_source = gather_scored(request, quotas)
    items = request.state.catalog.items
    return candidates, {name: [items[row].item_id for row, _ in scored] for name, scored in by_source.items()}


def gather_scored(request: CandidateRequest, quotas: dict[str, int]) -> tuple[list[Candidate], dict[str, Scored]]:
    """``gather`` with each source's (row, score) list as it returned it, in ``SOURCE_ORDER``, instead of item
    ids: the request path names only the trace's first few per source (``by_source_trace``)."""
    by_source: dict[str, Scored] = dict(ann.generate(request, quotas))
    for name, generate in _SIMPLE_SOURCES.items():
        if quotas.get(name, 0) > 0:
            by_source[name] = generate(request, quotas[name])
    merged: dict[int, Candidate] = {}
    items = request.state.catalog.items
    ordered: dict[str, Scored] = {}
    for name in SOURCE_ORDER:
        scored = by_source.get(name)
        if scored is None:
            continue
        ordered[name] = scored
        found, new = merged.get, Candidate
        for rank, (row, score) in enumerate(scored):
            existing = found(row)
            if existing is None:  # most rows: one source finds them
                merged[row] = new(row, items[row].item_id, name, score, [], {name: rank})
            elif name not in existing.ranks:
                existing.also_from.append(name)
                existing.ranks[name] = rank
    return list(merged.values()), ordered


def by_source_trace(items: list, by_source: dict[str, Scored], shown: int = 20) -> dict[str, dict]:
    """Per source, how many rows it found and the item ids of its first ``shown`` (``items``: the catalogue's)."""
    return {name: {"count": len(scored), "items": [items[row].item_id for row, _ in scored[:shown]]}
            for name, scored in by_source.items()}


__all__ = ["SOURCE_ORDER", "Candidate", "CandidateRequest", "by_source_trace", "gather", "gather_scored"]
