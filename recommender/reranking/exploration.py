"""Exploration slots chosen by Thompson sampling over topics, with logged propensities.

Each topic among the exploration candidates is an arm with a Beta posterior built from the catalogue's
rate for that topic (a weak prior) and this user's own positive / negative history with it. The chosen
arm is the argmax of one posterior draw; its propensity P(arm chosen) is estimated from many draws so
that exposure logs can be used for off-policy evaluation.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..features.users import UserState

OTHER = "(no topic)"
PRIOR_EXPOSURES = 4.0
DEFAULT_TOPIC_RATE = 0.3


def page_share(n_positive: int, taper_positives: float, min_share: float) -> float:
    """P(a warm viewer's page carries its exploration slots): 1 up to ``taper_positives`` positive events, then
    ``taper_positives / n_positive``, never below ``min_share`` (exploration never stops). ``taper_positives`` <= 0:
    every page."""
    if taper_positives <= 0 or n_positive <= taper_positives:
        return 1.0
    return min(1.0, max(min_share, taper_positives / n_positive))


@dataclass(frozen=True)
class ExplorePick:
    index: int  # index into the candidates passed in
    arm: str
    propensity: float


def choose(
    categories: list[str | None],
    scores: np.ndarray,
    user: UserState,
    topic_rates: dict[str, float],
    slots: int,
    now: float,
    rng: np.random.Generator,
    samples: int,
) -> tuple[list[ExplorePick], list[dict]]:
    """Pick up to ``slots`` candidates from distinct arms; returns the picks and the arm posteriors."""
    arms: dict[str, list[int]] = {}
    for index, category in enumerate(categories):
        arms.setdefault(category or OTHER, []).append(index)
    names = list(arms)
    alpha = np.empty(len(names))
    beta = np.empty(len(names))
    for i, name in enumerate(names):
        rate = topic_rates.get(name, DEFAULT_TOPIC_RATE)
        alpha[i] = 1.0 + PRIOR_EXPOSURES * rate + max(user.long_positive.get(("topic", name), now), 0.0)
        beta[i] = 1.0 + PRIOR_EXPOSURES * (1 - rate) + max(user.long_negative.get(("topic", name), now), 0.0)
    posteriors = [{"arm": n, "alpha": float(a), "beta": float(b)} for n, a, b in zip(names, alpha, beta, strict=True)]

    picks: list[ExplorePick] = []
    open_arms = list(range(len(names)))
    for _ in range(min(slots, len(names))):
        a, b = alpha[open_arms], beta[open_arms]
        chosen = int(np.argmax(rng.beta(a, b)))  # the Thompson draw
        # The estimate counts the choosing draw too, so a chosen arm's propensity is never 0.
        wins = win_counts(tuple(a.tolist()), tuple(b.tolist()), samples)[chosen] + 1
        arm = open_arms[chosen]
        members = arms[names[arm]]
        best = max(members, key=lambda index: scores[index])
        picks.append(ExplorePick(best, names[arm], float(wins / (samples + 1))))
        open_arms.pop(chosen)
    return picks, posteriors


@lru_cache(maxsize=512)
def win_counts(alpha: tuple[float, ...], beta: tuple[float, ...], samples: int) -> tuple[int, ...]:
    """Of ``samples`` joint posterior draws, how often each arm's is the largest. A pure function of the posteriors
    (its generator is seeded by them), so it is computed once per distinct posterior: every cold viewer has the same
    ones until the topic rates move, where the draws were most of a cold feed's exploration cost."""
    rng = np.random.default_rng(zlib.crc32(np.array(alpha + beta).tobytes()))
    draws = rng.beta(np.array(alpha)[:, None], np.array(beta)[:, None], size=(len(alpha), samples))
    return tuple(np.bincount(np.argmax(draws, axis=0), minlength=len(alpha)).tolist())
