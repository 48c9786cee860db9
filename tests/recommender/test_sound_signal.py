"""The sound signal: engagement per sound brings other videos with that sound; a trending sound is offered to
everyone; the reason says so; a sound nobody engaged with and that does not trend offers nothing."""

from __future__ import annotations

import dataclasses

import numpy as np

from recommender import Item, Recommender
from recommender.candidates import CandidateRequest, gather
from recommender.ranking.features import interest_queries

from .conftest import NOW, ev


def _by_source(rec: Recommender, user_id: str, now: float = NOW) -> dict[str, list[str]]:
    state = rec._state
    user = state.user(user_id)
    queries = interest_queries(user, state.catalog, now, state.config.declared_interest_weight)
    request = CandidateRequest(state, state.config, user, queries, now, set(), np.random.default_rng(0))
    return gather(request, state.config.candidate_quotas)[1]


def _with_sounds(rec: Recommender, items: list[Item], sounds: dict[str, str]) -> None:
    rec.upsert_items(dataclasses.replace(item, sound_id=sounds.get(item.item_id)) for item in items)


def test_videos_sharing_a_sound_the_user_enjoys_become_candidates_with_a_sound_reason(rec, items, clock):
    # One tune used by videos across topics (a dance sound under cats, cars and music clips).
    tune = {"cats-1": "s_tune", "cats-2": "s_tune", "cars-3": "s_tune", "music-4": "s_tune", "cooking-5": "s_tune"}
    _with_sounds(rec, items, {**tune, "cars-9": "s_other"})
    for video in ("cats-1", "cats-2"):
        rec.record_event(ev("fan", "like", NOW, video))
        rec.record_event(ev("fan", "complete_view", NOW, video, watch_duration=20.0))
    offered = _by_source(rec, "fan", NOW + 60)["sound"]
    assert {"cars-3", "music-4", "cooking-5"} <= set(offered)
    assert "cars-9" not in offered  # a sound they never engaged with, not trending
    clock.now = NOW + 60
    feed = rec.recommend("fan", k=60)
    by_id = {r.item_id: r for r in feed}
    assert any("Uses a sound you've been enjoying" in r.reasons for r in feed if r.item_id in tune)
    assert not any("sound" in reason for r in feed if r.item_id not in tune for reason in r.reasons)
    assert by_id  # the feed is not empty


def test_a_trending_sound_is_offered_to_a_new_user(rec, items):
    _with_sounds(rec, items, {"cats-7": "s_hot", "cars-7": "s_hot", "music-7": "s_hot"})
    rec._state.trending = ["cats-7", "cars-7"]
    rec._state.catalog.trend[rec._state.catalog.row_of["cats-7"]] = 2.0
    rec._state.catalog.trend[rec._state.catalog.row_of["cars-7"]] = 1.0
    offered = _by_source(rec, "newcomer")["sound"]
    assert set(offered) == {"cats-7", "cars-7", "music-7"}  # music-7 rides its sound's trend


def test_without_sounds_the_source_is_empty(rec):
    rec.record_event(ev("u", "like", NOW, "cats-1"))
    assert _by_source(rec, "u", NOW + 1)["sound"] == []
