"""Search ranks word matches first (FTS5 + bm25, or the portable ranking), by meaning after, fused by RRF."""

from __future__ import annotations

import re

from sqlalchemy import text

from app.domain.pages.search_index import (
    KeywordIndex,
    index_for,
    portable_ranking,
    reciprocal_rank_fusion,
    terms_of,
)
from tests.app.helpers import run, services
from tests.app.test_interactions import add_ready

HTML = {"accept": "text/html"}


def found(client, query: str) -> list[str]:  # noqa: ANN001
    return re.findall(r'href="/v/([^"?]+)', client.get("/search", params={"q": query}, headers=HTML).text)


def test_an_exact_hashtag_beats_what_semantic_search_puts_first(client):
    tagged = add_ready(client, creator="cartog", caption="Old city plans", hashtags=["maps"])
    unrelated = add_ready(client, creator="baker", caption="A loaf of bread")

    async def semantic_search(query, limit):  # noqa: ANN001, ANN202 - a stand-in ranking the wrong video first
        return [unrelated, tagged]

    client.app.state.semantic_search = semantic_search
    assert found(client, "#maps") == [tagged, unrelated]  # the word match first, the meaning-only one after
    assert found(client, "maps")[0] == tagged


def test_a_handle_part_finds_the_creator_and_their_videos(client):
    video = add_ready(client, creator="lab.bench.lena", caption="Pipetting, slowly")
    add_ready(client, creator="helena_b", caption="Lenses explained")
    add_ready(client, creator="zed", caption="Nothing to see")
    page = client.get("/search", params={"q": "lena"}, headers=HTML).text
    creators = re.findall(r'class="creator-row" href="/@([^"]+)"', page)
    assert creators[0] == "lab.bench.lena"
    assert found(client, "lena")[0] == video
    assert found(client, "@lab.bench")[0] == video


def test_exact_words_come_before_prefix_matches_and_field_weights_count(client):
    prefix_only = add_ready(client, creator="ann", caption="Mapping the coast with drones")
    in_transcript = add_ready(client, creator="bo", caption="Walk", transcript="we used a map of the park")
    in_caption = add_ready(client, creator="cy", caption="A map of the stars")
    ranked = found(client, "map")
    assert ranked == [in_caption, in_transcript, prefix_only]


def test_the_index_follows_edits_and_deletions_and_heals_itself(client):
    video = add_ready(client, creator="dee", caption="tulips in spring")
    assert found(client, "tulips") == [video]
    db = services(client).db

    async def edit(sql: str) -> None:
        async with db.write() as session:
            await session.execute(text(sql))

    run(client, edit(f"UPDATE videos SET caption = 'daffodils in spring' WHERE id = '{video}'"))
    assert found(client, "tulips") == [] and found(client, "daffodils") == [video]
    run(client, edit("DROP TRIGGER video_search_au"))  # as a table rebuild by a migration would
    run(client, edit(f"UPDATE videos SET caption = 'crocus in spring' WHERE id = '{video}'"))
    index_for(db).ready = False  # a new process: it checks the index again, finds a trigger missing, refills
    assert found(client, "crocus") == [video] and found(client, "daffodils") == []
    run(client, edit(f"DELETE FROM videos WHERE id = '{video}'"))
    assert run(client, _fts_count(db)) == 0


async def _fts_count(db) -> int:  # noqa: ANN001
    async with db.read() as session:
        return (await session.execute(text("SELECT count(*) FROM video_search"))).scalar_one()


def test_the_portable_ranking_orders_like_fts(client):
    prefix_only = add_ready(client, creator="ann", caption="Mapping the coast")
    in_transcript = add_ready(client, creator="bo", caption="Walk", transcript="we used a map of the park")
    in_caption = add_ready(client, creator="cy", caption="A map of the stars", hashtags=["astro"])
    by_handle = add_ready(client, creator="map.maker", caption="hello")
    db = services(client).db
    fts = found(client, "map")
    portable = run(client, portable_ranking(db, terms_of("map")))
    assert portable == fts == [by_handle, in_caption, in_transcript, prefix_only]
    assert run(client, portable_ranking(db, terms_of("astro map"))) == [in_caption]  # every word must match
    assert KeywordIndex(db).fts  # this SQLite has FTS5; PostgreSQL takes the portable path


def test_reciprocal_rank_fusion():
    fused = reciprocal_rank_fusion([(["a", "b", "c"], 1.0), (["x", "c"], 0.5)])
    # c is in both lists and rises to the top; x, found only by the lighter list, comes last.
    assert fused == ["c", "a", "b", "x"]
    assert terms_of("#Maps @lab.bench") == ["maps", "lab", "bench"]
