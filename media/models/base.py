"""Shared pieces of the model wrappers."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from typing import Protocol, runtime_checkable

import numpy as np


class ModelUnavailable(RuntimeError):
    """The model's weights cannot be had here; ``str(exc)`` says why, for the status page."""


class ModelLoadError(ModelUnavailable):
    """Weights were found but are unusable (wrong hash, wrong architecture, corrupt file)."""


@runtime_checkable
class TextEmbedder(Protocol):
    model_id: str
    dim: int

    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


_torch_lock = threading.Lock()
_torch_threads_set = False


def configure_torch(threads: int = 1) -> None:
    """Run torch inference on ``threads`` threads (one by default: two threads on a shared 2-core box are often
    slower). Process-wide, done once."""
    global _torch_threads_set
    with _torch_lock:
        if _torch_threads_set:
            return
        import torch

        torch.set_num_threads(max(1, int(threads)))
        with contextlib.suppress(RuntimeError):  # already set, or parallel work already started
            torch.set_num_interop_threads(1)
        _torch_threads_set = True


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def sha256_file(path: str | os.PathLike, chunk: int = 4 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
