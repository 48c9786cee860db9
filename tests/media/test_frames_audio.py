from __future__ import annotations

import numpy as np
import pytest

from media.audio import SAMPLE_RATE, extract_audio
from media.frames import frame_size, sample_frames
from media.probe import probe
from media.transcode import TranscodeOptions, transcode
from tests.media.helpers import FIXTURES, wav_samples


@pytest.fixture(scope="module")
def transcoded_long(videos, tmp_path_factory):
    info = probe(videos["long20"])
    out = tmp_path_factory.mktemp("tr") / "video.mp4"
    transcode(videos["long20"], out, info, TranscodeOptions(preset="ultrafast"))
    return out, info


def test_frame_size():
    assert frame_size(1280, 720) == (456, 256)
    assert frame_size(720, 1280) == (256, 456)
    assert frame_size(100, 80) == (100, 80)


def test_frames_from_keyframes(transcoded_long):
    path, info = transcoded_long
    frames = sample_frames(path, info.duration_s, info.width, info.height, n=8)
    assert len(frames) == 8
    times = [f.time_s for f in frames]
    assert times == sorted(times) and len(set(times)) == 8
    assert times[0] < 3.0 and times[-1] > 15.0  # spread over the whole video
    assert all(f.image.size == (320, 240) and f.image.mode == "RGB" for f in frames)


@pytest.mark.parametrize("n", [1, 3, 8, 12])
def test_frames_count_short_video(videos, n):
    info = probe(videos["basic"])  # 3 s, one keyframe: falls back to evenly spaced decoding
    frames = sample_frames(videos["basic"], info.duration_s, info.width, info.height, n=n)
    assert len(frames) == n
    assert all(0.0 <= f.time_s <= info.duration_s for f in frames)


def test_audio_16k_mono(videos):
    audio = extract_audio(videos["speech"])
    assert audio is not None and audio.dtype == np.float32 and audio.ndim == 1
    reference = wav_samples(FIXTURES / "speech_slt.wav")
    assert len(audio) == pytest.approx(len(reference), abs=SAMPLE_RATE * 0.1)
    assert 0.01 < float(np.abs(audio).max()) <= 1.0


def test_audio_none_without_track(videos):
    assert extract_audio(videos["silent"]) is None
