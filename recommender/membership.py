"""Membership in a sorted array, without np.isin's fixed cost at the sizes a feed meets."""

from __future__ import annotations

import numpy as np

#: Up to this many values, membership in a sorted array is a binary search per value: np.isin's fixed cost (~50 us
#: a call) is several times that work at a few hundred values, and it still loses at ten thousand; at the
#: largest catalogues' arrays its linear methods win.
SEARCH_BELOW = 16_384


def in_sorted(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``np.isin(values, members)`` for ``members`` sorted (ascending)."""
    if len(values) > SEARCH_BELOW:
        return np.isin(values, members)
    if not len(members):
        return np.zeros(len(values), dtype=bool)
    at = np.searchsorted(members, values)
    np.minimum(at, len(members) - 1, out=at)
    return members[at] == values
