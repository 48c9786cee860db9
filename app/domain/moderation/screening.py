"""Automated screening before publication: blocked terms in the caption and transcript, and CLIP zero-shot
prompts on the video's frames when real CLIP weights are loaded.

A match does not delete anything: the video is published as ``moderation="flagged"``, which keeps it out of
every feed, search and profile until an operator approves it on /admin/moderation.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable

import numpy as np
from sqlalchemy import select

from app.db.admin_models import AdminSetting, BlockedTerm, ModerationFlag
from app.db.engine import Database
from app.db.models import Video
from media import steps as media_steps
from media.models.registry import ModelRegistry

log = logging.getLogger(__name__)

# Also seeded by migration 0003 (a copy); operators edit the live list on /admin/moderation.
DEFAULT_BLOCKED_TERMS = (
    "kill yourself", "kys", "beheading", "gore", "bomb making", "how to make a bomb", "terrorist attack",
    "school shooting", "self harm", "porn", "nudes", "onlyfans", "sell drugs", "buy cocaine", "meth recipe",
    "free crypto giveaway", "buy followers", "send nudes", "white power", "heil hitler",
)
CLIP_KEY = "clip_moderation"
DEFAULT_CLIP = {
    "unsafe": ["a photo of graphic violence", "a photo of blood and gore", "a photo of a gun pointed at someone",
               "a photo of nudity", "a photo of drug use"],
    "safe": ["a photo of people talking", "a photo of food", "a photo of a landscape", "a photo of an animal",
             "a photo of a city street", "a screenshot of text", "a colourful abstract pattern",
             "a photo of people dancing", "a photo of sports"],
    "threshold": 0.6,
    "scale": 100.0,
}
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    return " " + _NON_WORD.sub(" ", (text or "").lower()).strip() + " "


def match_terms(text: str, terms: Iterable[str]) -> list[str]:
    """Blocked terms found in ``text`` as whole words (case and punctuation ignored)."""
    haystack = normalise(text)
    return sorted({term for term in terms if (needle := normalise(term).strip()) and f" {needle} " in haystack})


def zero_shot(image_vectors: np.ndarray, prompt_vectors: np.ndarray, n_unsafe: int, scale: float) -> tuple[float, int]:
    """Highest probability mass on the unsafe prompts over the frames, and the frame where it occurs.

    CLIP zero-shot classification: softmax over scaled cosine similarities of each frame to every prompt."""
    logits = scale * (image_vectors @ prompt_vectors.T)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    unsafe = probs[:, :n_unsafe].sum(axis=1)
    index = int(np.argmax(unsafe))
    return float(unsafe[index]), index


async def blocked_terms(db: Database) -> list[str]:
    async with db.read() as session:
        return list((await session.execute(select(BlockedTerm.term).order_by(BlockedTerm.term))).scalars())


async def clip_settings(db: Database) -> dict:
    async with db.read() as session:
        row = await session.get(AdminSetting, CLIP_KEY)
    return {**DEFAULT_CLIP, **(row.value if row else {})}


def _visual_check(models: ModelRegistry, visual: dict | None, config: dict) -> dict | None:
    """CLIP zero-shot on the frames, only with real weights (never with random test weights)."""
    if not visual or visual.get("status") != "ok" or visual.get("random"):
        return None
    clip = models.clip()
    if clip is None or clip.is_random or clip.model_id != visual.get("model_id"):
        return None
    frames = visual.get("frame_vectors") or ([visual["vector"]] if visual.get("vector") else [])
    if not frames:
        return None
    unsafe, safe = list(config["unsafe"]), list(config["safe"])
    prompts = clip.embed_texts(unsafe + safe)
    score, frame = zero_shot(np.asarray(frames, dtype=np.float32), prompts, len(unsafe), float(config["scale"]))
    if score < float(config["threshold"]):
        return None
    frame_vec = np.asarray(frames[frame], dtype=np.float32)
    best = int(np.argmax(prompts[: len(unsafe)] @ frame_vec))
    times = visual.get("frame_times") or []
    return {"score": round(score, 3), "prompt": unsafe[best], "model": visual.get("model_id"),
            "frame_time": times[frame] if frame < len(times) else None}


async def screen_upload(db: Database, models: ModelRegistry, video_id: str,
                        ctx: media_steps.StepContext | None) -> list[dict]:
    """Flags for a video about to be published: [{"source": "terms"|"clip", "details": {...}}].

    A video screened before (it has flag rows, open or reviewed) is not screened again: the publish step is
    idempotent and must not undo an operator's approval."""
    async with db.read() as session:
        video = await session.get(Video, video_id)
        reviewed = (await session.execute(
            select(ModerationFlag.id).where(ModerationFlag.video_id == video_id).limit(1))).first()
    if video is None or reviewed:
        return []
    flags: list[dict] = []
    terms = await blocked_terms(db)
    in_caption = match_terms(video.caption, terms)
    in_transcript = match_terms(video.transcript, terms)
    if in_caption or in_transcript:
        flags.append({"source": "terms", "details": {"caption": in_caption, "transcript": in_transcript}})
    if ctx is not None:
        visual = media_steps.load_result(ctx, "clip_images")
        try:
            found = await asyncio.to_thread(_visual_check, models, visual, await clip_settings(db))
        except Exception:  # noqa: BLE001 - screening must never block publication by crashing the step
            log.exception("CLIP screening failed for %s", video_id)
            found = None
        if found:
            flags.append({"source": "clip", "details": found})
    return flags
