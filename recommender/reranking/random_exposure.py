"""The random-exposure slice: a small configurable share of impressions is served uniformly at random from the
eligible pool (everything the filters allow this user now), each logged with its propensity, KuaiRand-style.

Those impressions are an unbiased sample of how users react to the catalogue, so any policy's value can be
estimated off-policy from the logs by inverse propensity weighting (see ``recommender.evaluation.off_policy``).
Each page position independently becomes a random slot with probability ``share``; the item in a random slot is
drawn uniformly from the pool (several slots on one page: without replacement, which keeps every slot's marginal
at ``1 / len(pool)``), and that is the propensity logged with the impression. The page's hard creator rule
still holds: a random slot waits for the next position when the item before it is by the same creator, and is
dropped if that happens at the page's end (about 1 in 60 random slots on the test catalogue of 24 creators).
The pool is never listed: its size is the available items less those the user's filters remove (counted from
the user's own lists), and its items are drawn by rejection from the available rows (see ``pipeline``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

NAME = "random"


@dataclass(frozen=True)
class RandomPick:
    position: int
    row: int
    propensity: float  # P(this item in this slot | the slot is random) = 1 / pool size


class EligiblePool(Protocol):
    """What the filters allow this user now: its size and uniform draws from it (without replacement)."""

    size: int

    def sample(self, count: int, rng: np.random.Generator) -> np.ndarray: ...


def draw(k: int, share: float, eligible: Callable[[], EligiblePool], rng: np.random.Generator) -> list[RandomPick]:
    """The random slots of a page of ``k``. ``eligible`` is only called when a slot comes up."""
    if share <= 0.0 or k <= 0:
        return []
    positions = np.flatnonzero(rng.random(k) < share)
    if positions.size == 0:
        return []
    pool = eligible()
    if pool.size == 0:
        return []
    rows = pool.sample(min(positions.size, pool.size), rng)
    return [RandomPick(int(p), int(r), 1.0 / pool.size) for p, r in zip(positions, rows, strict=False)]
