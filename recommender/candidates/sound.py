"""``sound``: videos that use a sound the user engages with, or a sound that is trending (seed 002 §3.2:
popular audio tracks and their usage frequency).

A sound's score for this user is their engagement with it (``("sound", id)`` in their interest scores, fed by
every event on a video that uses it) plus ``SOUND_TREND_WEIGHT`` times the sound's trend: the summed trend of
its videos among the trending list (from the trends job), so a track spreading across many videos rises even
when each video alone is small. Its videos are offered best sound first, newest first within a sound. Work per
request is bounded by the user's own sounds and the trending list, not the catalogue.
"""

from __future__ import annotations

from collections import defaultdict

from .base import CandidateRequest, Scored

NAME = "sound"
SOUND_TREND_WEIGHT = 1.0
MIN_SCORE = 0.05  # below this a sound is neither liked nor trending: offer nothing from it
MAX_USER_SOUNDS = 20
MAX_TRENDING_ITEMS = 500


def sound_trends(request: CandidateRequest) -> dict[str, float]:
    """Trend per sound: the summed trend of its videos on the trending list."""
    catalog = request.state.catalog
    trends: dict[str, float] = defaultdict(float)
    for item_id in request.state.trending[:MAX_TRENDING_ITEMS]:
        row = catalog.row_of.get(item_id)
        if row is not None and catalog.items[row].sound_id:
            trends[catalog.items[row].sound_id] += max(0.0, float(catalog.trend[row]))
    return trends


def sound_scores(request: CandidateRequest) -> dict[str, float]:
    user, now = request.user, request.now
    scores = {sound_id: SOUND_TREND_WEIGHT * trend for sound_id, trend in sound_trends(request).items()}
    for sound_id, _ in user.long_positive.top(now, MAX_USER_SOUNDS, kind="sound"):
        scores[sound_id] = scores.get(sound_id, 0.0) + user.long_score(("sound", sound_id), now) \
            + user.short_scores.get(("sound", sound_id), now)
    return scores


def generate(request: CandidateRequest, limit: int) -> Scored:
    catalog = request.state.catalog
    candidates = []
    for score, sound_id in sorted(((s, k) for k, s in sound_scores(request).items()), reverse=True):
        if score < MIN_SCORE:
            break
        rows = sorted((catalog.row_of[i] for i in catalog.by_sound.get(sound_id, ()) if i in catalog.row_of),
                      key=lambda row: -catalog.uploaded_at[row])
        candidates.extend((row, score) for row in rows)
        if len(candidates) >= limit * 3:
            break
    return request.take(candidates, limit)
