"""Off-policy estimates from the random-exposure slice (``recommender.reranking.random_exposure``).

The slice shows items uniformly at random and logs each impression's propensity ``p`` (the chance the logging
policy put that item in that slot). A target policy ``pi`` that would put item ``a`` in a slot with probability
``pi(a | context)`` (``1/page_size`` for each item of its page) has, on the logged contexts, mean reward

    V(pi) ~ sum_i w_i r_i / sum_i w_i,   w_i = pi(a_i | x_i) / p_i

(the self-normalised inverse propensity estimate, SNIPS: Swaminathan & Joachims 2015). Its interval is a
bootstrap over ``groups`` (users), since one user's impressions are not independent.
"""

from __future__ import annotations

import numpy as np

from .bootstrap import bootstrap_indices, interval

__all__ = ["snips"]


def snips(
    rewards: np.ndarray,
    target_prob: np.ndarray,
    propensity: np.ndarray,
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """``{"value", "ci", "n", "effective_n"}``: the SNIPS estimate of the target's mean reward; ``effective_n`` is
    Kish's effective sample size of the weights (how many logged impressions the estimate really rests on)."""
    rewards = np.asarray(rewards, dtype=float)
    propensity = np.asarray(propensity, dtype=float)
    if np.any(~(propensity > 0)):
        raise ValueError("every logged propensity must be positive")
    weights = np.asarray(target_prob, dtype=float) / propensity
    if np.any(~np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("propensities must be positive and target probabilities non-negative")
    total = weights.sum()
    out: dict = {"n": int(rewards.size), "effective_n": float(total**2 / np.sum(weights**2)) if total > 0 else 0.0}
    if total <= 0:
        return {**out, "value": float("nan"), "ci": [float("nan"), float("nan")]}
    out["value"] = float(np.sum(weights * rewards) / total)
    keys = np.arange(rewards.size) if groups is None else np.asarray(groups)
    unique, member = np.unique(keys, return_inverse=True)
    num = np.bincount(member, weights=weights * rewards, minlength=unique.size)
    den = np.bincount(member, weights=weights, minlength=unique.size)
    idx = bootstrap_indices(unique.size, n_boot, seed)
    boot_den = den[idx].sum(axis=1)
    ok = boot_den > 0
    samples = num[idx].sum(axis=1)[ok] / boot_den[ok]
    out["ci"] = list(interval(samples, alpha))
    return out
