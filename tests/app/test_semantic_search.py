"""Search finds videos by meaning, through the same text model that embedded them (no shared words needed)."""

import time

import pytest

from app.adapters.vector_store import VideoVectors
from tests.app.helpers import add_video, run, services

pytestmark = pytest.mark.slow


def test_search_finds_a_video_by_meaning_not_only_by_words(client):
    svc = services(client)
    encoder = svc.models.sentence()
    captions = {
        "stars": "Hubble deep field: every dot is a distant island of stars",
        "coffee": "Morning espresso with a swirl of crema",
    }
    ids = {}
    for key, caption in captions.items():
        video_id = add_video(client, caption=caption, creator=f"maker_{key}")
        vector = encoder.embed_texts([caption])[0]
        svc.vectors.upsert_video(VideoVectors(video_id, f"u_maker_{key}", key, [], caption, 10.0, time.time(),
                                              vector, encoder.model_id))
        ids[key] = video_id

    found = run(client, client.app.state.semantic_search("galaxies in the universe", 5))
    assert found and found[0] == ids["stars"]
    assert ids["coffee"] not in found

    page = client.get("/search", params={"q": "galaxies in the universe"}, headers={"accept": "text/html"})
    assert ids["stars"] in page.text and ids["coffee"] not in page.text
