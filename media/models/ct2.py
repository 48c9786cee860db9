"""Read CTranslate2 ``model.bin`` files (the format faster-whisper uses) and convert Whisper weights to an
openai-whisper checkpoint ``{"dims": ..., "model_state_dict": ...}``.

Layout (as ctranslate2's model spec serialises it): ``u32 version``, ``str spec``, ``u32 revision``,
``u32 n_vars``; per variable ``str name``, ``u8 rank``, ``u32 dims[rank]``, ``u8 dtype``, ``u32 nbytes``, raw
data; then ``u32 n_aliases`` and (alias, target) string pairs. Strings are u16-length-prefixed and NUL-terminated.
"""

from __future__ import annotations

import os
import re
import struct

import numpy as np

_DTYPES = [np.float32, np.int8, np.int16, np.int32, np.float16, None]  # last: bfloat16


class CT2FormatError(ValueError):
    pass


def read_ct2(path: str | os.PathLike) -> tuple[str, dict[str, np.ndarray]]:
    """Return (spec name, {variable name: array}). Aliases are resolved to the arrays they point at."""
    with open(path, "rb") as fh:
        data = memoryview(fh.read())
    off = 0

    def u8() -> int:
        nonlocal off
        off += 1
        return data[off - 1]

    def u32() -> int:
        nonlocal off
        off += 4
        return struct.unpack_from("<I", data, off - 4)[0]

    def string() -> str:
        nonlocal off
        n = struct.unpack_from("<H", data, off)[0]
        off += 2 + n
        return bytes(data[off - n:off]).rstrip(b"\x00").decode("utf-8")

    try:
        version = u32()
        if version < 5:
            raise CT2FormatError(f"unsupported CTranslate2 model version {version}")
        spec = string()
        u32()  # spec revision
        variables: dict[str, np.ndarray] = {}
        for _ in range(u32()):
            name = string()
            rank = u8()
            shape = tuple(u32() for _ in range(rank))
            dtype_id = u8()
            nbytes = u32()
            raw = data[off:off + nbytes]
            off += nbytes
            if dtype_id >= len(_DTYPES):
                raise CT2FormatError(f"unknown dtype id {dtype_id} for {name}")
            if _DTYPES[dtype_id] is None:  # bfloat16 -> float32
                arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype=_DTYPES[dtype_id])
            variables[name] = arr.reshape(shape) if shape else arr.reshape(())
        if off < len(data):
            for _ in range(u32()):
                alias, target = string(), string()
                if target in variables:
                    variables[alias] = variables[target]
    except struct.error as exc:
        raise CT2FormatError(f"{path}: file is truncated or not a CTranslate2 model") from exc
    return spec, variables


def _split(arr: np.ndarray, parts: int) -> list[np.ndarray]:
    return list(np.split(arr, parts, axis=0))


def ct2_to_whisper(variables: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    """Map CTranslate2 Whisper variables to openai-whisper's (dims, state_dict of numpy arrays)."""
    v = variables
    sd: dict[str, np.ndarray] = {}

    def ln(src: str, dst: str) -> None:
        sd[f"{dst}.weight"] = v[f"{src}/gamma"]
        sd[f"{dst}.bias"] = v[f"{src}/beta"]

    def linear(src: str, dst: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = v[f"{src}/weight"]
        if bias:
            sd[f"{dst}.bias"] = v[f"{src}/bias"]

    def fused(src: str, dsts: list[str], bias_for: list[bool]) -> None:
        weights = _split(v[f"{src}/weight"], len(dsts))
        biases = _split(v[f"{src}/bias"], len(dsts))
        for dst, w, b, keep_bias in zip(dsts, weights, biases, bias_for, strict=True):
            sd[f"{dst}.weight"] = w
            if keep_bias:
                sd[f"{dst}.bias"] = b

    layer_re = re.compile(r"^(encoder|decoder)/layer_(\d+)/")
    n_layers = {"encoder": 0, "decoder": 0}
    for name in v:
        m = layer_re.match(name)
        if m:
            n_layers[m.group(1)] = max(n_layers[m.group(1)], int(m.group(2)) + 1)

    for conv in ("conv1", "conv2"):
        linear(f"encoder/{conv}", f"encoder.{conv}")
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    for i in range(n_layers["encoder"]):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        fused(f"{src}/self_attention/linear_0", [f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value"],
              [True, False, True])
        linear(f"{src}/self_attention/linear_1", f"{dst}.attn.out")
        ln(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        linear(f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        linear(f"{src}/ffn/linear_1", f"{dst}.mlp.2")
        ln(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
    ln("encoder/layer_norm", "encoder.ln_post")

    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(n_layers["decoder"]):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        fused(f"{src}/self_attention/linear_0", [f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value"],
              [True, False, True])
        linear(f"{src}/self_attention/linear_1", f"{dst}.attn.out")
        ln(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        linear(f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
        fused(f"{src}/attention/linear_1", [f"{dst}.cross_attn.key", f"{dst}.cross_attn.value"], [False, True])
        linear(f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
        ln(f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
        linear(f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        linear(f"{src}/ffn/linear_1", f"{dst}.mlp.2")
        ln(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
    ln("decoder/layer_norm", "decoder.ln")

    conv1 = v["encoder/conv1/weight"]
    enc_pos = v["encoder/position_encodings/encodings"]
    dec_pos = v["decoder/position_encodings/encodings"]
    emb = v["decoder/embeddings/weight"]
    dims = {
        "n_mels": int(conv1.shape[1]),
        "n_audio_ctx": int(enc_pos.shape[0]),
        "n_audio_state": int(enc_pos.shape[1]),
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": n_layers["encoder"],
        "n_vocab": int(emb.shape[0]),
        "n_text_ctx": int(dec_pos.shape[0]),
        "n_text_state": int(dec_pos.shape[1]),
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": n_layers["decoder"],
    }
    return dims, sd
