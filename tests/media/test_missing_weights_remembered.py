"""Missing model weights are looked for once, then again only when the place they would be in changes (a CLIP
search costs seconds, and the media worker asks for the model on every video)."""

from __future__ import annotations

from media.models import clip as clip_mod
from media.models.base import ModelUnavailable
from media.models.registry import RETRY_AFTER_S, ModelRegistry, ModelSettings


def test_missing_weights_are_remembered_until_the_weights_path_changes(tmp_path, monkeypatch):
    weights = tmp_path / "weights" / "clip.safetensors"
    weights.parent.mkdir()
    calls = []

    def load(config):  # noqa: ANN001, ANN202 - stands in for the real, slow search
        calls.append(config.pretrained)
        raise ModelUnavailable(f"CLIP weights file {config.pretrained} does not exist")

    monkeypatch.setattr(clip_mod.ClipEmbedder, "load", staticmethod(load))
    registry = ModelRegistry(ModelSettings(models_dir=str(tmp_path / "models"), whisper="",
                                           clip_pretrained=str(weights)))
    assert registry.clip() is None and registry.clip() is None
    registry._slots["clip"].failed_at -= 10 * RETRY_AFTER_S  # long past the old once-a-minute retry
    assert registry.clip() is None
    assert len(calls) == 1
    assert registry.status()["clip"]["state"] == "missing"

    weights.write_bytes(b"not really weights")  # the operator puts the file in place
    assert registry.clip() is None
    assert len(calls) == 2  # looked again because the path changed
