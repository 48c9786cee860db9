"""Image and text embeddings with open_clip (one shared space, so text can search frames).

Weights, in order: an explicit file (``pretrained="/path/open_clip_model.safetensors"``) or folder laid out like
a hub repo (``pretrained="local-dir:/path"``); ``<models_dir>/clip/<arch>/<tag>/`` holding the weights file; the
Hugging Face cache (no network); open_clip's own download when ``allow_download``. When none can be had,
:meth:`ClipEmbedder.load` raises :class:`ModelUnavailable` and the pipeline falls back to text-only
understanding. Random weights are only ever built on purpose (:meth:`random_for_tests`,
:meth:`random_architecture` for benchmarks) and are flagged ``is_random`` with "random" in ``model_id``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from media.models.base import ModelLoadError, ModelUnavailable, configure_torch, l2_normalize, sha256_file

WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
TINY_TEST_ARCH = "foryou-tiny-random"
_CONFIG_DIR = Path(__file__).parent / "clip_configs"


@dataclass(frozen=True)
class ClipConfig:
    arch: str = "ViT-B-32"
    pretrained: str = "laion2b_s34b_b79k"  # an open_clip tag, a weights file, a folder or "local-dir:/folder"
    models_dir: str | None = None
    cache_dir: str | None = None  # Hugging Face hub cache to look in (default: HF's own default)
    allow_download: bool = False
    torch_threads: int = 1
    batch_size: int = 16


@dataclass(frozen=True)
class ClipWeights:
    kind: str  # file / local-dir / cache / download / missing
    location: str
    model_id: str
    detail: str = ""


def _hf_cached_file(repo_id: str, cache_dir: str | None) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    for filename in WEIGHT_FILES:
        for folder in ([cache_dir] if cache_dir else []) + [None]:
            found = try_to_load_from_cache(repo_id, filename, cache_dir=folder)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    return None


def _register_test_arch(arch: str) -> None:
    import open_clip

    if arch == TINY_TEST_ARCH and arch not in open_clip.list_models():
        open_clip.add_model_config(_CONFIG_DIR)


_REACHABILITY_TTL_S = 300.0
_reachability: dict[str, tuple[float, bool]] = {}


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the weights host answers at all, checked at most every few minutes. Offline, open_clip's download
    retries for most of a minute before failing; this answers at once, so a model load never stalls the
    pipeline waiting for a network that isn't there."""
    import socket
    import time
    from urllib.parse import urlparse

    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or ""
    checked_at, reachable = _reachability.get(host, (0.0, False))
    if time.monotonic() - checked_at < _REACHABILITY_TTL_S:
        return reachable
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        reachable = True
    except OSError:
        reachable = False
    _reachability[host] = (time.monotonic(), reachable)
    return reachable


def _file_id(path: str) -> str:
    return sha256_file(path)[:12]


def locate_weights(config: ClipConfig) -> ClipWeights:
    """Find CLIP weights without loading them (hashing an explicit file is the only real work)."""
    import open_clip

    pretrained = config.pretrained or ""
    if pretrained.startswith("local-dir:"):
        folder = Path(pretrained.removeprefix("local-dir:"))
        if (folder / "open_clip_config.json").is_file():
            weights = next((folder / f for f in WEIGHT_FILES if (folder / f).is_file()), None)
            if weights:
                return ClipWeights("local-dir", str(folder), f"clip:local-dir:{folder.name}-{_file_id(str(weights))}")
        return ClipWeights("missing", str(folder), "", f"{folder} lacks open_clip_config.json or a weights file")
    if pretrained and os.path.isfile(pretrained):
        return ClipWeights("file", pretrained, f"clip:{config.arch}:file-{_file_id(pretrained)}")
    if pretrained and os.path.isdir(pretrained):
        return locate_weights(ClipConfig(**{**config.__dict__, "pretrained": f"local-dir:{pretrained}"}))
    if pretrained and os.sep in pretrained:
        return ClipWeights("missing", pretrained, "", f"CLIP weights file {pretrained} does not exist")

    tag = pretrained
    model_id = f"clip:{config.arch}:{tag}"
    cfg = open_clip.get_pretrained_cfg(config.arch, tag) if tag else {}
    if not cfg:
        return ClipWeights("missing", tag, "", f"'{tag}' is not a known open_clip tag for {config.arch}")
    if config.models_dir:
        folder = Path(config.models_dir) / "clip" / config.arch / tag
        for name in WEIGHT_FILES:
            if (folder / name).is_file():
                return ClipWeights("file", str(folder / name), model_id)
    hub = cfg.get("hf_hub", "")
    if hub:
        repo_id = hub.rstrip("/").split("/")
        repo = "/".join(repo_id[:2])
        cached = _hf_cached_file(repo, config.cache_dir)
        if cached:
            return ClipWeights("cache", cached, model_id)
    if config.allow_download and _hub_reachable():
        return ClipWeights("download", tag, model_id)
    where = f"{Path(config.models_dir) / 'clip' / config.arch / tag}/" if config.models_dir else "a models dir"
    return ClipWeights("missing", tag, "", f"no CLIP weights for {config.arch}/{tag}: offline and none in {where} "
                       "or the Hugging Face cache; put open_clip_model.safetensors there or set a weights file")


class ClipEmbedder:
    """A loaded open_clip model: L2-normalised image and text embeddings in one space."""

    def __init__(self, model, preprocess, tokenizer, model_id: str, is_random: bool = False,
                 batch_size: int = 16, source: str = "") -> None:
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.is_random = is_random
        self.batch_size = batch_size
        self.source = source
        self.dim = int(model.text_projection.shape[1] if getattr(model, "text_projection", None) is not None
                       else model.visual.output_dim)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, config: ClipConfig | None = None) -> ClipEmbedder:
        import open_clip

        config = config or ClipConfig()
        configure_torch(config.torch_threads)
        _register_test_arch(config.arch)
        weights = locate_weights(config)
        if weights.kind == "missing":
            raise ModelUnavailable(weights.detail)
        try:
            if weights.kind == "local-dir":
                name = f"local-dir:{weights.location}"
                model, _, preprocess = open_clip.create_model_and_transforms(name)
                tokenizer = open_clip.get_tokenizer(name)
            else:
                extra = {}
                if weights.kind in ("file", "cache"):
                    cfg = open_clip.get_pretrained_cfg(config.arch, config.pretrained) or {}
                    extra = {k: cfg[v] for k, v in (("image_mean", "mean"), ("image_std", "std"),
                                                     ("image_interpolation", "interpolation"),
                                                     ("image_resize_mode", "resize_mode")) if cfg.get(v)}
                    pretrained = weights.location
                else:
                    pretrained = config.pretrained
                model, _, preprocess = open_clip.create_model_and_transforms(
                    config.arch, pretrained=pretrained, cache_dir=config.cache_dir, **extra)
                tokenizer = open_clip.get_tokenizer(config.arch)
        except ModelUnavailable:
            raise
        except Exception as exc:
            raise ModelLoadError(f"CLIP {config.arch} weights from {weights.location} failed to load: {exc}") from exc
        return cls(model, preprocess, tokenizer, weights.model_id, batch_size=config.batch_size,
                   source=f"{weights.kind}: {weights.location}")

    @classmethod
    def random_for_tests(cls, seed: int = 0) -> ClipEmbedder:
        """A tiny (~3.4 M parameter) randomly initialised CLIP that runs the real open_clip code path.
        Its vectors mean nothing: ``is_random`` is set and ``model_id`` is ``clip:random-test``."""
        return cls._random(TINY_TEST_ARCH, seed, "clip:random-test")

    @classmethod
    def random_architecture(cls, arch: str = "ViT-B-32", seed: int = 0) -> ClipEmbedder:
        """The full architecture with random weights: same compute as the real model, for benchmarks only."""
        return cls._random(arch, seed, f"clip:{arch}:random-init")

    @classmethod
    def _random(cls, arch: str, seed: int, model_id: str) -> ClipEmbedder:
        import open_clip
        import torch

        configure_torch(1)
        _register_test_arch(arch)
        torch.manual_seed(seed)
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None)
        return cls(model, preprocess, open_clip.get_tokenizer(arch), model_id, is_random=True,
                   source="random initialisation (not a trained model)")

    def embed_images(self, images: list[Image.Image]) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised."""
        import torch

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for i in range(0, len(images), self.batch_size):
            batch = torch.stack([self.preprocess(im.convert("RGB")) for im in images[i:i + self.batch_size]])
            with self._lock, torch.inference_mode():
                out.append(self.model.encode_image(batch).float().numpy())
        return l2_normalize(np.concatenate(out))

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised. Texts longer than the context (77 tokens) are truncated."""
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[i:i + self.batch_size]))
            with self._lock, torch.inference_mode():
                out.append(self.model.encode_text(tokens).float().numpy())
        return l2_normalize(np.concatenate(out))
