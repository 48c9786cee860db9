from __future__ import annotations

import json
from pathlib import Path

import pytest

from media import steps
from media.errors import MediaRejected
from media.models import ModelRegistry, ModelSettings
from media.steps import PIPELINE, StepContext, run_pipeline
from media.transcode import TranscodeOptions


def ctx_for(work: Path, source: Path, caption: str = "") -> StepContext:
    return StepContext(work_dir=work, source=source, caption=caption, transcode=TranscodeOptions(preset="ultrafast"))


def snapshot(work: Path) -> dict[str, int]:
    return {str(p.relative_to(work)): p.stat().st_mtime_ns for p in sorted(work.rglob("*")) if p.is_file()}


def test_pipeline_order():
    assert [name for name, _ in PIPELINE] == ["probe", "transcode", "frames", "clip_images", "audio", "fingerprint",
                                              "transcript", "captions", "text_embedding"]


@pytest.mark.slow
def test_full_pipeline_is_idempotent(videos, registry, tiny_clip, tmp_path, models_dir):
    reg = ModelRegistry(ModelSettings(models_dir=str(models_dir)))
    reg.set("whisper", registry.whisper())
    reg.set("sentence", registry.sentence())
    reg.set("clip", tiny_clip)
    work = tmp_path / "v1"
    ctx = ctx_for(work, videos["speech"], "Cookie time! #Baking #cookies #fyp#ForYou")
    first = run_pipeline(ctx, reg)
    json.dumps(first)  # JSON-able
    assert first["probe"]["has_audio"] and first["transcode"]["video"] == "video.mp4"
    assert (work / "video.mp4").is_file() and (work / "poster.jpg").is_file()
    assert first["frames"]["count"] == 8 and len(list((work / "frames").iterdir())) == 8
    clip = first["clip_images"]
    assert clip["status"] == "ok" and clip["model_id"] == "clip:random-test" and clip["random"] is True
    assert len(clip["frame_vectors"]) == 8 and len(clip["vector"]) == tiny_clip.dim
    tx = first["transcript"]
    assert tx["status"] == "ok" and tx["language"] == "en" and "chocolate" in tx["text"].lower()
    assert tx["model_id"] == "whisper:tiny.en"
    assert first["captions"]["file"] == "captions.vtt"
    assert (work / "captions.vtt").read_text().startswith("WEBVTT\n")
    te = first["text_embedding"]
    assert te["hashtags"] == ["baking", "cookies", "fyp", "foryou"]
    assert te["model_id"] == "clip:random-test" and len(te["vector"]) == tiny_clip.dim

    before = snapshot(work)
    second = run_pipeline(ctx, reg)
    assert second == first
    assert snapshot(work) == before  # nothing rewritten, nothing duplicated

    # a crash mid-step: stray temp files and a lost result marker; the re-run cleans up and redoes the step
    (work / ".video.tmp-deadbeef.mp4").write_bytes(b"half")
    (work / "steps" / "frames.json").unlink()
    (work / "frames" / "07.jpg").unlink()
    third = run_pipeline(ctx, reg)
    assert third["frames"] == first["frames"]
    assert not list(work.glob(".*tmp*"))
    assert sorted(p.name for p in (work / "frames").iterdir()) == [f"{i:02d}.jpg" for i in range(8)]

    # a caption edit re-embeds only the text
    edited = run_pipeline(ctx_for(work, videos["speech"], "new caption #other"), reg)
    assert edited["text_embedding"]["hashtags"] == ["other"]
    assert edited["text_embedding"]["vector"] != first["text_embedding"]["vector"]
    assert edited["transcode"] == first["transcode"]


@pytest.mark.slow
def test_pipeline_without_clip_and_without_audio(videos, registry, tmp_path, monkeypatch):
    from media.models import clip as clip_mod

    monkeypatch.setattr(clip_mod, "_hf_cached_file", lambda repo, cache_dir: None)
    reg = ModelRegistry(ModelSettings(models_dir=str(tmp_path / "models")))
    reg.set("whisper", registry.whisper())
    reg.set("sentence", registry.sentence())
    ctx = ctx_for(tmp_path / "v2", videos["silent"], "Quiet sunset over the lake #nature")
    result = run_pipeline(ctx, reg)
    assert result["transcode"]["has_audio"] is False
    assert result["clip_images"]["status"] == "skipped" and "no CLIP weights" in result["clip_images"]["reason"]
    assert result["audio"] == {"has_audio": False, "file": None, "seconds": 0.0}
    assert result["transcript"]["status"] == "ok" and result["transcript"]["text"] == ""
    assert result["captions"]["file"] is None
    te = result["text_embedding"]
    assert te["status"] == "ok" and te["model_id"] == "text:all-MiniLM-L6-v2" and len(te["vector"]) == 384


def test_rejected_upload_is_permanent(tmp_path):
    bad = tmp_path / "upload.mp4"
    bad.write_text("not a video at all")
    with pytest.raises(MediaRejected) as info:
        steps.step_probe(ctx_for(tmp_path / "w", bad), None)
    assert info.value.code == "not_a_video"
    assert not (tmp_path / "w" / "steps" / "probe.json").exists()


def test_step_needs_previous_step(tmp_path, videos):
    with pytest.raises(RuntimeError, match="probe"):
        steps.step_transcode(ctx_for(tmp_path / "w", videos["basic"]), None)


def test_steps_without_models(videos, tmp_path):
    """Media-only steps run without any model; model steps report 'skipped' instead of failing."""
    work = tmp_path / "w"
    ctx = ctx_for(work, videos["basic"])
    results = {name: fn(ctx, None) for name, fn in PIPELINE[:-1]}
    assert results["probe"]["width"] > 0 and results["probe"]["duration_s"] > 0 and results["probe"]["has_audio"]
    assert results["transcode"]["video"] == "video.mp4" and (work / "video.mp4").stat().st_size > 0
    assert (work / "poster.jpg").is_file()
    assert results["frames"]["count"] == len(results["frames"]["frames"]) > 0
    assert len(list((work / "frames").iterdir())) == results["frames"]["count"]
    assert results["clip_images"]["status"] == "skipped" and results["clip_images"]["vector"] is None
    assert results["audio"]["has_audio"] is True and results["audio"]["seconds"] > 0
    assert (work / results["audio"]["file"]).is_file()
    assert results["transcript"]["status"] == "skipped" and results["transcript"]["model_id"] is None
    assert results["captions"]["file"] is None and results["captions"]["cues"] == 0  # no transcript, no cues
    assert steps.load_result(ctx, "audio") == results["audio"]
