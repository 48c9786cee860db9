from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from PIL import Image

from media import ffmpeg as ff
from media.probe import probe
from media.transcode import TranscodeOptions, make_poster, output_size, transcode


def top_level_boxes(path: Path) -> list[str]:
    boxes, data, off = [], path.read_bytes(), 0
    while off + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[off:off + 8])
        if size == 1:
            size = struct.unpack(">Q", data[off + 8:off + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        off += size
    return boxes


def streams(tools, path: Path) -> list[dict]:
    out = ff.run([tools.ffprobe, "-v", "error", "-show_streams", "-of", "json", str(path)], timeout=30, check=True)
    return json.loads(out.stdout)["streams"]


def test_output_size():
    assert output_size(1920, 1080, 1280) == (1280, 720)
    assert output_size(1080, 1920, 1280) == (720, 1280)
    assert output_size(640, 480, 1280) == (640, 480)  # never upscaled
    assert output_size(321, 241, 1280) == (320, 240)  # even
    assert output_size(4000, 3, 1280) == (1280, 2)


@pytest.mark.parametrize("name,expected", [("hd", (1280, 720)), ("vertical", (720, 1280)), ("odd", (320, 240))])
def test_transcode_web_playable(tools, videos, tmp_path, name, expected):
    info = probe(videos[name])
    out = tmp_path / "video.mp4"
    result = transcode(videos[name], out, info, TranscodeOptions(preset="ultrafast"))
    assert (result["width"], result["height"]) == expected
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat"), f"not faststart: {boxes}"
    v = [s for s in streams(tools, out) if s["codec_type"] == "video"][0]
    assert v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p"
    assert v["profile"] in ("High", "Constrained Baseline")  # ultrafast (used here for speed) drops to baseline
    assert (v["width"], v["height"]) == expected
    assert max(v["width"], v["height"]) <= 1280 and v["width"] % 2 == 0 and v["height"] % 2 == 0
    audio = [s for s in streams(tools, out) if s["codec_type"] == "audio"]
    if info.has_audio:
        assert audio and audio[0]["codec_name"] == "aac" and audio[0]["channels"] == 2
    else:
        assert not audio  # silent videos get no audio track (documented choice)
    assert result["has_audio"] == info.has_audio
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"
    again = probe(out)
    assert again.duration_s == pytest.approx(info.duration_s, abs=0.15)


def test_long_side_cap_is_configurable(videos, tmp_path):
    info = probe(videos["hd"])
    result = transcode(videos["hd"], tmp_path / "v.mp4", info, TranscodeOptions(max_long_side=640, preset="ultrafast"))
    assert (result["width"], result["height"]) == (640, 360)


def test_metadata_stripped(tools, videos, tmp_path):
    tagged = tmp_path / "tagged.mp4"
    ff.run([tools.ffmpeg, "-v", "error", "-y", "-i", str(videos["basic"]), "-c", "copy", "-metadata",
            "location=+48.8584+002.2945/", "-metadata", "title=secret", str(tagged)], timeout=60, check=True)
    out = tmp_path / "clean.mp4"
    transcode(tagged, out, probe(tagged), TranscodeOptions(preset="ultrafast"))
    fmt = ff.run([tools.ffprobe, "-v", "error", "-show_format", "-of", "json", str(out)], timeout=30, check=True)
    tags = json.loads(fmt.stdout)["format"].get("tags", {})
    assert "location" not in tags and "title" not in tags


def test_poster(videos, tmp_path):
    info = probe(videos["hd"])
    out = tmp_path / "video.mp4"
    transcode(videos["hd"], out, info, TranscodeOptions(preset="ultrafast"))
    poster = tmp_path / "poster.jpg"
    t = make_poster(out, poster, info.duration_s)
    assert 0.0 <= t <= info.duration_s
    with Image.open(poster) as im:
        assert im.format == "JPEG" and im.size == (1280, 720)


def test_failed_transcode_leaves_nothing(videos, tmp_path, tools):
    """A crash mid-encode (here: a timeout) never leaves a file under the final name.

    The ffmpeg used here reads its input at the native frame rate (``-re``), so the 20 s clip cannot finish
    within the 1 s limit on any machine: the timeout always lands mid-encode."""
    from media.probe import MediaLimits

    info = probe(videos["long20"])
    work = tmp_path / "work"
    work.mkdir()
    slow = tmp_path / "ffmpeg-realtime"
    slow.write_text(f'#!/bin/sh\nexec "{tools.ffmpeg}" -re "$@"\n')
    slow.chmod(0o755)
    out = work / "video.mp4"
    with pytest.raises(ff.FFmpegTimeout):
        transcode(videos["long20"], out, info, TranscodeOptions(preset="ultrafast"),
                  MediaLimits(transcode_timeout_s=1.0), tools=ff.FFmpegTools(ffmpeg=str(slow), ffprobe=tools.ffprobe))
    assert not out.exists()
    assert list(work.iterdir()) == []


def test_x264_params_reach_the_encoder(videos, tmp_path):
    """The tuning on top of the preset (x264 records its settings in the stream): subme=1 by default, the preset's
    own sub-pixel refinement when switched off."""
    info = probe(videos["basic"])
    tuned, plain = tmp_path / "tuned.mp4", tmp_path / "plain.mp4"
    transcode(videos["basic"], tuned, info, TranscodeOptions(preset="veryfast"))
    transcode(videos["basic"], plain, info, TranscodeOptions(preset="veryfast", x264_params=""))
    assert b" subme=1 " in tuned.read_bytes()
    assert b" subme=2 " in plain.read_bytes()  # veryfast's own
