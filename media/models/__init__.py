"""Model wrappers (one class per model) and the process-wide registry."""

from media.models.base import ModelLoadError, ModelUnavailable, TextEmbedder, configure_torch
from media.models.clip import ClipConfig, ClipEmbedder
from media.models.registry import ModelRegistry, ModelSettings, prepare
from media.models.sentence import SentenceEmbedder
from media.models.whisper import Segment, Transcript, WhisperConfig, WhisperTranscriber

__all__ = [
    "ClipConfig", "ClipEmbedder", "ModelLoadError", "ModelRegistry", "ModelSettings", "ModelUnavailable", "Segment",
    "SentenceEmbedder", "TextEmbedder", "Transcript", "WhisperConfig", "WhisperTranscriber", "configure_torch",
    "prepare",
]
