"""Periodic-job outputs as portable bytes, so one process (the scheduler) computes them and every replica loads
them instead of recomputing.

A job's outputs are the parts of the state it writes: the suspicious accounts, the statistics' baselines and
lists, trend factors, item-to-item neighbours, long-term interest centroids, the vector index's trained lists, a
metric snapshot, the sequence model, and which ranker version is active (the rankers themselves are in the
model store). Item counters are not among them: every replica updates those itself from the same stream of
events. Outputs are keyed by item and user ids, never by a replica's own row numbers, so a replica whose
catalogue is ordered differently loads them all the same; ids it does not know (yet) are skipped.

The format is a NumPy ``.npz`` archive (``allow_pickle=False``): arrays as entries plus one JSON entry, so a
blob read back from a database or object store cannot run code.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import numpy as np

from . import fusion
from .features import collaborative
from .sequence.model import SequenceModel
from .state import EngineState
from .vector_index import VectorIndex

FORMAT = 1
_META = "__meta__"

Outputs = tuple[dict, dict[str, np.ndarray]]  # (JSON-able metadata, arrays)


def _rows(state: EngineState, ids) -> list[tuple[int, str]]:  # noqa: ANN001
    return [(state.catalog.row_of[i], i) for i in ids if i in state.catalog.row_of]


# ---- per job: what it writes, and how a replica takes it ---------------------------------------------------
def _farming_out(state: EngineState) -> Outputs:
    return {"suspicious_users": sorted(state.suspicious_users)}, {}


def _farming_in(state: EngineState, meta: dict, arrays: dict) -> dict:
    state.suspicious_users = set(meta["suspicious_users"])
    return {"suspicious_users": len(state.suspicious_users)}


def _stats_out(state: EngineState) -> Outputs:
    catalog = state.catalog
    n = len(catalog)
    levels = {catalog.items[row].item_id: int(catalog.cold_level[row]) for row in range(n)}
    return {"global_rates": state.global_rates, "category_rates": state.category_rates, "popular": state.popular,
            "cold_level": levels}, {}


def _stats_in(state: EngineState, meta: dict, arrays: dict) -> dict:
    state.global_rates = {k: float(v) for k, v in meta["global_rates"].items()}
    state.category_rates = {k: float(v) for k, v in meta["category_rates"].items()}
    catalog = state.catalog
    state.popular = [i for i in meta["popular"] if i in catalog.row_of]
    state.popular_version = catalog.version
    for row, item_id in _rows(state, meta["cold_level"]):
        catalog.cold_level[row] = meta["cold_level"][item_id]
    return {"popular": len(state.popular)}


def _trends_out(state: EngineState) -> Outputs:
    catalog = state.catalog
    factors = {catalog.items[row].item_id: float(catalog.trend[row])
               for row in np.flatnonzero(catalog.trend[: len(catalog)])}
    return {"trending": state.trending, "trend": factors}, {}


def _trends_in(state: EngineState, meta: dict, arrays: dict) -> dict:
    catalog = state.catalog
    catalog.trend[: len(catalog)] = 0.0
    for row, item_id in _rows(state, meta["trend"]):
        catalog.trend[row] = meta["trend"][item_id]
    state.trending = [i for i in meta["trending"] if i in catalog.row_of]
    return {"trending": len(state.trending)}


def _neighbors_out(state: EngineState) -> Outputs:
    similarity = state.similarity
    return ({"method": similarity.method, "ids": list(similarity.ids)},
            {"indptr": similarity.indptr, "neighbors": similarity.neighbors, "weights": similarity.weights})


def _neighbors_in(state: EngineState, meta: dict, arrays: dict) -> dict:
    ids = tuple(meta["ids"])
    state.similarity = collaborative.ItemSimilarity(
        meta["method"], ids, {item_id: position for position, item_id in enumerate(ids)},
        arrays["indptr"].astype(np.int64), arrays["neighbors"].astype(np.int32), arrays["weights"].astype(np.float32),
        version=state.similarity.version + 1,  # a new version: the per-user score cache is keyed by it
    )
    return {"method": meta["method"], "pairs": state.similarity.pairs}


def _interests_out(state: EngineState) -> Outputs:
    users, updated, offsets, vectors, weights = [], [], [0], [], []
    for user_id, user in state.users.items():
        profile = user.long_term
        if profile.vectors is None or not len(profile.weights):
            continue
        users.append(user_id)
        updated.append(profile.updated_at)
        vectors.append(profile.vectors)
        weights.append(profile.weights)
        offsets.append(offsets[-1] + len(profile.weights))
    dim = state.catalog.dim or 0
    return ({"users": users, "updated_at": updated},
            {"offsets": np.asarray(offsets, dtype=np.int64),
             "vectors": np.concatenate(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32),
             "weights": np.concatenate(weights) if weights else np.zeros(0)})


def _interests_in(state: EngineState, meta: dict, arrays: dict) -> dict:
    offsets = arrays["offsets"]
    for position, user_id in enumerate(meta["users"]):
        start, end = int(offsets[position]), int(offsets[position + 1])
        state.user(user_id).long_term.set(arrays["vectors"][start:end], arrays["weights"][start:end],
                                          float(meta["updated_at"][position]))
    return {"users": len(meta["users"])}


def _ranker_out(state: EngineState) -> Outputs:
    registry = state.ranker
    return {"active_version": registry.active_version, "trained_until": registry.trained_until}, {}


def _ranker_in(state: EngineState, meta: dict, arrays: dict) -> dict:
    """The versions themselves are in the model store (the scheduler saved them): read them again."""
    registry = state.ranker
    registry.reload()
    if meta["active_version"] in registry.models and registry.active_version != meta["active_version"]:
        registry.active_version = meta["active_version"]
    return {"active_version": registry.active_version, "versions": len(registry.records)}


def _sequence_out(state: EngineState) -> Outputs:
    model = state.sequence
    arrays = {"model": np.frombuffer(model.to_bytes(), dtype=np.uint8)} if model is not None else {}
    return {"versions": state.sequence_versions}, arrays


def _sequence_in(state: EngineState, meta: dict, arrays: dict) -> dict:
    state.sequence_versions = [dict(v) for v in meta["versions"]]
    if "model" in arrays:
        state.sequence = SequenceModel.from_bytes(arrays["model"].tobytes())
    return {"version": state.sequence.version if state.sequence is not None else None}


def _index_out(state: EngineState) -> Outputs:
    index = state.catalog.index
    if index is None:
        return {"built": False}, {}
    return {"built": True, "built_size": index.built_size}, {"centroids": index.centroids()}


def _index_in(state: EngineState, meta: dict, arrays: dict) -> dict:
    catalog = state.catalog
    if not meta["built"]:
        catalog.set_index(None)
        return {"index": "exact search"}
    centroids = arrays["centroids"].astype(np.float32)
    if not catalog.dim or centroids.shape[1] != catalog.dim:
        return {"index": "skipped: vector size differs"}
    # The trained lists are shared; the ids are this replica's own rows, so it fills the index itself.
    catalog.set_index(VectorIndex.from_centroids(centroids, int(meta.get("built_size", len(catalog)))))
    return {"index": "loaded", "lists": len(centroids)}


def _metrics_out(state: EngineState) -> Outputs:
    return {"latest": state.metric_history[-1] if state.metric_history else None}, {}


def _metrics_in(state: EngineState, meta: dict, arrays: dict) -> dict:
    if meta["latest"] is not None:
        state.metric_history.append(meta["latest"])
        del state.metric_history[:-500]
    return {"metrics": meta["latest"] is not None}


def _activity_out(state: EngineState) -> Outputs:
    activity, catalog = state.activity, state.catalog
    n = min(len(activity.decayed), len(catalog))
    ids = np.array([catalog.items[row].item_id for row in range(n)], dtype=np.str_)
    inside = activity.rows < n
    return ({"at": activity.at if np.isfinite(activity.at) else None, "version": activity.version},
            {"ids": ids, "decayed": activity.decayed[:n], "times": activity.times[inside],
             "event_rows": activity.rows[inside], "weights": activity.weights[inside]})


def _activity_in(state: EngineState, meta: dict, arrays: dict) -> dict:
    if meta["at"] is None:
        state.activity = fusion.ItemActivity.empty()
        return {"positive_events": 0}
    catalog = state.catalog
    mine = np.array([catalog.row_of.get(str(i), -1) for i in arrays["ids"].tolist()], dtype=np.int64)
    decayed = np.zeros((len(catalog), arrays["decayed"].shape[1]))
    known = mine >= 0
    decayed[mine[known]] = arrays["decayed"][known]
    rows = mine[arrays["event_rows"]] if len(arrays["event_rows"]) else np.zeros(0, np.int64)
    ok = rows >= 0
    state.activity = fusion.ItemActivity(float(meta["at"]), decayed, arrays["times"][ok], rows[ok],
                                         arrays["weights"][ok], int(meta["version"]))
    return {"positive_events": int(ok.sum())}


def _fusion_out(state: EngineState) -> Outputs:
    registry = state.fusion
    model = registry.active
    arrays = {}
    if model is not None:
        arrays["model"] = np.frombuffer(model.booster.model_to_string().encode(), dtype=np.uint8)
    return {"active_version": registry.active_version, "history": registry.history()}, arrays


def _fusion_in(state: EngineState, meta: dict, arrays: dict) -> dict:
    import lightgbm

    registry = fusion.FusionRegistry()
    for record in meta["history"]:
        registry.versions.append(fusion.FusionVersion(record["version"], record["created_at"], record["status"],
                                                      record["metrics"]))
    if "model" in arrays and meta["active_version"] is not None:
        booster = lightgbm.Booster(model_str=arrays["model"].tobytes().decode())
        model = fusion.FusionModel(booster)
        model.compile()
        registry._get(meta["active_version"]).model = model
        registry.active_version = meta["active_version"]
    state.fusion = registry
    return {"active_version": registry.active_version}


PUBLISHED: dict[str, tuple[Callable[[EngineState], Outputs], Callable[[EngineState, dict, dict], dict]]] = {
    "engagement_farming": (_farming_out, _farming_in),
    "video_stats": (_stats_out, _stats_in),
    "trends": (_trends_out, _trends_in),
    "item_neighbors": (_neighbors_out, _neighbors_in),
    "long_term_interests": (_interests_out, _interests_in),
    "ranker_training": (_ranker_out, _ranker_in),
    "sequence_model": (_sequence_out, _sequence_in),
    "item_activity": (_activity_out, _activity_in),
    "candidate_fusion": (_fusion_out, _fusion_in),
    "vector_index": (_index_out, _index_in),
    "metrics_snapshot": (_metrics_out, _metrics_in),
}


# ---- bytes ---------------------------------------------------------------------------------------------------
def _plain(value: object) -> object:
    """NumPy scalars and arrays inside job summaries, as JSON."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def export_outputs(state: EngineState, job: str) -> bytes | None:
    """The job's outputs as bytes; None for a job whose outputs are not published."""
    entry = PUBLISHED.get(job)
    if entry is None:
        return None
    with state.lock:
        meta, arrays = entry[0](state)
    buffer = io.BytesIO()
    header = json.dumps({"format": FORMAT, "job": job, "meta": meta}, default=_plain).encode()
    np.savez_compressed(buffer, **{_META: np.frombuffer(header, dtype=np.uint8)}, **arrays)
    return buffer.getvalue()


def load_outputs(state: EngineState, job: str, blob: bytes) -> dict:
    """Apply published outputs of ``job`` to this state; a clear error for bytes of another job or format."""
    entry = PUBLISHED.get(job)
    if entry is None:
        raise KeyError(f"job {job!r} publishes no outputs")
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        header = json.loads(archive[_META].tobytes())
        arrays = {name: archive[name] for name in archive.files if name != _META}
    if header.get("format") != FORMAT or header.get("job") != job:
        raise ValueError(f"snapshot is {header.get('job')!r} format {header.get('format')}, expected {job!r} "
                         f"format {FORMAT}")
    with state.lock:
        return entry[1](state, header["meta"], arrays)
