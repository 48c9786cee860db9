"""Sounds in the app: videos are assigned to sounds by their audio, through the real database."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from app.db.models import Video
from app.db.sound_models import Sound, SoundHash, VideoSound
from app.domain.sounds.services import assign_sound
from media import ffmpeg as ff
from media.audio import extract_audio
from media.fingerprint import fingerprint
from tests.app.helpers import add_video, run, services
from tests.media.helpers import FIXTURES, encode_audio, synth_music, wav_samples


@pytest.fixture(scope="module")
def prints(tmp_path_factory):
    tools = ff.locate()
    folder = tmp_path_factory.mktemp("sounds")
    tune = synth_music(seed=7)
    reencoded = encode_audio(tools, tune, folder / "tune.webm", codec="libopus", bitrate="40k", start_s=2.5,
                             gain=0.5)
    return {
        "tune": fingerprint(tune),
        "tune_reencoded": fingerprint(extract_audio(reencoded, tools=tools)),
        "other_tune": fingerprint(synth_music(seed=8)),
        "speech_a": fingerprint(wav_samples(FIXTURES / "speech_slt.wav")),
        "speech_b": fingerprint(wav_samples(FIXTURES / "speech_rms.wav")),
        "silence_a": fingerprint(np.zeros(16000 * 4, dtype=np.float32)),
        "silence_b": fingerprint(np.zeros(16000 * 6, dtype=np.float32)),
    }


def _assign(client, video_id: str, fp, chosen: str | None = None):  # noqa: ANN001, ANN202
    async def go():  # noqa: ANN202
        async with services(client).db.write() as session:
            video = await session.get(Video, video_id)
            link = await assign_sound(session, video, fp, chosen)
            return None if link is None else (link.sound_id, link.how)

    return run(client, go())


def test_videos_share_a_sound_only_when_their_audio_is_the_same(client, prints):
    ids = {name: add_video(client, creator=f"c{i}", caption=name) for i, name in enumerate(prints)}
    got = {name: _assign(client, ids[name], prints[name]) for name in prints}

    assert got["tune"][1] == "original" and got["tune_reencoded"] == (got["tune"][0], "matched")
    assert got["other_tune"][1] == "original" and got["other_tune"][0] != got["tune"][0]
    # Speech-only tracks: each its own sound, never merged into one; silence: no sound at all.
    assert got["speech_a"][1] == got["speech_b"][1] == "original"
    assert len({got[n][0] for n in ("tune", "other_tune", "speech_a", "speech_b")}) == 4
    assert got["silence_a"] is None and got["silence_b"] is None

    async def check():  # noqa: ANN202
        async with services(client).db.read() as session:
            sound = await session.get(Sound, got["tune"][0])
            hashes = await session.scalar(select(func.count()).select_from(SoundHash)
                                          .where(SoundHash.sound_id == sound.id))
            video = await session.get(Video, ids["tune_reencoded"])
            return sound, hashes, video.metadata_

    sound, hashes, metadata = run(client, check())
    assert sound.original_video_id == ids["tune"] and sound.title == "original sound - c0"
    assert hashes == sound.landmarks == len(prints["tune"])
    assert metadata["audio_id"] == got["tune"][0]  # seed 002 §2.2


def test_assignment_is_idempotent_and_a_chosen_sound_wins(client, prints):
    first = add_video(client, creator="a", caption="first")
    sound_id, _ = _assign(client, first, prints["tune"])
    assert _assign(client, first, prints["other_tune"]) == (sound_id, "original")  # already assigned: stands
    chosen = add_video(client, creator="b", caption="uses it")
    assert _assign(client, chosen, prints["speech_a"], chosen=sound_id) == (sound_id, "chosen")

    async def count():  # noqa: ANN202
        async with services(client).db.read() as session:
            return await session.scalar(select(func.count()).select_from(VideoSound)
                                        .where(VideoSound.sound_id == sound_id))

    assert run(client, count()) == 2
