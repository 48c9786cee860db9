"""The media pipeline as one pure, idempotent function per step.

Every step has the signature ``step(ctx: StepContext, models: ModelRegistry | None) -> dict`` and returns a
small JSON-able result, also stored as ``<work_dir>/steps/<name>.json``. Outputs are written atomically; the
result file is written last, so it is the "done" marker. Re-running a finished step returns the stored result
without redoing work (unless its inputs changed: caption text, model id, options); re-running after a crash
mid-step simply redoes it (leftover ``*.tmp-*`` files are removed first).

Errors: :class:`media.errors.MediaRejected` is permanent (bad upload; ``.code`` and ``.message`` for the
creator). Anything else (:class:`media.errors.TransientMediaError`, ``OSError``, ...) is worth a retry.

Order (:data:`PIPELINE`): probe -> transcode (+ poster) -> frames -> clip_images -> audio -> fingerprint ->
transcript -> captions -> text_embedding.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from media import ffmpeg as ff
from media.atomic import atomic_output, cleanup_tmp, write_json, write_text
from media.audio import SAMPLE_RATE, extract_audio
from media.captions import to_webvtt
from media.fingerprint import fingerprint
from media.frames import sample_frames
from media.probe import MediaLimits, ProbeInfo, probe
from media.text import embedding_text, parse_hashtags
from media.transcode import TranscodeOptions, make_poster, remux, remux_reason, transcode

if TYPE_CHECKING:  # the registry pulls in torch lazily; keep this module light to import
    from media.models.registry import ModelRegistry

__all__ = [
    "PIPELINE", "StepContext", "parse_hashtags", "run_pipeline", "step_audio", "step_captions",
    "step_clip_images", "step_fingerprint", "step_frames", "step_probe", "step_text_embedding", "step_transcode",
    "step_transcript", "remove_intermediates",
]

VIDEO = "video.mp4"
POSTER = "poster.jpg"
FRAMES_DIR = "frames"
AUDIO = "audio16k.npy"
CAPTIONS = "captions.vtt"
FINGERPRINT = "fingerprint.npz"
STEPS_DIR = "steps"
STEP_VERSION = 1  # bump to invalidate stored results when a step's output format changes


@dataclass(frozen=True)
class StepContext:
    """What every step needs. ``work_dir`` is the per-video folder the caller owns; ``source`` the upload."""

    work_dir: Path
    source: Path | None = None
    caption: str = ""
    limits: MediaLimits = field(default_factory=MediaLimits)
    transcode: TranscodeOptions = field(default_factory=TranscodeOptions)
    n_frames: int = 8
    tools: ff.FFmpegTools | None = None
    sound: Path | None = None  # "use this sound": an audio file that replaces or goes under the upload's audio
    sound_mode: str = "replace"

    def path(self, name: str) -> Path:
        return Path(self.work_dir) / name

    @property
    def ffmpeg(self) -> ff.FFmpegTools:
        return self.tools or ff.default_tools()


# --- stored results ----------------------------------------------------------------------------------------------

def _key(*parts: Any) -> str:
    blob = json.dumps([STEP_VERSION, *parts], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _result_path(ctx: StepContext, name: str) -> Path:
    return ctx.path(STEPS_DIR) / f"{name}.json"


def load_result(ctx: StepContext, name: str) -> dict | None:
    """The stored result of a finished step, or None."""
    try:
        stored = json.loads(_result_path(ctx, name).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return stored.get("result")


def _cached(ctx: StepContext, name: str, key: str, outputs: Callable[[dict], list[str]]) -> dict | None:
    try:
        stored = json.loads(_result_path(ctx, name).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    result = stored.get("result")
    if stored.get("key") != key or result is None:
        return None
    if not all(ctx.path(p).is_file() for p in outputs(result)):
        return None  # an output was deleted: redo the step
    return result


def _store(ctx: StepContext, name: str, key: str, result: dict) -> dict:
    write_json(_result_path(ctx, name), {"key": key, "result": result})
    return result


def _begin(ctx: StepContext) -> None:
    Path(ctx.work_dir).mkdir(parents=True, exist_ok=True)
    cleanup_tmp(Path(ctx.work_dir))
    cleanup_tmp(ctx.path(STEPS_DIR))


def _require(ctx: StepContext, name: str) -> dict:
    result = load_result(ctx, name)
    if result is None:
        raise RuntimeError(f"step '{name}' has not completed for {ctx.work_dir}; run it first")
    return result


def _source_key(ctx: StepContext) -> list:
    if ctx.source is None:
        raise ValueError("StepContext.source is required for this step")
    st = Path(ctx.source).stat()
    return [str(Path(ctx.source).resolve()), st.st_size, st.st_mtime_ns]


# --- steps -------------------------------------------------------------------------------------------------------

def step_probe(ctx: StepContext, models: ModelRegistry | None = None) -> dict:
    """Probe the upload; raises MediaRejected for unusable files. Result: ProbeInfo fields."""
    _begin(ctx)
    key = _key("probe", _source_key(ctx), asdict(ctx.limits))
    cached = _cached(ctx, "probe", key, lambda r: [])
    if cached is not None:
        return cached
    info = probe(ctx.source, ctx.limits, ctx.ffmpeg)
    return _store(ctx, "probe", key, info.to_dict())


def step_transcode(ctx: StepContext, models: ModelRegistry | None = None) -> dict:
    """H.264/AAC faststart MP4 (``video.mp4``: the upload's own streams when already web-playable, else
    re-encoded) + poster JPEG (``poster.jpg``)."""
    _begin(ctx)
    info = ProbeInfo.from_dict(_require(ctx, "probe"))
    sound = [str(ctx.sound), Path(ctx.sound).stat().st_size, ctx.sound_mode] if ctx.sound is not None else None
    key = _key("transcode", _source_key(ctx), asdict(ctx.transcode), info.to_dict(), *([sound] if sound else []))
    cached = _cached(ctx, "transcode", key, lambda r: [r["video"], r["poster"]])
    if cached is not None:
        return cached
    reason = f"use this sound ({ctx.sound_mode})" if ctx.sound is not None else remux_reason(info, ctx.transcode)
    if reason is None:
        out = remux(ctx.source, ctx.path(VIDEO), info, ctx.limits, ctx.ffmpeg)
    else:
        out = transcode(ctx.source, ctx.path(VIDEO), info, ctx.transcode, ctx.limits, ctx.ffmpeg, sound=ctx.sound,
                        sound_mode=ctx.sound_mode)
    duration = min(info.duration_s, ctx.limits.max_duration_s)
    poster_t = make_poster(ctx.path(VIDEO), ctx.path(POSTER), duration, limits=ctx.limits, tools=ctx.ffmpeg)
    result = {"video": VIDEO, "poster": POSTER, "poster_time_s": poster_t, "width": out["width"],
              "height": out["height"], "duration_s": duration, "has_audio": out["has_audio"],
              "size_bytes": ctx.path(VIDEO).stat().st_size, "method": out["method"], "transcode_reason": reason}
    return _store(ctx, "transcode", key, result)


def step_frames(ctx: StepContext, models: ModelRegistry | None = None) -> dict:
    """N frames (JPEG, short side 256) spread over the transcoded video, in ``frames/``."""
    _begin(ctx)
    tr = _require(ctx, "transcode")
    key = _key("frames", tr, ctx.n_frames)
    cached = _cached(ctx, "frames", key, lambda r: [f["file"] for f in r["frames"]])
    if cached is not None:
        return cached
    frames = sample_frames(ctx.path(VIDEO), tr["duration_s"], tr["width"], tr["height"], ctx.n_frames,
                           limits=ctx.limits, tools=ctx.ffmpeg)
    tmp_dir = ctx.path(f".{FRAMES_DIR}.tmp-{uuid.uuid4().hex[:8]}")
    tmp_dir.mkdir()
    try:
        entries = []
        for i, frame in enumerate(frames):
            name = f"{i:02d}.jpg"
            frame.image.save(tmp_dir / name, "JPEG", quality=90)
            entries.append({"file": f"{FRAMES_DIR}/{name}", "time_s": frame.time_s})
        final = ctx.path(FRAMES_DIR)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp_dir, final)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return _store(ctx, "frames", key, {"frames": entries, "count": len(entries)})


def step_clip_images(ctx: StepContext, models: ModelRegistry | None = None) -> dict:
    """CLIP vectors per frame and their normalised mean (the video's visual vector). Skipped, with the reason,
    when no CLIP weights can be had: random weights are never used unless a test installed them."""
    _begin(ctx)
    fr = _require(ctx, "frames")
    clip = models.clip() if models is not None else None
    if clip is None:
        reason = "no models registry" if models is None else models.status()["clip"]["detail"]
        return {"status": "skipped", "reason": reason, "model_id": None, "vector": None, "frame_vectors": []}
    key = _key("clip_images", fr, clip.model_id)
    cached = _cached(ctx, "clip_images", key, lambda r: [])
    if cached is not None:
        return cached
    from PIL import Image

    images = []
    for entry in fr["frames"]:
        with Image.open(ctx.path(entry["file"])) as im:
            images.append(im.convert("RGB"))
    if not images:
        return _store(ctx, "clip_images", key, {"status": "skipped", "reason": "no frames could be decoded",
                                                 "model_id": clip.model_id, "vector": None, "frame_vectors": []})
    vectors = clip.embed_images(images)
    mean = vectors.mean(axis=0)
    mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
    result = {"status": "ok", "model_id": clip.model_id, "random": bool(clip.is_random), "dim": int(vectors.shape[1]),
              "vector": [round(float(x), 7) for x in mean],
              "frame_vectors": [[round(float(x), 7) for x in row] for row in vectors],
              "frame_times": [e["time_s"] for e in fr["frames"]]}
    return _store(ctx, "clip_images", key, result)


def step_audio(ctx: StepContext, models: ModelRegistry | None = None) -> dict:
    """16 kHz mono float32 audio of the transcoded video into ``audio16k.npy`` (none when silent-less video)."""
    _begin(ctx)
    tr = _require(ctx, "transcode")
    key = _key("audio", tr)
    cached = _cached(ctx, "audio", key, lambda r: [r["file"]] if r["file"] else [])
    if cached is not None:
        return cached
    audio = extract_audio(ctx.path(VIDEO), ctx.limits, ctx.ffmpeg) if tr["has_audio"] else None
    if audio is None:
        return _store(ctx, "audio", key, {"has_audio": False, "file": None, "seconds": 0.0})
    with atomic_output(ctx.path(AUDIO)) as tmp, open(tmp, "wb") as fh:
        np.save(fh, audio.astype(np.float32), allow_pickle=False)
    return _store(ctx, "audio", key, {"has_audio": True, "file": AUDIO, "seconds": round(len(audio) / SAMPLE_RATE, 3)})


def step_fingerprint(ctx: StepContext, models: ModelRegistry | None = None) -> dict:
    """The audio's landmark fingerprint (``fingerprint.npz``, see :mod:`media.fingerprint`), which the app
    matches against known sounds. ``status``: ok | silent | too_little | no_audio (no file then)."""
    _begin(ctx)
    au = _require(ctx, "audio")
    key = _key("fingerprint", au)
    cached = _cached(ctx, "fingerprint", key, lambda r: [r["file"]] if r["file"] else [])
    if cached is not None:
        return cached
    if not au["has_audio"]:
        return _store(ctx, "fingerprint", key, {"status": "no_audio", "file": None, "landmarks": 0, "seconds": 0.0})
    fp = fingerprint(np.load(ctx.path(AUDIO), allow_pickle=False), SAMPLE_RATE)
    if not fp.identifiable:
        return _store(ctx, "fingerprint", key, {"status": fp.status, "file": None, "landmarks": len(fp),
                                                 "seconds": round(fp.seconds, 3)})
    with atomic_output(ctx.path(FINGERPRINT)) as tmp, open(tmp, "wb") as fh:
        fp.save(fh)
    return _store(ctx, "fingerprint", key, {"status": "ok", "file": FINGERPRINT, "landmarks": len(fp),
                                             "seconds": round(fp.seconds, 3)})


def step_transcript(ctx: StepContext, models: ModelRegistry | None = None) -> dict:
    """Whisper transcript: language, text, timed segments. No audio track: an empty transcript (status ok).
    No Whisper weights: status ``skipped`` with the reason and an empty transcript."""
    _begin(ctx)
    au = _require(ctx, "audio")
    whisper = models.whisper() if models is not None else None
    empty = {"language": None, "text": "", "segments": []}
    if whisper is None:
        reason = "no models registry" if models is None else models.status()["whisper"]["detail"]
        return {"status": "skipped", "reason": reason, "model_id": None, **empty}
    key = _key("transcript", au, whisper.model_id)
    cached = _cached(ctx, "transcript", key, lambda r: [])
    if cached is not None:
        return cached
    if not au["has_audio"]:
        return _store(ctx, "transcript", key, {"status": "ok", "model_id": whisper.model_id, **empty})
    audio = np.load(ctx.path(AUDIO), allow_pickle=False)
    transcript = whisper.transcribe(audio)
    result = {"status": "ok", "model_id": whisper.model_id, "language": transcript.language,
              "text": transcript.text, "segments": [asdict(s) for s in transcript.segments]}
    return _store(ctx, "transcript", key, result)


def step_captions(ctx: StepContext, models: ModelRegistry | None = None) -> dict:
    """WebVTT captions from the transcript segments (``captions.vtt``; ``file`` is None when nothing was said)."""
    _begin(ctx)
    tx = load_result(ctx, "transcript") or {"segments": [], "language": None}
    key = _key("captions", tx.get("segments"), tx.get("language"))
    cached = _cached(ctx, "captions", key, lambda r: [r["file"]] if r["file"] else [])
    if cached is not None:
        return cached
    segments = [s for s in tx.get("segments", []) if s.get("text", "").strip()]
    if not segments:
        return _store(ctx, "captions", key, {"file": None, "cues": 0, "language": tx.get("language")})
    write_text(ctx.path(CAPTIONS), to_webvtt(segments))
    return _store(ctx, "captions", key, {"file": CAPTIONS, "cues": len(segments), "language": tx.get("language")})


def step_text_embedding(ctx: StepContext, models: ModelRegistry | None = None) -> dict:
    """One vector for caption + hashtags + transcript: CLIP's text tower when CLIP weights are loaded (same
    space as the frames), else the sentence encoder. ``model_id`` says which, so the app can re-embed later."""
    _begin(ctx)
    if models is None:
        raise ValueError("step_text_embedding needs a ModelRegistry")
    tx = load_result(ctx, "transcript") or {}
    hashtags = parse_hashtags(ctx.caption)
    text = embedding_text(ctx.caption, tx.get("text"))
    embedder = models.text_embedder()
    if embedder is None:
        from media.errors import TransientMediaError

        raise TransientMediaError("no text encoder could be loaded: " + json.dumps(models.status()["sentence"]))
    key = _key("text_embedding", text, embedder.model_id)
    cached = _cached(ctx, "text_embedding", key, lambda r: [])
    if cached is not None:
        return cached
    base = {"model_id": embedder.model_id, "random": bool(getattr(embedder, "is_random", False)),
            "hashtags": hashtags, "text_chars": len(text)}
    if not text:
        return _store(ctx, "text_embedding", key, {"status": "empty", "dim": embedder.dim, "vector": None, **base})
    vector = embedder.embed_texts([text])[0]
    return _store(ctx, "text_embedding", key, {"status": "ok", "dim": int(vector.shape[0]),
                                                "vector": [round(float(x), 7) for x in vector], **base})


PIPELINE: list[tuple[str, Callable[[StepContext, Any], dict]]] = [
    ("probe", step_probe),
    ("transcode", step_transcode),
    ("frames", step_frames),
    ("clip_images", step_clip_images),
    ("audio", step_audio),
    ("fingerprint", step_fingerprint),
    ("transcript", step_transcript),
    ("captions", step_captions),
    ("text_embedding", step_text_embedding),
]


def run_pipeline(ctx: StepContext, models: ModelRegistry | None,
                 on_step: Callable[[str, dict, float], None] | None = None) -> dict[str, dict]:
    """Run every step in order (for the CLI, tests and benchmarks; the app runs steps as durable jobs)."""
    import time

    results: dict[str, dict] = {}
    for name, fn in PIPELINE:
        started = time.perf_counter()
        results[name] = fn(ctx, models)
        if on_step:
            on_step(name, results[name], time.perf_counter() - started)
    return results


def remove_intermediates(ctx: StepContext) -> None:
    """Delete what the app does not serve (frames, decoded audio) once the video is ready."""
    shutil.rmtree(ctx.path(FRAMES_DIR), ignore_errors=True)
    ctx.path(AUDIO).unlink(missing_ok=True)
