"""Audio identity: landmark fingerprints survive re-encoding, volume and offset, and tell tracks apart."""

from __future__ import annotations

import numpy as np
import pytest

from media import fingerprint as fp
from media import steps
from media.audio import extract_audio
from tests.media.helpers import FIXTURES, encode_audio, synth_music, wav_samples


def _match(query: fp.Fingerprint, reference: fp.Fingerprint) -> tuple[bool, fp.Alignment]:
    alignment = fp.align(query, reference.hashes, reference.times)
    return fp.is_same_audio(alignment, query, len(reference)), alignment


@pytest.fixture(scope="module")
def tune():
    return synth_music(seed=1)


@pytest.fixture(scope="module")
def tune_print(tune):
    return fp.fingerprint(tune)


def test_same_music_reencoded_at_another_bitrate_volume_and_offset_matches(tools, tmp_path, tune, tune_print):
    # Opus at 32 kbit/s, 10 dB quieter, starting 3.3 s in (not a multiple of the 32 ms hop).
    path = encode_audio(tools, tune, tmp_path / "clip.webm", codec="libopus", bitrate="32k", start_s=3.3, gain=0.3)
    query = fp.fingerprint(extract_audio(path, tools=tools))
    same, alignment = _match(query, tune_print)
    assert same, alignment
    assert alignment.offset_s == pytest.approx(3.3, abs=0.07)
    # A short excerpt from the middle, re-encoded as AAC, matches too (the sound used under another video).
    middle = encode_audio(tools, tune[5 * 16000:13 * 16000], tmp_path / "part.m4a", codec="aac", bitrate="48k")
    same, alignment = _match(fp.fingerprint(extract_audio(middle, tools=tools)), tune_print)
    assert same and alignment.offset_s == pytest.approx(5.0, abs=0.07)


def test_different_music_does_not_match(tools, tmp_path, tune_print):
    other = encode_audio(tools, synth_music(seed=2), tmp_path / "other.m4a", bitrate="192k")
    query = fp.fingerprint(extract_audio(other, tools=tools))
    assert query.identifiable
    same, alignment = _match(query, tune_print)
    assert not same and alignment.matches < fp.MIN_MATCHES // 2


def test_speech_only_tracks_are_told_apart_and_do_not_match_music(tune_print):
    slt = fp.fingerprint(wav_samples(FIXTURES / "speech_slt.wav"))
    rms = fp.fingerprint(wav_samples(FIXTURES / "speech_rms.wav"))
    assert slt.identifiable and rms.identifiable  # each is a sound of its own ...
    assert not _match(slt, rms)[0] and not _match(rms, slt)[0]  # ... never one "speech" sound
    assert not _match(slt, tune_print)[0]
    assert _match(slt, slt)[0]


def test_music_under_speech_still_matches_the_music(tune, tune_print):
    mixed = tune.copy()
    speech = wav_samples(FIXTURES / "speech_slt.wav")
    mixed[: speech.shape[0]] += speech
    assert _match(fp.fingerprint(mixed), tune_print)[0]


def test_silence_and_hiss_have_no_identity():
    assert fp.fingerprint(np.zeros(16000 * 5, dtype=np.float32)).status == "silent"
    hiss = np.random.default_rng(0).normal(0, 1e-4, 16000 * 5).astype(np.float32)
    assert not fp.fingerprint(hiss).identifiable
    assert fp.fingerprint(np.zeros(0, dtype=np.float32)).status == "silent"


def test_fingerprint_round_trips_through_its_file(tmp_path, tune_print):
    tune_print.save(tmp_path / "f.npz")
    loaded = fp.Fingerprint.load(tmp_path / "f.npz")
    assert np.array_equal(loaded.hashes, tune_print.hashes) and np.array_equal(loaded.times, tune_print.times)
    assert loaded.status == "ok" and loaded.seconds == pytest.approx(tune_print.seconds)


def test_fingerprint_step_is_idempotent_and_skips_silent_videos(videos, tmp_path):
    from media.transcode import TranscodeOptions

    for name, expected in (("speech", "ok"), ("silent", "no_audio")):
        ctx = steps.StepContext(work_dir=tmp_path / name, source=videos[name],
                                transcode=TranscodeOptions(preset="ultrafast"))
        for _, fn in steps.PIPELINE[:5]:  # probe .. audio
            fn(ctx, None)
        first = steps.step_fingerprint(ctx, None)
        assert first["status"] == expected
        if expected == "ok":
            assert first["landmarks"] >= fp.MIN_LANDMARKS and (ctx.path(first["file"])).is_file()
            mtime = ctx.path(first["file"]).stat().st_mtime_ns
            assert steps.step_fingerprint(ctx, None) == first
            assert ctx.path(first["file"]).stat().st_mtime_ns == mtime  # not redone
        else:
            assert first["file"] is None
