"""What `make demo` tells a newcomer: how many demo clips are ready, and one plain sentence about CLIP."""

from __future__ import annotations

from app.__main__ import clip_sentence
from app.commands import demo_clips_ready, report_demo_progress
from tests.app.helpers import add_video, run, services


def test_demo_progress_counts_ready_demo_clips_and_stops_when_all_are(client):
    first = add_video(client, creator="a", metadata_={"demo_clip": "a.mp4"})
    add_video(client, creator="b", state="processing", metadata_={"demo_clip": "b.mp4"})
    add_video(client, creator="c", state="failed", metadata_={"demo_clip": "c.mp4"})  # never counted as pending
    add_video(client, creator="d")  # an ordinary upload
    db = services(client).db
    assert run(client, demo_clips_ready(db)) == (1, 2)
    assert first

    async def finish() -> None:
        from sqlalchemy import update

        from app.db.models import Video
        async with db.write() as session:
            await session.execute(update(Video).where(Video.state == "processing").values(state="ready"))

    run(client, finish())
    lines: list[str] = []
    report_demo_progress(client.app.state.settings, every_s=0.01, out=lambda line, **_: lines.append(line))
    assert lines == ["2/2 demo clips ready - the whole catalogue is in the feed."]


def test_clip_sentence_says_what_happens_and_how_to_add_weights(settings):
    missing = clip_sentence({"status": "missing", "detail": "no CLIP weights for ..."}, settings)
    assert missing.startswith("CLIP: no weights here") and "FORYOU_CLIP_WEIGHTS" in missing
    assert str(settings.data_dir / "models" / "clip" / "ViT-B-32" / "laion2b_s34b_b79k") in missing
    assert "missing no CLIP" not in missing
    found = clip_sentence({"status": "found", "kind": "file", "location": "/w/open_clip_model.safetensors"}, settings)
    assert found.startswith("CLIP: ViT-B-32 weights found (/w/open_clip_model.safetensors)")
