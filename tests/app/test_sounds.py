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


def _publish(client, video_id: str) -> None:  # noqa: ANN001
    run(client, services(client).recommender.refresh_video(video_id))


def test_sound_page_cards_link_and_renaming_by_the_first_uploader(client, prints):
    from tests.app.test_accounts import signup
    from tests.conftest import csrf_of

    signup(client, username="deejay")
    original = run(client, _video_by(client, "deejay", "my new tune"))
    sound_id, _ = _assign(client, original, prints["tune"])
    users = [add_video(client, creator=f"dancer{i}", caption=f"dance {i}") for i in range(2)]
    for video in users:
        assert _assign(client, video, prints["tune_reencoded"])[0] == sound_id
    hidden_draft = add_video(client, creator="dancer9", caption="draft", state="processing")
    _assign(client, hidden_draft, prints["tune"])  # not published: not counted, not listed
    for video in (original, *users):
        _publish(client, video)

    page = client.get(f"/sound/{sound_id}", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "original sound - deejay" in page.text and 'data-usage-count="3"' in page.text
    assert page.text.index(f"/v/{original}") < page.text.index(f"/v/{users[0]}")  # the original first
    assert f"/v/{hidden_draft}" not in page.text and "Rename" in page.text and "Use this sound" in page.text
    # The first uploader is the one signed in: they may rename it.
    renamed = client.post(f"/sound/{sound_id}/title", data={"title": "  Summer   tune ",
                                                              "csrf_token": csrf_of(client, f"/sound/{sound_id}")},
                          follow_redirects=False)
    assert renamed.status_code == 303
    assert "<h1 data-sound-title>Summer tune</h1>" in client.get(f"/sound/{sound_id}").text

    # The feed's cards link to the sound (and the card of a silent video has no sound link).
    feed = client.get("/", headers={"accept": "text/html"})
    assert f'href="/sound/{sound_id}"' in feed.text and "Summer tune" in feed.text

    client.cookies.clear()
    signup(client, username="someoneelse")
    refused = client.post(f"/sound/{sound_id}/title", data={"title": "mine now",
                                                            "csrf_token": csrf_of(client, "/settings")})
    assert refused.status_code == 403
    assert "Rename" not in client.get(f"/sound/{sound_id}").text
    assert client.get("/sound/s_missing").status_code == 404


async def _video_by(client, username, caption):  # noqa: ANN001, ANN202
    from app.db.models import User

    async with services(client).db.write() as session:
        user_id = (await session.execute(select(User.id).where(User.username == username))).scalar_one()
        video = Video(creator_id=user_id, state="ready", caption=caption, duration=10.0)
        session.add(video)
        await session.flush()
        return video.id



def test_dashboard_lists_trending_sounds_by_new_uses(tmp_path, prints, monkeypatch):
    from litestar.testing import TestClient

    from app.server.app import create_app
    from tests.app.test_accounts import signup
    from tests.conftest import make_settings

    with TestClient(create_app(make_settings(tmp_path / "data", admin_usernames=("boss",)))) as client:
        assert signup(client, username="boss").status_code == 200
        tune = [add_video(client, creator=f"m{i}", caption=f"t{i}") for i in range(3)]
        other = add_video(client, creator="solo", caption="speech")
        for video in tune:
            _assign(client, video, prints["tune"])
        _assign(client, other, prints["speech_a"])
        page = client.get("/admin")
        assert page.status_code == 200
        section = page.text[page.text.index('id="trending-sounds"'):]
        section = section[:section.index("</section>")]
        assert section.index("original sound - m0") < section.index("original sound - solo")
        assert '<td class="num">3</td>' in section


def test_use_this_sound_at_upload_through_the_pipeline(client, tmp_path):
    from sqlalchemy import select as sa_select

    from app.db.models import MediaJob
    from tests.app.test_accounts import signup
    from tests.conftest import csrf_of
    from tests.media.helpers import make_video
    from tests.media.test_fingerprint import _wav

    tools = ff.locate()
    tune = synth_music(seed=11)
    with_tune = make_video(tools, tmp_path / "tune.mp4", duration=8.0, audio_file=_wav(tmp_path / "t.wav", tune))
    plain = make_video(tools, tmp_path / "plain.mp4", duration=4.0)
    signup(client, username="maker")
    csrf = csrf_of(client, "/settings")

    def upload(path, **params):  # noqa: ANN001, ANN003, ANN202
        return client.post("/api/uploads", params=params, content=path.read_bytes(),
                           headers={"x-csrf-token": csrf, "content-type": "video/mp4"})

    async def run_steps(video_id, names):  # noqa: ANN001, ANN202
        svc = services(client)
        async with svc.db.read() as session:
            video = await session.get(Video, video_id)
            jobs = {j.step: j for j in (await session.execute(
                sa_select(MediaJob).where(MediaJob.video_id == video_id))).scalars()}
        return {name: await svc.pipeline.run_step(video, jobs[name]) for name in names}

    steps_to_sound = ["probe", "transcode", "audio", "fingerprint", "sound"]
    first = upload(with_tune, caption="my tune").json()["id"]
    sound_id = run(client, run_steps(first, steps_to_sound))["sound"]["sound_id"]
    assert sound_id

    page = client.get(f"/upload?sound={sound_id}", headers={"accept": "text/html"})
    assert 'id="upload-sound"' in page.text and "original sound - maker" in page.text

    second = upload(plain, caption="dancing to it", sound=sound_id, sound_mode="replace")
    assert second.status_code == 201, second.text
    second_id = second.json()["id"]
    folder = services(client).settings.media_dir / second_id
    assert (folder / "sound.m4a").is_file()
    results = run(client, run_steps(second_id, steps_to_sound))
    assert results["transcode"]["transcode_reason"] == "use this sound (replace)"
    assert results["sound"] == {**results["sound"], "sound_id": sound_id, "how": "chosen"}
    # Its audio now is the sound: the fingerprint of what it plays matches the sound's own landmarks.
    from app.domain.sounds.services import find_match
    from media.fingerprint import Fingerprint

    async def matched():  # noqa: ANN202
        async with services(client).db.read() as session:
            return await find_match(session, Fingerprint.load(folder / "fingerprint.npz"))

    assert run(client, matched()).sound_id == sound_id

    # An unknown sound is refused with a clear message, and nothing is left behind.
    before = sorted(p.name for p in services(client).settings.media_dir.iterdir())
    refused = upload(plain, sound="s_nosuchsound")
    assert refused.status_code == 422 and "no longer available" in refused.text
    assert sorted(p.name for p in services(client).settings.media_dir.iterdir()) == before


def test_a_deleted_account_leaves_its_sounds_without_its_name(client, prints):
    from app.db.sound_models import Sound
    from tests.app.test_accounts import signup
    from tests.conftest import csrf_of

    signup(client, username="leaver")
    original = run(client, _video_by(client, "leaver", "mine"))
    sound_id, _ = _assign(client, original, prints["tune"])
    used = add_video(client, creator="stayer", caption="still here")
    assert _assign(client, used, prints["tune_reencoded"])[0] == sound_id
    done = client.post("/settings/delete", data={"confirm": "leaver", "password": "correct horse",
                                                 "csrf_token": csrf_of(client, "/settings")}, follow_redirects=False)
    assert done.status_code == 303

    async def after():  # noqa: ANN202
        async with services(client).db.read() as session:
            return await session.get(Sound, sound_id)

    sound = run(client, after())
    assert sound.title == "original sound" and sound.creator_id is None and sound.original_video_id is None
    assert "leaver" not in client.get(f"/sound/{sound_id}").text
