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


def _wav(path, samples, rate: int = 16000):  # noqa: ANN001, ANN202
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
    return path


TONE_HZ = 3700.0  # above every note and harmonic of the synthetic tune


def _tone_level(samples, freq: float = TONE_HZ, rate: int = 16000) -> float:  # noqa: ANN001
    """The share of the spectrum's energy within 5 Hz of ``freq``."""
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[np.abs(freqs - freq) < 5].sum() / spectrum.sum())


@pytest.mark.parametrize("mode", ["replace", "mix"])
def test_use_this_sound_replaces_or_mixes_under_the_upload_audio(tools, tmp_path, tune, tune_print, mode):
    from media.audio import copy_audio_track
    from media.transcode import TranscodeOptions
    from tests.media.helpers import make_video

    # The sound: the tune inside a video (as a sound's original video holds it), copied out as a track.
    original = make_video(tools, tmp_path / "original.mp4", duration=12.0,
                          audio_file=_wav(tmp_path / "tune.wav", tune[: 12 * 16000]))
    assert copy_audio_track(original, tmp_path / "sound.m4a", tools=tools)
    tone = 0.3 * np.sin(2 * np.pi * TONE_HZ * np.arange(5 * 16000) / 16000)
    upload = make_video(tools, tmp_path / "upload.mp4", duration=5.0,  # its own audio: a pure tone
                        audio_file=_wav(tmp_path / "tone.wav", tone))
    ctx = steps.StepContext(work_dir=tmp_path / "w", source=upload, transcode=TranscodeOptions(preset="ultrafast"),
                            sound=tmp_path / "sound.m4a", sound_mode=mode)
    steps.step_probe(ctx, None)
    result = steps.step_transcode(ctx, None)
    assert result["has_audio"] and result["transcode_reason"] == f"use this sound ({mode})"
    assert result["duration_s"] == pytest.approx(5.0, abs=0.1)  # the picture sets the length
    out = extract_audio(ctx.path(steps.VIDEO), tools=tools)
    assert _match(fp.fingerprint(out), tune_print)[0]  # the sound is there either way
    own = _tone_level(extract_audio(upload, tools=tools))
    assert own > 0.5
    if mode == "mix":
        assert _tone_level(out) > 0.2  # the creator's own audio is kept, the sound under it
    else:
        assert _tone_level(out) < 0.01  # replaced
    assert steps.step_transcode(ctx, None) == result  # idempotent


def test_copy_audio_track_of_a_silent_video_is_false(tools, videos, tmp_path):
    from media.audio import copy_audio_track

    assert copy_audio_track(videos["silent"], tmp_path / "none.m4a", tools=tools) is False
    assert not (tmp_path / "none.m4a").exists()
