"""An upload that is already web-playable is remuxed (streams copied into a faststart MP4), one that is not is
transcoded; either way the served file is a playable faststart MP4 and /media answers byte ranges correctly."""

from __future__ import annotations

import pytest

from media import ffmpeg as ff
from media.probe import probe
from media.steps import StepContext, step_probe, step_transcode
from media.transcode import TranscodeOptions, remux_reason
from tests.app.helpers import add_video, services
from tests.media.helpers import make_video
from tests.media.test_transcode import streams, top_level_boxes


@pytest.mark.parametrize("kind", ["web_ready", "needs_transcode"])
def test_remux_when_web_ready_else_transcode_both_served_with_ranges(client, tmp_path, kind):
    tools = ff.locate()
    if kind == "web_ready":  # H.264 (x264 ultrafast: Constrained Baseline), yuv420p, AAC, 640x360
        source = make_video(tools, tmp_path / "phone.mp4", size="640x360", duration=2.0)
    else:  # VP8 in WebM, no sound: must be re-encoded for Safari
        source = make_video(tools, tmp_path / "clip.webm", size="320x240", duration=1.0, codec="libvpx", audio=None,
                            extra=["-deadline", "realtime", "-cpu-used", "8"])
    video_id = add_video(client)
    folder = services(client).videos.folder(video_id)
    ctx = StepContext(work_dir=folder, source=source, caption="", transcode=TranscodeOptions(preset="ultrafast"))
    step_probe(ctx)
    result = step_transcode(ctx)
    info = probe(source)
    if kind == "web_ready":
        assert remux_reason(info, ctx.transcode) is None
        assert result["method"] == "remux" and result["transcode_reason"] is None
    else:
        assert remux_reason(info, ctx.transcode).startswith("container")
        assert result["method"] == "transcode"

    served = folder / "video.mp4"
    boxes = top_level_boxes(served)
    assert boxes.index("moov") < boxes.index("mdat"), f"not faststart: {boxes}"
    video = next(s for s in streams(tools, served) if s["codec_type"] == "video")
    assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"
    assert probe(served).duration_s == pytest.approx(info.duration_s, abs=0.15)
    if kind == "web_ready":  # the very same coded frames: a copy, not a re-encode
        original = next(s for s in streams(tools, source) if s["codec_type"] == "video")
        assert video["nb_frames"] == original["nb_frames"] and video["profile"] == original["profile"]
        assert any(s["codec_type"] == "audio" and s["codec_name"] == "aac" for s in streams(tools, served))

    data = served.read_bytes()
    whole = client.get(f"/media/{video_id}/video.mp4")
    assert whole.status_code == 200 and whole.content == data and whole.headers["accept-ranges"] == "bytes"
    part = client.get(f"/media/{video_id}/video.mp4", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == data[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    tail = client.get(f"/media/{video_id}/video.mp4", headers={"Range": "bytes=-64"})
    assert tail.status_code == 206 and tail.content == data[-64:]
    beyond = client.get(f"/media/{video_id}/video.mp4", headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416
