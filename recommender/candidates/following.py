"""``following``: recent uploads from creators the user follows, newest first."""

from __future__ import annotations

from .base import CandidateRequest, Scored

NAME = "following"


def generate(request: CandidateRequest, limit: int) -> Scored:
    catalog = request.state.catalog
    since = request.now - request.config.following_window_seconds
    rows = [
        catalog.row_of[item_id]
        for creator in request.user.follows
        for item_id in catalog.by_creator.get(creator, ())
    ]
    recent = sorted((row for row in rows if catalog.uploaded_at[row] >= since), key=lambda r: -catalog.uploaded_at[r])
    return request.take(((row, float(catalog.uploaded_at[row])) for row in recent), limit)
